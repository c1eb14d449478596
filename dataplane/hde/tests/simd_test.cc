// Every SIMD variant against the scalar reference, on the kernels and on whole
// encoded chunks (which must be byte for byte the same whatever the ISA).
#include "dataplane/hde/block_delta.h"
#include "dataplane/hde/simd.h"
#include "dataplane/hde/tests/test_data.h"

#include <gtest/gtest.h>

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

} // namespace
} // namespace dwcp::hde
