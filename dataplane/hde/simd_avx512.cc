// AVX-512 (F + BW) kernels, compiled with -mavx512f -mavx512bw (meson.build) and
// called only when the CPU has both.  Byte compares go straight to mask registers,
// and the tail is a masked load, so there is no scalar remainder loop.
#include "dataplane/hde/simd.h"

#include <immintrin.h>

namespace dwcp::hde {
namespace {

inline __mmask64 tail_mask(size_t left)
{
	return left >= 64 ? ~__mmask64(0) : ((__mmask64(1) << left) - 1);
}

size_t first_diff_avx512(const uint8_t *a, const uint8_t *b, size_t n)
{
	size_t i = 0;
	// 256 bytes a round, as in the AVX2 variant: four compares, one branch.
	for (; i + 256 <= n; i += 256) {
		__mmask64 m0 = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
		__mmask64 m1 = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a + i + 64), _mm512_loadu_si512(b + i + 64));
		__mmask64 m2 = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a + i + 128), _mm512_loadu_si512(b + i + 128));
		__mmask64 m3 = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a + i + 192), _mm512_loadu_si512(b + i + 192));
		if (m0 | m1 | m2 | m3)
			break;
	}
	for (; i < n; i += 64) {
		__mmask64 t = tail_mask(n - i);
		__mmask64 m = _mm512_mask_cmpneq_epi8_mask(t, _mm512_maskz_loadu_epi8(t, a + i),
			_mm512_maskz_loadu_epi8(t, b + i));
		if (m)
			return i + size_t(__builtin_ctzll(m));
	}
	return n;
}

size_t first_equal_avx512(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i += 64) {
		__mmask64 t = tail_mask(n - i);
		__mmask64 m = _mm512_mask_cmpeq_epi8_mask(t, _mm512_maskz_loadu_epi8(t, a + i),
			_mm512_maskz_loadu_epi8(t, b + i));
		if (m)
			return i + size_t(__builtin_ctzll(m));
	}
	return n;
}

bool is_zero_avx512(const uint8_t *p, size_t n)
{
	size_t i = 0;
	for (; i + 256 <= n; i += 256) {
		__m512i v = _mm512_or_si512(_mm512_or_si512(_mm512_loadu_si512(p + i), _mm512_loadu_si512(p + i + 64)),
			_mm512_or_si512(_mm512_loadu_si512(p + i + 128), _mm512_loadu_si512(p + i + 192)));
		if (_mm512_test_epi64_mask(v, v))
			return false;
	}
	for (; i < n; i += 64) {
		__mmask64 t = tail_mask(n - i);
		__m512i v = _mm512_maskz_loadu_epi8(t, p + i);
		if (_mm512_test_epi64_mask(v, v))
			return false;
	}
	return true;
}

void xor_into_avx512(uint8_t *dst, const uint8_t *src, size_t n)
{
	for (size_t i = 0; i < n; i += 64) {
		__mmask64 t = tail_mask(n - i);
		__m512i v = _mm512_xor_si512(_mm512_maskz_loadu_epi8(t, dst + i), _mm512_maskz_loadu_epi8(t, src + i));
		_mm512_mask_storeu_epi8(dst + i, t, v);
	}
}

size_t diff_mask_avx512(const uint8_t *a, const uint8_t *b, size_t n, uint64_t *mask)
{
	size_t nb = 0;
	size_t i = 0;
	for (; i + 64 <= n; i += 64) {
		uint64_t m = _mm512_cmpneq_epi8_mask(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i));
		mask[i / 64] = m;
		nb += size_t(__builtin_popcountll(m));
	}
	if (i < n) {
		__mmask64 t = tail_mask(n - i);
		uint64_t m = _mm512_mask_cmpneq_epi8_mask(t, _mm512_maskz_loadu_epi8(t, a + i),
			_mm512_maskz_loadu_epi8(t, b + i));
		mask[i / 64] = m;
		nb += size_t(__builtin_popcountll(m));
	}
	return nb;
}

} // namespace

const Kernels &kernels_avx512()
{
	static const Kernels k = {"avx512", first_diff_avx512, first_equal_avx512, is_zero_avx512,
		xor_into_avx512, diff_mask_avx512};
	return k;
}

} // namespace dwcp::hde
