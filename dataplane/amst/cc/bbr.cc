// BBR, after draft-cardwell-iccrg-bbr-congestion-control: a model of the path
// (bottleneck bandwidth from a max filter of delivery-rate samples, propagation
// delay from a min filter of RTT samples) sets the pacing rate and the window.
//
// It differs from the draft where dwcp's paths call for it:
//
// * Loss.  The WAN links carry 1-2% random loss, which says nothing about
//   congestion; BBRv2/v3 react to any round with more than 2% loss and would
//   run these links at a fraction of their rate.  Here the bandwidth model never
//   reacts to loss.  A round whose loss rate exceeds CcConfig::bbr_loss_threshold
//   (10% by default) and which lost at least kMinCongestiveLossPackets is taken
//   as congestion: in Startup it ends Startup, later it caps in-flight data at
//   inflight_hi = beta * (in flight during that round), never below beta * BDP.
//   inflight_hi then grows back by 1, 2, 4, ... packets per clean round and goes
//   away once it no longer binds.  Losses of packets sent before the cap was set
//   are the same episode and are not counted again.
// * ProbeRTT.  Entered only when min_rtt has not been refreshed for 10 s, and
//   an RTT sample within max(min_rtt/64, 0.25 ms) of min_rtt refreshes it: on a
//   path without a standing queue BBR then never probes.  When it does, it
//   holds half a BDP in flight (BBRv2) rather than 4 packets, for 200 ms and at
//   least one round, and the lowest RTT it sees meanwhile becomes min_rtt
//   (even if higher than the old one: the route changed).  Until then the old
//   min_rtt stays, so that the half BDP is computed from a delay without queue.
// * The rate ceiling.  The pacer enforces the stream's share of the link, so
//   the delivery rate can never exceed it: once the estimate reaches
//   kCeilingFullFraction of it, the pipe is as full as it will be and Startup
//   ends without waiting three rounds for a plateau.
//   In ProbeBW such a stream skips the 0.75 drain phase while the RTT shows no
//   queue: its probe could not exceed the ceiling, so there is none to drain.
// * Random loss under the ceiling.  Delivery-rate samples count only what
//   arrived, so under 2% random loss a stream paced at its ceiling measures 98%
//   of it and would cruise there; its probe, capped at the ceiling, can never
//   show the difference, and 2% of the link would stay idle for good.  A stream
//   whose estimate is within 3% of its ceiling therefore paces at the ceiling
//   while the path shows no queue (smoothed RTT within kQueueFreeRtt of
//   min_rtt).  When a queue shows (the path is slower than the ceiling says),
//   it paces at its estimate again.
// * Recovery.  There is no packet conservation on loss (BBRv1 cut cwnd to the
//   data in flight in each recovery): with random loss every round would be a
//   recovery round.
#include <algorithm>
#include <cstdint>
#include <memory>

#include "dataplane/amst/cc/cc_internal.h"
#include "dataplane/amst/cc/round_counter.h"
#include "dataplane/amst/cc/windowed_filter.h"

namespace dwcp::amst {

namespace {

// 2/ln(2) would double the sending rate per round; the draft's 2.77 is the
// smallest gain that still does once the cwnd gain of 2 is taken into account.
constexpr double kStartupPacingGain = 2.77;
constexpr double kStartupCwndGain = 2.0;
constexpr double kDrainPacingGain = 1.0 / kStartupPacingGain;
constexpr double kCwndGain = 2.0;
constexpr double kProbeRttCwndGain = 0.5;
// ProbeBW gain cycle: probe up for a round, drain what that queued, cruise six.
constexpr double kGainCycle[] = {1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0};
constexpr uint32_t kGainCycleLen = sizeof(kGainCycle) / sizeof(kGainCycle[0]);
// The max filter spans a whole gain cycle plus two rounds, so the sample from
// the last probe-up phase survives until the next one.
constexpr uint64_t kBtlBwFilterRounds = kGainCycleLen + 2;
constexpr uint64_t kMinRttWindowNs = 10'000'000'000;
constexpr uint64_t kMinRttToleranceFloorNs = 250'000;
constexpr uint64_t kMinRttToleranceDivisor = 64;
constexpr uint64_t kProbeRttDurationNs = 200'000'000;
// Startup's plateau test: three rounds without 25% growth.
constexpr double kFullBwGrowth = 1.25;
constexpr uint32_t kFullBwRounds = 3;
// Delivery-rate samples of a stream paced at exactly its ceiling land just
// under it (a sample spans slightly more time than the bytes it counts); 90%
// leaves room for that and for the ACK clock's jitter.
constexpr double kCeilingFullFraction = 0.9;
// A stream paces at its ceiling (rather than at its estimate) only when the
// estimate is within 3% of it: random loss of up to 3% is what the links dwcp
// runs on carry, and on a path whose policer or shallow buffer sits just under
// the ceiling (no queue to show in the RTT) the overdrive, and the loss it
// makes, stays under 3%.  Between 90% and 97% the stream cruises at its
// estimate, as BBR does.
constexpr double kCeilingCruiseFraction = 0.97;
// How far the smoothed RTT may sit above min_rtt while a stream held at its
// ceiling still paces at the ceiling: 1/32 of min_rtt, at least 1 ms (3 ms on a
// 100 ms path, a queue a thirtieth of the pipe).
constexpr uint64_t kQueueFreeRttDivisor = 32;
constexpr uint64_t kQueueFreeRttFloorNs = 1'000'000;
// BBRv2's multiplicative decrease of inflight_hi.
constexpr double kBeta = 0.7;
// A round must lose at least this many packets to count as congested, so that
// one unlucky random loss in a small window (4 packets: 25%) does not.
constexpr uint64_t kMinCongestiveLossPackets = 3;
constexpr uint64_t kNoInflightHi = UINT64_MAX;

class Bbr final : public CongestionController {
public:
	explicit Bbr(const CcConfig &cfg);

	CcAlgo algo() const override { return CcAlgo::bbr; }
	void on_packet_sent(uint64_t now_ns, uint32_t bytes, uint64_t bytes_in_flight) override;
	void on_ack(const AckEvent &ev) override;
	void on_loss(const LossEvent &ev) override;
	void on_persistent_congestion(uint64_t now_ns) override;
	void set_rate_ceiling(uint64_t bytes_per_s) override
	{
		// The ceiling is this stream's share of the link's.  When the share grows
		// (the session runs fewer streams) and the stream was held at its old
		// share, the link had room for it all along: take the new share as the
		// estimate rather than spend gain cycles rediscovering it, or every
		// change of stream count would cost the session a dip in delivery.
		if (bytes_per_s > rate_ceiling_ && filled_pipe_ && held_at_ceiling())
			btlbw_.reset(rounds_.count(), uint64_t(double(btlbw_.best()) * double(bytes_per_s) /
								double(rate_ceiling_)));
		rate_ceiling_ = bytes_per_s;
	}
	uint64_t cwnd() const override { return cwnd_; }
	uint64_t pacing_rate() const override { return pacing_rate_; }
	const char *state_name() const override;
	uint64_t bandwidth_estimate() const override { return btlbw_.best(); }

private:
	enum class State : uint8_t { startup, drain, probe_bw, probe_rtt };

	uint64_t bdp(double gain) const;
	// The stream's estimate has reached its share of the link: the pacer, not
	// the path, is what holds it.
	bool held_at_ceiling() const
	{
		return rate_ceiling_ != 0 && double(btlbw_.best()) >= kCeilingFullFraction * double(rate_ceiling_);
	}
	// The smoothed RTT shows no queue on the path.
	bool queue_free() const
	{
		return srtt_ns_ != 0 && min_rtt_ns_ != UINT64_MAX &&
		       srtt_ns_ <= min_rtt_ns_ + std::max(min_rtt_ns_ / kQueueFreeRttDivisor, kQueueFreeRttFloorNs);
	}
	uint64_t probe_rtt_cwnd() const
	{
		return std::max(bdp(kProbeRttCwndGain), min_cwnd_);
	}
	bool update_min_rtt(const AckEvent &ev);
	void end_loss_round(const AckEvent &ev);
	void check_full_pipe(const AckEvent &ev, bool round_start);
	void check_drain(const AckEvent &ev);
	void update_gain_cycle(const AckEvent &ev);
	void check_probe_rtt(const AckEvent &ev, bool min_rtt_expired, bool round_start);
	void enter_startup();
	void enter_drain();
	void enter_probe_bw(uint64_t now_ns);
	void enter_probe_rtt();
	void advance_cycle_phase(uint64_t now_ns);
	void set_pacing_rate();
	void set_cwnd(const AckEvent &ev);
	uint32_t next_random();

	const uint64_t mss_;
	const uint64_t min_cwnd_;
	const uint64_t initial_cwnd_;
	const uint64_t initial_rtt_ns_;
	uint64_t rate_ceiling_;
	const double loss_threshold_;
	uint64_t random_state_;

	State state_ = State::startup;
	double pacing_gain_ = kStartupPacingGain;
	double cwnd_gain_ = kStartupCwndGain;
	uint64_t cwnd_;
	uint64_t pacing_rate_ = 0;
	uint64_t srtt_ns_ = 0;

	// The model.
	WindowedMaxFilter btlbw_{kBtlBwFilterRounds};
	RoundCounter rounds_;
	uint64_t min_rtt_ns_ = UINT64_MAX;
	uint64_t min_rtt_stamp_ns_ = 0;

	// Startup's plateau detection.
	bool filled_pipe_ = false;
	uint64_t full_bw_ = 0;
	uint32_t full_bw_count_ = 0;

	// ProbeBW.
	uint32_t cycle_idx_ = 0;
	uint64_t cycle_stamp_ns_ = 0;
	bool phase_had_loss_ = false;

	// ProbeRTT.
	uint64_t prior_cwnd_ = 0;
	uint64_t probe_rtt_done_ns_ = 0; // 0 until in flight has come down
	bool probe_rtt_round_done_ = false;
	uint64_t probe_rtt_min_ns_ = UINT64_MAX; // lowest RTT seen in this ProbeRTT

	// Loss per round and the cap it may set.
	uint64_t round_lost_bytes_ = 0;
	uint64_t round_start_delivered_ = 0;
	uint64_t round_max_in_flight_ = 0;
	uint64_t loss_episode_start_ns_ = 0; // losses of packets sent before it are counted already
	bool loss_episode_started_ = false;
	uint64_t inflight_hi_ = kNoInflightHi;
	uint64_t inflight_hi_step_;
};

Bbr::Bbr(const CcConfig &cfg)
	: mss_(cfg.mss),
	  min_cwnd_(uint64_t(cfg.min_cwnd_packets) * cfg.mss),
	  initial_cwnd_(uint64_t(std::max(cfg.initial_cwnd_packets, cfg.min_cwnd_packets)) * cfg.mss),
	  initial_rtt_ns_(cfg.initial_rtt_ns != 0 ? cfg.initial_rtt_ns : 100'000'000),
	  rate_ceiling_(cfg.rate_ceiling),
	  loss_threshold_(cfg.bbr_loss_threshold > 0.0 ? cfg.bbr_loss_threshold : 0.10),
	  // splitmix-style scramble, so that seeds 1, 2, 3 start far apart.
	  random_state_((uint64_t(cfg.seed) + 1) * 0x9e3779b97f4a7c15ull),
	  cwnd_(initial_cwnd_),
	  inflight_hi_step_(cfg.mss)
{
	set_pacing_rate();
}

uint32_t Bbr::next_random()
{
	// xorshift64: the only randomness BBR needs is which phase to start
	// ProbeBW in, and it must be reproducible from the seed.
	random_state_ ^= random_state_ << 13;
	random_state_ ^= random_state_ >> 7;
	random_state_ ^= random_state_ << 17;
	return uint32_t(random_state_ >> 32);
}

uint64_t Bbr::bdp(double gain) const
{
	const uint64_t bw = btlbw_.best();
	if (bw == 0 || min_rtt_ns_ == UINT64_MAX)
		return initial_cwnd_;
	return uint64_t(gain * double(bw) * double(min_rtt_ns_) * 1e-9);
}

const char *Bbr::state_name() const
{
	switch (state_) {
	case State::startup:
		return "startup";
	case State::drain:
		return "drain";
	case State::probe_bw:
		return "probe_bw";
	case State::probe_rtt:
		return "probe_rtt";
	}
	return "unknown";
}

void Bbr::on_packet_sent(uint64_t, uint32_t bytes, uint64_t bytes_in_flight)
{
	round_max_in_flight_ = std::max(round_max_in_flight_, bytes_in_flight + bytes);
}

void Bbr::on_ack(const AckEvent &ev)
{
	if (ev.srtt_ns != 0)
		srtt_ns_ = ev.srtt_ns;
	const bool round_start = rounds_.on_ack(ev);
	// App-limited samples only say the path carries at least that much: they
	// may raise the estimate but never replace a higher one.
	if (ev.delivery_rate != 0 && (!ev.is_app_limited || ev.delivery_rate >= btlbw_.best()))
		btlbw_.update(rounds_.count(), ev.delivery_rate);
	const bool min_rtt_expired = update_min_rtt(ev);
	if (round_start)
		end_loss_round(ev);
	check_full_pipe(ev, round_start);
	check_drain(ev);
	update_gain_cycle(ev);
	check_probe_rtt(ev, min_rtt_expired, round_start);
	set_pacing_rate();
	set_cwnd(ev);
}

bool Bbr::update_min_rtt(const AckEvent &ev)
{
	const bool expired = min_rtt_ns_ != UINT64_MAX &&
		ev.now_ns > min_rtt_stamp_ns_ + kMinRttWindowNs;
	if (ev.rtt_ns == 0)
		return expired;
	if (min_rtt_ns_ == UINT64_MAX || ev.rtt_ns < min_rtt_ns_) {
		min_rtt_ns_ = ev.rtt_ns;
		min_rtt_stamp_ns_ = ev.now_ns;
		return expired;
	}
	if (state_ == State::probe_rtt)
		probe_rtt_min_ns_ = std::min(probe_rtt_min_ns_, ev.rtt_ns);
	const uint64_t tolerance = std::max(min_rtt_ns_ / kMinRttToleranceDivisor, kMinRttToleranceFloorNs);
	if (ev.rtt_ns <= min_rtt_ns_ + tolerance) {
		// Close enough to the minimum: the path still shows its propagation
		// delay, which is all ProbeRTT would find out.
		min_rtt_stamp_ns_ = ev.now_ns;
	}
	// A sample far above it, even after the window expired, does not replace
	// min_rtt here (BBRv1 would): it may include a standing queue, and
	// ProbeRTT, which sizes its window from min_rtt, would then hold too much
	// in flight to drain that queue.  ProbeRTT measures the new value.
	return expired;
}

void Bbr::end_loss_round(const AckEvent &ev)
{
	const uint64_t delivered = ev.delivered - round_start_delivered_;
	const uint64_t lost = round_lost_bytes_;
	const bool congested = lost >= kMinCongestiveLossPackets * mss_ &&
		double(lost) > loss_threshold_ * double(lost + delivered);
	if (congested) {
		// Losses of packets sent before now belong to this episode.
		loss_episode_started_ = true;
		loss_episode_start_ns_ = ev.now_ns;
		inflight_hi_step_ = mss_;
		if (!filled_pipe_) {
			// BBRv2: heavy loss in Startup means the pipe is full; what
			// the last round delivered is what it holds.
			filled_pipe_ = true;
			inflight_hi_ = std::max(bdp(1.0), delivered);
		} else {
			const uint64_t base = std::min(round_max_in_flight_, inflight_hi_);
			inflight_hi_ = std::max({uint64_t(kBeta * double(base)),
				uint64_t(kBeta * double(bdp(1.0))), min_cwnd_});
			if (state_ == State::probe_bw && pacing_gain_ > 1.0)
				advance_cycle_phase(ev.now_ns);
		}
	} else if (inflight_hi_ != kNoInflightHi) {
		// A clean round: probe the cap back up, faster each round.
		inflight_hi_ += inflight_hi_step_;
		inflight_hi_step_ = std::min(inflight_hi_step_ * 2, inflight_hi_);
		if (inflight_hi_ >= bdp(kCwndGain))
			inflight_hi_ = kNoInflightHi; // it no longer binds
	}
	round_lost_bytes_ = 0;
	round_start_delivered_ = ev.delivered;
	round_max_in_flight_ = ev.bytes_in_flight;
}

void Bbr::check_full_pipe(const AckEvent &ev, bool round_start)
{
	if (filled_pipe_)
		return;
	if (held_at_ceiling()) {
		filled_pipe_ = true;
		return;
	}
	if (!round_start || ev.is_app_limited)
		return;
	if (double(btlbw_.best()) >= kFullBwGrowth * double(full_bw_)) {
		full_bw_ = btlbw_.best();
		full_bw_count_ = 0;
		return;
	}
	if (++full_bw_count_ >= kFullBwRounds)
		filled_pipe_ = true;
}

void Bbr::check_drain(const AckEvent &ev)
{
	if (state_ == State::startup && filled_pipe_)
		enter_drain();
	if (state_ == State::drain && ev.bytes_in_flight <= bdp(1.0))
		enter_probe_bw(ev.now_ns);
}

void Bbr::update_gain_cycle(const AckEvent &ev)
{
	if (state_ != State::probe_bw || min_rtt_ns_ == UINT64_MAX)
		return;
	const uint64_t elapsed = ev.now_ns - cycle_stamp_ns_;
	const bool full_length = elapsed > min_rtt_ns_;
	bool next = full_length;
	if (pacing_gain_ > 1.0) {
		// Probe up until in flight shows the higher rate (gain * BDP), the
		// window stops it, or loss says there is no more room.  The cap of
		// two min_rtt covers a pacer held at the rate ceiling, where in
		// flight never gets there.
		const uint64_t want = std::min(bdp(pacing_gain_), cwnd_ > mss_ ? cwnd_ - mss_ : cwnd_);
		next = (full_length && (phase_had_loss_ || ev.prior_in_flight >= want)) ||
			elapsed > 2 * min_rtt_ns_;
	} else if (pacing_gain_ < 1.0) {
		// Drain ends early once the probe's queue is gone.
		next = full_length || ev.bytes_in_flight <= bdp(1.0);
	}
	if (next)
		advance_cycle_phase(ev.now_ns);
}

void Bbr::advance_cycle_phase(uint64_t now_ns)
{
	cycle_idx_ = (cycle_idx_ + 1) % kGainCycleLen;
	cycle_stamp_ns_ = now_ns;
	pacing_gain_ = kGainCycle[cycle_idx_];
	phase_had_loss_ = false;
	// A stream held at its rate ceiling probed no higher than the ceiling, so
	// unless the RTT shows a queue (a path slower than the ceiling) it queued
	// nothing: a 0.75 phase would only give away a quarter of a round trip of
	// the link (3% of every cycle).
	if (pacing_gain_ < 1.0 && held_at_ceiling() && queue_free())
		pacing_gain_ = 1.0;
}

void Bbr::check_probe_rtt(const AckEvent &ev, bool min_rtt_expired, bool round_start)
{
	if (state_ != State::probe_rtt && min_rtt_expired)
		enter_probe_rtt();
	if (state_ != State::probe_rtt)
		return;
	if (probe_rtt_done_ns_ == 0) {
		if (ev.bytes_in_flight <= probe_rtt_cwnd()) {
			// In flight is down: hold it there for the duration and for
			// a full round of packets sent at this level.
			probe_rtt_done_ns_ = ev.now_ns + kProbeRttDurationNs;
			probe_rtt_round_done_ = false;
			rounds_.restart(ev.delivered);
		}
		return;
	}
	if (round_start)
		probe_rtt_round_done_ = true;
	if (probe_rtt_round_done_ && ev.now_ns >= probe_rtt_done_ns_) {
		// What the path showed with the queue drained is its delay now,
		// higher than before if the route changed.
		if (probe_rtt_min_ns_ != UINT64_MAX)
			min_rtt_ns_ = probe_rtt_min_ns_;
		min_rtt_stamp_ns_ = ev.now_ns;
		cwnd_ = std::max(cwnd_, prior_cwnd_);
		if (filled_pipe_)
			enter_probe_bw(ev.now_ns);
		else
			enter_startup();
	}
}

void Bbr::enter_startup()
{
	state_ = State::startup;
	pacing_gain_ = kStartupPacingGain;
	cwnd_gain_ = kStartupCwndGain;
}

void Bbr::enter_drain()
{
	state_ = State::drain;
	pacing_gain_ = kDrainPacingGain;
	cwnd_gain_ = kStartupCwndGain;
}

void Bbr::enter_probe_bw(uint64_t now_ns)
{
	state_ = State::probe_bw;
	cwnd_gain_ = kCwndGain;
	// Start in any phase but the 0.75 one (index 1: there is nothing to
	// drain yet), chosen from the seed so that streams probe at different
	// times.  advance_cycle_phase() moves one on, so stop one before it.
	const uint32_t r = next_random() % (kGainCycleLen - 1);
	const uint32_t first = r == 0 ? 0 : r + 1;
	cycle_idx_ = (first + kGainCycleLen - 1) % kGainCycleLen;
	advance_cycle_phase(now_ns);
}

void Bbr::enter_probe_rtt()
{
	prior_cwnd_ = std::max(prior_cwnd_, cwnd_);
	state_ = State::probe_rtt;
	pacing_gain_ = 1.0;
	cwnd_gain_ = kCwndGain;
	probe_rtt_done_ns_ = 0;
	probe_rtt_round_done_ = false;
	probe_rtt_min_ns_ = UINT64_MAX;
}

void Bbr::set_pacing_rate()
{
	const uint64_t bw = btlbw_.best();
	if (bw == 0) {
		// No sample yet: pace the initial window over the RTT we know or
		// guess, at Startup's gain.
		const uint64_t rtt = srtt_ns_ != 0 ? srtt_ns_ : initial_rtt_ns_;
		pacing_rate_ = uint64_t(kStartupPacingGain * double(initial_cwnd_) * 1e9 / double(rtt));
		return;
	}
	uint64_t rate = uint64_t(pacing_gain_ * double(bw));
	if (state_ == State::probe_bw && rate_ceiling_ != 0 && queue_free() &&
	    double(bw) >= kCeilingCruiseFraction * double(rate_ceiling_))
		rate = std::max(rate, rate_ceiling_);
	// In Startup the early samples are smaller than the initial guess; the
	// rate only goes up until the pipe is known to be full.
	if (filled_pipe_ || rate > pacing_rate_)
		pacing_rate_ = rate;
}

void Bbr::set_cwnd(const AckEvent &ev)
{
	const uint64_t target = bdp(cwnd_gain_);
	if (filled_pipe_)
		cwnd_ = std::min(cwnd_ + ev.newly_acked, target);
	else if (cwnd_ < target || ev.delivered < initial_cwnd_)
		cwnd_ += ev.newly_acked;
	cwnd_ = std::max(cwnd_, min_cwnd_);
	if (state_ == State::probe_rtt)
		cwnd_ = std::min(cwnd_, probe_rtt_cwnd());
	if (inflight_hi_ != kNoInflightHi)
		cwnd_ = std::min(cwnd_, std::max(inflight_hi_, min_cwnd_));
	if (state_ != State::probe_rtt)
		prior_cwnd_ = 0;
}

void Bbr::on_loss(const LossEvent &ev)
{
	phase_had_loss_ = true;
	if (loss_episode_started_ && ev.largest_lost_sent_ns <= loss_episode_start_ns_)
		return;
	round_lost_bytes_ += ev.lost_bytes;
}

void Bbr::on_persistent_congestion(uint64_t)
{
	// Nothing got through for several RTTs: the model may be stale.  Start
	// again from the minimum window; set_cwnd() grows it back by the bytes
	// acknowledged (doubling per round) up to the model's target, which the
	// ACKs will have corrected by then.
	cwnd_ = min_cwnd_;
}

} // namespace

std::unique_ptr<CongestionController> make_bbr(const CcConfig &cfg)
{
	return std::make_unique<Bbr>(cfg);
}

} // namespace dwcp::amst
