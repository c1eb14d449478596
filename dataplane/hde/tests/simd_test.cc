// Every SIMD variant against the scalar reference, on the kernels and on whole
// encoded chunks (which must be byte for byte the same whatever the ISA).
#include "dataplane/hde/block_delta.h"
#include "dataplane/hde/simd.h"
#include "dataplane/hde/tests/test_data.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace dwcp::hde {
namespace {

std::vector<const Kernels *> variants()
{
	std::vector<const Kernels *> v;
	for (const char *n : {"scalar", "avx2", "avx512"})
		if (const Kernels *k = kernels_by_name(n))
			v.push_back(k);
	return v;
}

TEST(Simd, ChosenVariantIsAvailable)
{
	const Kernels &k = kernels();
	EXPECT_EQ(kernels_by_name(k.name), &k);
	if (cpu_has_avx512() && !getenv("DWCP_HDE_ISA")) {
		EXPECT_STREQ(k.name, "avx512");
	}
	printf("variants on this CPU:");
	for (auto *v : variants())
		printf(" %s", v->name);
	printf(", chosen %s\n", k.name);
}

TEST(Simd, KernelsMatchScalar)
{
	const Kernels &ref = kernels_scalar();
	std::mt19937_64 rng(7);
	std::vector<uint8_t> a(1200), b(1200);
	for (const Kernels *k : variants()) {
		for (int iter = 0; iter < 20000; iter++) {
			size_t n = rng() % 600;
			size_t off = rng() % 64; // unaligned starts
			for (size_t i = 0; i < n + off; i++)
				a[i] = b[i] = uint8_t(rng() % 3 == 0 ? 0 : rng() % 4);
			// A few differences (or none, or many) at random places.
			int nd = int(rng() % 4);
			for (int d = 0; d < nd && n; d++)
				b[off + rng() % n] ^= uint8_t(1 + rng() % 255);
			const uint8_t *pa = a.data() + off, *pb = b.data() + off;
			ASSERT_EQ(k->first_diff(pa, pb, n), ref.first_diff(pa, pb, n)) << k->name << " n=" << n;
			ASSERT_EQ(k->first_equal(pa, pb, n), ref.first_equal(pa, pb, n)) << k->name << " n=" << n;
			ASSERT_EQ(k->is_zero(pa, n), ref.is_zero(pa, n)) << k->name << " n=" << n;
			std::vector<uint64_t> m1((n + 63) / 64 + 1, 7), m2((n + 63) / 64 + 1, 7);
			ASSERT_EQ(k->diff_mask(pa, pb, n, m1.data()), ref.diff_mask(pa, pb, n, m2.data())) << k->name;
			ASSERT_EQ(m1, m2) << k->name << " n=" << n;
			ASSERT_EQ(m1.back(), 7u) << k->name << " wrote past (n+63)/64 words, n=" << n;
			std::vector<uint8_t> x1(pa, pa + n), x2(pa, pa + n);
			k->xor_into(x1.data(), pb, n);
			ref.xor_into(x2.data(), pb, n);
			ASSERT_EQ(x1, x2) << k->name << " n=" << n;
		}
		// All-zero buffers of every length up to 600, including the tails.
		std::vector<uint8_t> z(700, 0);
		for (size_t n = 0; n < 600; n++) {
			ASSERT_TRUE(k->is_zero(z.data() + 1, n));
			ASSERT_EQ(k->first_diff(z.data(), z.data() + 1, n), n);
			z[n] = 1;
			ASSERT_FALSE(k->is_zero(z.data(), n + 1));
			z[n] = 0;
		}
	}
}

TEST(Simd, DiffMaskIsTheByteCompare)
{
	std::mt19937_64 rng(11);
	std::vector<uint8_t> a(4096 + 64), b(4096 + 64);
	for (const Kernels *k : variants()) {
		for (int iter = 0; iter < 2000; iter++) {
			size_t n = iter < 200 ? size_t(iter) : 1 + rng() % 4096;
			for (size_t i = 0; i < n; i++)
				a[i] = b[i] = uint8_t(rng());
			for (size_t d = rng() % 40; d-- > 0 && n;)
				b[rng() % n] ^= uint8_t(1 + rng() % 255);
			std::vector<uint64_t> m((n + 63) / 64);
			size_t nb = k->diff_mask(a.data(), b.data(), n, m.data());
			size_t want_nb = 0;
			for (size_t i = 0; i < m.size() * 64; i++) {
				bool want = i < n && a[i] != b[i];
				want_nb += want;
				ASSERT_EQ(bool(m[i / 64] >> (i % 64) & 1), want) << k->name << " n=" << n << " i=" << i;
			}
			ASSERT_EQ(nb, want_nb) << k->name << " n=" << n;
		}
	}
}

TEST(Simd, EncodedChunksIdenticalAcrossVariants)
{
	auto base = test::structured_image(1 << 20, 1);
	auto cur = base;
	test::dirty_pages(cur, 0.3, 2);
	// A shifted region and a moved page, so every op kind is exercised.
	memmove(cur.data() + 300000, base.data() + 290000, 100000);
	memcpy(cur.data() + 4096 * 200, base.data() + 4096 * 10, 4096);
	BaselineIndex idx(base, 0x1234);
	const size_t c = kDefaultChunkSize;
	for (Tier tier : {Tier::none, Tier::zstd3, Tier::zstd9}) {
		std::vector<std::vector<uint8_t>> ref;
		for (const Kernels *k : variants()) {
			ChunkEncoder enc(c, k);
			std::vector<std::vector<uint8_t>> got;
			for (size_t off = 0, i = 0; off < cur.size(); off += c, i++) {
				std::vector<uint8_t> out(max_encoded_chunk_size(c));
				size_t n = enc.encode(uint32_t(i), c, std::span(cur).subspan(off, c), idx, {}, tier, out);
				ASSERT_GT(n, 0u);
				out.resize(n);
				got.push_back(out);
			}
			if (ref.empty())
				ref = got;
			else
				EXPECT_EQ(got, ref) << k->name;
			// And each variant decodes what the scalar one encoded.
			ChunkDecoder dec(c, k);
			for (size_t i = 0; i < ref.size(); i++) {
				std::vector<uint8_t> out(c);
				ASSERT_EQ(dec.decode(ref[i], uint32_t(i), c, base, 0x1234, out), DecodeError::ok);
				ASSERT_EQ(0, memcmp(out.data(), cur.data() + i * c, c)) << k->name << " chunk " << i;
			}
		}
	}
}

// Edits that reach every branch of the dirty-block path, encoded with a map by
// every variant (scalar included): runs of 1-20 bytes at the start, middle and
// end of blocks (short runs are XORed as two words only when 16 bytes remain in
// the block), edits of 60-400 bytes (in-place runs long enough to look for a
// copy, short enough to skip the anchor search), moved pages (their runs are
// no longer built before the COPY is found), zeroed pages, a duplicate, and an
// edited short last block.  Every variant gives the bytes the encoding without
// a map gives, and decodes them exactly.
TEST(Simd, DirtyMapEncodingIdenticalAcrossVariants)
{
	const size_t n = (2 << 20) + 1000;
	auto base = test::structured_image(n, 41);
	auto cur = base;
	std::mt19937_64 rng(42);
	const size_t nb_blocks = (n + kBlockSize - 1) / kBlockSize;
	for (size_t b = 0; b < nb_blocks; b++) {
		const size_t off = b * kBlockSize, blen = std::min(kBlockSize, n - off);
		switch (b % 11) {
		case 1: { // a short run at the end of the block
			size_t l = 1 + b % 20;
			for (size_t i = blen - std::min(l, blen); i < blen; i++)
				cur[off + i] ^= uint8_t(1 + rng() % 255);
			break;
		}
		case 2: // runs of 16 and 17 bytes and single bytes in the middle
			for (size_t i = 0; i < 16; i++)
				cur[off + 100 + i] ^= 0x5a;
			for (size_t i = 0; i < 17; i++)
				cur[off + 1000 + i] ^= 0xa5;
			cur[off + 3] ^= 1;
			break;
		case 4: { // 60-400 changed bytes in scattered runs
			size_t want = 60 + rng() % 340;
			for (size_t d = 0; d < want; d++)
				cur[off + rng() % blen] ^= uint8_t(1 + rng() % 255);
			break;
		}
		case 6: // remapped: now holds another page of the baseline
			if (blen == kBlockSize)
				memcpy(cur.data() + off, base.data() + (b * 7 + 3) % (nb_blocks - 1) * kBlockSize, kBlockSize);
			break;
		case 8:
			memset(cur.data() + off, 0, blen);
			break;
		default:
			break;
		}
	}
	memcpy(cur.data() + 30 * kBlockSize, cur.data() + 26 * kBlockSize, kBlockSize); // DUP in a chunk
	cur[n - 1] ^= 0x80; // the short last block, at its last byte
	std::vector<uint64_t> words((nb_blocks + 63) / 64, 0);
	for (size_t b = 0; b < nb_blocks; b++) {
		size_t off = b * kBlockSize, len = std::min(kBlockSize, n - off);
		if (memcmp(cur.data() + off, base.data() + off, len) != 0 || b % 13 == 0)
			words[b / 64] |= 1ull << (b % 64);
	}
	const DirtyMap dm{words.data(), nb_blocks};
	BaselineIndex idx(base, 0x1234);
	for (size_t c : {size_t(64 * 1024), kDefaultChunkSize}) {
		std::vector<std::vector<uint8_t>> ref;
		for (const Kernels *k : variants()) {
			for (bool with_map : {false, true}) {
				ChunkEncoder enc(c, k);
				std::vector<std::vector<uint8_t>> got;
				for (size_t off = 0, i = 0; off < n; off += c, i++) {
					size_t len = std::min(c, n - off);
					std::vector<uint8_t> out(max_encoded_chunk_size(len));
					size_t r = enc.encode(uint32_t(i), c, std::span(cur).subspan(off, len), idx,
						with_map ? dm : DirtyMap{}, Tier::zstd3, out);
					ASSERT_GT(r, 0u);
					out.resize(r);
					got.push_back(out);
				}
				if (ref.empty()) {
					ref = got;
					const EncodeStats &st = enc.stats();
					EXPECT_GT(st.copy, 0u);
					EXPECT_GT(st.zero, 0u);
					EXPECT_GT(st.dup, 0u);
					EXPECT_GT(st.xor_inplace, 0u);
				} else {
					EXPECT_EQ(got, ref) << k->name << " map=" << with_map << " c=" << c;
				}
			}
			ChunkDecoder dec(c, k);
			for (size_t i = 0; i < ref.size(); i++) {
				size_t len = std::min(c, n - i * c);
				std::vector<uint8_t> out(len);
				ASSERT_EQ(dec.decode(ref[i], uint32_t(i), c, base, 0x1234, out), DecodeError::ok);
				ASSERT_EQ(0, memcmp(out.data(), cur.data() + i * c, len)) << k->name << " chunk " << i;
			}
		}
	}
}

} // namespace
} // namespace dwcp::hde
