#pragma once
// Test frames written field by field (not with tx_encap, so the classifier is not
// checked against itself).
#include <cstring>
#include <vector>

#include <rte_arp.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_udp.h>

#include "drivers/net.h"

namespace dwcp::drivers::test {

inline rte_ether_addr mac(uint8_t last)
{
	return rte_ether_addr{{0x02, 0x00, 0x00, 0x00, 0x00, last}};
}
inline rte_be32_t ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d)
{
	return rte_cpu_to_be_32(uint32_t(a) << 24 | uint32_t(b) << 16 | uint32_t(c) << 8 | d);
}

struct UdpFrame {
	rte_ether_addr dst_mac = mac(1), src_mac = mac(2);
	rte_be32_t src_ip = ipv4(10, 99, 0, 12), dst_ip = ipv4(10, 99, 0, 11);
	uint16_t src_port = 40000, dst_port = kDefaultUdpPort;
	std::vector<uint8_t> payload = std::vector<uint8_t>(100, 0xab);
	uint16_t ether_type = RTE_ETHER_TYPE_IPV4;
	uint8_t proto = IPPROTO_UDP;
	uint16_t frag = RTE_IPV4_HDR_DF_FLAG;
	uint8_t ihl_words = 5;
	int tot_len_delta = 0;  // added to the correct IP total length
	int udp_len_delta = 0;  // added to the correct UDP length
	bool bad_ip_cksum = false;
	bool udp_cksum = false; // compute a real UDP checksum
	size_t pad_to = 0;      // Ethernet padding up to this frame length

	std::vector<uint8_t> build() const
	{
		size_t ihl = ihl_words * 4u;
		std::vector<uint8_t> f(14 + ihl + 8 + payload.size());
		auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
		eth->dst_addr = dst_mac;
		eth->src_addr = src_mac;
		eth->ether_type = rte_cpu_to_be_16(ether_type);
		auto *iph = reinterpret_cast<rte_ipv4_hdr *>(f.data() + 14);
		iph->version_ihl = uint8_t(0x40 | ihl_words);
		iph->total_length = rte_cpu_to_be_16(uint16_t(ihl + 8 + payload.size() + tot_len_delta));
		iph->packet_id = rte_cpu_to_be_16(7);
		iph->fragment_offset = rte_cpu_to_be_16(frag);
		iph->time_to_live = 64;
		iph->next_proto_id = proto;
		iph->src_addr = src_ip;
		iph->dst_addr = dst_ip;
		iph->hdr_checksum = 0;
		iph->hdr_checksum = rte_ipv4_cksum(iph);
		if (bad_ip_cksum)
			iph->hdr_checksum ^= 0x0101;
		auto *udp = reinterpret_cast<rte_udp_hdr *>(f.data() + 14 + ihl);
		udp->src_port = rte_cpu_to_be_16(src_port);
		udp->dst_port = rte_cpu_to_be_16(dst_port);
		udp->dgram_len = rte_cpu_to_be_16(uint16_t(8 + payload.size() + udp_len_delta));
		udp->dgram_cksum = 0;
		memcpy(f.data() + 14 + ihl + 8, payload.data(), payload.size());
		if (udp_cksum)
			udp->dgram_cksum = rte_ipv4_udptcp_cksum(iph, udp);
		if (f.size() < pad_to)
			f.resize(pad_to, 0);
		return f;
	}
};

inline std::vector<uint8_t> arp_frame(uint16_t op, rte_ether_addr sha, rte_be32_t sip, rte_be32_t tip,
				      rte_ether_addr eth_dst = rte_ether_addr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
				      size_t len = 60)
{
	std::vector<uint8_t> f(len, 0);
	auto *eth = reinterpret_cast<rte_ether_hdr *>(f.data());
	eth->dst_addr = eth_dst;
	eth->src_addr = sha;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
	if (len < 42)
		return f;
	auto *arp = reinterpret_cast<rte_arp_hdr *>(f.data() + 14);
	arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = 6;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	arp->arp_data.arp_sha = sha;
	arp->arp_data.arp_sip = sip;
	arp->arp_data.arp_tip = tip;
	return f;
}

} // namespace dwcp::drivers::test
