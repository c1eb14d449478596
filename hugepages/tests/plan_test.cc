#include "hugepages/plan.h"

#include <gtest/gtest.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

using namespace dwcp::hugepages;

TEST(Plan, DefaultsFollowTheFormula)
{
	PoolDemand d;
	PoolPlan p;
	ASSERT_EQ(plan_pools(d, &p), "");
	EXPECT_EQ(p.cache_size, 256u);
	// 1 * (1024 + 1024) + 1 * 2 * 32 + 0 + 2 * 384 = 2880, rounded up to a multiple of 256.
	EXPECT_EQ(p.nb_mbufs, 3072u);
	EXPECT_EQ(p.nb_mbufs % p.cache_size, 0u);
	// MTU 1500: 14 + 4 + 1500 + 4 = 1522 rounds to 2048 of buffer after the headroom.
	EXPECT_EQ(p.data_room, RTE_MBUF_DEFAULT_BUF_SIZE);
	EXPECT_GE(p.mbuf_obj_bytes, sizeof(rte_mbuf) + p.data_room);
	EXPECT_GE(p.pool_bytes, uint64_t(p.nb_mbufs) * p.mbuf_obj_bytes);
	EXPECT_EQ(p.arena_bytes, 0u);
	EXPECT_EQ(p.total_bytes % kHugepageBytes, 0u);
	EXPECT_EQ(p.eal_mem_mib, p.total_bytes / 1048576 + kEalOverheadMib);
	EXPECT_EQ(p.nb_hugepages_2m, (p.eal_mem_mib + 1) / 2);
}

TEST(Plan, InflightAndQueuesAddUp)
{
	PoolDemand d;
	d.nb_queues = 2;
	d.nb_rxd = 512;
	d.nb_txd = 2048;
	d.burst = 16;
	d.inflight_pkts = 10000;
	d.nb_pool_users = 1;
	PoolPlan p;
	ASSERT_EQ(plan_pools(d, &p), "");
	EXPECT_EQ(p.cache_size, 128u);
	uint64_t raw = 2 * (512 + 2048) + 2 * 2 * 16 + 10000 + 1 * 192;
	EXPECT_GE(p.nb_mbufs, raw);
	EXPECT_LT(p.nb_mbufs, raw + p.cache_size);
}

TEST(Plan, CacheNeverExceedsDpdkMaximum)
{
	PoolDemand d;
	d.burst = 256;
	PoolPlan p;
	ASSERT_EQ(plan_pools(d, &p), "");
	EXPECT_EQ(p.cache_size, uint32_t(RTE_MEMPOOL_CACHE_MAX_SIZE));
}

TEST(Plan, JumboFramesGetBiggerMbufs)
{
	PoolDemand d;
	d.mtu = 9000;
	PoolPlan p;
	ASSERT_EQ(plan_pools(d, &p), "");
	EXPECT_EQ(p.data_room, RTE_PKTMBUF_HEADROOM + 9216);
	EXPECT_GE(p.data_room - RTE_PKTMBUF_HEADROOM, 14 + 9000);
}

TEST(Plan, ChunkArenaAndWorkersScaleTotal)
{
	PoolDemand d;
	d.nb_workers = 4;
	d.nb_chunk_bufs = 64;
	d.chunk_buf_size = 256 * 1024 + 100; // stride rounds to a cache line
	PoolPlan p;
	ASSERT_EQ(plan_pools(d, &p), "");
	EXPECT_EQ(p.chunk_buf_stride, 256u * 1024 + 128);
	EXPECT_GE(p.arena_bytes, 64ull * p.chunk_buf_stride);
	uint64_t per_worker = (p.pool_bytes + kHugepageBytes - 1) / kHugepageBytes * kHugepageBytes +
			      (p.arena_bytes + kHugepageBytes - 1) / kHugepageBytes * kHugepageBytes;
	EXPECT_EQ(p.total_bytes, 4 * per_worker);
	EXPECT_NE(plan_describe(p).find("4 workers"), std::string::npos);
}

TEST(Plan, RejectsNonsenseNamingTheField)
{
	PoolPlan p;
	PoolDemand d;
	d.nb_workers = 0;
	EXPECT_NE(plan_pools(d, &p).find("nb_workers"), std::string::npos);
	d = {};
	d.mtu = 20;
	EXPECT_NE(plan_pools(d, &p).find("mtu 20"), std::string::npos);
	d = {};
	d.nb_rxd = 0;
	EXPECT_NE(plan_pools(d, &p).find("nb_rxd 0"), std::string::npos);
	d = {};
	d.burst = 0;
	EXPECT_NE(plan_pools(d, &p).find("burst 0"), std::string::npos);
	d = {};
	d.inflight_pkts = 4000000000u;
	EXPECT_NE(plan_pools(d, &p).find("absurd"), std::string::npos);
}
