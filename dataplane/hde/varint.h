#pragma once
// LEB128 varints as HDE's op streams and state deltas write them.
#include <cstdint>

namespace dwcp::hde {

// Reads a varint at *r, below end.  False on truncation or more than 64 bits: the
// input is hostile until proved otherwise.
inline bool get_varint(const uint8_t *&r, const uint8_t *end, uint64_t &v)
{
	v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (r == end)
			return false;
		uint8_t b = *r++;
		v |= uint64_t(b & 0x7f) << shift;
		if (!(b & 0x80))
			return shift < 63 || b <= 1;
	}
	return false;
}

} // namespace dwcp::hde
