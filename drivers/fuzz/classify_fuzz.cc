// Fuzz target: rx_classify_frame on arbitrary bytes, for every combination of RX
// checksum flags, must neither read past the frame nor return a view outside it.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "drivers/net.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	using namespace dwcp::drivers;
	// A heap copy of exactly size bytes, so a sanitizer sees any overread.
	std::vector<uint8_t> frame(data, data + size);
	Iface iface;
	iface.mac = rte_ether_addr{{0x02, 0, 0, 0, 0, 1}};
	iface.ip = rte_cpu_to_be_32(0x0a63000b); // 10.99.0.11
	const uint64_t flags[] = {0, RTE_MBUF_F_RX_IP_CKSUM_GOOD | RTE_MBUF_F_RX_L4_CKSUM_GOOD,
				  RTE_MBUF_F_RX_IP_CKSUM_BAD, RTE_MBUF_F_RX_L4_CKSUM_BAD};
	for (bool verify : {false, true}) {
		iface.verify_udp_cksum = verify;
		for (uint64_t f : flags) {
			UdpView v;
			RxClass c = rx_classify_frame(frame.data(), uint32_t(frame.size()), f, iface, &v);
			if (size_t(c) >= size_t(RxClass::count_))
				abort();
			if (c == RxClass::udp &&
			    (v.payload != frame.data() + v.payload_off || size_t(v.payload_off) + v.len > frame.size()))
				abort();
		}
	}
	return 0;
}
