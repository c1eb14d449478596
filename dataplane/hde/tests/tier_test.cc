#include "dataplane/hde/tier.h"

#include <gtest/gtest.h>

namespace dwcp::hde {
namespace {

TEST(Tier, RttBands)
{
	EXPECT_EQ(tier_for_rtt(200), Tier::none);
	EXPECT_EQ(tier_for_rtt(5000), Tier::igzip);
	EXPECT_EQ(tier_for_rtt(30000), Tier::zstd3);
	EXPECT_EQ(tier_for_rtt(150000), Tier::zstd9);
}

TEST(Tier, Parse)
{
	Tier t;
	EXPECT_TRUE(parse_tier("zstd9", t));
	EXPECT_EQ(t, Tier::zstd9);
	EXPECT_TRUE(parse_tier("1", t));
	EXPECT_EQ(t, Tier::igzip);
	EXPECT_FALSE(parse_tier("zstd7", t));
	EXPECT_STREQ(tier_name(Tier::none), "none");
}

TEST(Tier, PolicyStepsDownWhenCpuBoundAndBackUp)
{
	TierPolicy p;
	p.observe_rtt(150000);
	EXPECT_EQ(p.tier(), Tier::zstd9);
	// 10 Gbit/s link, ratio 3: needs 3.75 GB/s of input; compressors do 1 GB/s.
	p.observe_throughput(1e9, 1.25e9, 3.0);
	EXPECT_EQ(p.tier(), Tier::zstd3);
	p.observe_throughput(1e9, 1.25e9, 3.0);
	EXPECT_EQ(p.tier(), Tier::igzip);
	// RTT samples do not undo a CPU-driven step down.
	p.observe_rtt(150000);
	EXPECT_EQ(p.tier(), Tier::igzip);
	// Plenty of headroom: one step up per kRaiseAfter samples, never above the RTT tier.
	for (uint32_t i = 0; i < TierPolicy::kRaiseAfter - 1; i++)
		p.observe_throughput(10e9, 1e8, 3.0);
	EXPECT_EQ(p.tier(), Tier::igzip);
	p.observe_throughput(10e9, 1e8, 3.0);
	EXPECT_EQ(p.tier(), Tier::zstd3);
	for (uint32_t i = 0; i < 4 * TierPolicy::kRaiseAfter; i++)
		p.observe_throughput(10e9, 1e8, 3.0);
	EXPECT_EQ(p.tier(), Tier::zstd9);
	// A shorter path lowers the tier at once.
	p.observe_rtt(500);
	EXPECT_EQ(p.tier(), Tier::none);
}

} // namespace
} // namespace dwcp::hde
