// Classification of received frames and header prepend, on mbufs (EAL suite).
#include "drivers/net.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>

#include "drivers/tests/frames.h"

using namespace dwcp::drivers;
using namespace dwcp::drivers::test;

namespace {

class Net : public testing::Test {
protected:
	static void SetUpTestSuite()
	{
		pool_ = rte_pktmbuf_pool_create("net_test", 1023, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
		ASSERT_NE(pool_, nullptr);
	}
	static void TearDownTestSuite() { rte_mempool_free(pool_); }
	void SetUp() override
	{
		iface_.mac = mac(1);
		iface_.ip = ipv4(10, 99, 0, 11);
		iface_.udp_port = RTE_BE16(kDefaultUdpPort);
	}
	void TearDown() override
	{
		for (auto *m : mbufs_)
			rte_pktmbuf_free(m);
		EXPECT_EQ(rte_mempool_in_use_count(pool_), 0u);
	}

	rte_mbuf *mbuf(const std::vector<uint8_t> &frame)
	{
		rte_mbuf *m = rte_pktmbuf_alloc(pool_);
		EXPECT_NE(m, nullptr);
		memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
		mbufs_.push_back(m);
		return m;
	}
	RxClass classify(const std::vector<uint8_t> &frame, UdpView *v = nullptr)
	{
		UdpView local;
		return rx_classify(mbuf(frame), iface_, v != nullptr ? v : &local);
	}

	static rte_mempool *pool_;
	Iface iface_;
	std::vector<rte_mbuf *> mbufs_;
};
rte_mempool *Net::pool_;

} // namespace

TEST_F(Net, GoodUdpGivesTheView)
{
	UdpFrame f;
	f.payload = {1, 2, 3, 4, 5};
	UdpView v;
	ASSERT_EQ(classify(f.build(), &v), RxClass::udp);
	EXPECT_EQ(v.len, 5);
	EXPECT_EQ(v.payload_off, 42);
	EXPECT_EQ(v.payload[0], 1);
	EXPECT_EQ(v.payload[4], 5);
	EXPECT_EQ(v.src_ip, ipv4(10, 99, 0, 12));
	EXPECT_EQ(rte_be_to_cpu_16(v.src_port), 40000);
	EXPECT_TRUE(rte_is_same_ether_addr(&v.src_mac, &f.src_mac));
}

TEST_F(Net, ShortPaddedFrameUsesTheIpLength)
{
	UdpFrame f;
	f.payload = {9, 8};
	f.pad_to = 60; // 44 bytes of frame padded to the Ethernet minimum
	UdpView v;
	ASSERT_EQ(classify(f.build(), &v), RxClass::udp);
	EXPECT_EQ(v.len, 2);
	f.payload.clear();
	ASSERT_EQ(classify(f.build(), &v), RxClass::udp);
	EXPECT_EQ(v.len, 0);
}

TEST_F(Net, IpOptionsAreSkipped)
{
	UdpFrame f;
	f.ihl_words = 6;
	UdpView v;
	ASSERT_EQ(classify(f.build(), &v), RxClass::udp);
	EXPECT_EQ(v.payload_off, 46);
	EXPECT_EQ(v.len, 100);
}

TEST_F(Net, BroadcastMacIsAcceptedOtherMacsAreNot)
{
	UdpFrame f;
	f.dst_mac = rte_ether_addr{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
	EXPECT_EQ(classify(f.build()), RxClass::udp);
	f.dst_mac = mac(3);
	EXPECT_EQ(classify(f.build()), RxClass::not_our_mac);
	f.dst_mac = rte_ether_addr{{0x01, 0x00, 0x5e, 0, 0, 1}};
	EXPECT_EQ(classify(f.build()), RxClass::not_our_mac);
}

TEST_F(Net, TruncatedAtEveryLayer)
{
	auto good = UdpFrame{}.build();
	for (size_t len : {size_t(0), size_t(13), size_t(14), size_t(33), size_t(41), good.size() - 1}) {
		std::vector<uint8_t> cut(good.begin(), good.begin() + len);
		EXPECT_EQ(classify(cut), RxClass::truncated) << "length " << len;
	}
	UdpFrame f;
	f.tot_len_delta = 1; // IP claims a byte the frame does not have
	EXPECT_EQ(classify(f.build()), RxClass::truncated);
	f = {};
	f.ihl_words = 15;
	f.payload.clear();
	auto opt = f.build();
	opt.resize(14 + 40); // options cut short
	EXPECT_EQ(classify(opt), RxClass::truncated);
}

TEST_F(Net, BadIpv4)
{
	UdpFrame f;
	f.bad_ip_cksum = true;
	EXPECT_EQ(classify(f.build()), RxClass::bad_ipv4);
	auto v6 = UdpFrame{}.build();
	v6[14] = 0x65; // version 6 in an IPv4 EtherType
	EXPECT_EQ(classify(v6), RxClass::bad_ipv4);
	auto small_ihl = UdpFrame{}.build();
	small_ihl[14] = 0x44;
	EXPECT_EQ(classify(small_ihl), RxClass::bad_ipv4);
	f = {};
	f.tot_len_delta = -(20 + 8 + 100) + 10; // total length shorter than the header
	EXPECT_EQ(classify(f.build()), RxClass::bad_ipv4);
}

TEST_F(Net, NicChecksumFlagsAreTrusted)
{
	UdpFrame f;
	f.bad_ip_cksum = true;
	rte_mbuf *m = mbuf(f.build());
	UdpView v;
	m->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_GOOD;
	EXPECT_EQ(rx_classify(m, iface_, &v), RxClass::udp);
	rte_mbuf *good = mbuf(UdpFrame{}.build());
	good->ol_flags = RTE_MBUF_F_RX_IP_CKSUM_BAD;
	EXPECT_EQ(rx_classify(good, iface_, &v), RxClass::bad_ipv4);
	f = {};
	f.udp_cksum = true;
	rte_mbuf *l4 = mbuf(f.build());
	l4->ol_flags = RTE_MBUF_F_RX_L4_CKSUM_BAD;
	EXPECT_EQ(rx_classify(l4, iface_, &v), RxClass::bad_udp_cksum);
}

TEST_F(Net, SoftwareUdpChecksumWhenAsked)
{
	UdpFrame f;
	f.udp_cksum = true;
	auto frame = f.build();
	EXPECT_EQ(classify(frame), RxClass::udp);
	frame.back() ^= 0xff;
	EXPECT_EQ(classify(frame), RxClass::udp); // not verified by default
	iface_.verify_udp_cksum = true;
	EXPECT_EQ(classify(frame), RxClass::bad_udp_cksum);
	f.udp_cksum = false; // checksum 0 means none, even when verifying
	EXPECT_EQ(classify(f.build()), RxClass::udp);
}

TEST_F(Net, Fragments)
{
	UdpFrame f;
	f.frag = RTE_IPV4_HDR_MF_FLAG;
	EXPECT_EQ(classify(f.build()), RxClass::ip_fragment);
	f.frag = 185; // a later fragment
	EXPECT_EQ(classify(f.build()), RxClass::ip_fragment);
}

TEST_F(Net, NotIpv4NotUdpNotForUs)
{
	UdpFrame f;
	f.ether_type = RTE_ETHER_TYPE_IPV6;
	EXPECT_EQ(classify(f.build()), RxClass::not_ipv4);
	f.ether_type = RTE_ETHER_TYPE_VLAN;
	EXPECT_EQ(classify(f.build()), RxClass::not_ipv4);
	f = {};
	f.proto = IPPROTO_ICMP;
	EXPECT_EQ(classify(f.build()), RxClass::not_udp);
	f = {};
	f.dst_ip = ipv4(10, 99, 0, 13);
	EXPECT_EQ(classify(f.build()), RxClass::not_for_us);
}

TEST_F(Net, UdpLengthMustMatchAndPortMustBeOurs)
{
	UdpFrame f;
	f.udp_len_delta = -1;
	EXPECT_EQ(classify(f.build()), RxClass::bad_udp);
	f.udp_len_delta = 1;
	EXPECT_EQ(classify(f.build()), RxClass::bad_udp);
	f = {};
	f.payload.clear();
	f.udp_len_delta = -8;
	EXPECT_EQ(classify(f.build()), RxClass::bad_udp);
	f = {};
	f.payload.clear();
	f.tot_len_delta = -4; // IP datagram too short for a UDP header
	EXPECT_EQ(classify(f.build()), RxClass::bad_udp);
	f = {};
	f.dst_port = 7471;
	EXPECT_EQ(classify(f.build()), RxClass::wrong_port);
}

TEST_F(Net, ArpIsRecognisedAndCheckedForShape)
{
	auto req = arp_frame(RTE_ARP_OP_REQUEST, mac(2), ipv4(10, 99, 0, 12), ipv4(10, 99, 0, 11));
	EXPECT_EQ(classify(req), RxClass::arp);
	EXPECT_EQ(classify(arp_frame(RTE_ARP_OP_REPLY, mac(2), ipv4(10, 99, 0, 12), ipv4(10, 99, 0, 11), mac(1))),
		  RxClass::arp);
	EXPECT_EQ(classify(arp_frame(RTE_ARP_OP_REQUEST, mac(2), 0, 0, mac(1), 41)), RxClass::truncated);
	auto bad = req;
	bad[14 + 4] = 8; // hardware address length
	EXPECT_EQ(classify(bad), RxClass::bad_arp);
	EXPECT_EQ(classify(arp_frame(RTE_ARP_OP_REVREQUEST, mac(2), 0, 0)), RxClass::bad_arp);
}

TEST_F(Net, MultiSegmentIsRefused)
{
	rte_mbuf *head = rte_pktmbuf_alloc(pool_);
	rte_mbuf *tail = rte_pktmbuf_alloc(pool_);
	auto f = UdpFrame{}.build();
	memcpy(rte_pktmbuf_append(head, 40), f.data(), 40);
	memcpy(rte_pktmbuf_append(tail, uint16_t(f.size() - 40)), f.data() + 40, f.size() - 40);
	ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
	mbufs_.push_back(head);
	UdpView v;
	EXPECT_EQ(rx_classify(head, iface_, &v), RxClass::multi_seg);
}

TEST_F(Net, EveryClassHasACounterName)
{
	EXPECT_STREQ(rx_class_name(RxClass::udp), "rx.udp");
	EXPECT_STREQ(rx_class_name(RxClass::truncated), "rx.truncated");
	EXPECT_STREQ(rx_class_name(RxClass::bad_arp), "rx.bad_arp");
	for (size_t c = 0; c < size_t(RxClass::count_); c++)
		EXPECT_EQ(std::string(rx_class_name(RxClass(c))).rfind("rx.", 0), 0u);
	EXPECT_FALSE(rx_is_drop(RxClass::udp));
	EXPECT_FALSE(rx_is_drop(RxClass::arp));
	EXPECT_TRUE(rx_is_drop(RxClass::multi_seg));
}

TEST_F(Net, BurstCountsEveryVerdict)
{
	rte_mbuf *pkts[6];
	UdpFrame wrong;
	wrong.dst_port = 1;
	pkts[0] = mbuf(UdpFrame{}.build());
	pkts[1] = mbuf(wrong.build());
	pkts[2] = mbuf(UdpFrame{}.build());
	pkts[3] = mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(2), ipv4(10, 99, 0, 12), ipv4(10, 99, 0, 11)));
	pkts[4] = mbuf({1, 2, 3});
	pkts[5] = mbuf(UdpFrame{}.build());
	RxClass cls[6];
	UdpView views[6];
	RxCounters c;
	EXPECT_EQ(rx_classify_burst(pkts, 6, iface_, cls, views, &c), 3);
	EXPECT_EQ(cls[1], RxClass::wrong_port);
	EXPECT_EQ(cls[3], RxClass::arp);
	EXPECT_EQ(cls[4], RxClass::truncated);
	EXPECT_EQ(views[5].len, 100);
	EXPECT_EQ(c[RxClass::udp], 3u);
	EXPECT_EQ(c[RxClass::wrong_port], 1u);
	EXPECT_EQ(c[RxClass::arp], 1u);
	EXPECT_EQ(c[RxClass::truncated], 1u);
}

namespace {

struct EncapCase {
	TxOffloads offl;
	UdpCksum udp;
};

} // namespace

TEST_F(Net, EncapRoundTripsThroughClassify)
{
	// The peer (10.99.0.12) sends to us: build its template and classify the result.
	Iface peer;
	peer.mac = mac(2);
	peer.ip = ipv4(10, 99, 0, 12);
	for (auto c : {EncapCase{{}, UdpCksum::none}, EncapCase{{}, UdpCksum::software},
		       EncapCase{{true, true, false}, UdpCksum::offload}}) {
		TxTemplate t;
		tx_template_init(&t, peer, iface_.mac, iface_.ip, iface_.udp_port, c.offl, c.udp);
		for (uint16_t len : {0, 1, 100, 1400}) {
			rte_mbuf *m = rte_pktmbuf_alloc(pool_);
			mbufs_.push_back(m);
			auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, len));
			for (uint16_t i = 0; i < len; i++)
				p[i] = uint8_t(i * 7);
			ASSERT_TRUE(tx_encap(m, t, 41000 + len, uint16_t(len * 3)));
			EXPECT_EQ(m->pkt_len, kEncapLen + len);
			EXPECT_EQ(m->l2_len, 14u);
			EXPECT_EQ(m->l3_len, 20u);
			auto *iph = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr *, 14);
			auto *udp = rte_pktmbuf_mtod_offset(m, rte_udp_hdr *, 34);
			EXPECT_EQ(rte_be_to_cpu_16(iph->packet_id), uint16_t(len * 3));
			EXPECT_TRUE(iph->fragment_offset & RTE_BE16(RTE_IPV4_HDR_DF_FLAG));
			if (c.offl.ip_cksum) {
				EXPECT_EQ(iph->hdr_checksum, 0);
				EXPECT_EQ(m->ol_flags & (RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM),
					  RTE_MBUF_F_TX_IPV4 | RTE_MBUF_F_TX_IP_CKSUM);
				// What the NIC would do, so classify can check the rest.
				iph->hdr_checksum = rte_ipv4_cksum(iph);
			} else {
				// The incremental checksum equals a full recomputation.
				uint16_t ck = iph->hdr_checksum;
				iph->hdr_checksum = 0;
				EXPECT_EQ(ck, rte_ipv4_cksum(iph)) << "payload " << len;
				iph->hdr_checksum = ck;
				EXPECT_EQ(m->ol_flags & RTE_MBUF_F_TX_IP_CKSUM, 0u);
			}
			if (c.udp == UdpCksum::offload) {
				EXPECT_TRUE(m->ol_flags & RTE_MBUF_F_TX_UDP_CKSUM);
				EXPECT_EQ(udp->dgram_cksum, rte_ipv4_phdr_cksum(iph, 0));
				udp->dgram_cksum = 0;
				udp->dgram_cksum = rte_ipv4_udptcp_cksum(iph, udp);
			}
			if (c.udp == UdpCksum::none) {
				EXPECT_EQ(udp->dgram_cksum, 0);
			}
			Iface strict = iface_;
			strict.verify_udp_cksum = true;
			UdpView v;
			ASSERT_EQ(rx_classify(m, strict, &v), RxClass::udp) << "payload " << len;
			EXPECT_EQ(v.len, len);
			EXPECT_EQ(v.src_ip, peer.ip);
			EXPECT_EQ(rte_be_to_cpu_16(v.src_port), 41000 + len);
			EXPECT_TRUE(rte_is_same_ether_addr(&v.src_mac, &peer.mac));
			for (uint16_t i = 0; i < len; i++)
				ASSERT_EQ(v.payload[i], uint8_t(i * 7));
		}
	}
}

TEST_F(Net, EncapOffloadFallsBackWhenThePortCannot)
{
	TxTemplate t;
	tx_template_init(&t, iface_, mac(2), ipv4(10, 99, 0, 12), RTE_BE16(7470), TxOffloads{}, UdpCksum::offload);
	EXPECT_EQ(t.udp_cksum, UdpCksum::none);
	EXPECT_EQ(t.ol_flags, 0u);
}

TEST_F(Net, EncapRefusesWithoutHeadroom)
{
	TxTemplate t;
	tx_template_init(&t, iface_, mac(2), ipv4(10, 99, 0, 12), RTE_BE16(7470), TxOffloads{});
	rte_mbuf *m = rte_pktmbuf_alloc(pool_);
	mbufs_.push_back(m);
	rte_pktmbuf_prepend(m, rte_pktmbuf_headroom(m) - 10);
	uint32_t len = m->pkt_len;
	EXPECT_FALSE(tx_encap(m, t, 1, 1));
	EXPECT_EQ(m->pkt_len, len);
}

TEST_F(Net, EncapChainedMbufWithSoftwareChecksum)
{
	Iface peer;
	peer.mac = mac(2);
	peer.ip = ipv4(10, 99, 0, 12);
	TxTemplate t;
	tx_template_init(&t, peer, iface_.mac, iface_.ip, iface_.udp_port, TxOffloads{}, UdpCksum::software);
	rte_mbuf *head = rte_pktmbuf_alloc(pool_);
	rte_mbuf *tail = rte_pktmbuf_alloc(pool_);
	memset(rte_pktmbuf_append(head, 300), 0x11, 300);
	memset(rte_pktmbuf_append(tail, 301), 0x22, 301);
	ASSERT_EQ(rte_pktmbuf_chain(head, tail), 0);
	mbufs_.push_back(head);
	ASSERT_TRUE(tx_encap(head, t, 5000, 1));
	EXPECT_EQ(head->pkt_len, kEncapLen + 601);
	// Linearise into one mbuf and verify there.
	std::vector<uint8_t> flat(head->pkt_len);
	rte_pktmbuf_read(head, 0, head->pkt_len, flat.data());
	Iface strict = iface_;
	strict.verify_udp_cksum = true;
	UdpView v;
	rte_mbuf *m = mbuf(flat);
	EXPECT_EQ(rx_classify(m, strict, &v), RxClass::udp);
	EXPECT_EQ(v.len, 601);
}

TEST_F(Net, Ipv4Text)
{
	rte_be32_t a;
	ASSERT_TRUE(ipv4_parse("10.99.0.12", &a));
	EXPECT_EQ(a, ipv4(10, 99, 0, 12));
	char buf[16];
	EXPECT_STREQ(ipv4_to_str(a, buf, sizeof(buf)), "10.99.0.12");
	EXPECT_FALSE(ipv4_parse("10.99.0", &a));
	EXPECT_FALSE(ipv4_parse("10.99.0.256", &a));
}
