// ARP: replies, learning, resolution with retries, on a manual clock (1 tick = 1 ms).
#include "drivers/arp.h"

#include <gtest/gtest.h>
#include <rte_arp.h>
#include <rte_mbuf.h>

#include "drivers/tests/frames.h"

using namespace dwcp::drivers;
using namespace dwcp::drivers::test;

namespace {

constexpr uint64_t kHz = 1000; // ticks per second: now is in milliseconds

class Arp : public testing::Test {
protected:
	static void SetUpTestSuite()
	{
		pool_ = rte_pktmbuf_pool_create("arp_test", 255, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, 0);
		ASSERT_NE(pool_, nullptr);
	}
	static void TearDownTestSuite() { rte_mempool_free(pool_); }
	void SetUp() override
	{
		iface_.mac = mac(1);
		iface_.ip = ipv4(10, 99, 0, 11);
		table_.init(iface_, kHz);
	}
	void TearDown() override
	{
		for (auto *m : mbufs_)
			rte_pktmbuf_free(m);
	}
	rte_mbuf *mbuf(const std::vector<uint8_t> &frame)
	{
		rte_mbuf *m = rte_pktmbuf_alloc(pool_);
		memcpy(rte_pktmbuf_append(m, uint16_t(frame.size())), frame.data(), frame.size());
		mbufs_.push_back(m);
		UdpView v;
		EXPECT_EQ(rx_classify(m, iface_, &v), RxClass::arp);
		return m;
	}

	static rte_mempool *pool_;
	Iface iface_;
	ArpTable table_;
	std::vector<rte_mbuf *> mbufs_;
};
rte_mempool *Arp::pool_;

} // namespace

TEST_F(Arp, RequestForUsBecomesTheReply)
{
	rte_mbuf *m = mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(2), ipv4(10, 99, 0, 12), ipv4(10, 99, 0, 11)));
	ASSERT_EQ(table_.input(m, 0), ArpInput::reply);
	ASSERT_EQ(m->pkt_len, 60u);
	auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
	auto *arp = rte_pktmbuf_mtod_offset(m, rte_arp_hdr *, 14);
	rte_ether_addr peer = mac(2), us = mac(1);
	EXPECT_TRUE(rte_is_same_ether_addr(&eth->dst_addr, &peer));
	EXPECT_TRUE(rte_is_same_ether_addr(&eth->src_addr, &us));
	EXPECT_EQ(eth->ether_type, RTE_BE16(RTE_ETHER_TYPE_ARP));
	EXPECT_EQ(arp->arp_opcode, RTE_BE16(RTE_ARP_OP_REPLY));
	EXPECT_TRUE(rte_is_same_ether_addr(&arp->arp_data.arp_sha, &us));
	EXPECT_EQ(arp->arp_data.arp_sip, ipv4(10, 99, 0, 11));
	EXPECT_TRUE(rte_is_same_ether_addr(&arp->arp_data.arp_tha, &peer));
	EXPECT_EQ(arp->arp_data.arp_tip, ipv4(10, 99, 0, 12));
	// The requester was learned on the way.
	const rte_ether_addr *got = table_.lookup(ipv4(10, 99, 0, 12));
	ASSERT_NE(got, nullptr);
	EXPECT_TRUE(rte_is_same_ether_addr(got, &peer));
	EXPECT_EQ(table_.counter(ArpCounter::request_in), 1u);
	EXPECT_EQ(table_.counter(ArpCounter::reply_out), 1u);
	// Our reply, seen by the peer, is a well-formed ARP for it.
	Iface peer_if;
	peer_if.mac = peer;
	peer_if.ip = ipv4(10, 99, 0, 12);
	UdpView v;
	EXPECT_EQ(rx_classify(m, peer_if, &v), RxClass::arp);
}

TEST_F(Arp, RequestForAnotherIpIsNotAnsweredNorLearned)
{
	rte_mbuf *m = mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(2), ipv4(10, 99, 0, 12), ipv4(10, 99, 0, 50)));
	EXPECT_EQ(table_.input(m, 0), ArpInput::consumed);
	EXPECT_EQ(table_.lookup(ipv4(10, 99, 0, 12)), nullptr);
	EXPECT_EQ(table_.counter(ArpCounter::not_for_us), 1u);
}

TEST_F(Arp, ResolveRetriesWithBackoffThenGivesUp)
{
	rte_be32_t peer = ipv4(10, 99, 0, 12);
	rte_ether_addr m;
	uint64_t now = 0;
	EXPECT_EQ(table_.resolve(peer, now, &m), ArpResolve::request);
	EXPECT_EQ(table_.resolve(peer, now + 99, &m), ArpResolve::pending);
	// Default policy: retries after 100, 200, 400, 800, 1000 ms, then unreachable.
	std::vector<uint64_t> sent_at = {0};
	for (now = 1; now < 10000; now++) {
		ArpResolve r = table_.resolve(peer, now, &m);
		if (r == ArpResolve::request)
			sent_at.push_back(now);
		if (r == ArpResolve::unreachable)
			break;
		ASSERT_TRUE(r == ArpResolve::pending || r == ArpResolve::request);
	}
	EXPECT_EQ(sent_at, (std::vector<uint64_t>{0, 100, 300, 700, 1500, 2500}));
	EXPECT_EQ(now, 3500u);
	EXPECT_EQ(table_.tries(peer), 6u);
	EXPECT_EQ(table_.counter(ArpCounter::request_out), 6u);
	EXPECT_EQ(table_.counter(ArpCounter::unreachable), 1u);
	EXPECT_EQ(table_.resolve(peer, now + 1, &m), ArpResolve::unreachable);
	EXPECT_EQ(table_.unreachable_message(peer, "net_af_packet0"),
		  "peer 10.99.0.12 unreachable: no ARP reply after 6 requests over 3.5 s on port net_af_packet0");
	table_.forget(peer);
	EXPECT_EQ(table_.resolve(peer, now + 2, &m), ArpResolve::request);
}

TEST_F(Arp, ReplyResolvesAPendingPeer)
{
	rte_be32_t peer = ipv4(10, 99, 0, 12);
	rte_ether_addr got;
	ASSERT_EQ(table_.resolve(peer, 0, &got), ArpResolve::request);
	uint32_t gen = table_.generation();
	rte_mbuf *m = mbuf(arp_frame(RTE_ARP_OP_REPLY, mac(2), peer, iface_.ip, mac(1)));
	EXPECT_EQ(table_.input(m, 50), ArpInput::consumed);
	EXPECT_NE(table_.generation(), gen);
	ASSERT_EQ(table_.resolve(peer, 60, &got), ArpResolve::resolved);
	rte_ether_addr want = mac(2);
	EXPECT_TRUE(rte_is_same_ether_addr(&got, &want));
	EXPECT_EQ(table_.counter(ArpCounter::reply_in), 1u);
	EXPECT_EQ(table_.counter(ArpCounter::learned), 1u);
}

TEST_F(Arp, AgedEntryIsRefreshedWhileStillUsed)
{
	ArpPolicy p;
	p.reachable_ms = 1000;
	p.max_tries = 2;
	table_.init(iface_, kHz, p);
	rte_be32_t peer = ipv4(10, 99, 0, 12);
	table_.input(mbuf(arp_frame(RTE_ARP_OP_REPLY, mac(2), peer, iface_.ip, mac(1))), 0);
	rte_ether_addr got;
	EXPECT_EQ(table_.resolve(peer, 999, &got), ArpResolve::resolved);
	EXPECT_EQ(table_.resolve(peer, 1000, &got), ArpResolve::refresh);
	EXPECT_EQ(table_.resolve(peer, 1050, &got), ArpResolve::resolved); // refresh out, MAC still used
	EXPECT_EQ(table_.resolve(peer, 1100, &got), ArpResolve::refresh);
	EXPECT_EQ(table_.resolve(peer, 1300, &got), ArpResolve::unreachable); // two unanswered refreshes
	EXPECT_EQ(table_.lookup(peer), nullptr);
	// A later reply revives it.
	table_.input(mbuf(arp_frame(RTE_ARP_OP_REPLY, mac(3), peer, iface_.ip, mac(1))), 2000);
	EXPECT_EQ(table_.resolve(peer, 2001, &got), ArpResolve::resolved);
	rte_ether_addr want = mac(3);
	EXPECT_TRUE(rte_is_same_ether_addr(&got, &want));
}

TEST_F(Arp, GratuitousUpdatesKnownPeersOnly)
{
	rte_be32_t peer = ipv4(10, 99, 0, 12), other = ipv4(10, 99, 0, 13);
	table_.input(mbuf(arp_frame(RTE_ARP_OP_REPLY, mac(2), peer, iface_.ip, mac(1))), 0);
	uint32_t gen = table_.generation();
	table_.input(mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(4), peer, peer)), 10); // peer moved to MAC 4
	table_.input(mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(5), other, other)), 10);
	rte_ether_addr want = mac(4);
	ASSERT_NE(table_.lookup(peer), nullptr);
	EXPECT_TRUE(rte_is_same_ether_addr(table_.lookup(peer), &want));
	EXPECT_EQ(table_.lookup(other), nullptr);
	EXPECT_EQ(table_.generation(), gen + 1);
}

TEST_F(Arp, ConflictOnOurIpIsCountedNotLearned)
{
	rte_mbuf *m = mbuf(arp_frame(RTE_ARP_OP_REQUEST, mac(9), iface_.ip, iface_.ip));
	EXPECT_EQ(table_.input(m, 0), ArpInput::consumed);
	EXPECT_EQ(table_.counter(ArpCounter::conflict), 1u);
	EXPECT_EQ(table_.nb_used(), 0u);
}

TEST_F(Arp, FullTableEvictsTheOldestButNeverAPendingEntry)
{
	rte_ether_addr got;
	for (unsigned i = 0; i < kArpEntries; i++)
		table_.input(mbuf(arp_frame(RTE_ARP_OP_REPLY, mac(uint8_t(i + 2)), ipv4(10, 1, 0, uint8_t(i + 1)),
					    iface_.ip, mac(1))),
			     i);
	EXPECT_EQ(table_.nb_used(), kArpEntries);
	// A new peer takes the slot of 10.1.0.1, learned first.
	EXPECT_EQ(table_.resolve(ipv4(10, 2, 0, 1), 1000, &got), ArpResolve::request);
	EXPECT_EQ(table_.lookup(ipv4(10, 1, 0, 1)), nullptr);
	EXPECT_NE(table_.lookup(ipv4(10, 1, 0, 2)), nullptr);
	// With every slot resolving, there is no room.
	ArpTable t;
	t.init(iface_, kHz);
	for (unsigned i = 0; i < kArpEntries; i++)
		ASSERT_EQ(t.resolve(ipv4(10, 3, 0, uint8_t(i + 1)), 0, &got), ArpResolve::request);
	EXPECT_EQ(t.resolve(ipv4(10, 4, 0, 1), 0, &got), ArpResolve::table_full);
	EXPECT_EQ(t.counter(ArpCounter::table_full), 1u);
}

TEST_F(Arp, RequestAndGratuitousFrames)
{
	rte_mbuf *m = rte_pktmbuf_alloc(pool_);
	mbufs_.push_back(m);
	ASSERT_TRUE(arp_request(m, iface_, ipv4(10, 99, 0, 12)));
	EXPECT_EQ(m->pkt_len, 60u);
	// The peer sees a request for itself.
	Iface peer;
	peer.mac = mac(2);
	peer.ip = ipv4(10, 99, 0, 12);
	ArpTable pt;
	pt.init(peer, kHz);
	UdpView v;
	ASSERT_EQ(rx_classify(m, peer, &v), RxClass::arp);
	auto *eth = rte_pktmbuf_mtod(m, rte_ether_hdr *);
	EXPECT_TRUE(rte_is_broadcast_ether_addr(&eth->dst_addr));
	EXPECT_EQ(pt.input(m, 0), ArpInput::reply);
	rte_ether_addr us = mac(1);
	ASSERT_NE(pt.lookup(iface_.ip), nullptr);
	EXPECT_TRUE(rte_is_same_ether_addr(pt.lookup(iface_.ip), &us));
	// And our table learns from the reply it built.
	EXPECT_EQ(table_.input(m, 0), ArpInput::consumed);
	ASSERT_NE(table_.lookup(peer.ip), nullptr);

	rte_mbuf *g = rte_pktmbuf_alloc(pool_);
	mbufs_.push_back(g);
	ASSERT_TRUE(arp_gratuitous(g, iface_));
	auto *arp = rte_pktmbuf_mtod_offset(g, rte_arp_hdr *, 14);
	EXPECT_EQ(arp->arp_data.arp_sip, iface_.ip);
	EXPECT_EQ(arp->arp_data.arp_tip, iface_.ip);
	EXPECT_EQ(arp->arp_opcode, RTE_BE16(RTE_ARP_OP_REQUEST));
	EXPECT_EQ(pt.input(g, 5), ArpInput::consumed); // peers update, never answer
}

TEST_F(Arp, CounterNames)
{
	EXPECT_STREQ(arp_counter_name(ArpCounter::request_in), "arp.request_in");
	EXPECT_STREQ(arp_counter_name(ArpCounter::table_full), "arp.table_full");
}
