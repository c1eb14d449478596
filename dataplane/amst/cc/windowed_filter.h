#pragma once
// A running maximum over a sliding window, kept in three samples.
//
// This is Kathleen Nichols' windowed min/max filter as BBR uses it for the
// bottleneck bandwidth: the best sample, the best sample after it, and the best
// sample after that.  When the best one ages out of the window the next one
// takes its place, so the filter never needs the full history, and an update is
// a handful of compares (the filter runs once per ACK).
//
// "Time" is whatever the owner counts in; BBR counts packet-timed round trips so
// that the window means "the last N round trips" whatever the RTT is.
#include <cstdint>

namespace dwcp::amst {

class WindowedMaxFilter {
public:
	explicit WindowedMaxFilter(uint64_t window) : window_(window) {}

	uint64_t best() const { return samples_[0].value; }

	void reset(uint64_t time, uint64_t value)
	{
		samples_[0] = samples_[1] = samples_[2] = Sample{time, value};
	}

	void update(uint64_t time, uint64_t value)
	{
		const Sample fresh{time, value};
		// A new overall best, or nothing in the window is recent enough to
		// keep: the new sample is all the filter knows.
		if (value >= samples_[0].value || time - samples_[2].time > window_) {
			reset(time, value);
			return;
		}
		if (value >= samples_[1].value)
			samples_[1] = samples_[2] = fresh;
		else if (value >= samples_[2].value)
			samples_[2] = fresh;

		const uint64_t age = time - samples_[0].time;
		if (age > window_) {
			// The best sample expired: promote the others.  The second may
			// have expired too, then the third (and newest) becomes the best.
			samples_[0] = samples_[1];
			samples_[1] = samples_[2];
			samples_[2] = fresh;
			if (time - samples_[0].time > window_) {
				samples_[0] = samples_[1];
				samples_[1] = samples_[2];
				samples_[2] = fresh;
			}
		} else if (samples_[1].time == samples_[0].time && age > window_ / 4) {
			// Nothing better came in the first quarter of the window: keep a
			// candidate from the second quarter so that the best sample does
			// not fall straight to the newest one when it expires.
			samples_[1] = samples_[2] = fresh;
		} else if (samples_[2].time == samples_[1].time && age > window_ / 2) {
			samples_[2] = fresh;
		}
	}

private:
	struct Sample {
		uint64_t time = 0;
		uint64_t value = 0;
	};
	uint64_t window_;
	Sample samples_[3];
};

} // namespace dwcp::amst
