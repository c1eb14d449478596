#include "dataplane/hde/tier.h"

namespace dwcp::hde {

const char *tier_name(Tier t)
{
	switch (t) {
	case Tier::none: return "none";
	case Tier::igzip: return "igzip";
	case Tier::zstd3: return "zstd3";
	case Tier::zstd9: return "zstd9";
	}
	return "unknown";
}

bool parse_tier(std::string_view s, Tier &out)
{
	static const struct {
		std::string_view name;
		Tier t;
	} names[] = {{"none", Tier::none}, {"0", Tier::none}, {"igzip", Tier::igzip}, {"1", Tier::igzip},
		{"zstd3", Tier::zstd3}, {"2", Tier::zstd3}, {"zstd9", Tier::zstd9}, {"3", Tier::zstd9}};
	for (const auto &n : names)
		if (n.name == s) {
			out = n.t;
			return true;
		}
	return false;
}

Tier tier_for_rtt(uint64_t rtt_us)
{
	if (rtt_us < 1000)
		return Tier::none;
	if (rtt_us < 10000)
		return Tier::igzip;
	if (rtt_us < 100000)
		return Tier::zstd3;
	return Tier::zstd9;
}

void TierPolicy::observe_rtt(uint64_t rtt_us)
{
	Tier t = tier_for_rtt(rtt_us);
	rtt_tier_ = t;
	// A tier lowered for the CPU stays lowered until throughput samples show
	// headroom; otherwise the tier follows the RTT both ways.
	if (current_ > t || !throttled_)
		current_ = t;
	if (current_ == t)
		throttled_ = false;
}

void TierPolicy::observe_throughput(double compress_in_bytes_per_s, double link_bytes_per_s, double ratio)
{
	// To keep the link full the compressors must consume link_bytes_per_s * ratio
	// input bytes per second.  Below that the CPU is the bottleneck; headroom means
	// 1.5 times what the link needs.
	if (ratio < 1.0)
		ratio = 1.0;
	double needed = link_bytes_per_s * ratio;
	if (compress_in_bytes_per_s < needed) {
		headroom_samples_ = 0;
		if (current_ != Tier::none) {
			current_ = Tier(uint8_t(current_) - 1);
			throttled_ = true;
		}
		return;
	}
	if (compress_in_bytes_per_s > 1.5 * needed) {
		if (++headroom_samples_ >= kRaiseAfter && current_ < rtt_tier_) {
			current_ = Tier(uint8_t(current_) + 1);
			headroom_samples_ = 0;
			if (current_ == rtt_tier_)
				throttled_ = false;
		}
	} else {
		headroom_samples_ = 0;
	}
}

} // namespace dwcp::hde
