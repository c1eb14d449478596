// The worker's hold of DATA that follows a hello (Worker::kHeldMax): a worker
// never keeps more than kHeldMax packets, and the mbufs of one pool held over all
// workers never exceed the kHeldMax reserve that pool was sized with, however the
// packets were spread over the queues (hand-off).  Every held mbuf goes back to its
// own pool.
#include <gtest/gtest.h>

#include <vector>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/worker.h"
#include "tests/eal_main.h"

namespace dwcp::dataplane {

struct WorkerTestAccess {
	static bool hold(Worker &w, rte_mbuf *m)
	{
		wire::Header h{};
		h.type = wire::PacketType::data;
		return w.hold(h, rte_pktmbuf_mtod(m, const uint8_t *), 0, m);
	}
	static size_t held(const Worker &w) { return w.held_.size(); }
	static uint32_t out(const Worker &w) { return w.held_out_.load(); }
	static void drop(Worker &w) { w.drop_held(); }
	static uint64_t dropped(const Worker &w) { return w.local_.rx_held_dropped; }
};

namespace {

constexpr unsigned kHeld = Worker::kHeldMax;
constexpr unsigned kPoolSize = 2 * kHeld + 255;

class WorkerHoldTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		static int run = 0;
		std::string tag = std::to_string(run++);
		events_ = rte_ring_create(("wt_ev" + tag).c_str(), 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
		ASSERT_NE(events_, nullptr);
		for (int i = 0; i < 3; i++) {
			pools_[i] = rte_pktmbuf_pool_create(("wt_pool" + tag + "_" + std::to_string(i)).c_str(), kPoolSize, 0, 0,
							    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
			ASSERT_NE(pools_[i], nullptr) << rte_strerror(rte_errno);
		}
		peers_ = {&w_[0], &w_[1]};
		for (uint16_t i = 0; i < 2; i++) {
			WorkerConfig c;
			c.lcore = rte_lcore_id();
			c.index = i;
			c.nb_workers = 2;
			c.pool = pools_[i];
			c.ring_size = 1024;
			ASSERT_EQ(w_[i].init(c, events_, &peers_), "");
		}
	}
	void TearDown() override
	{
		WorkerTestAccess::drop(w_[0]);
		WorkerTestAccess::drop(w_[1]);
		for (rte_mempool *p : pools_) {
			EXPECT_EQ(rte_mempool_avail_count(p), kPoolSize) << "an mbuf was not given back to " << p->name;
			rte_mempool_free(p);
		}
		rte_ring_free(events_);
	}
	// Holds n mbufs of pool on w; returns how many it took (the rest are freed).
	unsigned hold(Worker &w, rte_mempool *pool, unsigned n)
	{
		unsigned took = 0;
		for (unsigned i = 0; i < n; i++) {
			rte_mbuf *m = rte_pktmbuf_alloc(pool);
			EXPECT_NE(m, nullptr);
			if (!m)
				break;
			if (WorkerTestAccess::hold(w, m))
				took++;
			else
				rte_pktmbuf_free(m);
		}
		return took;
	}

	rte_ring *events_ = nullptr;
	rte_mempool *pools_[3] = {};
	Worker w_[2];
	std::vector<Worker *> peers_;
};

TEST_F(WorkerHoldTest, HandedOffPacketsCountAgainstTheirOwnPool)
{
	// Worker 1 got 1500 of worker 0's packets over the hand-off ring.
	EXPECT_EQ(hold(w_[1], pools_[0], 1500), 1500u);
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), 1500u);
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 0u);
	// Worker 0 may hold only what is left of its own pool's reserve.
	EXPECT_EQ(hold(w_[0], pools_[0], 1000), kHeld - 1500);
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), kHeld);
	// ... but worker 1's packets, handed to it, up to its own limit.
	EXPECT_EQ(hold(w_[0], pools_[1], kHeld), 1500u);
	EXPECT_EQ(WorkerTestAccess::held(w_[0]), size_t(kHeld));
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 1500u);
	EXPECT_EQ(hold(w_[0], pools_[1], 1), 0u) << "a worker holds at most kHeldMax";
	// Worker 1 is full of pool 0 but has room for its own pool's: 548 of them.
	EXPECT_EQ(hold(w_[1], pools_[1], kHeld), kHeld - 1500);
	EXPECT_EQ(rte_mempool_avail_count(pools_[0]), kPoolSize - kHeld);
	EXPECT_EQ(rte_mempool_avail_count(pools_[1]), kPoolSize - kHeld);

	// Dropping worker 1's gives pool 0 its share back, and the mbufs.
	WorkerTestAccess::drop(w_[1]);
	EXPECT_EQ(WorkerTestAccess::dropped(w_[1]), uint64_t(kHeld));
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), kHeld - 1500);
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 1500u);
	EXPECT_EQ(rte_mempool_avail_count(pools_[0]), kPoolSize - (kHeld - 1500));
	EXPECT_EQ(hold(w_[1], pools_[0], 100), 100u);
}

TEST_F(WorkerHoldTest, AnMbufOfNoWorkersPoolIsNotHeld)
{
	EXPECT_EQ(hold(w_[0], pools_[2], 10), 0u);
	EXPECT_EQ(WorkerTestAccess::held(w_[0]), 0u);
	EXPECT_EQ(rte_mempool_avail_count(pools_[2]), kPoolSize);
}

} // namespace
} // namespace dwcp::dataplane

int main(int argc, char **argv)
{
	return dwcp::test::run_eal_suite(argc, argv, "256", {});
}
