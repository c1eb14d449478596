// Behaviour of BBR, driven over LinkSim's bottleneck (100 Mbit/s, 100 ms unless
// a test says otherwise).  Each test states what a transfer should see, not
// how BBR's internals get there.
#include <algorithm>
#include <cstring>
#include <memory>

#include <gtest/gtest.h>

#include "dataplane/amst/cc/cc.h"
#include "dataplane/amst/cc/tests/link_sim.h"

namespace dwcp::amst {
namespace {

using test::LinkConfig;
using test::LinkSim;
using test::random_loss;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint32_t kMss = 1424;
constexpr uint64_t kRate = 12'500'000;     // 100 Mbit/s
constexpr uint64_t kRtt = 100 * kMs;
constexpr uint64_t kBdp = kRate / 10;      // bytes in flight that fill the pipe at 100 ms

std::unique_ptr<CongestionController> make_bbr(CcConfig cfg = {})
{
	cfg.mss = kMss;
	return make_cc(CcAlgo::bbr, cfg);
}

bool in_state(const CongestionController &cc, const char *state)
{
	return std::strcmp(cc.state_name(), state) == 0;
}

// Watches a run: when BBR first entered each state, and the extremes of a few
// quantities from a given time on.
struct Watch {
	explicit Watch(LinkSim &sim, const CongestionController &cc) : sim(sim), cc(cc)
	{
		sim.after_event = [this](uint64_t now) { observe(now); };
	}

	void observe(uint64_t now)
	{
		if (first_drain_ns == 0 && in_state(cc, "drain"))
			first_drain_ns = now;
		if (first_probe_bw_ns == 0 && in_state(cc, "probe_bw"))
			first_probe_bw_ns = now;
		if (in_state(cc, "startup"))
			last_startup_ns = now;
		if (first_bw_90_ns == 0 && cc.bandwidth_estimate() >= kRate * 9 / 10)
			first_bw_90_ns = now;
		const bool probing_rtt = in_state(cc, "probe_rtt");
		if (probing_rtt && !in_probe_rtt) {
			++nb_probe_rtt;
			probe_rtt_start_ns = now;
		}
		if (!probing_rtt && in_probe_rtt)
			probe_rtt_end_ns = now;
		if (probing_rtt)
			min_probe_rtt_cwnd = std::min(min_probe_rtt_cwnd, cc.cwnd());
		in_probe_rtt = probing_rtt;
		min_cwnd = std::min(min_cwnd, cc.cwnd());
		if (now >= from_ns) {
			min_bw = std::min(min_bw, cc.bandwidth_estimate());
			min_pacing = std::min(min_pacing, cc.pacing_rate());
			max_pacing = std::max(max_pacing, cc.pacing_rate());
			// Time-weighted pacing rate: the rate in force since the
			// previous event held until now.
			if (last_ns >= from_ns)
				pacing_integral += double(last_pacing) * double(now - last_ns) * 1e-9;
		}
		last_ns = now;
		last_pacing = cc.pacing_rate();
	}

	// Restarts the extremes and the pacing integral at the current time.
	void reset_window()
	{
		from_ns = sim.now();
		last_ns = sim.now();
		last_pacing = cc.pacing_rate();
		min_bw = min_pacing = UINT64_MAX;
		max_pacing = 0;
		pacing_integral = 0;
	}
	double average_pacing() const { return pacing_integral / (double(last_ns - from_ns) * 1e-9); }

	LinkSim &sim;
	const CongestionController &cc;
	uint64_t first_drain_ns = 0, first_probe_bw_ns = 0, last_startup_ns = 0, first_bw_90_ns = 0;
	int nb_probe_rtt = 0;
	bool in_probe_rtt = false;
	uint64_t probe_rtt_start_ns = 0, probe_rtt_end_ns = 0;
	uint64_t min_probe_rtt_cwnd = UINT64_MAX, min_cwnd = UINT64_MAX;
	uint64_t from_ns = 0, last_ns = 0, last_pacing = 0;
	uint64_t min_bw = UINT64_MAX, min_pacing = UINT64_MAX, max_pacing = 0;
	double pacing_integral = 0;
};

TEST(Bbr, StartupReachesBottleneckAndExits)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = 2 * kBdp});
	Watch w(sim, *cc);
	sim.run_until(3 * kSec);
	// From 32 packets to 880 is five doublings; the estimate lags a round.
	ASSERT_NE(w.first_bw_90_ns, 0u);
	EXPECT_LE(w.first_bw_90_ns, 8 * kRtt);
	// Three rounds of plateau (rounds lengthen with the queue Startup builds).
	ASSERT_NE(w.first_drain_ns, 0u);
	EXPECT_LE(w.first_drain_ns, 16 * kRtt);
	ASSERT_NE(w.first_probe_bw_ns, 0u);
	EXPECT_LE(w.first_probe_bw_ns - w.first_drain_ns, 3 * kRtt) << "Drain takes about one round";
	EXPECT_TRUE(in_state(*cc, "probe_bw"));
	EXPECT_NEAR(double(cc->bandwidth_estimate()), double(kRate), 0.02 * kRate);
	EXPECT_EQ(sim.lost(), 0u);
	// Drain emptied the queue Startup built: in flight is back near one BDP.
	w.reset_window();
	uint64_t min_in_flight = UINT64_MAX;
	sim.after_event = [&](uint64_t) { min_in_flight = std::min(min_in_flight, sim.bytes_in_flight()); };
	sim.run_for(1 * kSec);
	EXPECT_LE(min_in_flight, kBdp + 2 * kMss);
}

TEST(Bbr, RateCeilingEndsStartupAtOnce)
{
	// The pacer holds this stream to half the link.  Once the estimate
	// reaches that, there is nothing more to find: no plateau rounds.  The
	// ceiling may be known at construction or set later (the session sets
	// it when the stream count or the link rate changes).
	for (bool via_setter : {false, true}) {
		SCOPED_TRACE(via_setter ? "set_rate_ceiling" : "CcConfig::rate_ceiling");
		CcConfig cfg;
		if (!via_setter)
			cfg.rate_ceiling = kRate / 2;
		auto cc = make_bbr(cfg);
		if (via_setter)
			cc->set_rate_ceiling(kRate / 2);
		LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = 2 * kBdp,
			.ceiling = kRate / 2});
		Watch w(sim, *cc);
		uint64_t bw_at_exit = 0;
		sim.after_event = [&](uint64_t now) {
			if (w.first_drain_ns == 0 && !in_state(*cc, "startup"))
				bw_at_exit = cc->bandwidth_estimate();
			w.observe(now);
		};
		sim.run_until(3 * kSec);
		ASSERT_NE(w.first_drain_ns, 0u);
		EXPECT_LE(w.first_drain_ns, 8 * kRtt);
		EXPECT_GE(bw_at_exit, uint64_t(0.9 * kRate / 2));
		EXPECT_TRUE(in_state(*cc, "probe_bw"));
		EXPECT_NEAR(double(cc->bandwidth_estimate()), kRate / 2.0, 0.03 * kRate / 2);
		EXPECT_EQ(sim.lost(), 0u);
	}
}

TEST(Bbr, RaisedCeilingShareIsTakenAtOnceOnlyWhenItHeldTheStream)
{
	// The session runs fewer streams: each stream's share of the link's ceiling
	// grows.  A stream that was held at its share takes the new one as its
	// estimate at once; one that was below its share (held by the bottleneck)
	// learns nothing from a higher ceiling.
	for (bool held : {true, false}) {
		SCOPED_TRACE(held ? "held at the ceiling" : "below the ceiling");
		uint64_t share = held ? kRate / 4 : 2 * kRate;
		CcConfig cfg;
		cfg.rate_ceiling = share;
		auto cc = make_bbr(cfg);
		LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp,
			.ceiling = share});
		sim.run_until(3 * kSec);
		ASSERT_TRUE(in_state(*cc, "probe_bw"));
		uint64_t before = cc->bandwidth_estimate();
		cc->set_rate_ceiling(share * 3 / 2);
		if (held)
			EXPECT_NEAR(double(cc->bandwidth_estimate()), 1.5 * double(before), 0.01 * double(before));
		else
			EXPECT_EQ(cc->bandwidth_estimate(), before);
	}
}

TEST(Bbr, ProbeBwPacesAtBottleneckOnAverage)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp});
	Watch w(sim, *cc);
	sim.run_until(3 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	w.reset_window();
	const uint64_t delivered0 = sim.delivered();
	// Ten gain cycles of eight (slightly longer than) min_rtt phases.
	sim.run_for(8 * kSec);
	EXPECT_NEAR(w.average_pacing(), double(kRate), 0.03 * kRate);
	// It did cycle: probing up by a quarter and draining by a quarter.
	EXPECT_NEAR(double(w.max_pacing), 1.25 * kRate, 0.03 * kRate);
	EXPECT_NEAR(double(w.min_pacing), 0.75 * kRate, 0.03 * kRate);
	const double goodput = double(sim.delivered() - delivered0) / 8.0;
	EXPECT_GE(goodput, 0.98 * kRate);
	// cwnd is two BDPs, so the window never holds back the pacer.
	EXPECT_NEAR(double(cc->cwnd()), 2.0 * kBdp, 0.03 * kBdp);
}

TEST(Bbr, RandomLossOfTwoPercentKeepsTheModel)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp,
		.drop = random_loss(0.02)});
	Watch w(sim, *cc);
	sim.run_until(3 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	w.reset_window();
	const uint64_t delivered0 = sim.delivered();
	sim.run_for(20 * kSec);
	EXPECT_GT(sim.lost(), 0.015 * double(sim.delivered()) / kMss * kMss);
	EXPECT_GE(w.min_bw, uint64_t(0.9 * kRate));
	// 2% of the link carries packets that are lost; the rest gets through.
	const double goodput = double(sim.delivered() - delivered0) / 20.0;
	EXPECT_GE(goodput, 0.93 * kRate);
	EXPECT_GE(cc->cwnd(), uint64_t(1.8 * kBdp));
}

TEST(Bbr, RandomLossUnderTheCeilingStillFillsTheCeiling)
{
	// The pacer holds the stream to half the link and 2% of its packets are
	// lost at random.  Delivery samples read 98% of the ceiling; cruising at
	// them would leave 2% of the stream's share idle for the whole transfer.
	const uint64_t ceiling = kRate / 2;
	CcConfig cfg;
	cfg.rate_ceiling = ceiling;
	auto cc = make_bbr(cfg);
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp, .ceiling = ceiling,
		.drop = random_loss(0.02)});
	sim.run_until(3 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	EXPECT_LT(cc->bandwidth_estimate(), ceiling);
	const uint64_t delivered0 = sim.delivered();
	sim.run_for(20 * kSec);
	// What arrives is all the ceiling carries, less the 2% lost.
	const double goodput = double(sim.delivered() - delivered0) / 20.0;
	EXPECT_GE(goodput, 0.975 * double(ceiling));
}

TEST(Bbr, PathSlowerThanTheCeilingKeepsItsQueueShort)
{
	// The declared link is 5% faster than the path: the estimate still reaches
	// 90% of the ceiling, but pacing at the ceiling would queue 5% of the rate
	// for ever.  Once the queue shows in the RTT, the stream paces at what the
	// path delivers again and drains in its 0.75 phase.
	const uint64_t ceiling = kRate * 100 / 95;
	CcConfig cfg;
	cfg.rate_ceiling = ceiling;
	auto cc = make_bbr(cfg);
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp, .ceiling = ceiling});
	sim.run_until(3 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	uint64_t max_srtt = 0;
	sim.after_event = [&](uint64_t) { max_srtt = std::max(max_srtt, sim.srtt_ns()); };
	const uint64_t delivered0 = sim.delivered();
	sim.run_for(20 * kSec);
	// No worse than BBR's own probe on an uncapped path (a quarter BDP); left
	// at the ceiling, the queue would grow to the window's limit (+80 ms here).
	EXPECT_LE(max_srtt, kRtt + kRtt / 4);
	EXPECT_EQ(sim.lost(), 0u);
	const double goodput = double(sim.delivered() - delivered0) / 20.0;
	EXPECT_GE(goodput, 0.98 * double(kRate));
}

TEST(Bbr, PolicerJustUnderTheCeilingIsNotOverdriven)
{
	// A policer (a buffer of four packets) at 95% of the ceiling: no queue ever
	// shows in the RTT, so only the estimate says the path is slower.  The stream
	// cruises at its estimate, and loses only what its probes push over.
	const uint64_t ceiling = kRate * 100 / 95;
	CcConfig cfg;
	cfg.rate_ceiling = ceiling;
	auto cc = make_bbr(cfg);
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = 4 * kMss, .ceiling = ceiling});
	sim.run_until(3 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	const uint64_t delivered0 = sim.delivered(), lost0 = sim.lost();
	sim.run_for(20 * kSec);
	const double delivered = double(sim.delivered() - delivered0);
	EXPECT_LE(double(sim.lost() - lost0), 0.015 * delivered);
	EXPECT_GE(delivered / 20.0, 0.95 * double(kRate));
}

TEST(Bbr, LossBelowThresholdIsNotCongestionButThresholdIsConfigurable)
{
	// 5% random loss is under the default threshold (10%): no cap.
	for (double threshold : {0.10, 0.03}) {
		CcConfig cfg;
		cfg.bbr_loss_threshold = threshold;
		auto cc = make_bbr(cfg);
		LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp,
			.drop = random_loss(0.05)});
		sim.run_until(10 * kSec);
		if (threshold > 0.05)
			EXPECT_GE(cc->cwnd(), uint64_t(1.8 * kBdp)) << "threshold " << threshold;
		else
			EXPECT_LT(cc->cwnd(), kBdp) << "threshold " << threshold;
	}
}

TEST(Bbr, HeavyLossCapsInflightThenRecovers)
{
	auto cc = make_bbr();
	auto loss = random_loss(0.20);
	// 20% of packets lost from 5 s to 8 s: far over the threshold.
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp,
		.drop = [&](uint64_t seq, uint64_t now) { return now >= 5 * kSec && now < 8 * kSec && loss(seq, now); }});
	Watch w(sim, *cc);
	sim.run_until(5 * kSec);
	ASSERT_TRUE(in_state(*cc, "probe_bw"));
	const uint64_t cwnd_before = cc->cwnd();
	uint64_t max_in_flight_before = 0;
	sim.after_event = [&](uint64_t) { max_in_flight_before = std::max(max_in_flight_before, sim.bytes_in_flight()); };
	sim.run_until(5 * kSec + 4 * kRtt);
	// Losses show one RTT after the packets went out; the round after that
	// sets inflight_hi to 0.7 of what was in flight (never below 0.7 BDP).
	EXPECT_LE(cc->cwnd(), uint64_t(0.75 * double(max_in_flight_before)));
	EXPECT_LE(cc->cwnd(), cwnd_before / 2);
	EXPECT_GE(cc->cwnd(), uint64_t(0.69 * kBdp));
	uint64_t max_in_flight_during = 0;
	sim.after_event = [&](uint64_t) { max_in_flight_during = std::max(max_in_flight_during, sim.bytes_in_flight()); };
	sim.run_until(8 * kSec);
	EXPECT_LE(max_in_flight_during, uint64_t(0.75 * double(max_in_flight_before)));
	// Once the loss is gone, inflight_hi grows back (1, 2, 4, ... packets
	// per round) and the bandwidth estimate with it.
	sim.after_event = nullptr;
	sim.run_until(18 * kSec);
	EXPECT_GE(cc->bandwidth_estimate(), uint64_t(0.95 * kRate));
	EXPECT_GE(cc->cwnd(), uint64_t(1.8 * kBdp));
}

TEST(Bbr, HeavyLossEndsStartup)
{
	// A buffer of a quarter BDP: Startup's overshoot overflows it and loses
	// over a third of a round.  That ends Startup at once, rather than
	// after three more rounds of loss waiting for the rate to plateau.
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp / 4});
	Watch w(sim, *cc);
	sim.run_until(3 * kSec);
	ASSERT_NE(w.first_drain_ns, 0u);
	// The same path with a deep buffer leaves Startup after ~14 RTTs.
	EXPECT_LE(w.first_drain_ns, 11 * kRtt);
	EXPECT_LE(sim.lost(), 2 * kBdp);
	EXPECT_TRUE(in_state(*cc, "probe_bw"));
	EXPECT_GE(cc->bandwidth_estimate(), uint64_t(0.95 * kRate));
}

TEST(Bbr, AppLimitedSamplesDoNotLowerEstimate)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp});
	Watch w(sim, *cc);
	sim.run_until(3 * kSec);
	ASSERT_GE(cc->bandwidth_estimate(), uint64_t(0.98 * kRate));
	// The application offers a tenth of the link for 5 s, fifty rounds: far
	// longer than the max filter's ten-round window.
	sim.config().app_rate = kRate / 10;
	w.reset_window();
	const uint64_t delivered0 = sim.delivered();
	sim.run_for(5 * kSec);
	EXPECT_NEAR(double(sim.delivered() - delivered0) / 5.0, kRate / 10.0, 0.02 * kRate);
	EXPECT_GE(w.min_bw, uint64_t(0.98 * kRate));
	// Back to bulk: full rate again at once, no new Startup needed.
	sim.config().app_rate = 0;
	sim.run_for(1 * kSec);
	const uint64_t delivered1 = sim.delivered();
	sim.run_for(1 * kSec);
	EXPECT_GE(double(sim.delivered() - delivered1), 0.97 * kRate);
}

TEST(Bbr, NoProbeRttWhileRttStaysNearMinimum)
{
	// The path's delay rises by 1 ms (1%) at 5 s: no sample equals min_rtt
	// again, but every drain phase shows one within 1/64 of it, which is
	// as good as ProbeRTT would do.  The 10 s window never runs out.
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp});
	Watch w(sim, *cc);
	sim.run_until(5 * kSec);
	sim.config().base_rtt_ns = kRtt + 1 * kMs;
	sim.run_until(40 * kSec);
	EXPECT_EQ(w.nb_probe_rtt, 0);
}

TEST(Bbr, ProbeRttWhenPathDelayRisesAndItIsCheap)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp});
	Watch w(sim, *cc);
	sim.run_until(5 * kSec);
	// The route changes: 20% more delay, so no sample comes near the old
	// min_rtt any more.
	sim.config().base_rtt_ns = 120 * kMs;
	const uint64_t changed_ns = sim.now();
	sim.run_until(changed_ns + 9 * kSec);
	EXPECT_EQ(w.nb_probe_rtt, 0);
	sim.run_until(changed_ns + 12 * kSec);
	ASSERT_EQ(w.nb_probe_rtt, 1);
	EXPECT_GE(w.probe_rtt_start_ns, changed_ns + 10 * kSec - 200 * kMs);
	EXPECT_LE(w.probe_rtt_start_ns, changed_ns + 10 * kSec + 200 * kMs);
	// Half a BDP in flight, not 4 packets; 200 ms plus the round to get
	// there and the round it must last.
	EXPECT_GE(w.min_probe_rtt_cwnd, uint64_t(0.45 * kBdp));
	ASSERT_GT(w.probe_rtt_end_ns, w.probe_rtt_start_ns);
	EXPECT_GE(w.probe_rtt_end_ns - w.probe_rtt_start_ns, 200 * kMs);
	EXPECT_LE(w.probe_rtt_end_ns - w.probe_rtt_start_ns, 500 * kMs);
	EXPECT_TRUE(in_state(*cc, "probe_bw"));
	// The new delay is now the minimum: no second probe for another 10 s.
	sim.run_until(changed_ns + 21 * kSec);
	EXPECT_EQ(w.nb_probe_rtt, 1);
	// And the transfer barely noticed.
	const uint64_t delivered0 = sim.delivered();
	sim.run_for(2 * kSec);
	EXPECT_GE(double(sim.delivered() - delivered0) / 2.0, 0.98 * kRate);
}

TEST(Bbr, MinimumWindowHolds)
{
	// 10 kB/s at 10 ms: one BDP is 100 bytes, far under a packet.  Hand-made
	// ACKs, one per 10 ms, each a round and each a valid rate sample, so the
	// model is exactly that; every window BBR derives from it (2 BDP in
	// ProbeBW, half a BDP in ProbeRTT) is under the floor.
	CcConfig cfg;
	cfg.min_cwnd_packets = 4;
	auto cc = make_bbr(cfg);
	uint64_t delivered = 0;
	bool saw_probe_bw = false, saw_probe_rtt = false;
	for (uint64_t i = 1; i <= 3000; ++i) {
		const uint64_t now = i * 10 * kMs;
		cc->on_packet_sent(now - 10 * kMs, kMss, 0);
		AckEvent ev;
		ev.now_ns = now;
		ev.newly_acked = kMss;
		ev.prior_in_flight = kMss;
		ev.bytes_in_flight = 0;
		// RTT 10 ms, except 10% higher from 5 s on: nothing refreshes
		// min_rtt after that, so ProbeRTT comes at 15 s.
		ev.rtt_ns = now < 5 * kSec ? 10 * kMs : 11 * kMs;
		ev.srtt_ns = ev.rtt_ns;
		ev.prior_delivered = delivered;
		delivered += kMss;
		ev.delivered = delivered;
		ev.interval_ns = 10 * kMs;
		ev.delivery_rate = 10'000;
		ev.newest_acked_sent_ns = now - 10 * kMs;
		cc->on_ack(ev);
		saw_probe_bw |= in_state(*cc, "probe_bw");
		saw_probe_rtt |= in_state(*cc, "probe_rtt");
		if (i > 20) {
			ASSERT_EQ(cc->cwnd(), 4u * kMss) << "at " << now / kMs << " ms in " << cc->state_name();
		}
	}
	EXPECT_TRUE(saw_probe_bw);
	EXPECT_TRUE(saw_probe_rtt);
	EXPECT_EQ(cc->bandwidth_estimate(), 10'000u);
}

TEST(Bbr, PersistentCongestionCollapsesThenRegrows)
{
	auto cc = make_bbr();
	LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = kBdp});
	sim.run_until(5 * kSec);
	cc->on_persistent_congestion(sim.now());
	EXPECT_EQ(cc->cwnd(), 4u * kMss);
	// The model survived; the window doubles per round back to 2 BDP.
	sim.run_for(12 * kRtt);
	EXPECT_GE(cc->cwnd(), uint64_t(1.9 * kBdp));
}

TEST(Bbr, SeedSpreadsTheFirstProbePhase)
{
	// Streams of one session get different seeds so that they do not all
	// probe up in the same round trip.  Over a few seeds, the first ProbeBW
	// pacing rate (gain 1.25 or 1.0, never 0.75) must differ.
	int nb_probing_first = 0;
	for (uint32_t seed = 0; seed < 16; ++seed) {
		CcConfig cfg;
		cfg.seed = seed;
		auto cc = make_bbr(cfg);
		LinkSim sim(*cc, LinkConfig{.rate = kRate, .base_rtt_ns = kRtt, .buffer_bytes = 2 * kBdp});
		Watch w(sim, *cc);
		uint64_t first_pacing = 0;
		sim.after_event = [&](uint64_t now) {
			w.observe(now);
			if (first_pacing == 0 && w.first_probe_bw_ns != 0)
				first_pacing = cc->pacing_rate();
		};
		sim.run_until(3 * kSec);
		ASSERT_NE(first_pacing, 0u);
		EXPECT_GE(first_pacing, uint64_t(0.99 * kRate)) << "seed " << seed;
		nb_probing_first += first_pacing > uint64_t(1.1 * kRate);
	}
	EXPECT_GT(nb_probing_first, 0);
	EXPECT_LT(nb_probing_first, 16);
}

} // namespace
} // namespace dwcp::amst
