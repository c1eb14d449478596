// rte_ipv4_udptcp_cksum_mbuf (software UDP checksum over a chained mbuf) is
// experimental in DPDK 22.11.
#define ALLOW_EXPERIMENTAL_API 1

#include "drivers/net.h"

#include <arpa/inet.h>
#include <cstring>
#include <iterator>

#include <rte_arp.h>
#include <rte_ip.h>
#include <rte_prefetch.h>
#include <rte_udp.h>

namespace dwcp::drivers {

namespace {

// Names indexed by RxClass; the static_assert keeps them in step with the enum.
constexpr const char *kRxClassNames[] = {
	"rx.udp",         "rx.arp",        "rx.multi_seg",     "rx.truncated", "rx.not_our_mac",
	"rx.not_ipv4",    "rx.bad_ipv4",   "rx.ip_fragment",   "rx.not_udp",   "rx.not_for_us",
	"rx.bad_udp",     "rx.bad_udp_cksum", "rx.wrong_port", "rx.bad_arp",
};
static_assert(std::size(kRxClassNames) == size_t(RxClass::count_));

inline bool mac_eq(const rte_ether_addr &a, const rte_ether_addr &b)
{
	// Two loads and compares: 4 + 2 bytes.
	uint32_t a4, b4;
	uint16_t a2, b2;
	memcpy(&a4, a.addr_bytes, 4), memcpy(&b4, b.addr_bytes, 4);
	memcpy(&a2, a.addr_bytes + 4, 2), memcpy(&b2, b.addr_bytes + 4, 2);
	return a4 == b4 && a2 == b2;
}

inline bool mac_is_bcast(const rte_ether_addr &a)
{
	uint32_t a4;
	uint16_t a2;
	memcpy(&a4, a.addr_bytes, 4), memcpy(&a2, a.addr_bytes + 4, 2);
	return a4 == 0xffffffffu && a2 == 0xffff;
}

inline uint16_t fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return uint16_t(sum);
}

RxClass classify_arp(const uint8_t *frame, uint32_t len)
{
	if (len < RTE_ETHER_HDR_LEN + sizeof(rte_arp_hdr))
		return RxClass::truncated;
	rte_arp_hdr arp;
	memcpy(&arp, frame + RTE_ETHER_HDR_LEN, sizeof(arp));
	if (arp.arp_hardware != RTE_BE16(RTE_ARP_HRD_ETHER) || arp.arp_protocol != RTE_BE16(RTE_ETHER_TYPE_IPV4) ||
	    arp.arp_hlen != RTE_ETHER_ADDR_LEN || arp.arp_plen != 4)
		return RxClass::bad_arp;
	if (arp.arp_opcode != RTE_BE16(RTE_ARP_OP_REQUEST) && arp.arp_opcode != RTE_BE16(RTE_ARP_OP_REPLY))
		return RxClass::bad_arp;
	return RxClass::arp;
}

} // namespace

const char *rx_class_name(RxClass c)
{
	return size_t(c) < size_t(RxClass::count_) ? kRxClassNames[size_t(c)] : "rx.unknown";
}

RxClass rx_classify_frame(uint8_t *frame, uint32_t len, uint64_t ol_flags, const Iface &iface, UdpView *v)
{
	if (unlikely(len < RTE_ETHER_HDR_LEN))
		return RxClass::truncated;
	auto *eth = reinterpret_cast<const rte_ether_hdr *>(frame);
	if (unlikely(!mac_eq(eth->dst_addr, iface.mac) && !mac_is_bcast(eth->dst_addr)))
		return RxClass::not_our_mac;
	if (unlikely(eth->ether_type != RTE_BE16(RTE_ETHER_TYPE_IPV4))) {
		if (eth->ether_type == RTE_BE16(RTE_ETHER_TYPE_ARP))
			return classify_arp(frame, len);
		return RxClass::not_ipv4;
	}

	uint32_t avail = len - RTE_ETHER_HDR_LEN;
	if (unlikely(avail < sizeof(rte_ipv4_hdr)))
		return RxClass::truncated;
	auto *ip = reinterpret_cast<const rte_ipv4_hdr *>(frame + RTE_ETHER_HDR_LEN);
	uint32_t ihl = uint32_t(ip->version_ihl & 0x0f) * 4;
	if (unlikely((ip->version_ihl >> 4) != 4 || ihl < sizeof(rte_ipv4_hdr)))
		return RxClass::bad_ipv4;
	if (unlikely(ihl > avail))
		return RxClass::truncated;
	uint32_t tot = rte_be_to_cpu_16(ip->total_length);
	if (unlikely(tot < ihl))
		return RxClass::bad_ipv4;
	if (unlikely(tot > avail)) // the frame may be longer (padding), never shorter
		return RxClass::truncated;
	uint64_t ip_ck = ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
	if (ip_ck != RTE_MBUF_F_RX_IP_CKSUM_GOOD) {
		if (unlikely(ip_ck == RTE_MBUF_F_RX_IP_CKSUM_BAD || rte_raw_cksum(ip, ihl) != 0xffff))
			return RxClass::bad_ipv4;
	}
	if (unlikely(ip->fragment_offset & RTE_BE16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return RxClass::ip_fragment;
	if (unlikely(ip->next_proto_id != IPPROTO_UDP))
		return RxClass::not_udp;
	if (unlikely(ip->dst_addr != iface.ip))
		return RxClass::not_for_us;

	uint32_t l4_len = tot - ihl;
	if (unlikely(l4_len < sizeof(rte_udp_hdr)))
		return RxClass::bad_udp;
	auto *udp = reinterpret_cast<const rte_udp_hdr *>(frame + RTE_ETHER_HDR_LEN + ihl);
	if (unlikely(rte_be_to_cpu_16(udp->dgram_len) != l4_len))
		return RxClass::bad_udp;
	if (unlikely(udp->dst_port != iface.udp_port))
		return RxClass::wrong_port;
	if (udp->dgram_cksum != 0) {
		uint64_t l4_ck = ol_flags & RTE_MBUF_F_RX_L4_CKSUM_MASK;
		if (unlikely(l4_ck == RTE_MBUF_F_RX_L4_CKSUM_BAD))
			return RxClass::bad_udp_cksum;
		if (iface.verify_udp_cksum && l4_ck != RTE_MBUF_F_RX_L4_CKSUM_GOOD &&
		    rte_ipv4_udptcp_cksum_verify(ip, udp) != 0)
			return RxClass::bad_udp_cksum;
	}

	v->payload_off = uint16_t(RTE_ETHER_HDR_LEN + ihl + sizeof(rte_udp_hdr));
	v->payload = frame + v->payload_off;
	v->len = uint16_t(l4_len - sizeof(rte_udp_hdr));
	v->src_ip = ip->src_addr;
	v->src_port = udp->src_port;
	v->src_mac = eth->src_addr;
	return RxClass::udp;
}

uint16_t rx_classify_burst(rte_mbuf **pkts, uint16_t n, const Iface &iface, RxClass *cls, UdpView *views,
			   RxCounters *counters)
{
	// Headers of the next few frames are pulled in while this one is classified; the
	// mbuf structs themselves were touched by the PMD and are warm.
	constexpr uint16_t kPrefetch = 4;
	uint16_t nb_udp = 0;
	for (uint16_t i = 0; i < n && i < kPrefetch; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	for (uint16_t i = 0; i < n; i++) {
		if (i + kPrefetch < n)
			rte_prefetch0(rte_pktmbuf_mtod(pkts[i + kPrefetch], void *));
		RxClass c = rx_classify(pkts[i], iface, &views[i]);
		cls[i] = c;
		counters->add(c);
		nb_udp += c == RxClass::udp;
	}
	return nb_udp;
}

void tx_template_init(TxTemplate *t, const Iface &iface, const rte_ether_addr &next_hop_mac, rte_be32_t peer_ip,
		      rte_be16_t peer_port, const TxOffloads &offl, UdpCksum udp_cksum, uint8_t ttl)
{
	*t = TxTemplate{};
	auto *eth = reinterpret_cast<rte_ether_hdr *>(t->hdr);
	eth->dst_addr = next_hop_mac;
	eth->src_addr = iface.mac;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	auto *ip = reinterpret_cast<rte_ipv4_hdr *>(t->hdr + RTE_ETHER_HDR_LEN);
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->type_of_service = 0;
	ip->total_length = 0;
	ip->packet_id = 0;
	ip->fragment_offset = RTE_BE16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = ttl;
	ip->next_proto_id = IPPROTO_UDP;
	ip->hdr_checksum = 0;
	ip->src_addr = iface.ip;
	ip->dst_addr = peer_ip;
	auto *udp = reinterpret_cast<rte_udp_hdr *>(t->hdr + RTE_ETHER_HDR_LEN + sizeof(rte_ipv4_hdr));
	udp->src_port = 0;
	udp->dst_port = peer_port;
	udp->dgram_len = 0;
	udp->dgram_cksum = 0;
	t->ip_sum = rte_raw_cksum(ip, sizeof(*ip));
	t->ip_cksum_offload = offl.ip_cksum;
	if (udp_cksum == UdpCksum::offload && !offl.udp_cksum)
		udp_cksum = UdpCksum::none;
	t->udp_cksum = udp_cksum;
	if (t->ip_cksum_offload)
		t->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM;
	if (t->udp_cksum == UdpCksum::offload)
		t->ol_flags |= RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_UDP_CKSUM;
}

bool tx_encap(rte_mbuf *m, const TxTemplate &t, uint16_t src_port, uint16_t ip_id)
{
	uint32_t payload = m->pkt_len;
	if (unlikely(rte_pktmbuf_headroom(m) < kEncapLen || payload > UINT16_MAX - 28))
		return false;
	auto *hdr = reinterpret_cast<uint8_t *>(rte_pktmbuf_prepend(m, kEncapLen));
	memcpy(hdr, t.hdr, kEncapLen);
	auto *ip = reinterpret_cast<rte_ipv4_hdr *>(hdr + RTE_ETHER_HDR_LEN);
	auto *udp = reinterpret_cast<rte_udp_hdr *>(hdr + RTE_ETHER_HDR_LEN + sizeof(rte_ipv4_hdr));
	rte_be16_t tot = rte_cpu_to_be_16(uint16_t(payload + 28));
	rte_be16_t id = rte_cpu_to_be_16(ip_id);
	ip->total_length = tot;
	ip->packet_id = id;
	if (!t.ip_cksum_offload)
		ip->hdr_checksum = uint16_t(~fold(t.ip_sum + tot + id));
	udp->src_port = rte_cpu_to_be_16(src_port);
	udp->dgram_len = rte_cpu_to_be_16(uint16_t(payload + 8));
	m->l2_len = RTE_ETHER_HDR_LEN;
	m->l3_len = sizeof(rte_ipv4_hdr);
	m->ol_flags |= t.ol_flags;
	switch (t.udp_cksum) {
	case UdpCksum::none:
		break;
	case UdpCksum::offload:
		udp->dgram_cksum = rte_ipv4_phdr_cksum(ip, 0);
		break;
	case UdpCksum::software:
		// The IP checksum field is not part of the UDP checksum, so an offloaded
		// (still zero) IP checksum does not matter here.
		if (m->nb_segs == 1)
			udp->dgram_cksum = rte_ipv4_udptcp_cksum(ip, udp);
		else
			udp->dgram_cksum = rte_ipv4_udptcp_cksum_mbuf(m, ip, RTE_ETHER_HDR_LEN + sizeof(rte_ipv4_hdr));
		break;
	}
	return true;
}

const char *ipv4_to_str(rte_be32_t ip, char *buf, size_t len)
{
	in_addr a;
	a.s_addr = ip;
	if (inet_ntop(AF_INET, &a, buf, socklen_t(len)) == nullptr && len > 0)
		buf[0] = '\0';
	return buf;
}

bool ipv4_parse(const char *s, rte_be32_t *ip)
{
	in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return false;
	*ip = a.s_addr;
	return true;
}

} // namespace dwcp::drivers
