// HDE block delta encoder and decoder; the format is described in block_delta.h.
#include "dataplane/hde/varint.h"
#include "dataplane/hde/block_delta.h"

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
#define ZSTD_STATIC_LINKING_ONLY // ZSTD_c_stableInBuffer, ZSTD_c_stableOutBuffer
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <thread>

namespace dwcp::hde {

namespace {

enum Op : uint8_t {
	op_same = 0,
	op_zero = 1,
	op_copy = 2,
	op_dup = 3,
	op_xor = 4,
	op_xor_inplace = 5,
	op_literal = 6,
};

enum Codec : uint8_t {
	codec_stored = 0,
	codec_zstd = 1,
	codec_deflate = 2,
};

enum Kind : uint8_t {
	kind_raw = 0,
	kind_ops = 1,
};

inline void put_u32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4); // x86 and arm64 gateways are little-endian, as the format is
}

inline uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

inline uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	while (v >= 0x80) {
		*p++ = uint8_t(v) | 0x80;
		v >>= 7;
	}
	*p++ = uint8_t(v);
	return p;
}

constexpr size_t varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

constexpr uint64_t splitmix64(uint64_t &s)
{
	uint64_t z = (s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

// The gear table of the rolling hash: h = (h << 1) + gear[byte], so h depends on
// the last 64 bytes only.  Seeded constants, part of no wire format (the anchor
// index never leaves the sender).
struct Gear {
	uint64_t t[256];
	constexpr Gear() : t()
	{
		uint64_t s = 0x6864652d67656172ull; // "hde-gear"
		for (auto &v : t)
			v = splitmix64(s);
	}
};
constexpr Gear kGear;

// One anchor per 1 KiB on average: the top 10 bits of h are zero.  Top bits,
// because in a gear hash bit k depends on the last k+1 bytes only.
constexpr unsigned kAnchorShift = 54;

inline bool is_anchor(uint64_t h)
{
	return (h >> kAnchorShift) == 0;
}

inline uint64_t rotl(uint64_t v, unsigned r)
{
	return (v << r) | (v >> (64 - r));
}

// Op streams shorter than this are sent stored (see encode()).
constexpr size_t kMinCompressLen = 2048;

constexpr uint64_t kP1 = 0x9e3779b185ebca87ull;
constexpr uint64_t kP2 = 0xc2b2ae3d27d4eb4full;

inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

inline uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= kP2;
	h ^= h >> 29;
	h *= kP1;
	return h ^ (h >> 32);
}

inline size_t pow2_at_least(size_t n)
{
	size_t p = 16;
	while (p < n)
		p <<= 1;
	return p;
}

// Content class of a literal block, from every 16th byte: text, high-entropy
// (compressed or encrypted), zero-rich binary (heap, tables), other binary (code).
// Memory and disk images hold runs of pages of one kind; a compressed block that
// mixes kinds codes all of them with one set of entropy tables, so the encoder
// ends a zstd block where the class changes (see Codec::compress).  Scalar and
// sampled: about 0.1 us a block, and the same on every ISA, as the output must be.
uint8_t content_class(const uint8_t *p, size_t n)
{
	uint64_t seen[4] = {};
	size_t nb = 0, zeros = 0, text = 0, distinct = 0;
	for (size_t i = 0; i < n; i += 16, nb++) {
		uint8_t c = p[i];
		zeros += c == 0;
		text += (c >= 0x20 && c < 0x7f) || c == '\n' || c == '\t';
		uint64_t bit = uint64_t(1) << (c % 64);
		distinct += !(seen[c / 64] & bit);
		seen[c / 64] |= bit;
	}
	if (text * 10 >= nb * 9)
		return 1;
	if (distinct * 16 >= nb * 9) // uniform bytes: 162 distinct of 256 samples
		return 2;
	if (zeros * 10 >= nb * 3)
		return 3;
	return 4;
}

} // namespace

const char *decode_error_name(DecodeError e)
{
	switch (e) {
	case DecodeError::ok: return "ok";
	case DecodeError::truncated: return "truncated";
	case DecodeError::bad_magic: return "bad_magic";
	case DecodeError::bad_version: return "bad_version";
	case DecodeError::bad_crc: return "bad_crc";
	case DecodeError::wrong_chunk: return "wrong_chunk";
	case DecodeError::wrong_baseline: return "wrong_baseline";
	case DecodeError::bad_kind: return "bad_kind";
	case DecodeError::decompress_failed: return "decompress_failed";
	case DecodeError::bad_op: return "bad_op";
	case DecodeError::out_of_range: return "out_of_range";
	case DecodeError::trailing_bytes: return "trailing_bytes";
	case DecodeError::bad_header: return "bad_header";
	case DecodeError::object_mismatch: return "object_mismatch";
	}
	return "unknown";
}

uint32_t baseline_tag(const Digest &d)
{
	return get_u32(d.data());
}

// Four xxhash-style lanes over 32-byte strides: about 8 bytes a cycle, and only
// run on blocks that did not match in place.
uint64_t block_hash(const uint8_t *p, size_t n)
{
	uint64_t a = kP1 + kP2, b = kP2, c = 0, d = -kP1;
	size_t i = 0;
	for (; i + 32 <= n; i += 32) {
		a = rotl(a + load64(p + i) * kP2, 31) * kP1;
		b = rotl(b + load64(p + i + 8) * kP2, 31) * kP1;
		c = rotl(c + load64(p + i + 16) * kP2, 31) * kP1;
		d = rotl(d + load64(p + i + 24) * kP2, 31) * kP1;
	}
	uint64_t h = rotl(a, 1) + rotl(b, 7) + rotl(c, 12) + rotl(d, 18) + n;
	for (; i < n; i++)
		h = rotl(h ^ (p[i] * kP1), 11) * kP2;
	return mix(h);
}

void EncodeStats::add(const EncodeStats &o)
{
	bytes_in += o.bytes_in;
	bytes_out += o.bytes_out;
	nb_chunks += o.nb_chunks;
	nb_raw_chunks += o.nb_raw_chunks;
	same += o.same;
	zero += o.zero;
	copy += o.copy;
	dup += o.dup;
	xor_inplace += o.xor_inplace;
	xor_shifted += o.xor_shifted;
	literal += o.literal;
}

// --- Baseline index ---------------------------------------------------------

BaselineIndex::BaselineIndex(std::span<const uint8_t> base, uint32_t tag, const Options &opts)
	: base_(base), tag_(tag)
{
	const Kernels &k = kernels();
	size_t nb_blocks = base.size() / kBlockSize;
	if (opts.moved_blocks && nb_blocks) {
		blocks_.assign(pow2_at_least(2 * nb_blocks), Slot{0, UINT64_MAX});
		block_mask_ = blocks_.size() - 1;
		for (size_t b = 0; b < nb_blocks; b++) {
			const uint8_t *p = base.data() + b * kBlockSize;
			if (k.is_zero(p, kBlockSize))
				continue; // zero blocks travel as ZERO, never as COPY
			uint64_t h = block_hash(p, kBlockSize);
			for (uint64_t s = h & block_mask_;; s = (s + 1) & block_mask_) {
				if (blocks_[s].off == UINT64_MAX) {
					blocks_[s] = {h, b * kBlockSize};
					break;
				}
				if (blocks_[s].key == h)
					break; // keep the first of equal blocks
			}
		}
	}
	if (opts.shifted_data && base.size() >= 64) {
		// Anchors are found in parallel slices (each warms its hash up on the 63
		// bytes before it, so the result does not depend on the thread count) and
		// inserted in order, keeping the first of equal keys.
		unsigned nt = std::max(1u, opts.nb_threads);
		size_t slice = (base.size() + nt - 1) / nt;
		std::vector<std::vector<Slot>> found(nt);
		auto scan = [&](unsigned t) {
			size_t lo = std::min(base.size(), size_t(t) * slice);
			size_t hi = std::min(base.size(), lo + slice);
			size_t start = lo >= 63 ? lo - 63 : 0;
			const uint8_t *p = base.data();
			uint64_t h = 0, last = 0;
			auto &out = found[t];
			out.reserve((hi - lo) / 512 + 16);
			for (size_t i = start; i < hi; i++) {
				h = (h << 1) + kGear.t[p[i]];
				if (i >= lo && i >= 63 && is_anchor(h) && h != last) {
					out.push_back({h, i + 1});
					last = h;
				}
			}
		};
		std::vector<std::thread> threads;
		for (unsigned t = 1; t < nt; t++)
			threads.emplace_back(scan, t);
		scan(0);
		for (auto &th : threads)
			th.join();
		size_t total = 0;
		for (auto &f : found)
			total += f.size();
		anchors_.assign(pow2_at_least(2 * total + 1), Slot{0, UINT64_MAX});
		anchor_mask_ = anchors_.size() - 1;
		for (auto &f : found)
			for (const Slot &a : f)
				for (uint64_t s = mix(a.key) & anchor_mask_;; s = (s + 1) & anchor_mask_) {
					if (anchors_[s].off == UINT64_MAX) {
						anchors_[s] = a;
						break;
					}
					if (anchors_[s].key == a.key)
						break;
				}
	}
}

size_t BaselineIndex::memory_bytes() const
{
	return (blocks_.capacity() + anchors_.capacity()) * sizeof(Slot);
}

int64_t BaselineIndex::find_block(uint64_t h) const
{
	if (blocks_.empty())
		return -1;
	for (uint64_t s = h & block_mask_;; s = (s + 1) & block_mask_) {
		if (blocks_[s].off == UINT64_MAX)
			return -1;
		if (blocks_[s].key == h)
			return int64_t(blocks_[s].off);
	}
}

int64_t BaselineIndex::find_anchor(uint64_t h) const
{
	if (anchors_.empty())
		return -1;
	for (uint64_t s = mix(h) & anchor_mask_;; s = (s + 1) & anchor_mask_) {
		if (anchors_[s].off == UINT64_MAX)
			return -1;
		if (anchors_[s].key == h)
			return int64_t(anchors_[s].off);
	}
}

// --- Codecs -----------------------------------------------------------------

struct ChunkEncoder::Codec {
	ZSTD_CCtx *zstd = nullptr;
	std::vector<uint8_t> igzip_level_buf;
	Codec() : zstd(ZSTD_createCCtx()), igzip_level_buf(ISAL_DEF_LVL1_DEFAULT) {}
	~Codec() { ZSTD_freeCCtx(zstd); }

	// Compresses src into dst (at most cap bytes).  Returns the length, or 0 when it
	// does not fit (the caller then sends the bytes stored).
	// With zstd, cuts (nb_cuts increasing offsets inside src) end compressed blocks.
	size_t compress(Tier tier, const uint8_t *src, size_t n, uint8_t *dst, size_t cap, const uint32_t *cuts,
		size_t nb_cuts)
	{
		if (tier == Tier::igzip) {
			isal_zstream s;
			isal_deflate_stateless_init(&s);
			s.level = 1;
			s.level_buf = igzip_level_buf.data();
			s.level_buf_size = uint32_t(igzip_level_buf.size());
			s.next_in = const_cast<uint8_t *>(src);
			s.avail_in = uint32_t(n);
			s.next_out = dst;
			s.avail_out = uint32_t(cap);
			s.end_of_stream = 1;
			s.flush = NO_FLUSH;
			if (isal_deflate_stateless(&s) != COMP_OK)
				return 0;
			return s.total_out;
		}
		int level = tier == Tier::zstd9 ? 9 : 3;
		if (nb_cuts == 0) {
			size_t r = ZSTD_compressCCtx(zstd, dst, cap, src, n, level);
			return ZSTD_isError(r) ? 0 : r;
		}
		// One frame, as above (content size in the header), whose blocks end at
		// the cuts: each part gets entropy tables of its own, and matches still
		// reach back across the cuts.  On the first-round memory image this gave
		// 1% more ratio at zstd3 (2.99 -> 3.02, above zstd -3 on the whole file at
		// 3.01), about what zstd's own block splitter gains at 1.7x the time.
		ZSTD_CCtx_reset(zstd, ZSTD_reset_session_and_parameters);
		if (ZSTD_isError(ZSTD_CCtx_setParameter(zstd, ZSTD_c_compressionLevel, level)) ||
			ZSTD_isError(ZSTD_CCtx_setParameter(zstd, ZSTD_c_stableInBuffer, 1)) ||
			ZSTD_isError(ZSTD_CCtx_setParameter(zstd, ZSTD_c_stableOutBuffer, 1)) ||
			ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(zstd, n)))
			return 0;
		// Stable buffers: zstd reads src and writes dst in place, as the one-shot
		// call does, instead of copying both through buffers of its own; so the
		// first round takes the CPU time it took in one shot (885 ms against 882
		// for 256 MiB, it was 5% more with the copies).  The input grows cut by cut.
		ZSTD_outBuffer ob = {dst, cap, 0};
		ZSTD_inBuffer ib = {src, 0, 0};
		for (size_t c = 0; c <= nb_cuts; c++) {
			ib.size = c < nb_cuts ? cuts[c] : n;
			size_t r = ZSTD_compressStream2(zstd, &ob, &ib, c < nb_cuts ? ZSTD_e_flush : ZSTD_e_end);
			// Not all written: it does not fit in cap (or an error).
			if (ZSTD_isError(r) || r != 0 || ib.pos != ib.size)
				return 0;
		}
		return ob.pos;
	}
};

struct ChunkDecoder::Codec {
	ZSTD_DCtx *zstd = nullptr;
	inflate_state inflate;
	Codec() : zstd(ZSTD_createDCtx())
	{
		// Chunks are at most 4 MiB: a frame that asks for a larger window is hostile.
		ZSTD_DCtx_setParameter(zstd, ZSTD_d_windowLogMax, 23);
	}
	~Codec() { ZSTD_freeDCtx(zstd); }

	// Decompresses src into dst; returns the length or SIZE_MAX on any error,
	// including output that would not fit in cap.
	size_t decompress(uint8_t codec, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
	{
		if (codec == codec_zstd) {
			size_t r = ZSTD_decompressDCtx(zstd, dst, cap, src, n);
			return ZSTD_isError(r) ? SIZE_MAX : r;
		}
		isal_inflate_init(&inflate);
		inflate.next_in = const_cast<uint8_t *>(src);
		inflate.avail_in = uint32_t(n);
		inflate.next_out = dst;
		inflate.avail_out = uint32_t(cap);
		if (isal_inflate_stateless(&inflate) != ISAL_DECOMP_OK || inflate.avail_in != 0)
			return SIZE_MAX;
		return inflate.total_out;
	}
};

// --- Encoder ----------------------------------------------------------------

namespace {

// Index of the first set bit at or after bit `from` of a mask of nb_words words,
// or SIZE_MAX.
inline size_t next_set(const uint64_t *m, size_t nb_words, size_t from)
{
	size_t w = from / 64;
	if (w >= nb_words)
		return SIZE_MAX;
	uint64_t v = m[w] & (~uint64_t(0) << (from % 64));
	while (!v) {
		if (++w == nb_words)
			return SIZE_MAX;
		v = m[w];
	}
	return w * 64 + size_t(__builtin_ctzll(v));
}

// Bit i set when bytes [i, i + kRleGap) of the block are all equal (bytes past the
// block count as equal), from the difference mask words w (this one) and next.
inline uint64_t gap_starts(uint64_t w, uint64_t next)
{
	static_assert(kRleGap == 4);
	uint64_t e = ~w, en = ~next;
	return e & (e >> 1 | en << 63) & (e >> 2 | en << 62) & (e >> 3 | en << 61);
}

// XOR-and-zero-run encodes cur against ref (n bytes, at most kBlockSize) into out,
// from diff, the kernels' difference mask of the two, nb_diff bits set.  Returns
// the length, or 0 when it would pass cap; out must have 16 bytes of room past
// cap (short runs are written as two whole words).  A literal run ends at the first
// kRleGap equal bytes or at the end of the block: with the mask, both ends of
// every run are bit scans (a 5%-dirty round with a map, in cache: 10 -> 20 GB/s
// of dirty bytes against a compare call per run).
size_t rle_encode(const Kernels &k, const uint8_t *cur, const uint8_t *ref, size_t n, const uint64_t *diff,
	size_t nb_diff, uint8_t *out, size_t cap)
{
	const size_t nb_words = (n + 63) / 64;
	// Every differing byte is sent: a block that differs in more than cap bytes
	// (a remapped page) fails without copying cap bytes first.
	if (nb_diff > cap)
		return 0;
	size_t pos = 0, o = 0;
	for (;;) {
		size_t d = next_set(diff, nb_words, pos);
		size_t z = (d == SIZE_MAX ? n : d) - pos;
		if (o + 10 > cap)
			return 0;
		o = size_t(put_varint(out + o, z) - out);
		pos += z;
		if (pos == n)
			return o;
		// The first gap start after pos (pos itself differs, so is none).
		size_t e = n;
		for (size_t w = (pos + 1) / 64; w < nb_words; w++) {
			uint64_t g = gap_starts(diff[w], w + 1 < nb_words ? diff[w + 1] : 0);
			if (w == (pos + 1) / 64)
				g &= ~uint64_t(0) << ((pos + 1) % 64);
			if (g) {
				e = std::min(n, w * 64 + size_t(__builtin_ctzll(g)));
				break;
			}
		}
		size_t l = e - pos;
		if (o + varint_len(l) + l > cap)
			return 0;
		o = size_t(put_varint(out + o, l) - out);
		if (l <= 16 && pos + 16 <= n) {
			// Most runs of an in-place edit are a few bytes (a counter, a
			// pointer): two word XORs written whole into out's slack, instead
			// of a memcpy and an indirect kernel call per run.  Portable code,
			// so the bytes kept are the same on every ISA.
			uint64_t x0 = load64(cur + pos) ^ load64(ref + pos);
			uint64_t x1 = load64(cur + pos + 8) ^ load64(ref + pos + 8);
			memcpy(out + o, &x0, 8);
			memcpy(out + o + 8, &x1, 8);
		} else {
			memcpy(out + o, cur + pos, l);
			k.xor_into(out + o, ref + pos, l);
		}
		o += l;
		pos = e;
	}
}

// First block at or after object block `from` and before `to` that the map
// marks dirty, or `to`.  Whole clean words are skipped 64 blocks at a time.
inline size_t next_dirty(const DirtyMap &d, size_t from, size_t to)
{
	while (from < to) {
		if (from >= d.nb_blocks)
			return from;
		uint64_t v = d.words[from / 64] >> (from % 64);
		if (v)
			return std::min({to, d.nb_blocks, from + size_t(__builtin_ctzll(v))});
		from = (from / 64 + 1) * 64;
	}
	return to;
}

// Asks for the cache line holding p.  On x86 an asm statement: GCC 12 -O2 deleted
// the loops of __builtin_prefetch in ChunkGeometry::prefetch_rest as dead code
// (tree DCE), leaving the encoder without them.
inline void prefetch_line(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char *>(p)));
#else
	__builtin_prefetch(p);
#endif
}

// Where a chunk's blocks are, and which of them the encoder reads.
struct ChunkGeometry {
	const uint8_t *data = nullptr;
	size_t len = 0;
	uint64_t off = 0;       // object offset of the chunk
	size_t nb_blocks = 0;
	size_t nb_inplace = 0;  // blocks [0, nb_inplace) lie wholly inside the baseline
	size_t first_blk = 0;   // object block of block 0

	ChunkGeometry(const uint8_t *d, size_t n, uint64_t chunk_off, uint64_t bsize)
		: data(d), len(n), off(chunk_off), nb_blocks((n + kBlockSize - 1) / kBlockSize),
		  first_blk(size_t(chunk_off / kBlockSize))
	{
		if (bsize && chunk_off < bsize)
			nb_inplace = chunk_off + n <= bsize ? nb_blocks : size_t((bsize - chunk_off) / kBlockSize);
	}
	// The next block at or after b the encoder reads: with a map, clean blocks
	// inside the baseline are skipped.  nb_blocks when there is none.
	size_t next_read(size_t b, const DirtyMap &dirty) const
	{
		if (!dirty.words || b >= nb_inplace)
			return std::min(b, nb_blocks);
		return next_dirty(dirty, first_blk + b, first_blk + nb_inplace) - first_blk;
	}
	// Asks for the first line of both images' copies of block b.
	void prefetch_first(size_t b, const uint8_t *base) const
	{
		prefetch_line(data + b * kBlockSize);
		if (b < nb_inplace)
			prefetch_line(base + off + b * kBlockSize);
	}
	// Asks for the other lines of both copies of block b.
	void prefetch_rest(size_t b, const uint8_t *base) const
	{
		const uint8_t *d = data + b * kBlockSize;
		const size_t n = std::min(kBlockSize, len - b * kBlockSize);
		for (size_t l = 64; l < n; l += 64)
			prefetch_line(d + l);
		if (b < nb_inplace)
			for (size_t l = 64; l < n; l += 64)
				prefetch_line(base + off + b * kBlockSize + l);
	}
};

// Every position i in [lo, hi) of d (lo >= 63) where the gear hash of the 64
// bytes d[i-63..i] is an anchor, in order, with that hash; returns the count.
// The hash is one chain of a shift and an add per byte (two cycles of latency);
// kGearLanes chains over slices of the range, each warmed up on the 63 bytes
// before its slice, run side by side at about a cycle for every lane's byte.
// A block that did not match well in place used to spend more here than in all
// the rest of its encoding.
size_t find_anchors(const uint8_t *d, size_t lo, size_t hi, uint32_t *pos, uint64_t *hash)
{
	constexpr size_t kGearLanes = 8;
	const size_t slice = (hi - lo) / kGearLanes;
	uint64_t h[kGearLanes] = {};
	size_t at[kGearLanes], nb[kGearLanes] = {};
	for (size_t l = 0; l < kGearLanes; l++)
		at[l] = lo + l * slice;
	for (size_t t = 63; t > 0; t--)
		for (size_t l = 0; l < kGearLanes; l++)
			h[l] = (h[l] << 1) + kGear.t[d[at[l] - t]];
	// Lane l writes its anchors from index l * slice on: at most one a position.
	for (size_t t = 0; t < slice; t++)
		for (size_t l = 0; l < kGearLanes; l++) {
			h[l] = (h[l] << 1) + kGear.t[d[at[l] + t]];
			if (is_anchor(h[l])) [[unlikely]] {
				pos[l * slice + nb[l]] = uint32_t(at[l] + t);
				hash[l * slice + nb[l]++] = h[l];
			}
		}
	// The last lane also takes the remainder of the range.
	for (size_t i = at[kGearLanes - 1] + slice; i < hi; i++) {
		size_t l = kGearLanes - 1;
		h[l] = (h[l] << 1) + kGear.t[d[i]];
		if (is_anchor(h[l])) {
			pos[l * slice + nb[l]] = uint32_t(i);
			hash[l * slice + nb[l]++] = h[l];
		}
	}
	size_t n = nb[0];
	for (size_t l = 1; l < kGearLanes; l++)
		for (size_t j = 0; j < nb[l]; j++, n++) {
			pos[n] = pos[l * slice + j];
			hash[n] = hash[l * slice + j];
		}
	return n;
}

} // namespace

ChunkEncoder::ChunkEncoder(size_t max_chunk_size, const Kernels *k)
	: k_(k ? k : &kernels()), max_chunk_(std::min(max_chunk_size, kMaxChunkSize)),
	  ops_(max_ops_size(max_chunk_) + 2 * kBlockSize),
	  dup_keys_(pow2_at_least(2 * (max_chunk_ / kBlockSize + 1))), dup_blocks_(dup_keys_.size(), UINT32_MAX),
	  cut_ops_(max_chunk_ / kBlockSize + 1), cut_blocks_(cut_ops_.size()), anchor_pos_(kBlockSize),
	  anchor_hash_(kBlockSize),
	  codec_(std::make_unique<Codec>())
{
}

ChunkEncoder::~ChunkEncoder() = default;

size_t ChunkEncoder::build_ops(uint64_t chunk_off, std::span<const uint8_t> data, const BaselineIndex &base,
	const DirtyMap &dirty, bool classify) noexcept
{
	const Kernels &k = *k_;
	const uint8_t *bp = base.data().data();
	const uint64_t bsize = base.data().size();
	const size_t len = data.size();
	const size_t nb_blocks = (len + kBlockSize - 1) / kBlockSize;
	const uint64_t dup_mask = dup_keys_.size() - 1;
	// Two candidate buffers for a block's XOR runs, past the op stream's worst case
	// (caps are at most blen / 2: rle_encode's 16 bytes of slack are there).
	uint8_t *best_buf = ops_.data() + max_ops_size(max_chunk_);
	uint8_t *cand_buf = best_buf + kBlockSize;
	uint8_t *w = ops_.data();
	uint8_t run_op = op_same;
	uint64_t run_n = 0;
	int64_t shift = INT64_MIN; // baseline offset minus object offset of the last shifted match
	bool have_base = bsize != 0;

	auto flush_run = [&]() {
		if (run_n) {
			*w++ = run_op;
			w = put_varint(w, run_n);
			run_n = 0;
		}
	};
	auto add_run = [&](uint8_t op, uint64_t n = 1) {
		if (run_n && run_op != op)
			flush_run();
		run_op = op;
		run_n += n;
	};
	const ChunkGeometry cg(data.data(), len, chunk_off, bsize);
	const size_t nb_inplace = cg.nb_inplace;
	// Dirty pages are scattered, and the hardware prefetcher stops at page
	// boundaries, so the encoder asks for blocks ahead in two steps:
	//  - the first line of both copies of the next kPrefetchAhead blocks it will
	//    read, before this block's compare: two instructions a block, which start
	//    the page walks and the DRAM accesses early;
	//  - every line of the next block, after this block's compare, so they
	//    arrive while this block's runs, hash and lookups are computed instead
	//    of queueing in front of this block's loads.
	// On the 5%-dirty image with its map (256 MiB, 2-core Zen4 VM, caches
	// flushed between rounds, A/B in one process) this took 6.5 to 7.5 GB/s of
	// dirty bytes.  Before, both copies of the next two blocks were asked for
	// whole after the compare: 128 prefetches a block, more than the core keeps
	// in flight, and 5% slower than the first line only.  A compare alone with
	// the first lines prefetched runs at about 12 GB/s here: the memory reads
	// of two 4 KiB copies are the floor.  Prefetching the next chunk's first
	// blocks as a chunk ends (a burst API) gained nothing measurable: not kept.
	// Without a map every block is read, in address order, and the hardware
	// prefetcher keeps up: software prefetches there cost 10-25% (disk image).
	const size_t prefetch_ahead = dirty.words ? kPrefetchAhead : 0;
	size_t pf_next = 0;  // blocks before this one were prefetched or skipped
	size_t pf_ahead = 0; // blocks whose first lines were asked for, not yet read
	auto prefetch_more = [&]() {
		while (pf_ahead < prefetch_ahead) {
			size_t nb = cg.next_read(pf_next, dirty);
			if (nb >= cg.nb_blocks) {
				pf_next = cg.nb_blocks;
				return;
			}
			cg.prefetch_first(nb, bp);
			pf_next = nb + 1;
			pf_ahead++;
		}
	};
	uint64_t *diff = diff_mask_.data();
	uint8_t lit_class = 0; // content class of the last literal block, 0 before the first
	nb_cuts_ = 0;

	for (size_t b = 0; b < nb_blocks; b++) {
		const size_t off = b * kBlockSize;
		const size_t blen = std::min(kBlockSize, len - off);
		const uint64_t obj_off = chunk_off + off;
		const uint8_t *p = data.data() + off;
		const bool inplace = b < nb_inplace;

		// Blocks the hypervisor says are clean are not read at all: a whole run of
		// them is found with bit scans over the map.
		if (inplace && dirty.words) {
			size_t e = cg.next_read(b, dirty);
			if (e > b) {
				stats_.same += e - b;
				add_run(op_same, e - b);
				b = e - 1;
				continue;
			}
		}
		if (b < pf_next)
			pf_ahead -= pf_ahead != 0;
		else
			pf_next = b + 1;
		prefetch_more();
		// One pass over both copies gives every difference of the block.
		const size_t nb_diff = inplace ? k.diff_mask(p, bp + obj_off, blen, diff) : 0;
		const bool same = inplace && nb_diff == 0;
		if (prefetch_ahead)
			if (size_t nb = cg.next_read(b + 1, dirty); nb < cg.nb_blocks)
				cg.prefetch_rest(nb, bp);
		if (same) {
			stats_.same++;
			add_run(op_same);
			continue;
		}

		// Best candidate so far: XOR runs against baseline offset best_src.
		const size_t good_enough = blen / 32;
		size_t best_len = SIZE_MAX;
		uint64_t best_src = 0;
		// The XOR runs are at least as long as the bytes that differ, so a block
		// with good_enough differences or more cannot take the fast path below: its
		// runs are only worth building if it is neither zero, nor moved, nor a
		// duplicate.  Remapped pages (10% of the dirty ones in the corpus) spent
		// 5-10k cycles building runs that a COPY then replaced.
		auto inplace_candidate = [&]() {
			size_t n = rle_encode(k, p, bp + obj_off, blen, diff, nb_diff, best_buf, blen / 2);
			if (n) {
				best_len = n;
				best_src = obj_off;
			}
		};
		const bool few_diffs = inplace && nb_diff < good_enough;
		if (few_diffs)
			inplace_candidate();
		if (best_len <= good_enough) {
			flush_run();
			*w++ = op_xor_inplace;
			memcpy(w, best_buf, best_len);
			w += best_len;
			stats_.xor_inplace++;
			continue;
		}
		if (k.is_zero(p, blen)) {
			stats_.zero++;
			add_run(op_zero);
			continue;
		}

		// Moved block (exact copy elsewhere in the baseline) or a duplicate in this chunk.
		uint64_t h = block_hash(p, blen);
		if (blen == kBlockSize) {
			int64_t src = base.find_block(h);
			if (src >= 0 && uint64_t(src) + blen <= bsize && k.first_diff(p, bp + src, blen) == blen) {
				flush_run();
				*w++ = op_copy;
				w = put_varint(w, uint64_t(src));
				stats_.copy++;
				continue;
			}
		}
		{
			uint64_t s = h & dup_mask;
			bool found = false;
			for (; dup_blocks_[s] != UINT32_MAX; s = (s + 1) & dup_mask) {
				if (dup_keys_[s] != h)
					continue;
				const uint8_t *q = data.data() + size_t(dup_blocks_[s]) * kBlockSize;
				if (k.first_diff(p, q, blen) == blen) {
					flush_run();
					*w++ = op_dup;
					w = put_varint(w, dup_blocks_[s]);
					stats_.dup++;
					found = true;
				}
				break;
			}
			if (found)
				continue;
			if (dup_blocks_[s] == UINT32_MAX) {
				dup_keys_[s] = h;
				dup_blocks_[s] = uint32_t(b);
			}
		}

		if (inplace && !few_diffs)
			inplace_candidate();

		// Shifted data: first the shift the previous block had, then anchors.
		auto try_src = [&](int64_t src) {
			if (src < 0 || uint64_t(src) + blen > bsize || uint64_t(src) == best_src)
				return;
			size_t cap = std::min(best_len == SIZE_MAX ? blen / 2 : best_len - 1, blen / 2);
			size_t nd = k.diff_mask(p, bp + src, blen, diff);
			size_t n = rle_encode(k, p, bp + src, blen, diff, nd, cand_buf, cap);
			if (n) {
				std::swap(best_buf, cand_buf);
				best_len = n;
				best_src = uint64_t(src);
				shift = int64_t(best_src) - int64_t(obj_off);
			}
		};
		if (have_base && shift != INT64_MIN)
			try_src(int64_t(obj_off) + shift);
		// The anchor search (the gear hash over the block, index lookups that miss
		// the cache, a compare per candidate: about 10k cycles) only runs when the
		// in-place runs leave more than an eighth of the block.  A source shifted
		// by s bytes can only beat them on the bytes that do not already match in
		// place, so little is lost; in-place edits of memory pages (a few words of
		// a page, 64-127 bytes for 11% of the corpus' dirty pages) never found one,
		// and took a third of a 5%-dirty round with a map.
		if (have_base && best_len > blen / 8) {
			// The rolling hash covers the 64 bytes up to a position, so it is
			// defined from 63 bytes past the chunk's start on (the block's first
			// 63 positions use the bytes before it).
			const size_t lo = std::max(off, size_t(63)), hi = off + blen;
			size_t nb_anchors =
				lo < hi ? find_anchors(data.data(), lo, hi, anchor_pos_.data(), anchor_hash_.data()) : 0;
			unsigned tries = 0;
			for (size_t a = 0; a < nb_anchors && tries < 3; a++) {
				int64_t q = base.find_anchor(anchor_hash_[a]);
				if (q < 0)
					continue;
				tries++;
				try_src(q - int64_t(chunk_off + anchor_pos_[a] + 1) + int64_t(obj_off));
				if (best_len <= good_enough)
					break;
			}
		}

		flush_run();
		if (best_len != SIZE_MAX && best_src != obj_off && best_len == 1) {
			// A single zero-run varint: the block is an exact copy at that offset.
			*w++ = op_copy;
			w = put_varint(w, best_src);
			stats_.copy++;
		} else if (best_len != SIZE_MAX) {
			if (best_src == obj_off) {
				*w++ = op_xor_inplace;
				stats_.xor_inplace++;
			} else {
				*w++ = op_xor;
				w = put_varint(w, best_src);
				stats_.xor_shifted++;
			}
			memcpy(w, best_buf, best_len);
			w += best_len;
		} else {
			if (classify) {
				uint8_t c = content_class(p, blen);
				if (c != lit_class && lit_class != 0) {
					cut_ops_[nb_cuts_] = uint32_t(w - ops_.data());
					cut_blocks_[nb_cuts_++] = uint32_t(b);
				}
				lit_class = c;
			}
			*w++ = op_literal;
			memcpy(w, p, blen);
			w += blen;
			stats_.literal++;
		}
	}
	flush_run();
	// Forget this chunk's block hashes (2 slots per block of a chunk: 128 for 256 KiB).
	std::fill(dup_blocks_.begin(), dup_blocks_.end(), UINT32_MAX);
	return size_t(w - ops_.data());
}

size_t ChunkEncoder::encode(uint32_t index, size_t chunk_size, std::span<const uint8_t> data,
	const BaselineIndex &base, const DirtyMap &dirty, Tier tier, std::span<uint8_t> out) noexcept
{
	const size_t len = data.size();
	if (!valid_chunk_size(chunk_size) || len == 0 || len > chunk_size || len > max_chunk_ ||
		out.size() < max_encoded_chunk_size(len))
		return 0;
	const uint64_t chunk_off = uint64_t(index) * chunk_size;
	// Only zstd uses the content classes of literal blocks.
	size_t ops_len = build_ops(chunk_off, data, base, dirty, tier == Tier::zstd3 || tier == Tier::zstd9);

	uint8_t *hdr = out.data();
	uint8_t kind = kind_ops;
	const uint8_t *src = ops_.data();
	size_t src_len = ops_len;
	const uint32_t *cuts = cut_ops_.data();
	if (ops_len >= len) {
		kind = kind_raw;
		src = data.data();
		src_len = len;
		stats_.nb_raw_chunks++;
		// Each cut moves to its block's first byte.
		for (size_t c = 0; c < nb_cuts_; c++)
			cut_blocks_[c] *= uint32_t(kBlockSize);
		cuts = cut_blocks_.data();
	}
	uint8_t codec = codec_stored;
	size_t payload = 0;
	// Small op streams go stored: a zstd call costs about 10 us whatever the size,
	// which on a 5%-dirty image with a dirty map was 5x the cost of finding the
	// changes, and the XOR runs of a few dirty pages barely compress (0.3% here).
	if (tier != Tier::none && src_len >= kMinCompressLen) {
		payload = codec_->compress(tier, src, src_len, hdr + kChunkHeaderLen, src_len - 1, cuts, nb_cuts_);
		if (payload)
			codec = tier == Tier::igzip ? codec_deflate : codec_zstd;
	}
	if (!payload) {
		memcpy(hdr + kChunkHeaderLen, src, src_len);
		payload = src_len;
	}
	hdr[0] = kChunkMagic;
	hdr[1] = kChunkVersion;
	hdr[2] = kind;
	hdr[3] = codec;
	put_u32(hdr + 4, index);
	put_u32(hdr + 8, uint32_t(chunk_size));
	put_u32(hdr + 12, uint32_t(len));
	put_u32(hdr + 16, base.tag());
	put_u32(hdr + 20, uint32_t(payload));
	size_t body = kChunkHeaderLen + payload;
	put_u32(hdr + body, crc32_iscsi(hdr, int(body), 0));
	size_t total = body + kChunkTrailerLen;
	stats_.nb_chunks++;
	stats_.bytes_in += len;
	stats_.bytes_out += total;
	return total;
}

// --- Decoder ----------------------------------------------------------------

DecodeError parse_chunk_header(std::span<const uint8_t> in, ChunkHeader &h)
{
	if (in.size() < kChunkHeaderLen)
		return DecodeError::truncated;
	const uint8_t *p = in.data();
	if (p[0] != kChunkMagic)
		return DecodeError::bad_magic;
	if (p[1] != kChunkVersion)
		return DecodeError::bad_version;
	h.kind = p[2];
	h.codec = p[3];
	h.index = get_u32(p + 4);
	h.chunk_size = get_u32(p + 8);
	h.len = get_u32(p + 12);
	h.tag = get_u32(p + 16);
	h.payload_len = get_u32(p + 20);
	if (h.payload_len > kMaxChunkSize + 64)
		return DecodeError::wrong_chunk;
	return DecodeError::ok;
}

ChunkDecoder::ChunkDecoder(size_t max_chunk_size, const Kernels *k)
	: k_(k ? k : &kernels()), max_chunk_(std::min(max_chunk_size, kMaxChunkSize)),
	  ops_(max_ops_size(max_chunk_)), codec_(std::make_unique<Codec>())
{
}

ChunkDecoder::~ChunkDecoder() = default;

namespace {

// Applies XOR runs to dst (blen bytes, already holding the reference).
DecodeError apply_rle(const Kernels &k, const uint8_t *&r, const uint8_t *end, uint8_t *dst, size_t blen)
{
	size_t pos = 0;
	for (;;) {
		uint64_t z, l;
		if (!get_varint(r, end, z))
			return DecodeError::bad_op;
		if (z > blen - pos)
			return DecodeError::bad_op;
		pos += z;
		if (pos == blen)
			return DecodeError::ok;
		if (!get_varint(r, end, l) || l == 0 || l > blen - pos || l > size_t(end - r))
			return DecodeError::bad_op;
		k.xor_into(dst + pos, r, l);
		r += l;
		pos += l;
	}
}

} // namespace

DecodeError ChunkDecoder::apply_ops(std::span<const uint8_t> ops, uint64_t chunk_off,
	std::span<const uint8_t> base, std::span<uint8_t> out) noexcept
{
	const uint8_t *r = ops.data();
	const uint8_t *end = r + ops.size();
	const size_t len = out.size();
	const size_t nb_blocks = (len + kBlockSize - 1) / kBlockSize;
	const uint64_t bsize = base.size();
	uint8_t *o = out.data();
	size_t b = 0;
	auto src_ok = [&](uint64_t src, size_t n) { return src <= bsize && n <= bsize - src; };
	while (r < end) {
		uint8_t op = *r++;
		if (b >= nb_blocks)
			return DecodeError::bad_op;
		const size_t off = b * kBlockSize;
		const size_t blen = std::min(kBlockSize, len - off);
		uint64_t v;
		switch (op) {
		case op_same:
		case op_zero: {
			if (!get_varint(r, end, v) || v == 0 || v > nb_blocks - b)
				return DecodeError::bad_op;
			size_t n = std::min(size_t(v) * kBlockSize, len - off);
			if (op == op_zero) {
				memset(o + off, 0, n);
			} else {
				if (!src_ok(chunk_off + off, n))
					return DecodeError::out_of_range;
				memcpy(o + off, base.data() + chunk_off + off, n);
			}
			b += size_t(v);
			continue;
		}
		case op_copy:
			if (!get_varint(r, end, v))
				return DecodeError::bad_op;
			if (!src_ok(v, blen))
				return DecodeError::out_of_range;
			memcpy(o + off, base.data() + v, blen);
			break;
		case op_dup:
			if (!get_varint(r, end, v))
				return DecodeError::bad_op;
			if (v >= b)
				return DecodeError::out_of_range;
			memcpy(o + off, o + size_t(v) * kBlockSize, blen);
			break;
		case op_xor:
		case op_xor_inplace: {
			if (op == op_xor) {
				if (!get_varint(r, end, v))
					return DecodeError::bad_op;
			} else {
				v = chunk_off + off;
			}
			if (!src_ok(v, blen))
				return DecodeError::out_of_range;
			memcpy(o + off, base.data() + v, blen);
			DecodeError e = apply_rle(*k_, r, end, o + off, blen);
			if (e != DecodeError::ok)
				return e;
			break;
		}
		case op_literal:
			if (size_t(end - r) < blen)
				return DecodeError::bad_op;
			memcpy(o + off, r, blen);
			r += blen;
			break;
		default:
			return DecodeError::bad_op;
		}
		b++;
	}
	return b == nb_blocks ? DecodeError::ok : DecodeError::bad_op;
}

DecodeError ChunkDecoder::decode(std::span<const uint8_t> in, uint32_t index, size_t chunk_size,
	std::span<const uint8_t> base, uint32_t base_tag, std::span<uint8_t> out) noexcept
{
	ChunkHeader h;
	DecodeError e = parse_chunk_header(in, h);
	if (e != DecodeError::ok)
		return e;
	if (in.size() < h.total_len())
		return DecodeError::truncated;
	if (in.size() > h.total_len())
		return DecodeError::trailing_bytes;
	size_t body = kChunkHeaderLen + h.payload_len;
	if (crc32_iscsi(const_cast<uint8_t *>(in.data()), int(body), 0) != get_u32(in.data() + body))
		return DecodeError::bad_crc;
	if (h.index != index || h.chunk_size != chunk_size || h.len != out.size() || h.len == 0 ||
		h.len > chunk_size || h.len > max_chunk_ || !valid_chunk_size(chunk_size))
		return DecodeError::wrong_chunk;
	if (h.tag != base_tag)
		return DecodeError::wrong_baseline;
	if (h.kind > kind_ops || h.codec > codec_deflate)
		return DecodeError::bad_kind;
	const uint8_t *payload = in.data() + kChunkHeaderLen;
	if (h.kind == kind_raw) {
		if (h.codec == codec_stored) {
			if (h.payload_len != h.len)
				return DecodeError::bad_op;
			memcpy(out.data(), payload, h.len);
			return DecodeError::ok;
		}
		size_t n = codec_->decompress(h.codec, payload, h.payload_len, out.data(), out.size());
		if (n == SIZE_MAX)
			return DecodeError::decompress_failed;
		return n == h.len ? DecodeError::ok : DecodeError::bad_op;
	}
	std::span<const uint8_t> ops(payload, h.payload_len);
	if (h.codec != codec_stored) {
		size_t n = codec_->decompress(h.codec, payload, h.payload_len, ops_.data(), max_ops_size(h.len));
		if (n == SIZE_MAX)
			return DecodeError::decompress_failed;
		ops = std::span<const uint8_t>(ops_.data(), n);
	}
	return apply_ops(ops, uint64_t(index) * chunk_size, base, out);
}

} // namespace dwcp::hde
