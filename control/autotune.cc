#include "control/autotune.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dwcp::control {

uint16_t initial_streams(double link_mbps, double rtt_ms, uint16_t lo, uint16_t hi)
{
	double rule = 16;
	if (rtt_ms > 0)
		rule = std::min(256.0, std::max(16.0, link_mbps / (rtt_ms * 0.1)));
	return uint16_t(std::clamp<double>(std::floor(rule), lo, hi));
}

namespace {

std::string fmt(const char *f, double a, double b, double c)
{
	char buf[160];
	snprintf(buf, sizeof(buf), f, a, b, c);
	return buf;
}

} // namespace

uint16_t StreamTuner::step_up(uint16_t n) const
{
	return uint16_t(std::min<int>(cfg_.max_streams, std::max(n + 1, n * 3 / 2)));
}

uint16_t StreamTuner::step_down(uint16_t n) const { return uint16_t(std::max<int>(cfg_.min_streams, n * 3 / 4)); }

StreamTuner::StreamTuner(const AutotuneConfig &cfg, uint16_t start, std::string start_reason)
	: cfg_(cfg), cur_(std::clamp(start, cfg.min_streams, cfg.max_streams)), base_n_(cur_),
	  reason_(std::move(start_reason))
{
}

void StreamTuner::start_window(const AutotuneSample &s, bool settle)
{
	uint64_t two_rtt = 2 * s.srtt_ns;
	settle_until_ns_ = settle ? s.now_ns + std::max(cfg_.settle_ns, two_rtt) : s.now_ns;
	win_len_ns_ = std::max<uint64_t>(cfg_.min_window_ns, uint64_t(cfg_.rtt_windows) * s.srtt_ns);
	in_window_ = false;
	win_app_limited_ = false;
}

AutotuneDecision StreamTuner::move_to(uint16_t n, Phase next, std::string why)
{
	phase_ = next;
	bool changed = n != cur_;
	if (changed)
		nb_changes_++;
	cur_ = n;
	reason_ = std::move(why);
	return {cur_, changed, reason_};
}

AutotuneDecision StreamTuner::observe(const AutotuneSample &s)
{
	if (!win_len_ns_)
		start_window(s, true);
	if (s.now_ns < settle_until_ns_)
		return {cur_, false, reason_};
	if (!in_window_) {
		in_window_ = true;
		win_start_ns_ = s.now_ns;
		win_start_bytes_ = s.delivered_bytes;
		win_app_limited_ = false;
		return {cur_, false, reason_};
	}
	win_app_limited_ |= s.app_limited;
	if (s.now_ns - win_start_ns_ < win_len_ns_)
		return {cur_, false, reason_};

	double secs = double(s.now_ns - win_start_ns_) / 1e9;
	double rate = double(s.delivered_bytes - win_start_bytes_) / secs;
	if (win_app_limited_) {
		// Measure again at the same count: this window says nothing about the link.
		start_window(s, false);
		return {cur_, false, reason_};
	}
	last_rate_ = rate;
	double mbit = rate * 8 / 1e6;
	AutotuneDecision d;
	switch (phase_) {
	case Phase::baseline:
	case Phase::hold:
		if (phase_ == Phase::hold && holds_left_ && --holds_left_) {
			start_window(s, false);
			return {cur_, false, reason_};
		}
		base_n_ = cur_;
		base_rate_ = rate;
		if (cur_ < cfg_.max_streams) {
			uint16_t up = step_up(cur_);
			d = move_to(up, Phase::probe_up,
				    fmt("probe up %.0f->%.0f streams from %.0f Mbit/s", base_n_, up, mbit));
		} else {
			uint16_t down = step_down(cur_);
			d = move_to(down, Phase::probe_down,
				    fmt("probe down %.0f->%.0f streams from %.0f Mbit/s", base_n_, down, mbit));
		}
		break;
	case Phase::probe_up: {
		double gain = rate / std::max(base_rate_, 1.0) - 1;
		if (gain >= cfg_.gain_min) {
			base_n_ = cur_;
			base_rate_ = rate;
			uint16_t up = step_up(cur_);
			if (up == cur_) {
				d = move_to(cur_, Phase::hold,
					    fmt("keep %.0f streams: delivery %+.0f%% (%.0f Mbit/s), at the maximum", cur_,
						gain * 100, mbit));
				holds_left_ = cfg_.hold_windows;
			} else {
				d = move_to(up, Phase::probe_up,
					    fmt("keep %.0f streams (delivery %+.0f%%), probe up to %.0f", base_n_, gain * 100,
						up));
			}
		} else {
			uint16_t down = step_down(base_n_);
			if (down < base_n_)
				d = move_to(down, Phase::probe_down,
					    fmt("back from %.0f streams (delivery %+.0f%%), probe down to %.0f", cur_,
						gain * 100, down));
			else {
				d = move_to(base_n_, Phase::hold,
					    fmt("back to %.0f streams: more gave %+.0f%% (%.0f Mbit/s)", base_n_, gain * 100,
						mbit));
				holds_left_ = cfg_.hold_windows;
			}
		}
		break;
	}
	case Phase::probe_down: {
		double change = rate / std::max(base_rate_, 1.0) - 1;
		if (change >= -cfg_.loss_max) {
			base_n_ = cur_;
			base_rate_ = std::max(base_rate_, rate);
			uint16_t down = step_down(cur_);
			if (down < cur_)
				d = move_to(down, Phase::probe_down,
					    fmt("keep %.0f streams (delivery %+.1f%%), probe down to %.0f", cur_,
						change * 100, down));
			else {
				d = move_to(cur_, Phase::hold,
					    fmt("keep %.0f streams: delivery %+.1f%% (%.0f Mbit/s), at the minimum", cur_,
						change * 100, mbit));
				holds_left_ = cfg_.hold_windows;
			}
		} else {
			d = move_to(base_n_, Phase::hold,
				    fmt("back to %.0f streams: fewer lost %.1f%% of delivery (%.0f Mbit/s)", base_n_,
					-change * 100, mbit));
			holds_left_ = cfg_.hold_windows;
		}
		break;
	}
	}
	start_window(s, d.changed);
	return d;
}

} // namespace dwcp::control
