#include "dataplane/amst/cc/loss_based.h"

#include <algorithm>

namespace dwcp::amst {

namespace {

// RFC 9406 §4.3 constants.  L (the per-ACK growth limit) is infinite because
// every dwcp stream is paced.
constexpr uint64_t kHyStartMinRttThreshNs = 4'000'000;
constexpr uint64_t kHyStartMaxRttThreshNs = 16'000'000;
constexpr uint64_t kHyStartMinRttDivisor = 8;
constexpr uint32_t kHyStartRttSamples = 8;
constexpr double kCssGrowthDivisor = 4.0;
constexpr uint32_t kCssRounds = 5;

// A sender within this many packets of cwnd counts as cwnd-limited in
// congestion avoidance: ACKs arrive one packet at a time, so in flight sits a
// packet or two below the window even when the window is the limit.
constexpr double kCwndLimitedSlackPackets = 3.0;

} // namespace

LossBasedController::LossBasedController(const CcConfig &cfg)
	: mss_(cfg.mss),
	  min_cwnd_(double(cfg.min_cwnd_packets) * cfg.mss),
	  cwnd_(double(std::max(cfg.initial_cwnd_packets, cfg.min_cwnd_packets)) * cfg.mss),
	  ssthresh_(1e300),
	  initial_rtt_ns_(cfg.initial_rtt_ns != 0 ? cfg.initial_rtt_ns : 100'000'000)
{
	publish();
}

void LossBasedController::on_packet_sent(uint64_t, uint32_t bytes, uint64_t bytes_in_flight)
{
	const uint64_t in_flight = bytes_in_flight + bytes;
	max_sent_in_flight_ = std::max(max_sent_in_flight_, in_flight);
	// The window refilled: samples are no longer app-limited.
	if (app_limited_ && double(in_flight) + mss_ > cwnd_)
		app_limited_ = false;
}

void LossBasedController::on_app_limited()
{
	app_limited_ = true;
}

bool LossBasedController::cwnd_limited(const AckEvent &ev)
{
	// RFC 9002 §7.8: a window the sender does not fill says nothing about the
	// path, so it must not grow.  Slow start counts as limited from half the
	// window on, as Linux does (tcp_is_cwnd_limited): a paced sender in slow
	// start never has the whole window out when the ACKs arrive.
	const double peak = double(std::max(ev.prior_in_flight, max_sent_in_flight_));
	max_sent_in_flight_ = ev.bytes_in_flight;
	if (app_limited_)
		return false;
	if (in_slow_start())
		return 2.0 * peak >= cwnd_;
	return peak + kCwndLimitedSlackPackets * mss_ >= cwnd_;
}

void LossBasedController::on_ack(const AckEvent &ev)
{
	if (ev.srtt_ns != 0)
		srtt_ns_ = ev.srtt_ns;
	const bool round_start = rounds_.on_ack(ev);
	const bool limited = cwnd_limited(ev);

	if (in_recovery(ev.newest_acked_sent_ns)) {
		// RFC 9002 §7.3.2: ACKs of packets sent before the recovery period
		// started do not grow the window.  (We see only the newest packet
		// of the ACK; once it was sent after the start, recovery is over.)
	} else {
		recovering_ = false;
		if (in_slow_start()) {
			hystart_on_ack(ev, round_start);
			// HyStart++ may just have ended slow start (ssthresh = cwnd).
			if (limited && in_slow_start())
				grow_in_slow_start(ev.newly_acked);
		} else if (limited) {
			grow_in_congestion_avoidance(ev);
		} else {
			on_not_cwnd_limited(ev);
		}
	}
	cwnd_ = std::max(cwnd_, min_cwnd_);
	last_ack_ns_ = ev.now_ns;
	publish();
}

void LossBasedController::grow_in_slow_start(uint64_t acked)
{
	cwnd_ += hystart_.in_css ? double(acked) / kCssGrowthDivisor : double(acked);
}

void LossBasedController::hystart_on_ack(const AckEvent &ev, bool round_start)
{
	HyStart &h = hystart_;
	if (round_start) {
		if (h.in_css && ++h.css_rounds >= kCssRounds) {
			// RFC 9406 §4.2: CSS lasted CSS_ROUNDS without the delay
			// going back down: the increase was real, leave slow start.
			ssthresh_ = cwnd_;
			h = HyStart{};
			return;
		}
		h.last_round_min_rtt_ns = h.current_round_min_rtt_ns;
		h.current_round_min_rtt_ns = UINT64_MAX;
		h.rtt_sample_count = 0;
	}
	if (ev.rtt_ns == 0)
		return;
	h.current_round_min_rtt_ns = std::min(h.current_round_min_rtt_ns, ev.rtt_ns);
	++h.rtt_sample_count;
	if (h.rtt_sample_count < kHyStartRttSamples || h.last_round_min_rtt_ns == UINT64_MAX ||
	    h.current_round_min_rtt_ns == UINT64_MAX)
		return;
	if (!h.in_css) {
		const uint64_t thresh = std::clamp(h.last_round_min_rtt_ns / kHyStartMinRttDivisor,
			kHyStartMinRttThreshNs, kHyStartMaxRttThreshNs);
		if (h.current_round_min_rtt_ns >= h.last_round_min_rtt_ns + thresh) {
			h.in_css = true;
			h.css_baseline_min_rtt_ns = h.current_round_min_rtt_ns;
			h.css_rounds = 0;
		}
	} else if (h.current_round_min_rtt_ns < h.css_baseline_min_rtt_ns) {
		// The delay rise was a spike, not a queue: back to slow start.
		h.in_css = false;
		h.css_baseline_min_rtt_ns = UINT64_MAX;
	}
}

void LossBasedController::on_loss(const LossEvent &ev)
{
	// One reduction per recovery period (RFC 9002 §7.3.2): the packets lost
	// from the flight that caused the first reduction are the same event.
	if (ev.lost_bytes == 0 || in_recovery(ev.largest_lost_sent_ns))
		return;
	recovery_started_ = true;
	recovering_ = true;
	recovery_start_ns_ = ev.now_ns;
	hystart_ = HyStart{};
	reduce_on_congestion(ev.now_ns);
	cwnd_ = std::max(cwnd_, min_cwnd_);
	ssthresh_ = std::max(ssthresh_, min_cwnd_);
	publish();
}

void LossBasedController::on_persistent_congestion(uint64_t)
{
	// RFC 9002 §7.6.2: collapse to the minimum window and forget the recovery
	// period, so that slow start from the minimum can be cut again at once.
	// ssthresh stays where the congestion event that came with it put it.
	cwnd_ = min_cwnd_;
	recovery_started_ = false;
	recovering_ = false;
	hystart_ = HyStart{};
	on_window_collapsed();
	publish();
}

const char *LossBasedController::state_name() const
{
	if (recovering_)
		return "recovery";
	if (in_slow_start())
		return hystart_.in_css ? "conservative_slow_start" : "slow_start";
	return "congestion_avoidance";
}

void LossBasedController::publish()
{
	cwnd_out_ = uint64_t(cwnd_);
	const double gain = in_slow_start() ? kSlowStartPacingGain : kPacingGain;
	const double bytes_per_s = cwnd_ * 1e9 / double(rtt_estimate_ns());
	pacing_rate_out_ = uint64_t(bytes_per_s * gain);
	bandwidth_out_ = srtt_ns_ != 0 ? uint64_t(bytes_per_s) : 0;
}

} // namespace dwcp::amst
