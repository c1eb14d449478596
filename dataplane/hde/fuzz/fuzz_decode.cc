// Fuzzes ChunkDecoder::decode: any bytes, as chunk 0 or 1 of a 64 KiB-chunk object,
// against a fixed baseline.  The decoder must return an error or fill exactly its
// output, never read or write out of bounds.  The seed corpus holds real chunks.
#include "dataplane/hde/block_delta.h"

#include <isa-l/crc.h>

#include <cstring>
#include <vector>

using namespace dwcp::hde;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::vector<uint8_t> base = [] {
		std::vector<uint8_t> b(3 * 65536);
		for (size_t i = 0; i < b.size(); i++)
			b[i] = uint8_t(i * 7 + (i >> 12));
		return b;
	}();
	static ChunkDecoder dec(65536);
	static std::vector<uint8_t> out(65536);
	ChunkHeader h;
	uint32_t index = 0;
	size_t len = 65536;
	if (parse_chunk_header({data, size}, h) == DecodeError::ok) {
		// Follow the header's claims where they are plausible, so the op decoder is reached.
		index = h.index % 4;
		if (h.len >= 1 && h.len <= 65536)
			len = h.len;
	}
	dec.decode({data, size}, index, 65536, base, 0x5eed, std::span(out).first(len));
	// Mutations almost never keep the CRC right; decode a copy with the CRC (and
	// the tag) fixed up too, so the fuzzer reaches the decompressors and op decoder.
	if (size >= kChunkHeaderLen + kChunkTrailerLen) {
		std::vector<uint8_t> fixed(data, data + size);
		uint32_t tag = 0x5eed;
		memcpy(fixed.data() + 16, &tag, 4);
		uint32_t pl = uint32_t(size - kChunkHeaderLen - kChunkTrailerLen);
		memcpy(fixed.data() + 20, &pl, 4);
		uint32_t crc = crc32_iscsi(fixed.data(), int(size - kChunkTrailerLen), 0);
		memcpy(fixed.data() + size - kChunkTrailerLen, &crc, 4);
		dec.decode(fixed, index, 65536, base, 0x5eed, std::span(out).first(len));
	}
	return 0;
}
