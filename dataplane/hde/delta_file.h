#pragma once
// The HDE delta file: what `dwcp-delta encode` writes and `dwcp-delta decode` reads.
// It is the gateway's chunk stream with a header in front, so the same encoder
// serves both.
//
//   header (112 bytes, integers little-endian)
//     0    8   magic "DWCPHDE\x01"
//     8    u32 format version (1)
//     12   u32 chunk size C (a multiple of 4 KiB, at most 4 MiB)
//     16   u64 baseline size (0: no baseline)
//     24   32  baseline SHA-256 (zero without a baseline)
//     56   u64 new object size
//     64   32  new object SHA-256
//     96   u32 number of chunks, ceil(new size / C)
//     100  u8  tier the encoder used (informational)
//     101  7   reserved, zero
//     108  u32 CRC32C of bytes [0, 108)
//   then every chunk, in index order, each an encoded chunk (block_delta.h) that
//   carries its own length and CRC.  Nothing follows the last chunk.
//
// Decoding checks the header, then the baseline's size and SHA-256, before it
// decodes anything, and the SHA-256 of the result at the end: a wrong baseline, a
// corrupt or truncated delta is an error, never a wrong file.
#include "dataplane/hde/block_delta.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dwcp::hde {

constexpr size_t kFileHeaderLen = 112;
constexpr char kFileMagic[8] = {'D', 'W', 'C', 'P', 'H', 'D', 'E', 1};

struct FileHeader {
	uint32_t chunk_size = kDefaultChunkSize;
	uint64_t base_size = 0;
	Digest base_sha{};
	uint64_t new_size = 0;
	Digest new_sha{};
	uint32_t nb_chunks = 0;
	Tier tier = Tier::zstd3;
};

Digest sha256(std::span<const uint8_t> data);
void serialize_file_header(const FileHeader &h, uint8_t *out);
DecodeError parse_file_header(std::span<const uint8_t> in, FileHeader &h);

struct FileEncodeOptions {
	Tier tier = Tier::zstd3;
	size_t chunk_size = kDefaultChunkSize;
	unsigned nb_threads = 1;
	DirtyMap dirty;
	// When set, used instead of hashing the baseline again (the baseline store has it).
	const Digest *base_sha = nullptr;
};

struct FileTimings {
	double index_s = 0;  // baseline index build
	double sha_s = 0;    // SHA-256 of baseline and new object (overlapped with encoding)
	double code_s = 0;   // chunk encode or decode, all threads, wall clock
	double total_s = 0;
};

// Encodes new_data against base into out (the whole delta file).
bool encode_file(std::span<const uint8_t> base, std::span<const uint8_t> new_data, const FileEncodeOptions &opts,
	std::vector<uint8_t> &out, EncodeStats *stats, FileTimings *timings, std::string &err);

// Decodes a delta file against base into out, which the caller sizes with
// decoded_size() (so it can be an mmap'd output file).
DecodeError decoded_size(std::span<const uint8_t> delta, uint64_t &size);
DecodeError decode_file(std::span<const uint8_t> base, std::span<const uint8_t> delta, std::span<uint8_t> out,
	unsigned nb_threads, FileTimings *timings, std::string &err);

} // namespace dwcp::hde
