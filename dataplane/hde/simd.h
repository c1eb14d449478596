#pragma once
// Byte kernels of the block-delta hot path, built once per ISA.
//
// simd_scalar.cc is portable C++; simd_avx2.cc and simd_avx512.cc are compiled with
// their own -m flags (see meson.build) and only ever called after kernels() checked
// the CPU.  Every variant returns exactly the same values as the scalar one, so an
// encoded chunk does not depend on the machine that made it (tests/simd_test.cc).
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dwcp::hde {

struct Kernels {
	const char *name;
	// Index of the first byte where a and b differ, or n when they are equal.
	size_t (*first_diff)(const uint8_t *a, const uint8_t *b, size_t n);
	// Index of the first byte where a and b are equal, or n when none is.
	size_t (*first_equal)(const uint8_t *a, const uint8_t *b, size_t n);
	// True when all n bytes are zero.
	bool (*is_zero)(const uint8_t *p, size_t n);
	// dst[i] ^= src[i] for i < n.
	void (*xor_into)(uint8_t *dst, const uint8_t *src, size_t n);
	// Bit i%64 of mask[i/64] set when a[i] != b[i], for i < n; writes (n+63)/64
	// words, the bits past n clear.  Returns the number of differing bytes.  One
	// pass over both blocks: the XOR runs of a dirty page are then found with bit
	// scans instead of a compare call per run.
	size_t (*diff_mask)(const uint8_t *a, const uint8_t *b, size_t n, uint64_t *mask);
};

const Kernels &kernels_scalar();
// Only valid when the CPU has the ISA (cpu_has_avx2 / cpu_has_avx512).
const Kernels &kernels_avx2();
const Kernels &kernels_avx512();
bool cpu_has_avx2();
bool cpu_has_avx512(); // AVX-512 F + BW

// The best variant for this CPU, chosen on first use.  The environment variable
// DWCP_HDE_ISA=scalar|avx2|avx512 caps the choice (benchmarks and bug reports);
// asking for an ISA the CPU lacks falls back to the best one it has.
const Kernels &kernels();
// The variant named `name` if the CPU supports it, else nullptr.
const Kernels *kernels_by_name(std::string_view name);

} // namespace dwcp::hde
