#include "control/autotune.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>

using namespace dwcp::control;

TEST(Autotune, InitialRule)
{
	// min(256, max(16, mbps / (rtt_ms * 0.1)))
	EXPECT_EQ(initial_streams(1000, 100), 100);
	EXPECT_EQ(initial_streams(1000, 300), 33);
	EXPECT_EQ(initial_streams(100, 500), 16);   // 2 -> the floor of 16
	EXPECT_EQ(initial_streams(10000, 10), 256); // 10000 -> the cap of 256
	EXPECT_EQ(initial_streams(10000, 10, 1, 64), 64);
	EXPECT_EQ(initial_streams(1000, 0), 16);    // unknown RTT
}

namespace {

// Drives the tuner for `secs` of virtual time against a link whose delivery rate
// (bytes/s) depends on the stream count; samples every 100 ms.
uint16_t run(StreamTuner &t, const std::function<double(uint16_t)> &rate, double secs,
	     const std::function<bool(uint64_t)> &app_limited = {})
{
	uint64_t now = 0, bytes = 0, step = 100'000'000;
	for (; now < uint64_t(secs * 1e9); now += step) {
		bytes += uint64_t(rate(t.streams()) * 0.1);
		t.observe({.now_ns = now, .delivered_bytes = bytes, .srtt_ns = 100'000'000,
			   .app_limited = app_limited && app_limited(now)});
	}
	return t.settled_streams();
}

} // namespace

TEST(Autotune, ClimbsToTheKnee)
{
	// Delivery grows with streams until 40 (e.g. per-stream CUBIC under loss), then flat.
	StreamTuner t({.max_streams = 256}, 16, "start");
	auto rate = [](uint16_t n) { return std::min<double>(n, 40) * 2.5e6; };
	uint16_t n = run(t, rate, 120);
	EXPECT_GE(n, 36);
	EXPECT_LE(n, 60);
	EXPECT_GT(t.nb_changes(), 2u);
}

TEST(Autotune, ShedsStreamsThatBuyNothing)
{
	// Paced streams: the pipe is full at any count; fewer streams are cheaper.
	StreamTuner t({.min_streams = 4, .max_streams = 256}, 100, "start");
	uint16_t n = run(t, [](uint16_t) { return 110e6; }, 120);
	EXPECT_EQ(n, 4);
}

TEST(Autotune, BacksOffWhenMoreStreamsHurt)
{
	// Beyond 24 streams the flows fight over the bottleneck and delivery drops.
	StreamTuner t({.min_streams = 1, .max_streams = 256}, 16, "start");
	auto rate = [](uint16_t n) { return n <= 24 ? 100e6 + n * 1e6 : 100e6 - (n - 24) * 2e6; };
	uint16_t n = run(t, rate, 200);
	EXPECT_LE(n, 24);
	EXPECT_GE(n, 8);
}

TEST(Autotune, IgnoresAppLimitedWindows)
{
	// A sender that is out of data the whole time: nothing it measures moves the tuner.
	StreamTuner t({}, 16, "start");
	uint16_t n = run(t, [](uint16_t n) { return n * 1e6; }, 60, [](uint64_t) { return true; });
	EXPECT_EQ(n, 16);
	EXPECT_EQ(t.streams(), 16);
	EXPECT_EQ(t.nb_changes(), 0u);
}

TEST(Autotune, StaysWithinBounds)
{
	StreamTuner t({.min_streams = 2, .max_streams = 8}, 100, "start");
	EXPECT_EQ(t.streams(), 8);
	uint16_t n = run(t, [](uint16_t n) { return n * 10e6; }, 60);
	EXPECT_EQ(n, 8);
	StreamTuner u({.min_streams = 2, .max_streams = 8}, 0, "start");
	EXPECT_EQ(u.streams(), 2);
}
