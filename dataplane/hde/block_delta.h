#pragma once
// HDE block delta: the per-chunk encoder and decoder for images (VM memory, disks).
//
// The gateway cuts an object into chunks of C bytes (C a multiple of 4 KiB, at most
// kMaxChunkSize; 256 KiB in the gateway): chunk i covers bytes [i*C, i*C + len) of
// the new object, len = C except for the last chunk.  Each chunk is encoded on its
// own, by any worker, against the WHOLE baseline (read-only, usually mmap'd) and a
// BaselineIndex built once per baseline, and decoded in any order at the receiver.
//
// Encoded chunk (all integers little-endian):
//   0   u8   magic 0xDE
//   1   u8   format version (1)
//   2   u8   kind: 0 RAW (payload is the chunk's bytes), 1 OPS (payload is an op stream)
//   3   u8   codec of the payload: 0 stored, 1 zstd, 2 raw deflate (ISA-L igzip)
//   4   u32  chunk index i
//   8   u32  chunk size C of the object
//   12  u32  len, bytes of new data in this chunk (1..C)
//   16  u32  baseline tag (first 4 bytes of the baseline's SHA-256, 0 without one)
//   20  u32  payload length P as sent
//   24  P    payload
//   24+P u32 CRC32C (ISA-L crc32_iscsi, seed 0) of bytes [0, 24+P)
// So an encoded chunk is never longer than max_encoded_chunk_size(len) = len + 28:
// when the op stream, compressed or not, is not shorter than the chunk, the chunk
// goes as RAW (compressed when that helps).  A zstd payload is one standard frame
// with its content size; the encoder ends its blocks where the content class of
// the literal blocks changes (text, high-entropy, zero-rich, other binary), so
// each run of pages of one kind gets entropy tables of its own.
//
// Op stream (after decompression).  The chunk is split into 4 KiB blocks (the last
// one may be short); ops describe the blocks in order and must cover all of them:
//   0x00 SAME  n        n blocks equal to the baseline at the same object offset
//   0x01 ZERO  n        n zero blocks
//   0x02 COPY  off      the block is baseline[off, off+blen) (moved or shifted data)
//   0x03 DUP   k        the block equals block k (< this one) of the same chunk
//   0x04 XOR   off rle  baseline[off, off+blen) with the XOR runs of rle applied
//   0x05 XORIP rle      XOR against the baseline at the block's own offset
//   0x06 LIT            blen literal bytes
// n, off and k are LEB128 varints.  rle (the idea of QEMU's XBZRLE) is a sequence of
//   zero-run varint z, then, unless the block is complete, literal-run varint l >= 1
//   and l bytes to XOR in, repeated until the runs cover blen bytes exactly.
// The encoder ends a literal run at the first 4 equal bytes (G = kRleGap), so the
// encoding is one deterministic function of the data, whatever the ISA.
//
// Block sources, tried cheapest first: the dirty bitmap (clear bit = SAME without
// reading), an in-place SIMD compare (SAME, or XORIP when few bytes changed), zero
// check, a hash of the block looked up among the baseline's blocks (moved pages:
// COPY) and among this chunk's earlier blocks (DUP), the shift of the previous
// block, then content-defined anchors (a gear rolling hash, as in rsync/xdelta
// style matchers) found in the block and looked up in the baseline's anchor index
// (data shifted by any byte offset: COPY or XOR at an unaligned offset).
#include "dataplane/hde/simd.h"
#include "dataplane/hde/tier.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace dwcp::hde {

constexpr size_t kBlockSize = 4096;
constexpr size_t kDefaultChunkSize = 256 * 1024;
constexpr size_t kMaxChunkSize = 4 * 1024 * 1024;
constexpr size_t kChunkHeaderLen = 24;
constexpr size_t kChunkTrailerLen = 4;
constexpr uint8_t kChunkMagic = 0xde;
constexpr uint8_t kChunkVersion = 1;
constexpr size_t kRleGap = 4;
// Dirty blocks (with a map) whose first lines, in both copies, are prefetched
// ahead of the compare (block_delta.cc, build_ops).
constexpr size_t kPrefetchAhead = 4;

constexpr size_t max_encoded_chunk_size(size_t len)
{
	return kChunkHeaderLen + len + kChunkTrailerLen;
}

// True when c is a valid object chunk size (a multiple of kBlockSize, at most kMaxChunkSize).
constexpr bool valid_chunk_size(size_t c)
{
	return c >= kBlockSize && c <= kMaxChunkSize && c % kBlockSize == 0;
}

enum class DecodeError : uint8_t {
	ok = 0,
	truncated,       // shorter than its header says
	bad_magic,       // not an HDE chunk
	bad_version,     // a format version this decoder does not know
	bad_crc,         // CRC32C mismatch: corrupted in flight or on disk
	wrong_chunk,     // index, chunk size or length differ from what the receiver expects
	wrong_baseline,  // encoded against another baseline (tag mismatch)
	bad_kind,        // unknown kind or codec
	decompress_failed,
	bad_op,          // unknown op, or ops that do not cover the chunk exactly
	out_of_range,    // a source outside the baseline or a DUP of a later block
	trailing_bytes,  // bytes after the last op, or after the chunk
	bad_header,      // (file format) header fields inconsistent
	object_mismatch, // (file format) SHA-256 of the result differs from the header
};

const char *decode_error_name(DecodeError e);

using Digest = std::array<uint8_t, 32>;
// The chunk header's baseline tag for a baseline digest.
uint32_t baseline_tag(const Digest &d);

// Hash indexes over one baseline, built once (at session set-up, when the baseline
// store names it) and shared read-only by every worker that encodes against it.
// Memory: about 48 bytes per 4 KiB baseline block (16 MiB for 1 GiB; 4 MiB for
// 256 MiB, plus 8 MiB of anchors), allocated here and nowhere on the hot path.
class BaselineIndex {
public:
	struct Options {
		bool moved_blocks = true;  // hash of every aligned baseline block
		bool shifted_data = true;  // anchors for data shifted by any byte offset
		unsigned nb_threads = 1;   // threads that build the anchor index
	};

	BaselineIndex() = default; // no baseline: every chunk is encoded on its own
	// `base` must stay mapped and unchanged while the index is used.
	BaselineIndex(std::span<const uint8_t> base, uint32_t tag, const Options &opts);
	BaselineIndex(std::span<const uint8_t> base, uint32_t tag) : BaselineIndex(base, tag, Options{}) {}

	std::span<const uint8_t> data() const { return base_; }
	uint32_t tag() const { return tag_; }
	size_t memory_bytes() const;

	// Offset of a baseline block whose hash is h (candidate: the caller compares), or -1.
	int64_t find_block(uint64_t h) const;
	// Offset in the baseline just after an anchor whose gear hash is h, or -1.
	int64_t find_anchor(uint64_t h) const;

private:
	struct Slot {
		uint64_t key;
		uint64_t off; // UINT64_MAX when empty
	};
	std::span<const uint8_t> base_;
	uint32_t tag_ = 0;
	std::vector<Slot> blocks_;
	std::vector<Slot> anchors_;
	uint64_t block_mask_ = 0;
	uint64_t anchor_mask_ = 0;
};

// 64-bit hash of a block's bytes (the block index and DUP detection).
uint64_t block_hash(const uint8_t *p, size_t n);

// A dirty bitmap in the hypervisors' form: bit b (word b/64, bit b%64) set when the
// object's 4 KiB block b may have changed since the baseline.  Blocks it leaves out
// are taken as dirty.
struct DirtyMap {
	const uint64_t *words = nullptr;
	size_t nb_blocks = 0;
	bool dirty(size_t block) const
	{
		return block >= nb_blocks || (words[block / 64] >> (block % 64)) & 1;
	}
};

struct EncodeStats {
	uint64_t bytes_in = 0;
	uint64_t bytes_out = 0;
	uint64_t nb_chunks = 0;
	uint64_t nb_raw_chunks = 0;
	uint64_t same = 0;    // blocks by kind
	uint64_t zero = 0;
	uint64_t copy = 0;
	uint64_t dup = 0;
	uint64_t xor_inplace = 0;
	uint64_t xor_shifted = 0;
	uint64_t literal = 0;
	void add(const EncodeStats &o);
};

struct ChunkHeader {
	uint8_t kind = 0;
	uint8_t codec = 0;
	uint32_t index = 0;
	uint32_t chunk_size = 0;
	uint32_t len = 0;
	uint32_t tag = 0;
	uint32_t payload_len = 0;
	size_t total_len() const { return kChunkHeaderLen + payload_len + kChunkTrailerLen; }
};

// Reads and checks the fixed header (not the CRC): enough to frame a stream of chunks.
DecodeError parse_chunk_header(std::span<const uint8_t> in, ChunkHeader &h);

// One per worker core.  All scratch space is allocated by the constructor for
// chunks up to max_chunk_size; encode() allocates nothing.
class ChunkEncoder {
public:
	explicit ChunkEncoder(size_t max_chunk_size = kDefaultChunkSize, const Kernels *k = nullptr);
	~ChunkEncoder();
	ChunkEncoder(const ChunkEncoder &) = delete;
	ChunkEncoder &operator=(const ChunkEncoder &) = delete;

	// Encodes chunk `index` of an object cut in chunks of chunk_size bytes; data is
	// that chunk's new bytes.  Returns the encoded length, or 0 when the arguments
	// are invalid (chunk_size, data longer than chunk_size or than this encoder's
	// maximum, out shorter than max_encoded_chunk_size(data.size())).
	size_t encode(uint32_t index, size_t chunk_size, std::span<const uint8_t> data,
		const BaselineIndex &base, const DirtyMap &dirty, Tier tier, std::span<uint8_t> out) noexcept;

	const EncodeStats &stats() const { return stats_; }
	void reset_stats() { stats_ = {}; }
	const Kernels &kernels_used() const { return *k_; }

private:
	struct Codec;
	size_t build_ops(uint64_t chunk_off, std::span<const uint8_t> data, const BaselineIndex &base,
		const DirtyMap &dirty, bool classify) noexcept;

	const Kernels *k_;
	size_t max_chunk_;
	std::vector<uint8_t> ops_;        // op stream, worst case: every block literal
	std::vector<uint64_t> dup_keys_;  // hashes of this chunk's blocks, open addressing
	std::vector<uint32_t> dup_blocks_;
	std::array<uint64_t, kBlockSize / 64> diff_mask_; // the block's difference mask (Kernels::diff_mask)
	// Where the content class of literal blocks changes: offsets in the op stream
	// and block indexes (see content_class in block_delta.cc).
	std::vector<uint32_t> cut_ops_;
	std::vector<uint32_t> cut_blocks_;
	size_t nb_cuts_ = 0;
	// One block's anchors of the rolling hash (position, hash), at most one a byte.
	std::vector<uint32_t> anchor_pos_;
	std::vector<uint64_t> anchor_hash_;
	std::unique_ptr<Codec> codec_;
	EncodeStats stats_;
};

class ChunkDecoder {
public:
	explicit ChunkDecoder(size_t max_chunk_size = kDefaultChunkSize, const Kernels *k = nullptr);
	~ChunkDecoder();
	ChunkDecoder(const ChunkDecoder &) = delete;
	ChunkDecoder &operator=(const ChunkDecoder &) = delete;

	// Decodes one encoded chunk into out (exactly the chunk's length) after checking
	// CRC, index, chunk size, length and baseline tag.  On error out holds garbage
	// and nothing else was touched; the baseline is only read.
	DecodeError decode(std::span<const uint8_t> in, uint32_t index, size_t chunk_size,
		std::span<const uint8_t> base, uint32_t base_tag, std::span<uint8_t> out) noexcept;

private:
	struct Codec;
	DecodeError apply_ops(std::span<const uint8_t> ops, uint64_t chunk_off,
		std::span<const uint8_t> base, std::span<uint8_t> out) noexcept;

	const Kernels *k_;
	size_t max_chunk_;
	std::vector<uint8_t> ops_;
	std::unique_ptr<Codec> codec_;
};

// Worst-case op stream length for a chunk of len bytes: one op byte per block, the
// largest XOR form being at most a literal (the encoder never emits longer).
constexpr size_t max_ops_size(size_t len)
{
	return len + (len / kBlockSize + 1) * 16;
}

} // namespace dwcp::hde
