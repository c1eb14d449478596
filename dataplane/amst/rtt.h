#pragma once
// Round-trip time estimation as in RFC 9002 §5: min, smoothed and variance, with the
// peer's reported ack delay taken out of samples above min_rtt.
#include <algorithm>
#include <cstdint>

namespace dwcp::amst {

class RttEstimator {
public:
	static constexpr uint64_t kGranularityNs = 1'000'000; // RFC 9002 kGranularity

	explicit RttEstimator(uint64_t initial_rtt_ns) : smoothed_(initial_rtt_ns), rttvar_(initial_rtt_ns / 2) {}

	void on_sample(uint64_t latest_ns, uint64_t ack_delay_ns)
	{
		latest_ = latest_ns;
		if (!has_sample_) {
			has_sample_ = true;
			min_ = smoothed_ = latest_ns;
			rttvar_ = latest_ns / 2;
			return;
		}
		min_ = std::min(min_, latest_ns);
		uint64_t adjusted = latest_ns;
		if (latest_ns >= min_ + ack_delay_ns)
			adjusted = latest_ns - ack_delay_ns;
		uint64_t dev = smoothed_ > adjusted ? smoothed_ - adjusted : adjusted - smoothed_;
		rttvar_ = (3 * rttvar_ + dev) / 4;
		smoothed_ = (7 * smoothed_ + adjusted) / 8;
	}

	bool has_sample() const { return has_sample_; }
	uint64_t latest() const { return latest_; }
	uint64_t min() const { return has_sample_ ? min_ : smoothed_; }
	uint64_t smoothed() const { return smoothed_; }
	uint64_t rttvar() const { return rttvar_; }
	// Probe timeout (RFC 9002 §6.2.1), before the exponential backoff.
	uint64_t pto(uint64_t max_ack_delay_ns) const
	{
		return smoothed_ + std::max(4 * rttvar_, kGranularityNs) + max_ack_delay_ns;
	}
	// How long after a later packet was acknowledged an earlier one counts as lost:
	// 9/8 of the larger of the smoothed and latest RTT (RFC 9002 §6.1.2).
	uint64_t loss_delay() const
	{
		uint64_t base = std::max(smoothed_, latest_);
		return std::max(base + base / 8, kGranularityNs);
	}

private:
	bool has_sample_ = false;
	uint64_t latest_ = 0;
	uint64_t min_ = 0;
	uint64_t smoothed_;
	uint64_t rttvar_;
};

} // namespace dwcp::amst
