// Behaviour of the loss-based controllers (Reno, CUBIC) and the cc.h API.
// Each test drives a controller either with hand-made events (when the rule
// under test is about one event) or with LinkSim (when it is about how the
// window evolves over round trips).
#include <cmath>
#include <cstring>
#include <memory>
#include <string_view>

#include <gtest/gtest.h>

#include "dataplane/amst/cc/cc.h"
#include "dataplane/amst/cc/tests/link_sim.h"

namespace dwcp::amst {
namespace {

using test::LinkConfig;
using test::LinkSim;

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;
constexpr uint32_t kMss = 1424;

CcConfig default_config()
{
	CcConfig cfg;
	cfg.mss = kMss;
	return cfg;
}

// An ACK of one full packet sent at sent_ns, with an RTT sample.
AckEvent ack_of(uint64_t now_ns, uint64_t sent_ns, uint64_t rtt_ns, uint64_t in_flight)
{
	AckEvent ev;
	ev.now_ns = now_ns;
	ev.newly_acked = kMss;
	ev.prior_in_flight = in_flight + kMss;
	ev.bytes_in_flight = in_flight;
	ev.rtt_ns = rtt_ns;
	ev.min_rtt_ns = rtt_ns;
	ev.srtt_ns = rtt_ns;
	ev.newest_acked_sent_ns = sent_ns;
	return ev;
}

LossEvent loss_of(uint64_t now_ns, uint64_t sent_ns, uint64_t in_flight = 0)
{
	LossEvent ev;
	ev.now_ns = now_ns;
	ev.lost_bytes = kMss;
	ev.largest_lost_sent_ns = sent_ns;
	ev.bytes_in_flight = in_flight;
	return ev;
}

// Forwards to a controller and remembers what the tests want to know about
// congestion events: the window just before the last reduction, when it
// happened, and when the first ACK of a packet sent after it arrived (the end of
// the recovery period, where CUBIC's epoch starts).
class Recorder final : public CongestionController {
public:
	explicit Recorder(std::unique_ptr<CongestionController> cc) : cc_(std::move(cc)) {}
	CcAlgo algo() const override { return cc_->algo(); }
	void on_packet_sent(uint64_t now_ns, uint32_t bytes, uint64_t in_flight) override
	{
		cc_->on_packet_sent(now_ns, bytes, in_flight);
	}
	void on_ack(const AckEvent &ev) override
	{
		if (nb_reductions > 0 && recovery_end_ns == 0 && ev.newest_acked_sent_ns > last_reduction_ns)
			recovery_end_ns = ev.now_ns;
		cc_->on_ack(ev);
	}
	void on_loss(const LossEvent &ev) override
	{
		const uint64_t before = cc_->cwnd();
		cc_->on_loss(ev);
		if (cc_->cwnd() < before) {
			++nb_reductions;
			cwnd_before_reduction = before;
			cwnd_after_reduction = cc_->cwnd();
			last_reduction_ns = ev.now_ns;
			recovery_end_ns = 0;
		}
	}
	void on_persistent_congestion(uint64_t now_ns) override { cc_->on_persistent_congestion(now_ns); }
	void on_app_limited() override { cc_->on_app_limited(); }
	uint64_t cwnd() const override { return cc_->cwnd(); }
	uint64_t pacing_rate() const override { return cc_->pacing_rate(); }
	const char *state_name() const override { return cc_->state_name(); }
	uint64_t bandwidth_estimate() const override { return cc_->bandwidth_estimate(); }

	int nb_reductions = 0;
	uint64_t cwnd_before_reduction = 0;
	uint64_t cwnd_after_reduction = 0;
	uint64_t last_reduction_ns = 0;
	uint64_t recovery_end_ns = 0;

private:
	std::unique_ptr<CongestionController> cc_;
};

// ---------------------------------------------------------------------------
// API

TEST(CcApi, NamesRoundTrip)
{
	for (CcAlgo a : {CcAlgo::bbr, CcAlgo::cubic, CcAlgo::reno}) {
		CcAlgo parsed = CcAlgo::reno;
		ASSERT_TRUE(parse_cc_algo(cc_algo_name(a), &parsed)) << cc_algo_name(a);
		EXPECT_EQ(parsed, a);
		EXPECT_EQ(make_cc(a, default_config())->algo(), a);
	}
	EXPECT_STREQ(cc_algo_name(CcAlgo::bbr), "bbr");
	EXPECT_STREQ(cc_algo_name(CcAlgo::cubic), "cubic");
	EXPECT_STREQ(cc_algo_name(CcAlgo::reno), "reno");
}

TEST(CcApi, ParseRejectsJunk)
{
	const std::string_view junks[] = {"", "BBR", "Cubic", "bbr2", "bb", "reno ", " reno", "newreno",
		std::string_view("bbr\0", 4), "cubicx"};
	for (std::string_view junk : junks) {
		CcAlgo out = CcAlgo::cubic;
		EXPECT_FALSE(parse_cc_algo(junk, &out)) << "'" << junk << "'";
		EXPECT_EQ(out, CcAlgo::cubic) << "output written on failure";
	}
}

TEST(CcApi, InitialWindowAndPacingBeforeAnyRttSample)
{
	const CcConfig cfg = default_config();
	const double initial_cwnd = double(cfg.initial_cwnd_packets) * kMss;
	for (CcAlgo a : {CcAlgo::bbr, CcAlgo::cubic, CcAlgo::reno}) {
		auto cc = make_cc(a, cfg);
		EXPECT_EQ(cc->cwnd(), uint64_t(initial_cwnd)) << cc_algo_name(a);
		EXPECT_EQ(cc->bandwidth_estimate(), 0u) << cc_algo_name(a);
	}
	// The initial window over the 100 ms guess, at each slow start's gain.
	EXPECT_NEAR(double(make_cc(CcAlgo::reno, cfg)->pacing_rate()), initial_cwnd / 0.1 * 2.0, 2.0);
	EXPECT_NEAR(double(make_cc(CcAlgo::cubic, cfg)->pacing_rate()), initial_cwnd / 0.1 * 2.0, 2.0);
	EXPECT_NEAR(double(make_cc(CcAlgo::bbr, cfg)->pacing_rate()), initial_cwnd / 0.1 * 2.77, 2.0);
}

// ---------------------------------------------------------------------------
// Reno and CUBIC: what they share

class LossBased : public ::testing::TestWithParam<CcAlgo> {
protected:
	double beta() const { return GetParam() == CcAlgo::reno ? 0.5 : 0.7; }
};

INSTANTIATE_TEST_SUITE_P(RenoAndCubic, LossBased, ::testing::Values(CcAlgo::reno, CcAlgo::cubic),
	[](const auto &info) { return std::string(cc_algo_name(info.param)); });

TEST_P(LossBased, SlowStartDoublesEachRoundTrip)
{
	auto cc = make_cc(GetParam(), default_config());
	// 1 Gbit/s, 100 ms, no queue limit: nothing stops slow start for 6 rounds.
	LinkSim sim(*cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs});
	// The first window goes out in 50 ms (paced at twice 32 packets per
	// 100 ms); from the second round on each round is a full flight.
	sim.run_until(250 * kMs);
	uint64_t prev = cc->cwnd();
	EXPECT_GT(prev, uint64_t(64 * kMss)) << "the first ACKs have come back";
	for (int round = 0; round < 5; ++round) {
		sim.run_for(sim.srtt_ns());
		const double ratio = double(cc->cwnd()) / double(prev);
		EXPECT_NEAR(ratio, 2.0, 0.15) << "round " << round;
		EXPECT_STREQ(cc->state_name(), "slow_start");
		prev = cc->cwnd();
	}
	// Paced at twice cwnd/srtt in slow start.
	EXPECT_NEAR(double(cc->pacing_rate()), 2.0 * double(cc->cwnd()) * 1e9 / double(sim.srtt_ns()),
		0.001 * double(cc->pacing_rate()));
}

TEST_P(LossBased, LossReducesByBeta)
{
	auto cc = make_cc(GetParam(), default_config());
	const uint64_t before = cc->cwnd();
	cc->on_loss(loss_of(1 * kSec, 900 * kMs));
	EXPECT_NEAR(double(cc->cwnd()), beta() * double(before), 1.0);
	EXPECT_STREQ(cc->state_name(), "recovery");
}

TEST_P(LossBased, OneReductionPerRecoveryPeriod)
{
	auto cc = make_cc(GetParam(), default_config());
	const uint64_t start = cc->cwnd();
	cc->on_loss(loss_of(1000 * kMs, 900 * kMs));
	const uint64_t reduced = cc->cwnd();
	// More packets of the same flight: sent before recovery began.
	cc->on_loss(loss_of(1010 * kMs, 950 * kMs));
	cc->on_loss(loss_of(1020 * kMs, 1000 * kMs)); // sent at the very instant it began
	EXPECT_EQ(cc->cwnd(), reduced);
	// ACKs of pre-recovery packets do not grow the window either.
	cc->on_ack(ack_of(1030 * kMs, 990 * kMs, 100 * kMs, reduced - kMss));
	EXPECT_EQ(cc->cwnd(), reduced);
	EXPECT_STREQ(cc->state_name(), "recovery");
	// An ACK of a packet sent after it ends recovery; a later loss of such a
	// packet is a new congestion event.
	cc->on_ack(ack_of(1110 * kMs, 1005 * kMs, 100 * kMs, reduced - kMss));
	EXPECT_STREQ(cc->state_name(), "congestion_avoidance");
	const uint64_t after_recovery = cc->cwnd();
	cc->on_loss(loss_of(1200 * kMs, 1100 * kMs));
	EXPECT_NEAR(double(cc->cwnd()), beta() * double(after_recovery), 1.0);
	EXPECT_LT(cc->cwnd(), start);
}

TEST_P(LossBased, BurstOfLossesInOneWindowReducesOnce)
{
	Recorder cc(make_cc(GetParam(), default_config()));
	// Twenty consecutive packets lost out of the 7th round's flight.
	LinkSim sim(cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs,
		.drop = [](uint64_t seq, uint64_t) { return seq >= 3000 && seq < 3020; }});
	sim.run_until(2 * kSec);
	ASSERT_EQ(sim.lost(), 20u * kMss);
	EXPECT_EQ(cc.nb_reductions, 1);
	EXPECT_NEAR(double(cc.cwnd_after_reduction), beta() * double(cc.cwnd_before_reduction), 1.0);
	EXPECT_STREQ(cc.state_name(), "congestion_avoidance");
}

TEST_P(LossBased, PersistentCongestionCollapsesToMinimum)
{
	const CcConfig cfg = default_config();
	auto cc = make_cc(GetParam(), cfg);
	LinkSim sim(*cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs});
	sim.run_until(500 * kMs);
	ASSERT_GT(cc->cwnd(), 100u * kMss);
	// The sender calls on_loss (the congestion event) and then reports
	// persistent congestion for the same loss.
	cc->on_loss(loss_of(600 * kMs, 100 * kMs));
	cc->on_persistent_congestion(600 * kMs);
	EXPECT_EQ(cc->cwnd(), uint64_t(cfg.min_cwnd_packets) * kMss);
	EXPECT_STREQ(cc->state_name(), "slow_start");
	// The recovery period is forgotten: the next loss cuts again (to the floor).
	cc->on_loss(loss_of(700 * kMs, 550 * kMs));
	EXPECT_EQ(cc->cwnd(), uint64_t(cfg.min_cwnd_packets) * kMss);
}

TEST_P(LossBased, MinimumWindowHoldsUnderRepeatedLoss)
{
	CcConfig cfg = default_config();
	cfg.min_cwnd_packets = 6;
	auto cc = make_cc(GetParam(), cfg);
	uint64_t t = 1 * kSec;
	for (int i = 0; i < 40; ++i) {
		// Each loss is of a packet sent after the previous reduction.
		cc->on_loss(loss_of(t, t - 10 * kMs + 1));
		EXPECT_GE(cc->cwnd(), 6u * kMss) << "after loss " << i;
		cc->on_ack(ack_of(t + 5 * kMs, t + 1, 4 * kMs, cc->cwnd()));
		t += 20 * kMs;
	}
	EXPECT_LE(cc->cwnd(), 7u * kMss);
}

TEST_P(LossBased, AppLimitedSenderDoesNotGrowWindow)
{
	auto cc = make_cc(GetParam(), default_config());
	// The application offers 1 Mbit/s, far below the 32-packet window's
	// 4.5 Mbit/s at 100 ms: the window is never what limits the sender.
	LinkSim sim(*cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs, .app_rate = 125'000});
	sim.run_until(5 * kSec);
	EXPECT_GT(sim.delivered(), 500'000u);
	EXPECT_EQ(cc->cwnd(), 32u * kMss);
}

TEST_P(LossBased, PacingIsCwndOverSrttTimesGain)
{
	auto cc = make_cc(GetParam(), default_config());
	cc->on_loss(loss_of(1 * kSec, 900 * kMs)); // leave slow start
	cc->on_ack(ack_of(1200 * kMs, 1100 * kMs, 80 * kMs, cc->cwnd()));
	const double expected = double(cc->cwnd()) / 0.080;
	EXPECT_NEAR(double(cc->bandwidth_estimate()), expected, 1e-4 * expected);
	EXPECT_NEAR(double(cc->pacing_rate()), 1.25 * expected, 1e-4 * expected);
}

// ---------------------------------------------------------------------------
// Reno

TEST(Reno, CongestionAvoidanceAddsOnePacketPerRoundTrip)
{
	Recorder cc(make_cc(CcAlgo::reno, default_config()));
	// One loss early in the 6th round; the link (1 Gbit/s) is never the limit.
	LinkSim sim(cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs,
		.drop = [](uint64_t seq, uint64_t) { return seq == 1200; }});
	sim.run_until(1 * kSec);
	ASSERT_EQ(cc.nb_reductions, 1);
	ASSERT_STREQ(cc.state_name(), "congestion_avoidance");
	const uint64_t t0 = sim.now();
	const uint64_t w0 = cc.cwnd();
	sim.run_until(t0 + 4 * kSec);
	const double rounds = double(sim.now() - t0) / double(sim.srtt_ns());
	const double added_packets = double(cc.cwnd() - w0) / kMss;
	EXPECT_NEAR(added_packets / rounds, 1.0, 0.05);
	EXPECT_EQ(cc.nb_reductions, 1);
}

TEST(Reno, HyStartLeavesSlowStartOnDelayBeforeLoss)
{
	Recorder cc(make_cc(CcAlgo::reno, default_config()));
	// 100 Mbit/s with an 8 BDP buffer.  Plain slow start would double until
	// the buffer overflows (at ~9 BDP) and lose a window's worth; HyStart++
	// sees the queue build (RTT up by 16 ms), grows by a quarter per round
	// for 5 rounds (CSS) and then leaves slow start without a loss.  (RFC
	// 9406 cannot save a shallower buffer: CSS alone triples the window.)
	const uint64_t bdp = 12'500'000 / 10;
	LinkSim sim(cc, LinkConfig{.rate = 12'500'000, .base_rtt_ns = 100 * kMs, .buffer_bytes = 8 * bdp});
	bool saw_css = false;
	sim.after_event = [&](uint64_t) {
		saw_css |= std::strcmp(cc.state_name(), "conservative_slow_start") == 0;
	};
	sim.run_until(4 * kSec);
	EXPECT_TRUE(saw_css);
	EXPECT_EQ(cc.nb_reductions, 0);
	EXPECT_EQ(sim.lost(), 0u);
	EXPECT_STREQ(cc.state_name(), "congestion_avoidance");
	EXPECT_GT(cc.cwnd(), bdp);
	EXPECT_LT(cc.cwnd(), 9 * bdp);
}

// ---------------------------------------------------------------------------
// CUBIC

// W_cubic(t) in bytes, RFC 9438 §4.2 with windows in bytes.
double w_cubic(double t_s, double k_s, double w_max)
{
	return 0.4 * std::pow(t_s - k_s, 3.0) * kMss + w_max;
}

TEST(Cubic, WindowFollowsCubicCurveAfterLoss)
{
	Recorder cc(make_cc(CcAlgo::cubic, default_config()));
	// 1 Gbit/s, 100 ms: the plateau (~2000 packets) is far below the BDP
	// (8800), so the window alone sets the rate and only the curve matters.
	LinkSim sim(cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs,
		.drop = [](uint64_t seq, uint64_t) { return seq == 1500; }});
	sim.run_until(2 * kSec);
	ASSERT_EQ(cc.nb_reductions, 1);
	ASSERT_NE(cc.recovery_end_ns, 0u);
	const double w_max = double(cc.cwnd_before_reduction);
	EXPECT_NEAR(double(cc.cwnd_after_reduction), 0.7 * w_max, 1.0);
	// K from the RFC: the time to climb back to W_max from 0.7 W_max.
	const double k_s = std::cbrt(0.3 * w_max / kMss / 0.4);
	ASSERT_GT(k_s, 5.0);
	// The epoch starts with the first ACK after recovery; the window tracks
	// the curve (aiming one RTT ahead, reaching it over the RTT).
	const uint64_t epoch = cc.recovery_end_ns;
	for (double t : {1.0, 3.0, k_s - 1.0, k_s, k_s + 1.5, k_s + 3.0}) {
		sim.run_until(epoch + uint64_t(t * 1e9));
		EXPECT_NEAR(double(cc.cwnd()), w_cubic(t, k_s, w_max), 0.015 * w_max)
			<< "t=" << t << " K=" << k_s;
	}
	// Around K the window plateaus: it grows far slower there than right
	// after the loss (concave), and speeds up again past it (convex).
	auto growth_over_second_at = [&](double t) {
		return w_cubic(t + 0.5, k_s, w_max) - w_cubic(t - 0.5, k_s, w_max);
	};
	sim.run_until(epoch + uint64_t((k_s - 0.5) * 1e9));
	const double before_k = double(cc.cwnd());
	sim.run_until(epoch + uint64_t((k_s + 0.5) * 1e9));
	const double across_k = double(cc.cwnd()) - before_k;
	EXPECT_LT(across_k, 0.01 * w_max);
	EXPECT_LT(across_k, 0.1 * growth_over_second_at(1.0));
	EXPECT_EQ(cc.nb_reductions, 1);
}

TEST(Cubic, RenoFriendlyRegionAtShortRtt)
{
	Recorder cc(make_cc(CcAlgo::cubic, default_config()));
	// 1 ms RTT at 10 Gbit/s, loss at a window of ~200 packets: in the
	// 90 ms after the loss the cubic curve (a function of time) climbs ~3
	// packets, Reno with alpha 0.53 per RTT ~45.  CUBIC must follow the
	// faster of the two.
	const uint64_t rtt = 1 * kMs;
	LinkSim sim(cc, LinkConfig{.rate = 1'250'000'000, .base_rtt_ns = rtt,
		.drop = [](uint64_t seq, uint64_t) { return seq == 150; }});
	sim.run_until(20 * kMs);
	ASSERT_EQ(cc.nb_reductions, 1);
	ASSERT_NE(cc.recovery_end_ns, 0u);
	const double w_max = double(cc.cwnd_before_reduction);
	const double k_s = std::cbrt(0.3 * w_max / kMss / 0.4);
	const double alpha = 3.0 * (1.0 - 0.7) / (1.0 + 0.7);
	const uint64_t epoch = cc.recovery_end_ns;
	for (double t : {0.03, 0.06, 0.09}) {
		sim.run_until(epoch + uint64_t(t * 1e9));
		const double rounds = t * 1e9 / double(sim.srtt_ns());
		const double w_est = 0.7 * w_max + alpha * rounds * kMss;
		ASSERT_LT(w_est, w_max) << "still below the old window, so alpha applies";
		EXPECT_NEAR(double(cc.cwnd()), w_est, 0.03 * w_max) << "t=" << t;
		EXPECT_GT(double(cc.cwnd()), w_cubic(t, k_s, w_max) + 0.05 * w_max) << "t=" << t;
	}
}

TEST(Cubic, FastConvergenceLowersPlateauWhenWindowShrinks)
{
	Recorder cc(make_cc(CcAlgo::cubic, default_config()));
	// A first loss sets W_max; a second, 2 s later while the window is still
	// below that W_max, means the flow's share is shrinking: RFC 9438 §4.7
	// aims the new curve at cwnd * (1 + 0.7) / 2 instead of cwnd.
	bool second_dropped = false;
	LinkSim sim(cc, LinkConfig{.rate = 125'000'000, .base_rtt_ns = 100 * kMs,
		.drop = [&](uint64_t seq, uint64_t now_ns) {
			if (seq == 1500)
				return true;
			if (!second_dropped && now_ns >= 3 * kSec) {
				second_dropped = true;
				return true;
			}
			return false;
		}});
	sim.run_until(2 * kSec);
	ASSERT_EQ(cc.nb_reductions, 1);
	const double first_w_max = double(cc.cwnd_before_reduction);
	sim.run_until(4 * kSec);
	ASSERT_EQ(cc.nb_reductions, 2);
	const double w2 = double(cc.cwnd_before_reduction);
	ASSERT_LT(w2, first_w_max);
	EXPECT_NEAR(double(cc.cwnd_after_reduction), 0.7 * w2, 1.0);
	const double w_max = w2 * (1.0 + 0.7) / 2.0;
	const double k_s = std::cbrt((w_max - 0.7 * w2) / kMss / 0.4);
	const uint64_t epoch = cc.recovery_end_ns;
	for (double t : {1.0, k_s, k_s + 1.0}) {
		sim.run_until(epoch + uint64_t(t * 1e9));
		EXPECT_NEAR(double(cc.cwnd()), w_cubic(t, k_s, w_max), 0.015 * w2) << "t=" << t;
	}
	EXPECT_EQ(cc.nb_reductions, 2);
}

} // namespace
} // namespace dwcp::amst
