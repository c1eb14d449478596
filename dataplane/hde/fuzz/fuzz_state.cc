// Fuzzes the DeltaState parser and apply_state against a small state map.
#include "dataplane/hde/state_delta.h"

#include <isa-l/crc.h>

#include <cstring>
#include <vector>

using namespace dwcp::hde;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const StateMap base = {{"vm/1/meta/host", "host-1"}, {"vm/1/metrics/cpu", "12"},
		{"vm/2/meta/host", "host-2"}};
	DeltaState d;
	if (parse_state_delta({data, size}, d) != DecodeError::ok) {
		// Retry with the payload length and CRC fixed up, to get past the CRC.
		if (size < kStateHeaderLen + 4)
			return 0;
		std::vector<uint8_t> f(data, data + size);
		uint32_t pl = uint32_t(size - kStateHeaderLen - 4);
		memcpy(f.data() + 89, &pl, 4);
		uint32_t crc = crc32_iscsi(f.data(), int(size - 4), 0);
		memcpy(f.data() + size - 4, &crc, 4);
		if (parse_state_delta(f, d) != DecodeError::ok)
			return 0;
	}
	StateMap out;
	apply_state(base, d.base_version, d, out);
	std::vector<float> f;
	for (const auto &op : d.ops)
		dequantise_f32(op.value, f);
	return 0;
}
