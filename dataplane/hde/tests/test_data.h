#pragma once
// Seeded test images for the HDE tests: pages of different kinds, and edits.
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

namespace dwcp::hde::test {

inline std::vector<uint8_t> random_bytes(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<uint8_t> v(n);
	for (auto &b : v)
		b = uint8_t(rng());
	return v;
}

// Pages that are zero, text-like (few distinct bytes) or random, in runs.
inline std::vector<uint8_t> structured_image(size_t n, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	std::vector<uint8_t> v(n);
	for (size_t p = 0; p < n; p += 4096) {
		size_t len = std::min<size_t>(4096, n - p);
		switch (rng() % 3) {
		case 0: break;
		case 1:
			for (size_t i = 0; i < len; i++)
				v[p + i] = uint8_t('a' + rng() % 6);
			break;
		default:
			for (size_t i = 0; i < len; i++)
				v[p + i] = uint8_t(rng());
		}
	}
	return v;
}

// Small writes into a fraction of the pages.
inline void dirty_pages(std::vector<uint8_t> &v, double fraction, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	for (size_t p = 0; p + 4096 <= v.size(); p += 4096) {
		if (double(rng() % 10000) / 10000.0 >= fraction)
			continue;
		for (int k = 0; k < 3; k++) {
			size_t off = p + rng() % 4080;
			for (int i = 0; i < 16; i++)
				v[off + i] ^= uint8_t(rng() | 1);
		}
	}
}

} // namespace dwcp::hde::test
