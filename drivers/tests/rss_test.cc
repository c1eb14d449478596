// The RSS hash a peer computes (no EAL: rte_softrss is arithmetic).
#include "drivers/port.h"

#include <array>

#include <gtest/gtest.h>

#include "drivers/tests/frames.h"

using namespace dwcp::drivers;
using namespace dwcp::drivers::test;

TEST(Rss, KeyIsPeriodicSoEveryLengthIsTheSameKey)
{
	for (size_t i = 0; i < kRssKeyLen; i++)
		ASSERT_EQ(kRssKey[i], i % 2 == 0 ? 0x6d : 0x5a);
}

TEST(Rss, HashIsSymmetric)
{
	rte_be32_t a = ipv4(10, 99, 0, 11), b = ipv4(10, 99, 0, 12);
	for (uint16_t sp = 40000; sp < 40100; sp++)
		ASSERT_EQ(rss_hash(a, b, rte_cpu_to_be_16(sp), RTE_BE16(7470)),
			  rss_hash(b, a, RTE_BE16(7470), rte_cpu_to_be_16(sp)));
}

TEST(Rss, SourcePortsSpreadStreamsOverQueues)
{
	// 64 streams from consecutive source ports reach every one of 4 queues.
	rte_be32_t a = ipv4(10, 99, 0, 12), b = ipv4(10, 99, 0, 11);
	std::array<int, 4> per_queue{};
	for (uint16_t sp = 40000; sp < 40064; sp++)
		per_queue[rss_queue(rss_hash(a, b, rte_cpu_to_be_16(sp), RTE_BE16(7470)), 128, 4)]++;
	for (int n : per_queue)
		EXPECT_GT(n, 4);
}

TEST(Rss, QueueFromHash)
{
	EXPECT_EQ(rss_queue(7, 128, 4), 3);
	EXPECT_EQ(rss_queue(130, 128, 4), 2);  // RETA index 2
	EXPECT_EQ(rss_queue(129, 128, 3), 1);  // RETA index 1 -> queue 1
	EXPECT_EQ(rss_queue(12345, 128, 1), 0);
	EXPECT_EQ(rss_queue(5, 0, 2), 1);      // no RETA: hash modulo queues
}
