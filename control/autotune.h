#pragma once
// Stream-count autotune: how many parallel streams a session runs.
//
// The spec's starting rule is min(256, max(16, mbps / (rtt_ms * 0.1))).  It gives
// fewer streams as RTT grows, the opposite of what window-limited TCP streams need;
// with paced streams the pipe is filled by pacing, not by stream count, and
// streams serve parallelism across queues and cores and loss isolation.  So the
// rule is only where the tuner starts; from there it follows what it measures:
//
//   hold at N for one measuring window, then probe up to N*1.5: keep it while
//   delivery rises by at least `gain_min`; otherwise go back and probe down to
//   N*0.75: keep that while delivery falls by no more than `loss_max` (fewer
//   streams cost less CPU and memory for the same goodput).  When neither probe
//   wins, hold for `hold_windows` windows and start over (the link may change).
//
// A window in which the sender was app-limited (out of data, or held back by the
// receiver's window) says nothing about the link and is discarded.  The tuner is a
// pure state machine: it reads no clock (samples carry now_ns) and does no I/O.
#include <cstdint>
#include <string>

namespace dwcp::control {

// min(256, max(16, mbps / (rtt_ms * 0.1))), then clamped to [lo, hi].
uint16_t initial_streams(double link_mbps, double rtt_ms, uint16_t lo = 1, uint16_t hi = 256);

struct AutotuneConfig {
	uint16_t min_streams = 1;
	uint16_t max_streams = 256;
	uint64_t min_window_ns = 1'000'000'000; // a measuring window lasts max(this, rtt_windows * srtt)
	uint32_t rtt_windows = 8;
	uint64_t settle_ns = 500'000'000;       // after a change, before measuring (>= 2 srtt is used too)
	double gain_min = 0.05;                 // an increase must raise delivery by 5%
	double loss_max = 0.02;                 // a decrease may lower it by at most 2%
	uint32_t hold_windows = 8;
};

// Cumulative counters of the whole session, sampled by the control plane.
struct AutotuneSample {
	uint64_t now_ns = 0;
	uint64_t delivered_bytes = 0; // acknowledged chunk bytes so far
	uint64_t srtt_ns = 0;
	bool app_limited = false;     // the sender lacked data or window at any time since the last sample
};

struct AutotuneDecision {
	uint16_t streams = 0;
	bool changed = false;
	std::string reason; // one line for the progress log and the benchmark table
};

class StreamTuner {
public:
	StreamTuner(const AutotuneConfig &cfg, uint16_t start, std::string start_reason);

	AutotuneDecision observe(const AutotuneSample &s);
	uint16_t streams() const { return cur_; }
	// The count the tuner returns to between probes: what it has chosen so far.
	uint16_t settled_streams() const { return phase_ == Phase::probe_up || phase_ == Phase::probe_down ? base_n_ : cur_; }
	const std::string &last_reason() const { return reason_; }
	// Delivery rate (bytes/s) measured in the last complete window, 0 before one.
	double last_rate() const { return last_rate_; }
	uint32_t nb_changes() const { return nb_changes_; }

private:
	enum class Phase { baseline, probe_up, probe_down, hold };
	AutotuneDecision move_to(uint16_t n, Phase next, std::string why);
	void start_window(const AutotuneSample &s, bool settle);
	// The probe sizes: x1.5 (at least +1) up, x0.75 down, within the configured bounds.
	uint16_t step_up(uint16_t n) const;
	uint16_t step_down(uint16_t n) const;

	AutotuneConfig cfg_;
	uint16_t cur_;
	uint16_t base_n_;       // the count the probes are compared against
	double base_rate_ = 0;  // its measured delivery rate
	Phase phase_ = Phase::baseline;
	uint32_t holds_left_ = 0;
	bool in_window_ = false;
	uint64_t win_start_ns_ = 0, win_len_ns_ = 0, win_start_bytes_ = 0, settle_until_ns_ = 0;
	bool win_app_limited_ = false;
	double last_rate_ = 0;
	uint32_t nb_changes_ = 0;
	std::string reason_;
};

} // namespace dwcp::control
