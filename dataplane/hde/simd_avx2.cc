// AVX2 kernels, compiled with -mavx2 (meson.build) and called only when the CPU has it.
#include "dataplane/hde/simd.h"

#include <immintrin.h>

namespace dwcp::hde {
namespace {

size_t first_diff_avx2(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;
	// 128 bytes a round: four compares folded into one test keep the loop at about
	// one load pair per cycle on unchanged pages, the common case.
	for (; i + 128 <= n; i += 128) {
		__m256i e0 = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(a + i)),
			_mm256_loadu_si256((const __m256i *)(b + i)));
		__m256i e1 = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(a + i + 32)),
			_mm256_loadu_si256((const __m256i *)(b + i + 32)));
		__m256i e2 = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(a + i + 64)),
			_mm256_loadu_si256((const __m256i *)(b + i + 64)));
		__m256i e3 = _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(a + i + 96)),
			_mm256_loadu_si256((const __m256i *)(b + i + 96)));
		__m256i all = _mm256_and_si256(_mm256_and_si256(e0, e1), _mm256_and_si256(e2, e3));
		if ((uint32_t)_mm256_movemask_epi8(all) != 0xffffffffu)
			break;
	}
	for (; i + 32 <= n; i += 32) {
		uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
			_mm256_loadu_si256((const __m256i *)(a + i)), _mm256_loadu_si256((const __m256i *)(b + i))));
		if (m != 0xffffffffu)
			return i + size_t(__builtin_ctz(~m));
	}
	for (; i < n; i++)
		if (a[i] != b[i])
			return i;
	return n;
}

size_t first_equal_avx2(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		uint32_t m = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
			_mm256_loadu_si256((const __m256i *)(a + i)), _mm256_loadu_si256((const __m256i *)(b + i))));
		if (m)
			return i + size_t(__builtin_ctz(m));
	}
	for (; i < n; i++)
		if (a[i] == b[i])
			return i;
	return n;
}

bool is_zero_avx2(const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 128 <= n; i += 128) {
		__m256i v = _mm256_or_si256(
			_mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + i)),
				_mm256_loadu_si256((const __m256i *)(p + i + 32))),
			_mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + i + 64)),
				_mm256_loadu_si256((const __m256i *)(p + i + 96))));
		if (!_mm256_testz_si256(v, v))
			return false;
	}
	for (; i < n; i++)
		if (p[i])
			return false;
	return true;
}

void xor_into_avx2(uint8_t *dst, const uint8_t *src, size_t n)
{
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		__m256i v = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(dst + i)),
			_mm256_loadu_si256((const __m256i *)(src + i)));
		_mm256_storeu_si256((__m256i *)(dst + i), v);
	}
	for (; i < n; i++)
		dst[i] ^= src[i];
}

size_t diff_mask_avx2(const uint8_t *a, const uint8_t *b, size_t n, uint64_t *mask)
{
	size_t nb = 0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		uint32_t lo = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
			_mm256_loadu_si256((const __m256i *)(a + i)), _mm256_loadu_si256((const __m256i *)(b + i))));
		uint32_t hi = (uint32_t)_mm256_movemask_epi8(_mm256_cmpeq_epi8(
			_mm256_loadu_si256((const __m256i *)(a + i + 32)), _mm256_loadu_si256((const __m256i *)(b + i + 32))));
		uint64_t m = ~(uint64_t(hi) << 32 | lo);
		mask[i / 64] = m;
		nb += size_t(__builtin_popcountll(m));
	}
	if (i < n) {
		uint64_t m = 0;
		for (size_t j = 0; i + j < n; j++)
			m |= uint64_t(a[i + j] != b[i + j]) << j;
		mask[i / 64] = m;
		nb += size_t(__builtin_popcountll(m));
	}
	return nb;
}

} // namespace

const Kernels &kernels_avx2()
{
	static const Kernels k = {"avx2", first_diff_avx2, first_equal_avx2, is_zero_avx2, xor_into_avx2,
		diff_mask_avx2};
	return k;
}

} // namespace dwcp::hde
