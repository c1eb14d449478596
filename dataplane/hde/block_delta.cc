// HDE block delta encoder and decoder; the format is described in block_delta.h.
#include "dataplane/hde/varint.h"
#include "dataplane/hde/block_delta.h"

#include <isa-l/crc.h>
#include <isa-l/igzip_lib.h>
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
	size_t compress(Tier tier, const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
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
		size_t r = ZSTD_compressCCtx(zstd, dst, cap, src, n, level);
		return ZSTD_isError(r) ? 0 : r;
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

// XOR-and-zero-run encodes cur against ref (n bytes) into out.  first is where the
// first difference is (known from the in-place compare) or SIZE_MAX.  Returns the
// length, or 0 when it would pass cap.
size_t rle_encode(const Kernels &k, const uint8_t *cur, const uint8_t *ref, size_t n, size_t first,
	uint8_t *out, size_t cap)
{
	size_t pos = 0, o = 0;
	for (;;) {
		size_t z = first != SIZE_MAX ? first : k.first_diff(cur + pos, ref + pos, n - pos);
		first = SIZE_MAX;
		if (o + 10 > cap)
			return 0;
		o = size_t(put_varint(out + o, z) - out);
		pos += z;
		if (pos == n)
			return o;
		// The literal run ends at the first kRleGap equal bytes, or at the end.
		size_t e = pos + 1;
		while (e < n) {
			e += k.first_equal(cur + e, ref + e, n - e);
			if (e >= n)
				break;
			size_t g = std::min(kRleGap, n - e);
			size_t d = k.first_diff(cur + e, ref + e, g);
			if (d == g)
				break;
			e += d;
		}
		size_t l = e - pos;
		if (o + varint_len(l) + l > cap)
			return 0;
		o = size_t(put_varint(out + o, l) - out);
		memcpy(out + o, cur + pos, l);
		k.xor_into(out + o, ref + pos, l);
		o += l;
		pos = e;
	}
}

} // namespace

ChunkEncoder::ChunkEncoder(size_t max_chunk_size, const Kernels *k)
	: k_(k ? k : &kernels()), max_chunk_(std::min(max_chunk_size, kMaxChunkSize)),
	  ops_(max_ops_size(max_chunk_) + 2 * kBlockSize),
	  dup_keys_(pow2_at_least(2 * (max_chunk_ / kBlockSize + 1))), dup_blocks_(dup_keys_.size(), UINT32_MAX),
	  codec_(std::make_unique<Codec>())
{
}

ChunkEncoder::~ChunkEncoder() = default;

size_t ChunkEncoder::build_ops(uint64_t chunk_off, std::span<const uint8_t> data, const BaselineIndex &base,
	const DirtyMap &dirty) noexcept
{
	const Kernels &k = *k_;
	const uint8_t *bp = base.data().data();
	const uint64_t bsize = base.data().size();
	const size_t len = data.size();
	const size_t nb_blocks = (len + kBlockSize - 1) / kBlockSize;
	const uint64_t dup_mask = dup_keys_.size() - 1;
	// Two candidate buffers for a block's XOR runs, past the op stream's worst case.
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
	auto add_run = [&](uint8_t op) {
		if (run_n && run_op != op)
			flush_run();
		run_op = op;
		run_n++;
	};

	for (size_t b = 0; b < nb_blocks; b++) {
		const size_t off = b * kBlockSize;
		const size_t blen = std::min(kBlockSize, len - off);
		const uint64_t obj_off = chunk_off + off;
		const uint8_t *p = data.data() + off;
		const bool inplace = have_base && obj_off + blen <= bsize;

		// Blocks the hypervisor says are clean are not read at all.
		if (inplace && dirty.words && !dirty.dirty(obj_off / kBlockSize)) {
			stats_.same++;
			add_run(op_same);
			continue;
		}
		// Dirty pages are scattered, so the hardware prefetcher (which stops at
		// page boundaries) does not help: fetch the next block of both images
		// while this one is compared.  On the shared 2-core test machine the gain was
		// within the noise (3.4-4.2 GB/s of dirty bytes with a map, with and without).
		if (b + 1 < nb_blocks) {
			size_t nb = b + 1;
			if (dirty.words)
				while (nb < nb_blocks && chunk_off + nb * kBlockSize + kBlockSize <= bsize &&
					!dirty.dirty((chunk_off + nb * kBlockSize) / kBlockSize))
					nb++;
			if (nb < nb_blocks) {
				const uint8_t *np = data.data() + nb * kBlockSize;
				const uint64_t nbo = chunk_off + nb * kBlockSize;
				size_t nlen = std::min(kBlockSize, len - nb * kBlockSize);
				bool nbase = have_base && nbo + nlen <= bsize;
				for (size_t l = 0; l < nlen; l += 64) {
					__builtin_prefetch(np + l);
					if (nbase)
						__builtin_prefetch(bp + nbo + l);
				}
			}
		}
		size_t first = inplace ? k.first_diff(p, bp + obj_off, blen) : 0;
		if (inplace && first == blen) {
			stats_.same++;
			add_run(op_same);
			continue;
		}

		// Best candidate so far: XOR runs against baseline offset best_src.
		const size_t good_enough = blen / 32;
		size_t best_len = SIZE_MAX;
		uint64_t best_src = 0;
		if (inplace) {
			size_t n = rle_encode(k, p, bp + obj_off, blen, first, best_buf, blen / 2);
			if (n) {
				best_len = n;
				best_src = obj_off;
			}
		}
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

		// Shifted data: first the shift the previous block had, then anchors.
		auto try_src = [&](int64_t src) {
			if (src < 0 || uint64_t(src) + blen > bsize || uint64_t(src) == best_src)
				return;
			size_t cap = std::min(best_len == SIZE_MAX ? blen / 2 : best_len - 1, blen / 2);
			size_t n = rle_encode(k, p, bp + src, blen, SIZE_MAX, cand_buf, cap);
			if (n) {
				std::swap(best_buf, cand_buf);
				best_len = n;
				best_src = uint64_t(src);
				shift = int64_t(best_src) - int64_t(obj_off);
			}
		};
		if (have_base && shift != INT64_MIN)
			try_src(int64_t(obj_off) + shift);
		if (have_base && best_len > good_enough) {
			// The rolling hash warms up on up to 63 bytes before the block.
			size_t start = off >= 63 ? off - 63 : 0;
			uint64_t hh = 0;
			unsigned tries = 0;
			const uint8_t *d = data.data();
			for (size_t i = start; i < off + blen && tries < 3; i++) {
				hh = (hh << 1) + kGear.t[d[i]];
				if (i < start + 63 || i < off || !is_anchor(hh))
					continue;
				int64_t q = base.find_anchor(hh);
				if (q < 0)
					continue;
				tries++;
				try_src(q - int64_t(chunk_off + i + 1) + int64_t(obj_off));
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
	size_t ops_len = build_ops(chunk_off, data, base, dirty);

	uint8_t *hdr = out.data();
	uint8_t kind = kind_ops;
	const uint8_t *src = ops_.data();
	size_t src_len = ops_len;
	if (ops_len >= len) {
		kind = kind_raw;
		src = data.data();
		src_len = len;
		stats_.nb_raw_chunks++;
	}
	uint8_t codec = codec_stored;
	size_t payload = 0;
	// Small op streams go stored: a zstd call costs about 10 us whatever the size,
	// which on a 5%-dirty image with a dirty map was 5x the cost of finding the
	// changes, and the XOR runs of a few dirty pages barely compress (0.3% here).
	if (tier != Tier::none && src_len >= kMinCompressLen) {
		payload = codec_->compress(tier, src, src_len, hdr + kChunkHeaderLen, src_len - 1);
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
