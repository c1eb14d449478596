#pragma once
// Ethernet/IPv4/UDP for the poll-mode workers: classify what a port received, and
// put the headers in front of a DWCP packet about to be sent.
//
// Hot path: no allocation, no locks, no syscalls; every length is checked against
// what the frame holds before it is read, because frames may be garbage, truncated
// or padded to the Ethernet minimum (the IP and UDP lengths are trusted, the frame
// length only bounds them).  Each frame that is not for us gets a reason, and each
// reason a counter named rx.<reason>.
#include <cstdint>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

namespace dwcp::drivers {

constexpr uint16_t kDefaultUdpPort = 7470;
constexpr uint16_t kEncapLen = RTE_ETHER_HDR_LEN + 20 + 8; // Ethernet + IPv4 without options + UDP
constexpr uint8_t kDefaultTtl = 64;

// Who we are on one port.  Addresses and port are in network byte order so the hot
// path compares them as loaded.
struct Iface {
	rte_ether_addr mac{};
	rte_be32_t ip = 0;
	rte_be16_t udp_port = RTE_BE16(kDefaultUdpPort);
	// Verify a non-zero UDP checksum in software when the port did not (about 0.1 ns
	// per byte).  Off by default: DWCP packets carry their own integrity.
	bool verify_udp_cksum = false;
};

// What the port does for us on TX (from PortInfo::tx).
struct TxOffloads {
	bool ip_cksum = false;  // RTE_ETH_TX_OFFLOAD_IPV4_CKSUM
	bool udp_cksum = false; // RTE_ETH_TX_OFFLOAD_UDP_CKSUM
	bool multi_seg = false; // RTE_ETH_TX_OFFLOAD_MULTI_SEGS
};

// The verdict on one received frame.  udp and arp are for the caller to handle;
// everything from multi_seg on is a drop, counted under rx_class_name().
enum class RxClass : uint8_t {
	udp,           // rx.udp: IPv4/UDP to our IP and port; the UdpView is filled
	arp,           // rx.arp: a well-formed Ethernet/IPv4 ARP packet; give it to ArpTable::input
	multi_seg,     // rx.multi_seg: chained mbuf (ports are configured without scatter)
	truncated,     // rx.truncated: the frame ends before a header it claims (Ethernet, IPv4, UDP, ARP)
	not_our_mac,   // rx.not_our_mac: destination MAC neither ours nor broadcast
	not_ipv4,      // rx.not_ipv4: EtherType neither IPv4 nor ARP (IPv6, VLAN-tagged, LLDP...)
	bad_ipv4,      // rx.bad_ipv4: version, IHL, total length or header checksum wrong
	ip_fragment,   // rx.ip_fragment: MF set or a fragment offset (DWCP never fragments)
	not_udp,       // rx.not_udp: IPv4 but not UDP (ICMP, TCP...)
	not_for_us,    // rx.not_for_us: IPv4 destination is not our IP
	bad_udp,       // rx.bad_udp: UDP length shorter than its header or not the IP payload length
	bad_udp_cksum, // rx.bad_udp_cksum: the NIC (or verify_udp_cksum) found the UDP checksum wrong
	wrong_port,    // rx.wrong_port: UDP to our IP but another port
	bad_arp,       // rx.bad_arp: ARP that is not Ethernet/IPv4, or an unknown opcode
	count_,
};
constexpr bool rx_is_drop(RxClass c) { return c >= RxClass::multi_seg; }
// "rx.udp", "rx.truncated", ...: the counter name.
const char *rx_class_name(RxClass c);

// A DWCP datagram found in a frame.
struct UdpView {
	uint8_t *payload = nullptr; // the UDP payload, in the frame
	uint16_t len = 0;           // UDP payload bytes (padding excluded)
	uint16_t payload_off = 0;   // payload - frame start: rte_pktmbuf_adj(m, payload_off) then trim to len
	rte_be32_t src_ip = 0;
	rte_be16_t src_port = 0;
	rte_ether_addr src_mac{};
};

// Per-worker RX counters, one per RxClass, summed by the reader (no atomics).
struct RxCounters {
	uint64_t by_class[size_t(RxClass::count_)] = {};
	void add(RxClass c) { by_class[size_t(c)]++; }
	uint64_t operator[](RxClass c) const { return by_class[size_t(c)]; }
};

// Classifies len bytes of frame.  ol_flags are the mbuf's RX flags: a checksum the
// NIC marked GOOD is not recomputed, one marked BAD is a drop.  The frame is not
// modified; *v is written only for RxClass::udp.
RxClass rx_classify_frame(uint8_t *frame, uint32_t len, uint64_t ol_flags, const Iface &iface, UdpView *v);

// The same on an mbuf from rte_eth_rx_burst.
inline RxClass rx_classify(rte_mbuf *m, const Iface &iface, UdpView *v)
{
	if (unlikely(m->nb_segs != 1))
		return RxClass::multi_seg;
	return rx_classify_frame(rte_pktmbuf_mtod(m, uint8_t *), m->data_len, m->ol_flags, iface, v);
}

// Classifies a burst, prefetching ahead; cls[i] and (for udp) views[i] describe
// pkts[i], and every verdict is added to *counters.  Returns how many are udp.
uint16_t rx_classify_burst(rte_mbuf **pkts, uint16_t n, const Iface &iface, RxClass *cls, UdpView *views,
			   RxCounters *counters);

// Ethernet + IPv4 + UDP header template for one peer, built once (VPP's rewrite
// string): per packet only the IP total length, IP id, UDP length, UDP source port
// and the checksums change.  The IPv4 checksum is updated incrementally from the
// template's partial sum, so software checksumming costs two additions.
enum class UdpCksum : uint8_t {
	none,     // 0: allowed for IPv4 (RFC 768), DWCP has its own integrity
	offload,  // the NIC fills it (needs TxOffloads::udp_cksum)
	software, // computed over the payload (single-segment mbufs; about 0.1 ns per byte)
};

struct TxTemplate {
	alignas(64) uint8_t hdr[kEncapLen];
	uint32_t ip_sum = 0;          // ones-complement sum of the IPv4 header with length and id 0
	uint64_t ol_flags = 0;        // TX offload flags each packet gets
	bool ip_cksum_offload = false;
	UdpCksum udp_cksum = UdpCksum::none;
};

// Builds the template for packets from iface to peer_ip:peer_port via next_hop_mac
// (the peer's MAC, or the gateway's when the peer is routed).  DF is set: DWCP sizes
// its packets to the path MTU and never relies on fragmentation.  udp_cksum offload
// falls back to none when the port cannot, software stays software.
void tx_template_init(TxTemplate *t, const Iface &iface, const rte_ether_addr &next_hop_mac, rte_be32_t peer_ip,
		      rte_be16_t peer_port, const TxOffloads &offl, UdpCksum udp_cksum = UdpCksum::none,
		      uint8_t ttl = kDefaultTtl);

// Prepends the template to m, whose data is the UDP payload, and fills the lengths,
// the IP id, the UDP source port (host order: each stream picks its own so RSS at
// the peer spreads streams over queues) and the checksums, setting m->l2_len/l3_len
// and the ol_flags the offloads need.  Returns false, m untouched, when m has less
// than kEncapLen bytes of headroom or the payload does not fit one IPv4 datagram.
bool tx_encap(rte_mbuf *m, const TxTemplate &t, uint16_t src_port, uint16_t ip_id);

// For logs and errors: "10.99.0.12".  Not for the hot path.
const char *ipv4_to_str(rte_be32_t ip, char *buf, size_t len);
// Parses dotted-quad text into network order; false on anything else.
bool ipv4_parse(const char *s, rte_be32_t *ip);

} // namespace dwcp::drivers
