// Round trips of the chunk encoder/decoder and the errors the decoder must give.
#include "dataplane/hde/block_delta.h"
#include "dataplane/hde/tests/test_data.h"

#include <isa-l/crc.h>

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

namespace dwcp::hde {
namespace {

constexpr uint32_t kTag = 0xabcd1234;

struct Encoded {
	std::vector<std::vector<uint8_t>> chunks;
	size_t total = 0;
	EncodeStats stats;
};

Encoded encode_all(const std::vector<uint8_t> &cur, const BaselineIndex &idx, Tier tier, size_t c = kDefaultChunkSize,
	const DirtyMap &dirty = {})
{
	Encoded e;
	ChunkEncoder enc(c);
	for (size_t off = 0, i = 0; off < cur.size(); off += c, i++) {
		size_t len = std::min(c, cur.size() - off);
		std::vector<uint8_t> out(max_encoded_chunk_size(len));
		size_t n = enc.encode(uint32_t(i), c, std::span(cur).subspan(off, len), idx, dirty, tier, out);
		EXPECT_GT(n, 0u);
		EXPECT_LE(n, max_encoded_chunk_size(len));
		out.resize(n);
		e.total += n;
		e.chunks.push_back(std::move(out));
	}
	e.stats = enc.stats();
	return e;
}

std::vector<uint8_t> decode_all(const Encoded &e, const std::vector<uint8_t> &base, uint32_t tag, size_t size,
	size_t c = kDefaultChunkSize)
{
	std::vector<uint8_t> out(size);
	ChunkDecoder dec(c);
	// In reverse order: chunks decode independently.
	for (size_t i = e.chunks.size(); i-- > 0;) {
		size_t len = std::min(c, size - i * c);
		DecodeError r = dec.decode(e.chunks[i], uint32_t(i), c, base, tag, std::span(out).subspan(i * c, len));
		EXPECT_EQ(r, DecodeError::ok) << "chunk " << i << ": " << decode_error_name(r);
	}
	return out;
}

TEST(BlockDelta, RoundTripWithoutBaselineEdgeSizes)
{
	BaselineIndex none;
	for (size_t n : {size_t(1), size_t(100), size_t(4095), size_t(4096), size_t(4097), size_t(65536 + 7),
		     kDefaultChunkSize - 1, kDefaultChunkSize, kDefaultChunkSize + 1, 3 * kDefaultChunkSize + 12345}) {
		for (Tier tier : {Tier::none, Tier::igzip, Tier::zstd3, Tier::zstd9}) {
			auto data = test::structured_image(n, n);
			auto e = encode_all(data, none, tier);
			EXPECT_EQ(decode_all(e, {}, 0, n), data) << "n=" << n << " tier=" << tier_name(tier);
			auto rnd = test::random_bytes(n, n + 1);
			auto er = encode_all(rnd, none, tier);
			EXPECT_LE(er.total, n + er.chunks.size() * (kChunkHeaderLen + kChunkTrailerLen));
			EXPECT_EQ(decode_all(er, {}, 0, n), rnd);
		}
	}
}

TEST(BlockDelta, SmallChangesAreXorRuns)
{
	auto base = test::structured_image(2 << 20, 3);
	auto cur = base;
	test::dirty_pages(cur, 0.05, 4);
	BaselineIndex idx(base, kTag);
	auto e = encode_all(cur, idx, Tier::zstd3);
	EXPECT_EQ(decode_all(e, base, kTag, cur.size()), cur);
	EXPECT_GT(e.stats.xor_inplace, 0u);
	EXPECT_EQ(e.stats.literal, 0u);
	EXPECT_GT(double(cur.size()) / double(e.total), 100.0) << e.total;
	// Identical object: a few bytes per chunk.
	auto same = encode_all(base, idx, Tier::zstd3);
	EXPECT_LE(same.total, same.chunks.size() * 32);
	EXPECT_EQ(same.stats.same, base.size() / kBlockSize);
}

TEST(BlockDelta, ZeroMovedDuplicateAndShiftedBlocks)
{
	auto base = test::random_bytes(1 << 20, 5);
	auto cur = base;
	memset(cur.data() + 8 * 4096, 0, 4096);                         // zero
	memcpy(cur.data() + 20 * 4096, base.data() + 200 * 4096, 4096); // moved page
	auto fresh = test::random_bytes(4096, 6);
	memcpy(cur.data() + 30 * 4096, fresh.data(), 4096); // duplicate in the same chunk
	memcpy(cur.data() + 31 * 4096, fresh.data(), 4096);
	// Data shifted by an odd number of bytes from 600 KiB on.
	memmove(cur.data() + 600 * 1024 + 1237, base.data() + 600 * 1024, 300 * 1024);
	BaselineIndex idx(base, kTag);
	auto e = encode_all(cur, idx, Tier::zstd3);
	EXPECT_EQ(decode_all(e, base, kTag, cur.size()), cur);
	EXPECT_GE(e.stats.zero, 1u);
	EXPECT_GE(e.stats.copy, 1u);
	EXPECT_GE(e.stats.dup, 1u);
	EXPECT_GE(e.stats.xor_shifted + e.stats.copy, 70u);
	// Random data: only the shift finder keeps this small.
	EXPECT_LT(e.total, 6 * 4096u + 2000) << e.total;
}

TEST(BlockDelta, BaselineOfAnotherSize)
{
	auto base = test::structured_image(300000, 7);
	for (size_t n : {size_t(200000), size_t(300000), size_t(500001)}) {
		auto cur = test::structured_image(n, 7); // same seed: common prefix
		test::dirty_pages(cur, 0.1, n);
		BaselineIndex idx(base, kTag);
		auto e = encode_all(cur, idx, Tier::igzip, 64 * 1024);
		EXPECT_EQ(decode_all(e, base, kTag, n, 64 * 1024), cur) << n;
	}
}

TEST(BlockDelta, DirtyMapSkipsCleanBlocks)
{
	auto base = test::structured_image(1 << 20, 8);
	auto cur = base;
	cur[5 * 4096 + 7] ^= 1;  // dirty and marked
	cur[9 * 4096 + 7] ^= 1;  // changed but marked clean: the map is trusted
	std::vector<uint64_t> words(4, 0);
	words[0] = 1ull << 5;
	DirtyMap dm{words.data(), 256};
	BaselineIndex idx(base, kTag);
	auto e = encode_all(cur, idx, Tier::zstd3, kDefaultChunkSize, dm);
	auto out = decode_all(e, base, kTag, cur.size());
	EXPECT_EQ(out[5 * 4096 + 7], cur[5 * 4096 + 7]);
	EXPECT_EQ(out[9 * 4096 + 7], base[9 * 4096 + 7]);
	EXPECT_EQ(e.stats.same, 255u);
}

// With a map that marks every changed block (and some unchanged ones), the
// encoding is the one without a map, byte for byte: the clean-run skipping and
// the prefetch lookahead change what is read, never what is sent.
TEST(BlockDelta, ExactDirtyMapGivesTheSameEncoding)
{
	auto base = test::structured_image(3 << 20, 21);
	for (size_t n : {size_t(3 << 20), size_t((3 << 20) + 5000), size_t(2 << 20) + 777}) {
		auto cur = test::structured_image(n, 21);
		test::dirty_pages(cur, 0.03, n);
		memcpy(cur.data() + 40 * 4096, base.data() + 500 * 4096, 4096); // moved
		std::mt19937_64 rng(n);
		size_t nb_blocks = (n + kBlockSize - 1) / kBlockSize;
		// The map covers fewer blocks than the object: the rest counts as dirty.
		size_t map_blocks = nb_blocks - 3;
		std::vector<uint64_t> words((map_blocks + 63) / 64, 0);
		for (size_t b = 0; b < map_blocks; b++) {
			size_t off = b * kBlockSize, len = std::min(kBlockSize, n - off);
			bool changed = off + len > base.size() || memcmp(cur.data() + off, base.data() + off, len) != 0;
			if (changed || rng() % 50 == 0)
				words[b / 64] |= 1ull << (b % 64);
		}
		BaselineIndex idx(base, kTag);
		for (size_t c : {size_t(64 * 1024), kDefaultChunkSize}) {
			auto plain = encode_all(cur, idx, Tier::zstd3, c);
			auto mapped = encode_all(cur, idx, Tier::zstd3, c, DirtyMap{words.data(), map_blocks});
			EXPECT_EQ(mapped.chunks, plain.chunks) << "n=" << n << " c=" << c;
			EXPECT_EQ(decode_all(mapped, base, kTag, n, c), cur);
		}
	}
}

// The dirty pages of a pre-copy round take the cheap paths: a remapped page is
// a COPY (its XOR runs are not needed), a page with a few hundred changed bytes
// stays an in-place XOR (no anchor search when the runs leave less than an
// eighth of the block), and data shifted by an odd offset is still found when
// the in-place runs are long.
TEST(BlockDelta, DirtyPagesTakeTheCheapPaths)
{
	auto base = test::random_bytes(1 << 20, 51);
	auto cur = base;
	std::mt19937_64 rng(52);
	memcpy(cur.data() + 3 * 4096, base.data() + 100 * 4096, 4096); // remapped
	for (int d = 0; d < 200; d++)                                  // 200 scattered bytes
		cur[7 * 4096 + rng() % 4096] ^= uint8_t(1 + rng() % 255);
	memmove(cur.data() + 20 * 4096 + 333, base.data() + 20 * 4096, 4096 * 4); // shifted
	std::vector<uint64_t> words(4, 0);
	words[0] = (1ull << 3) | (1ull << 7) | (0x3full << 20);
	BaselineIndex idx(base, kTag);
	auto e = encode_all(cur, idx, Tier::zstd3, kDefaultChunkSize, DirtyMap{words.data(), 256});
	EXPECT_EQ(decode_all(e, base, kTag, cur.size()), cur);
	EXPECT_EQ(e.stats.copy + e.stats.xor_shifted, 1u + 4u);
	EXPECT_GE(e.stats.xor_inplace, 1u);
	EXPECT_EQ(e.stats.literal, 0u);
	EXPECT_LT(e.total, 4 * 4096u) << e.total;
}

// XOR runs: a literal run ends at the first 4 equal bytes, whatever is after.
TEST(BlockDelta, XorRunsEndAtFourEqualBytes)
{
	std::vector<uint8_t> base(4096, 0x11);
	auto cur = base;
	for (size_t i : {100, 101, 104, 109, 4094, 4095})
		cur[i] = 0x22; // runs: 100-104 (gaps of 2 and 3 equal bytes), 109, 4094-4095 (the end)
	BaselineIndex idx(base, kTag);
	auto e = encode_all(cur, idx, Tier::none, 4096);
	// XORIP: zero run 100, literal 5 (two and three equal bytes do not end it),
	// zero run 4, literal 1, zero run 3984, literal 2 to the end, zero run 0.
	const std::vector<uint8_t> want_ops = {0x05, 100, 5, 0x33, 0x33, 0, 0, 0x33, 4, 1, 0x33, 0x90, 0x1f, 2, 0x33,
		0x33, 0};
	ASSERT_EQ(e.chunks.size(), 1u);
	std::vector<uint8_t> ops(e.chunks[0].begin() + kChunkHeaderLen, e.chunks[0].end() - kChunkTrailerLen);
	EXPECT_EQ(ops, want_ops);
	EXPECT_EQ(decode_all(e, base, kTag, cur.size(), 4096), cur);
}

// First round: runs of text, high-entropy and zero-rich pages in one chunk go in
// one zstd frame whose blocks end where the content changes; it decodes, and it
// is no larger than zstd of the whole op stream in one go.
TEST(BlockDelta, MixedContentChunksRoundTrip)
{
	std::mt19937_64 rng(31);
	std::vector<uint8_t> cur(kDefaultChunkSize * 3 + 4096 * 5 + 99);
	for (size_t p = 0; p < cur.size(); p += 4096) {
		size_t len = std::min<size_t>(4096, cur.size() - p);
		unsigned kind = unsigned(p / 4096 / 7 % 4);
		for (size_t i = 0; i < len; i++)
			cur[p + i] = kind == 0 ? uint8_t("the of and to in is "[rng() % 20])
				: kind == 1        ? uint8_t(rng())
				: kind == 2        ? uint8_t(i % 8 < 5 ? 0 : rng() % 16)
				                   : uint8_t(rng() % 5 == 0 ? rng() : rng() % 24 + 0x40);
	}
	BaselineIndex none;
	for (Tier tier : {Tier::zstd3, Tier::zstd9, Tier::igzip}) {
		auto e = encode_all(cur, none, tier);
		EXPECT_EQ(decode_all(e, {}, 0, cur.size()), cur) << tier_name(tier);
		EXPECT_LT(e.total, cur.size() * 3 / 4) << tier_name(tier);
	}
}

TEST(BlockDelta, EncoderRejectsBadArguments)
{
	ChunkEncoder enc(kDefaultChunkSize);
	BaselineIndex none;
	std::vector<uint8_t> data(4096), out(max_encoded_chunk_size(4096));
	EXPECT_EQ(enc.encode(0, 1000, data, none, {}, Tier::none, out), 0u);             // chunk size
	EXPECT_EQ(enc.encode(0, 4096, {}, none, {}, Tier::none, out), 0u);               // empty
	EXPECT_EQ(enc.encode(0, 4096, data, none, {}, Tier::none, std::span(out).first(100)), 0u);
	EXPECT_GT(enc.encode(0, 4096, data, none, {}, Tier::none, out), 0u);
}

class DecodeErrors : public ::testing::Test {
protected:
	void SetUp() override
	{
		base = test::structured_image(kDefaultChunkSize * 2, 9);
		cur = base;
		test::dirty_pages(cur, 0.2, 10);
		idx = std::make_unique<BaselineIndex>(base, kTag);
		e = encode_all(cur, *idx, Tier::zstd3);
		base_copy = base;
	}
	DecodeError dec(const std::vector<uint8_t> &in, uint32_t index = 1, uint32_t tag = kTag, size_t len = kDefaultChunkSize)
	{
		ChunkDecoder d;
		out.assign(len, 0);
		return d.decode(in, index, kDefaultChunkSize, base, tag, out);
	}
	// A chunk with the given op payload (stored) and a correct CRC.
	static std::vector<uint8_t> craft(const std::vector<uint8_t> &ops, uint32_t len = kDefaultChunkSize,
		uint8_t kind = 1, uint8_t codec = 0)
	{
		std::vector<uint8_t> c(kChunkHeaderLen + ops.size() + kChunkTrailerLen);
		c[0] = kChunkMagic;
		c[1] = kChunkVersion;
		c[2] = kind;
		c[3] = codec;
		uint32_t v[5] = {1, uint32_t(kDefaultChunkSize), len, kTag, uint32_t(ops.size())};
		memcpy(c.data() + 4, v, 20);
		memcpy(c.data() + kChunkHeaderLen, ops.data(), ops.size());
		uint32_t crc = crc32_iscsi(c.data(), int(kChunkHeaderLen + ops.size()), 0);
		memcpy(c.data() + kChunkHeaderLen + ops.size(), &crc, 4);
		return c;
	}
	std::vector<uint8_t> base, cur, base_copy, out;
	std::unique_ptr<BaselineIndex> idx;
	Encoded e;
};

TEST_F(DecodeErrors, GoodChunkDecodes)
{
	ASSERT_EQ(dec(e.chunks[1]), DecodeError::ok);
	EXPECT_EQ(0, memcmp(out.data(), cur.data() + kDefaultChunkSize, kDefaultChunkSize));
}

TEST_F(DecodeErrors, EveryTruncationIsRejected)
{
	const auto &c = e.chunks[1];
	for (size_t n = 0; n < c.size(); n++) {
		std::vector<uint8_t> t(c.begin(), c.begin() + n);
		DecodeError r = dec(t);
		EXPECT_TRUE(r == DecodeError::truncated) << n << " " << decode_error_name(r);
	}
	EXPECT_EQ(base, base_copy);
}

TEST_F(DecodeErrors, EveryBitFlipIsRejected)
{
	const auto &c = e.chunks[1];
	for (size_t i = 0; i < c.size(); i++) {
		auto t = c;
		t[i] ^= uint8_t(1u << (i % 8));
		EXPECT_NE(dec(t), DecodeError::ok) << "byte " << i;
	}
	EXPECT_EQ(base, base_copy);
}

TEST_F(DecodeErrors, NamedErrors)
{
	auto c = e.chunks[1];
	EXPECT_EQ(dec(c, 0), DecodeError::wrong_chunk);
	EXPECT_EQ(dec(c, 1, kTag + 1), DecodeError::wrong_baseline);
	EXPECT_EQ(dec(c, 1, kTag, 4096), DecodeError::wrong_chunk);
	auto t = c;
	t.push_back(0);
	EXPECT_EQ(dec(t), DecodeError::trailing_bytes);
	t = c;
	t[0] = 0;
	EXPECT_EQ(dec(t), DecodeError::bad_magic);
	t = c;
	t[1] = 9;
	EXPECT_EQ(dec(t), DecodeError::bad_version);
	t = c;
	t[kChunkHeaderLen + 3] ^= 0x40;
	EXPECT_EQ(dec(t), DecodeError::bad_crc);
	EXPECT_STREQ(decode_error_name(DecodeError::wrong_baseline), "wrong_baseline");
}

TEST_F(DecodeErrors, HostileOpStreams)
{
	// 64 blocks in a 256 KiB chunk.
	EXPECT_EQ(dec(craft({0x00, 64})), DecodeError::ok);                      // SAME all
	EXPECT_EQ(dec(craft({0x00, 63})), DecodeError::bad_op);                  // short
	EXPECT_EQ(dec(craft({0x00, 65})), DecodeError::bad_op);                  // too many
	EXPECT_EQ(dec(craft({0x00, 64, 0x01, 1})), DecodeError::bad_op);         // ops past the end
	EXPECT_EQ(dec(craft({0x07})), DecodeError::bad_op);                      // unknown op
	EXPECT_EQ(dec(craft({0x02, 0xff, 0xff, 0xff, 0x7f})), DecodeError::out_of_range); // COPY past baseline
	EXPECT_EQ(dec(craft({0x03, 0})), DecodeError::out_of_range);             // DUP of itself
	EXPECT_EQ(dec(craft({0x05, 0x80, 0x40})), DecodeError::bad_op);          // XOR runs past the block
	EXPECT_EQ(dec(craft({0x05, 0x00, 0x05, 1, 2})), DecodeError::bad_op);    // literal run truncated
	EXPECT_EQ(dec(craft({0x06, 1, 2, 3})), DecodeError::bad_op);             // literal truncated
	EXPECT_EQ(dec(craft({0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})),
		DecodeError::bad_op); // varint overflow
	EXPECT_EQ(dec(craft({1, 2, 3}, kDefaultChunkSize, 0, 0)), DecodeError::bad_op);       // RAW of wrong length
	EXPECT_EQ(dec(craft({1, 2, 3}, kDefaultChunkSize, 1, 1)), DecodeError::decompress_failed);
	EXPECT_EQ(dec(craft({1, 2, 3}, kDefaultChunkSize, 1, 2)), DecodeError::decompress_failed);
	EXPECT_EQ(dec(craft({0x00, 64}, kDefaultChunkSize, 2, 0)), DecodeError::bad_kind);
	EXPECT_EQ(dec(craft({0x00, 64}, kDefaultChunkSize, 1, 7)), DecodeError::bad_kind);
	EXPECT_EQ(base, base_copy);
}

} // namespace
} // namespace dwcp::hde
