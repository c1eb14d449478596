// Chunk layout and receive-window sizing.
#include "dataplane/amst/chunks.h"

#include <gtest/gtest.h>

namespace dwcp::amst {
namespace {

TEST(Chunks, ChunkSizeIsHalfTheBdpInWholePacketsUpTo256KiB)
{
	// 100 ms at 1 Gbit/s: half a BDP is 6.25 MB, so the cap.
	EXPECT_EQ(chunk_size_for(100'000'000, 125'000'000, 1424), 262144u / 1424 * 1424);
	// 1 ms at 100 Mbit/s: 6.25 kB, under the 16-packet floor.
	EXPECT_EQ(chunk_size_for(1'000'000, 12'500'000, 1424), 16u * 1424);
	// 20 ms at 100 Mbit/s: 125 kB, in whole packets.
	EXPECT_EQ(chunk_size_for(20'000'000, 12'500'000, 1424), 125'000u / 1424 * 1424);
}

TEST(Chunks, WindowCoversEightRoundTripsOfTheLink)
{
	const uint32_t c = 262016;
	// 300 ms at 1 Gbit/s: 8 BDPs are 300 MB, 1145 chunks (512 was 3.6 round trips).
	EXPECT_EQ(window_chunks_for(300'000'000, 125'000'000, c), 300'000'000u / c + 1);
	// 100 ms at 1 Gbit/s: 8 BDPs are 100 MB, under the floor of 512 chunks.
	EXPECT_EQ(window_chunks_for(100'000'000, 125'000'000, c), 512u);
	// 500 ms at 10 Gbit/s: 5 GB of chunks (the gateway caps it by the memory it
	// has); 10 s at 10 Gbit/s reaches the cap of 65536.
	EXPECT_EQ(window_chunks_for(500'000'000, 1'250'000'000, c), 5'000'000'000u / c + 1);
	EXPECT_EQ(window_chunks_for(10'000'000'000, 1'250'000'000, c), 65536u);
	// Hostile or zero inputs stay in range.
	EXPECT_EQ(window_chunks_for(UINT64_MAX, UINT64_MAX, c), 65536u);
	EXPECT_EQ(window_chunks_for(0, 0, 0), 512u);
}

} // namespace
} // namespace dwcp::amst
