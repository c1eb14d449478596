// Opening, using and closing ports on virtual devices: net_null0 (offers RSS),
// net_ring0 (16 looped-back queue pairs, no RSS), and ring ports made here.
#include "drivers/port.h"

#include <gtest/gtest.h>
#include <rte_bus_vdev.h>
#include <rte_eth_ring.h>
#include <rte_mbuf.h>
#include <rte_ring.h>

#include "drivers/tests/frames.h"
#include "hugepages/plan.h"
#include "hugepages/pool.h"

using namespace dwcp::drivers;
using namespace dwcp::drivers::test;
namespace hp = dwcp::hugepages;

namespace {

class Port : public testing::Test {
protected:
	static void SetUpTestSuite()
	{
		hp::PoolDemand d;
		d.nb_queues = 4;
		d.nb_rxd = d.nb_txd = 256;
		ASSERT_EQ(hp::plan_pools(d, &plan_), "");
		unsigned lcores[] = {0, 0, 0, 0};
		ASSERT_EQ(hp::pools_create(plan_, lcores, "port_q", &pools_), "");
		small_ = rte_pktmbuf_pool_create("port_small", 255, 0, 0, RTE_PKTMBUF_HEADROOM + 1000, 0);
		ASSERT_NE(small_, nullptr);
	}
	static void TearDownTestSuite()
	{
		hp::pools_free(&pools_);
		rte_mempool_free(small_);
	}
	PortConfig config(const char *name, uint16_t nb_queues)
	{
		PortConfig c;
		c.name = name;
		c.nb_queues = nb_queues;
		c.nb_rxd = c.nb_txd = 256;
		c.rx_pools.assign(pools_.begin(), pools_.begin() + nb_queues);
		return c;
	}

	static hp::PoolPlan plan_;
	static std::vector<rte_mempool *> pools_;
	static rte_mempool *small_;
};
hp::PoolPlan Port::plan_;
std::vector<rte_mempool *> Port::pools_;
rte_mempool *Port::small_;

} // namespace

TEST_F(Port, NullWithRssOverFourQueues)
{
	PortInfo info;
	ASSERT_EQ(port_open(config("net_null0", 4), &info), "");
	EXPECT_EQ(info.name, "net_null0");
	EXPECT_EQ(info.driver, "net_null");
	EXPECT_EQ(info.nb_queues, 4);
	EXPECT_NE(info.rss_hf & RTE_ETH_RSS_NONFRAG_IPV4_UDP, 0u);
	EXPECT_GT(info.reta_size, 0);
	EXPECT_EQ(info.mtu, 1500);
	EXPECT_EQ(info.socket_id, 0);
	EXPECT_NE(info.label().find("net_null0"), std::string::npos);
	// Programmed RETA: entry i -> queue i % 4.
	std::vector<rte_eth_rss_reta_entry64> reta(info.reta_size / RTE_ETH_RETA_GROUP_SIZE + 1);
	for (auto &r : reta)
		r.mask = ~0ull;
	ASSERT_EQ(rte_eth_dev_rss_reta_query(info.port_id, reta.data(), info.reta_size), 0);
	for (uint16_t i = 0; i < info.reta_size; i++)
		ASSERT_EQ(reta[i / 64].reta[i % 64], i % 4);
	rte_eth_stats st;
	EXPECT_EQ(port_stats(info.port_id, &st), "");
	rte_eth_link link;
	std::string text;
	EXPECT_EQ(port_link(info.port_id, &link, &text), "");
	EXPECT_FALSE(text.empty());
	std::vector<std::pair<std::string, uint64_t>> all;
	ASSERT_EQ(port_xstats_all(info.port_id, &all), "");
	ASSERT_FALSE(all.empty());
	PortXstats xs;
	std::vector<std::string> names = {"rx_good_packets", "tx_good_packets"};
	ASSERT_EQ(xs.init(info.port_id, names), "");
	uint64_t values[2];
	EXPECT_EQ(xs.read(values), "");
	EXPECT_EQ(xs.init(info.port_id, std::vector<std::string>{"no_such_stat"}),
		  "port " + std::to_string(info.port_id) + " has no xstat 'no_such_stat'");
	EXPECT_EQ(port_stop(info.port_id), "");
	// A stopped port opens again with another shape.
	ASSERT_EQ(port_open(config("net_null0", 1), &info), "");
	EXPECT_EQ(info.rss_hf, 0u);
	EXPECT_EQ(port_stop(info.port_id), "");
}

TEST_F(Port, RingRefusesMoreQueuesThanOneWithoutRss)
{
	PortInfo info;
	auto err = port_open(config("net_ring0", 2), &info);
	EXPECT_NE(err.find("(net_ring0, net_ring)"), std::string::npos) << err;
	EXPECT_NE(err.find("2 queues need RSS on IPv4/UDP"), std::string::npos) << err;
	// Accepted when the caller says the device spreads packets itself.
	PortConfig c = config("net_ring0", 2);
	c.require_rss = false;
	ASSERT_EQ(port_open(c, &info), "");
	EXPECT_EQ(info.rss_hf, 0u);
	EXPECT_EQ(port_stop(info.port_id), "");
}

TEST_F(Port, TooManyQueuesNamesTheLimit)
{
	PortConfig c = config("net_ring0", 1);
	c.nb_queues = 17;
	c.rx_pools.assign(17, pools_[0]);
	c.require_rss = false;
	PortInfo info;
	auto err = port_validate(c, &info);
	EXPECT_NE(err.find("17 queues requested but the device has at most 16 RX and 16 TX queues"), std::string::npos)
		<< err;
}

TEST_F(Port, ConfigMistakesAreNamed)
{
	PortInfo info;
	PortConfig c = config("net_null0", 2);
	c.rx_pools.pop_back();
	EXPECT_NE(port_validate(c, &info).find("2 queues but 1 RX pools"), std::string::npos);
	c = config("net_null0", 1);
	c.rx_pools[0] = small_;
	auto err = port_validate(c, &info);
	EXPECT_NE(err.find("queue 0: pool 'port_small' holds 1000-byte frames but MTU 1500 needs 1514"),
		  std::string::npos)
		<< err;
	c = config("net_null0", 1);
	c.mtu = 40;
	EXPECT_NE(port_validate(c, &info).find("MTU 40 is outside"), std::string::npos);
	c = config("net_null0", 1);
	c.nb_queues = 0;
	c.rx_pools.clear();
	EXPECT_NE(port_validate(c, &info).find("0 queues requested"), std::string::npos);
}

TEST_F(Port, NonexistentPortListsTheOnesThereAre)
{
	PortInfo info;
	auto err = port_open(config("0000:01:00.0", 1), &info);
	EXPECT_EQ(err.rfind("port '0000:01:00.0' does not exist (ports: ", 0), 0u) << err;
	EXPECT_NE(err.find("net_ring0"), std::string::npos) << err;
	EXPECT_NE(err.find("net_null0"), std::string::npos) << err;
	// No name with several ports is ambiguous.
	err = port_validate(config("", 1), &info);
	EXPECT_NE(err.find("port name not given and there are"), std::string::npos) << err;
	EXPECT_NE(port_close(RTE_MAX_ETHPORTS - 1).find("does not exist"), std::string::npos);
}

TEST_F(Port, RingLoopbackCarriesAnEncapsulatedPacket)
{
	PortInfo info;
	ASSERT_EQ(port_open(config("net_ring0", 1), &info), "");
	Iface us;
	us.mac = info.mac;
	us.ip = ipv4(10, 99, 0, 11);
	// The ring loops our TX back to our RX: send to ourselves.
	TxTemplate t;
	tx_template_init(&t, us, us.mac, us.ip, us.udp_port, info.tx);
	rte_mbuf *pkts[4];
	for (int i = 0; i < 4; i++) {
		pkts[i] = rte_pktmbuf_alloc(pools_[0]);
		ASSERT_NE(pkts[i], nullptr);
		memset(rte_pktmbuf_append(pkts[i], 1200), i, 1200);
		ASSERT_TRUE(tx_encap(pkts[i], t, uint16_t(50000 + i), uint16_t(i)));
	}
	ASSERT_EQ(rte_eth_tx_burst(info.port_id, 0, pkts, 4), 4);
	rte_mbuf *rx[32];
	uint16_t n = rte_eth_rx_burst(info.port_id, 0, rx, 32);
	ASSERT_EQ(n, 4);
	RxClass cls[32];
	UdpView views[32];
	RxCounters counters;
	EXPECT_EQ(rx_classify_burst(rx, n, us, cls, views, &counters), 4);
	for (int i = 0; i < 4; i++) {
		EXPECT_EQ(views[i].len, 1200);
		EXPECT_EQ(rte_be_to_cpu_16(views[i].src_port), 50000 + i);
		EXPECT_EQ(views[i].payload[0], i);
	}
	rte_pktmbuf_free_bulk(rx, n);
	EXPECT_EQ(port_stop(info.port_id), "");
}

TEST_F(Port, OpenCloseAHotpluggedDevice)
{
	ASSERT_EQ(rte_vdev_init("net_null7", nullptr), 0);
	PortInfo info;
	PortConfig c = config("net_null7", 2);
	ASSERT_EQ(port_open(c, &info), "");
	uint16_t id = info.port_id;
	EXPECT_EQ(port_close(id), "");
	EXPECT_FALSE(rte_eth_dev_is_valid_port(id));
	rte_vdev_uninit("net_null7");
	EXPECT_NE(port_open(c, &info).find("'net_null7' does not exist"), std::string::npos);
}

TEST_F(Port, RingPortMadeAtRuntimeWithTwoQueues)
{
	// Two queue pairs over two rings: TX queue q loops back to RX queue q.
	rte_ring *r[2] = {rte_ring_create("port_rr0", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ),
			  rte_ring_create("port_rr1", 1024, 0, RING_F_SP_ENQ | RING_F_SC_DEQ)};
	ASSERT_NE(r[0], nullptr);
	ASSERT_NE(r[1], nullptr);
	int id = rte_eth_from_rings("priv", r, 2, r, 2, 0); // named net_ring_priv
	ASSERT_GE(id, 0);
	PortConfig c = config("net_ring_priv", 2);
	c.require_rss = false;
	PortInfo info;
	ASSERT_EQ(port_open(c, &info), "");
	EXPECT_EQ(info.port_id, id);
	EXPECT_EQ(info.nb_queues, 2);
	EXPECT_EQ(port_close(info.port_id), "");
	rte_ring_free(r[0]);
	rte_ring_free(r[1]);
}

TEST(Rss, PeerPredictsTheQueue)
{
	// Symmetric: a reply hashes like the request.
	rte_be32_t a = ipv4(10, 99, 0, 11), b = ipv4(10, 99, 0, 12);
	EXPECT_EQ(rss_hash(a, b, RTE_BE16(40000), RTE_BE16(7470)), rss_hash(b, a, RTE_BE16(7470), RTE_BE16(40000)));
	EXPECT_EQ(rss_queue(7, 128, 4), 3);
	EXPECT_EQ(rss_queue(130, 128, 4), 2);
	EXPECT_EQ(rss_queue(12345, 128, 1), 0);
}
