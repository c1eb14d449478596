// Portable kernels: 8 bytes at a time through memcpy'd words, which compilers turn
// into plain 64-bit loads.  The reference every SIMD variant is tested against.
#include "dataplane/hde/simd.h"

#include <cstring>

namespace dwcp::hde {
namespace {

inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

size_t first_diff_scalar(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t x = load64(a + i) ^ load64(b + i);
		if (x)
			return i + size_t(__builtin_ctzll(x) >> 3);
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

size_t first_equal_scalar(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i] == b[i])
			return i;
	return n;
}

bool is_zero_scalar(const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t acc = 0;
	for (; i + 32 <= n; i += 32) {
		acc |= load64(p + i) | load64(p + i + 8) | load64(p + i + 16) | load64(p + i + 24);
		if (acc)
			return false;
	}
	for (; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

void xor_into_scalar(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = load64(dst + i) ^ load64(src + i);
		memcpy(dst + i, &v, 8);
	}
	for (; i < n; i++)
		dst[i] ^= src[i];
}

size_t diff_mask_scalar(const uint8_t *a, const uint8_t *b, size_t n, uint64_t *mask)
{
	size_t nb = 0;
	for (size_t i = 0; i < n; i += 64) {
		size_t e = n - i < 64 ? n - i : 64;
		uint64_t m = 0;
		for (size_t j = 0; j < e; j++)
			m |= uint64_t(a[i + j] != b[i + j]) << j;
		mask[i / 64] = m;
		nb += size_t(__builtin_popcountll(m));
	}
	return nb;
}

} // namespace

const Kernels &kernels_scalar()
{
	static const Kernels k = {"scalar", first_diff_scalar, first_equal_scalar, is_zero_scalar,
		xor_into_scalar, diff_mask_scalar};
	return k;
}

} // namespace dwcp::hde
