// Pools and chunk arenas under EAL --no-huge -m 64 (tests/eal_main.cc).
#include "hugepages/pool.h"

#include <set>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

using namespace dwcp::hugepages;

TEST(Pool, CreatedFromPlanOnTheWorkerSocket)
{
	PoolDemand d;
	d.nb_rxd = 256;
	d.nb_txd = 256;
	PoolPlan plan;
	ASSERT_EQ(plan_pools(d, &plan), "");
	unsigned lcores[] = {rte_get_main_lcore()};
	std::vector<rte_mempool *> pools;
	ASSERT_EQ(pools_create(plan, lcores, "pt_pool", &pools), "");
	ASSERT_EQ(pools.size(), 1u);
	rte_mempool *mp = pools[0];
	EXPECT_STREQ(mp->name, "pt_pool0");
	EXPECT_EQ(mp->size, plan.nb_mbufs);
	EXPECT_EQ(mp->cache_size, plan.cache_size);
	EXPECT_EQ(rte_pktmbuf_data_room_size(mp), plan.data_room);
	EXPECT_EQ(mp->socket_id, lcore_socket(lcores[0]));
	rte_mbuf *m = rte_pktmbuf_alloc(mp);
	ASSERT_NE(m, nullptr);
	EXPECT_EQ(rte_pktmbuf_headroom(m), RTE_PKTMBUF_HEADROOM);
	EXPECT_GE(rte_pktmbuf_tailroom(m), 14u + 1500u);
	rte_pktmbuf_free(m);
	pools_free(&pools);
	EXPECT_TRUE(pools.empty());
}

TEST(Pool, AbsurdPoolFailsWithOneLineThatSaysWhatToDo)
{
	PoolDemand d;
	d.inflight_pkts = 4000000; // ~9 GiB of mbufs under -m 64
	PoolPlan plan;
	ASSERT_EQ(plan_pools(d, &plan), "");
	rte_mempool *mp = nullptr;
	auto err = pool_create(plan, "pt_absurd", 0, &mp);
	EXPECT_EQ(mp, nullptr);
	RecordProperty("error", err);
	EXPECT_NE(err.find("cannot create mbuf pool 'pt_absurd'"), std::string::npos) << err;
	EXPECT_NE(err.find("MiB) on socket 0"), std::string::npos) << err;
	EXPECT_NE(err.find("--no-huge"), std::string::npos) << err;
	EXPECT_NE(err.find("larger -m"), std::string::npos) << err;
	EXPECT_EQ(err.find('\n'), std::string::npos);
	// The failed pool left nothing behind: the name is free again.
	EXPECT_EQ(rte_mempool_lookup("pt_absurd"), nullptr);
}

TEST(Pool, DuplicateNameIsNamed)
{
	PoolDemand d;
	d.nb_rxd = d.nb_txd = 64;
	PoolPlan plan;
	ASSERT_EQ(plan_pools(d, &plan), "");
	rte_mempool *a = nullptr, *b = nullptr;
	ASSERT_EQ(pool_create(plan, "pt_dup", 0, &a), "");
	auto err = pool_create(plan, "pt_dup", 0, &b);
	EXPECT_NE(err.find("'pt_dup'"), std::string::npos) << err;
	EXPECT_NE(err.find("exists"), std::string::npos) << err;
	rte_mempool_free(a);
}

TEST(Arena, GetPutIsAStack)
{
	ChunkArena a;
	ASSERT_EQ(a.init("pt_arena", 16, 256 * 1024 + 100, 0), "");
	EXPECT_EQ(a.nb_bufs(), 16u);
	EXPECT_EQ(a.stride(), 256u * 1024 + 128);
	EXPECT_EQ(a.nb_free(), 16u);
	std::set<uint8_t *> seen;
	std::vector<uint8_t *> bufs;
	for (int i = 0; i < 16; i++) {
		uint8_t *b = a.get();
		ASSERT_NE(b, nullptr);
		EXPECT_EQ(uintptr_t(b) % 64, 0u);
		EXPECT_TRUE(a.owns(b));
		EXPECT_EQ(a.buf(a.index(b)), b);
		b[0] = uint8_t(i), b[a.buf_size() - 1] = uint8_t(i); // whole buffer is writable
		EXPECT_TRUE(seen.insert(b).second);
		bufs.push_back(b);
	}
	EXPECT_EQ(bufs[0], a.buf(0)); // first out is first in memory
	EXPECT_EQ(a.get(), nullptr);
	EXPECT_FALSE(a.owns(bufs[0] + 1));
	a.put(bufs[5]);
	EXPECT_EQ(a.nb_free(), 1u);
	EXPECT_EQ(a.get(), bufs[5]); // last in, first out: the warmest buffer
	for (auto *b : bufs)
		a.put(b);
	EXPECT_EQ(a.nb_free(), 16u);
}

TEST(Arena, BuffersHandedBackFromAnotherThread)
{
	ChunkArena a;
	ASSERT_EQ(a.init("pt_arena_x", 64, 4096, 0), "");
	std::vector<uint8_t *> out;
	while (uint8_t *b = a.get())
		out.push_back(b);
	ASSERT_EQ(out.size(), 64u);
	std::thread t1([&] { for (size_t i = 0; i < 32; i++) a.put_remote(out[i]); });
	std::thread t2([&] { for (size_t i = 32; i < 64; i++) a.put_remote(out[i]); });
	t1.join();
	t2.join();
	EXPECT_EQ(a.nb_free(), 0u);
	// get() drains the return ring when the stack is empty.
	uint8_t *b = a.get();
	ASSERT_NE(b, nullptr);
	EXPECT_EQ(a.nb_free(), 63u);
	a.put(b);
	EXPECT_EQ(a.reclaim(), 0u);
	EXPECT_EQ(a.nb_free(), 64u);
}

TEST(Arena, TooBigFailsNamingArenaAndFix)
{
	ChunkArena a;
	auto err = a.init("pt_arena_big", 4096, 1 << 20, 0); // 4 GiB under -m 64
	RecordProperty("error", err);
	EXPECT_NE(err.find("chunk arena 'pt_arena_big'"), std::string::npos) << err;
	EXPECT_NE(err.find("4096.0 MiB"), std::string::npos) << err;
	EXPECT_NE(err.find("socket 0"), std::string::npos) << err;
	EXPECT_NE(err.find("-m"), std::string::npos) << err;
	EXPECT_EQ(a.nb_bufs(), 0u);
	// The arena is reusable after a failure.
	EXPECT_EQ(a.init("pt_arena_big", 4, 1024, 0), "");
	EXPECT_EQ(a.nb_free(), 4u);
}

TEST(Arena, BadArguments)
{
	ChunkArena a;
	EXPECT_NE(a.init("pt_zero", 0, 1024, 0).find("empty"), std::string::npos);
	EXPECT_NE(a.init("a_name_that_is_far_too_long_for_a_memzone", 4, 1024, 0).find("name longer"),
		  std::string::npos);
}
