// Pacing: the token bucket's exact average rate, and the burst a stream may send
// after a stall - a millisecond where only its controller sets the pace, 8 ms
// where it has a share of a declared link ceiling.
#include <gtest/gtest.h>

#include <algorithm>

#include "dataplane/amst/pacer.h"
#include "dataplane/amst/cc/cc.h"
#include "dataplane/amst/stream_sender.h"

namespace dwcp::amst {
namespace {

constexpr uint32_t kWire = 1514;

TEST(Pacer, AverageRateIsExactAndBurstIsCapped)
{
	Pacer p;
	const uint64_t rate = 10'000'000; // bytes/s
	p.set_rate(rate, Pacer::burst_for(rate, kWire, 1'000'000), 0);
	// Over one second of back-to-back polling every 10 us it lets rate bytes go,
	// within a packet and a burst.
	uint64_t sent = 0;
	for (uint64_t t = 0; t < 1'000'000'000; t += 10'000)
		while (p.can_send(t)) {
			p.on_sent(kWire);
			sent += kWire;
		}
	EXPECT_NEAR(double(sent), double(rate), double(kWire + rate / 1000));
	// After a 50 ms stall, at most one burst (1 ms at this rate, 10 kB) leaves at once.
	uint64_t t = 1'050'000'000, burst = 0;
	while (p.can_send(t)) {
		p.on_sent(kWire);
		burst += kWire;
	}
	EXPECT_LE(burst, rate / 1000 + kWire);
	EXPECT_GE(burst, rate / 1000 - kWire);
}

// Packets a stream may send back to back at `at` after having sent nothing since 0.
uint64_t burst_after_stall(StreamSender &s, uint64_t at)
{
	uint64_t n = 0;
	while (s.can_send(at, kWire) && n < 100'000) {
		s.on_sent(at, kWire, true, PacketRef{.off = n * 1424, .chunk_id = 0, .len = 1424});
		n++;
	}
	return n;
}

StreamSenderConfig config(CcAlgo cc)
{
	StreamSenderConfig c;
	c.cc = cc;
	c.initial_cwnd_packets = 10'000; // the window never holds the stream back here
	c.initial_rtt_ns = 100'000'000;
	return c;
}

TEST(StreamSenderPacing, UnderALinkCeilingItMakesUpEightMillisecondsOfMissedSlots)
{
	for (CcAlgo cc : {CcAlgo::bbr, CcAlgo::cubic, CcAlgo::reno}) {
		StreamSender s(config(cc));
		const uint64_t ceiling = 5'000'000; // bytes/s, far below the controller's first pace
		s.set_rate_ceiling(ceiling, 0);
		ASSERT_EQ(s.pacing_rate(), ceiling) << cc_algo_name(cc);
		uint64_t n = burst_after_stall(s, 50'000'000);
		// 8 ms at 5 MB/s is 40 kB: 26-27 packets.
		EXPECT_GE(n * kWire, ceiling * 8 / 1000) << cc_algo_name(cc);
		EXPECT_LE(n * kWire, ceiling * 8 / 1000 + 2 * kWire) << cc_algo_name(cc);
	}
}

TEST(StreamSenderPacing, WithoutACeilingItKeepsOneMillisecondBursts)
{
	for (CcAlgo cc : {CcAlgo::bbr, CcAlgo::cubic, CcAlgo::reno}) {
		StreamSender s(config(cc));
		uint64_t rate = s.pacing_rate();
		uint64_t n = burst_after_stall(s, 50'000'000);
		uint64_t want = std::max<uint64_t>(rate / 1000, 2 * kWire);
		EXPECT_LE(n * kWire, want + 2 * kWire) << cc_algo_name(cc) << " at " << rate << " B/s";
		EXPECT_GE(n * kWire + kWire, want) << cc_algo_name(cc) << " at " << rate << " B/s";
	}
}

TEST(StreamSenderPacing, UnderACeilingAboveItsPaceTheBurstIsEightMillisecondsOfThatPace)
{
	StreamSender s(config(CcAlgo::cubic));
	uint64_t rate = s.pacing_rate();
	s.set_rate_ceiling(rate * 4, 0);
	ASSERT_EQ(s.pacing_rate(), rate);
	uint64_t n = burst_after_stall(s, 50'000'000);
	EXPECT_GE(n * kWire, rate * 8 / 1000);
	EXPECT_LE(n * kWire, rate * 8 / 1000 + 2 * kWire);
}

} // namespace
} // namespace dwcp::amst
