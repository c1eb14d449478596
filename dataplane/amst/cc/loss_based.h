#pragma once
// What Reno and CUBIC share: slow start with HyStart++ (RFC 9406), recovery
// periods and persistent congestion as in RFC 9002 §7, the cwnd-limited test,
// and the pacing rate.  A subclass only says how the window grows in congestion
// avoidance and how far it falls on a congestion event.
//
// The window is kept as a double in bytes: congestion avoidance adds fractions
// of a packet per ACK (Reno mss*acked/cwnd, CUBIC (target-cwnd)/cwnd per
// packet), and a double keeps those without a separate byte counter.  cwnd(),
// pacing_rate() and bandwidth_estimate() return integers computed once per event.
#include <cstdint>

#include "dataplane/amst/cc/cc.h"
#include "dataplane/amst/cc/round_counter.h"

namespace dwcp::amst {

class LossBasedController : public CongestionController {
public:
	explicit LossBasedController(const CcConfig &cfg);

	void on_packet_sent(uint64_t now_ns, uint32_t bytes, uint64_t bytes_in_flight) override;
	void on_ack(const AckEvent &ev) override;
	void on_loss(const LossEvent &ev) override;
	void on_persistent_congestion(uint64_t now_ns) override;
	void on_app_limited() override;
	uint64_t cwnd() const override { return cwnd_out_; }
	uint64_t pacing_rate() const override { return pacing_rate_out_; }
	const char *state_name() const override;
	uint64_t bandwidth_estimate() const override { return bandwidth_out_; }

	// Linux's pacing ratios: sending at twice cwnd/srtt in slow start lets the
	// window double each round, 1.25 afterwards leaves room for RTT jitter so
	// that pacing, not the window, is never what holds a flow back.
	static constexpr double kSlowStartPacingGain = 2.0;
	static constexpr double kPacingGain = 1.25;

protected:
	// Grows cwnd_ for one ACK in congestion avoidance (never in recovery, never
	// when the window is not what limits the sender).
	virtual void grow_in_congestion_avoidance(const AckEvent &ev) = 0;
	// A congestion event opened a recovery period: set ssthresh_ and cwnd_.
	virtual void reduce_on_congestion(uint64_t now_ns) = 0;
	// The sender was not cwnd-limited on this ACK, so cwnd_ did not grow.
	virtual void on_not_cwnd_limited(const AckEvent &ev) {}
	// Persistent congestion collapsed the window to the minimum.
	virtual void on_window_collapsed() {}

	bool in_slow_start() const { return cwnd_ < ssthresh_; }
	// srtt, or the configured guess before the first sample.
	uint64_t rtt_estimate_ns() const { return srtt_ns_ != 0 ? srtt_ns_ : initial_rtt_ns_; }

	const double mss_;
	const double min_cwnd_;
	double cwnd_;
	double ssthresh_;
	uint64_t srtt_ns_ = 0;
	uint64_t last_ack_ns_ = 0; // now_ns of the previous on_ack, 0 before the first

private:
	// HyStart++ state (RFC 9406 §4.2); names follow the RFC.
	struct HyStart {
		uint64_t last_round_min_rtt_ns = UINT64_MAX;
		uint64_t current_round_min_rtt_ns = UINT64_MAX;
		uint64_t css_baseline_min_rtt_ns = UINT64_MAX;
		uint32_t rtt_sample_count = 0;
		uint32_t css_rounds = 0;
		bool in_css = false; // Conservative Slow Start
	};

	bool in_recovery(uint64_t sent_ns) const
	{
		return recovery_started_ && sent_ns <= recovery_start_ns_;
	}
	bool cwnd_limited(const AckEvent &ev);
	void hystart_on_ack(const AckEvent &ev, bool round_start);
	void grow_in_slow_start(uint64_t acked);
	void publish();

	const uint64_t initial_rtt_ns_;
	RoundCounter rounds_;
	HyStart hystart_;
	// RFC 9002 congestion_recovery_start_time; recovery_started_ is false
	// before the first congestion event and after persistent congestion.
	uint64_t recovery_start_ns_ = 0;
	bool recovery_started_ = false;
	bool recovering_ = false; // for state_name: no ACK of a post-recovery packet yet
	// Largest bytes in flight since the previous ACK, for cwnd_limited().
	uint64_t max_sent_in_flight_ = 0;
	bool app_limited_ = false;

	uint64_t cwnd_out_ = 0;
	uint64_t pacing_rate_out_ = 0;
	uint64_t bandwidth_out_ = 0;
};

} // namespace dwcp::amst
