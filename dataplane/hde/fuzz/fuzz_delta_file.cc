// Fuzzes the delta file decoder (header, framing, chunks, end SHA-256) with an
// empty baseline and a small one.
#include "dataplane/hde/delta_file.h"

#include <vector>

using namespace dwcp::hde;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint64_t n = 0;
	if (decoded_size({data, size}, n) != DecodeError::ok || n > (8u << 20))
		return 0;
	static std::vector<uint8_t> base(20000, 0x5a);
	std::vector<uint8_t> out(n);
	std::string err;
	decode_file({}, {data, size}, out, 1, nullptr, err);
	decode_file(base, {data, size}, out, 2, nullptr, err);
	return 0;
}
