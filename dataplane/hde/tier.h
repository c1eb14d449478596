#pragma once
// Compression tiers and the policy that picks one.
//
//   tier    codec                 when
//   none    stored                local links, RTT < 1 ms: the link outruns any codec
//   igzip   ISA-L deflate lvl 1   1-10 ms, and whenever a slower tier starves the link
//   zstd3   zstd level 3          regional, 10-100 ms
//   zstd9   zstd level 9          WAN, >= 100 ms; structured state may also quantise
//                                 float arrays that opted in (state_delta.h)
//
// Compression must never slow a transfer down: TierPolicy starts from the RTT tier
// and steps down one tier while the compressors (all cores together) produce less
// than the link could carry, and back up, never above the RTT tier, once they have
// clear headroom again.  It is a pure state machine: samples in, tier out, no clock.
//
// A first round (no baseline: every byte goes through the codec) is CPU-bound on
// all but slow links, and gets no tier of its own: the policy lowers it from the
// throughput samples like any other data.  On the first-round memory image of
// perf/hde-bench (256 MiB, one Zen4 core, 256 KiB chunks, zero pages as ZERO ops)
// zstd3 gives 3.02, zstd -3's ratio on the whole file, at 0.4 GB/s; zstd9 3.14 at
// 0.06; igzip 2.82 at 0.6-0.95; none 1.48 at 5.7.  No codec here reaches zstd -3's
// ratio at 1 GB/s a core, so a fast link takes igzip or none on such data.
// By content class (pages of each class compressed per 256 KiB chunk), the best
// codec per class is still below 0.75 GB/s: text igzip 2.66 at 0.56, zstd1 2.85
// at 0.32; zero-rich zstd -1 3.34 at 0.60; code-like igzip 1.75 at 0.35 (zstd
// -20 no faster: the literals' entropy coding is the cost); high-entropy is
// stored either way.  Per-class zstd frames at levels 1/-1/1 gave 2.99 at 1.14x
// the speed of zstd3: not kept.  Reaching both needs a cheaper entropy stage or
// a transform of structured pages, i.e. a codec the decoder does not have yet.
#include <cstdint>
#include <string_view>

namespace dwcp::hde {

enum class Tier : uint8_t {
	none = 0,
	igzip = 1,
	zstd3 = 2,
	zstd9 = 3,
};

const char *tier_name(Tier t);
// Accepts the names above and the digits 0-3; false on anything else.
bool parse_tier(std::string_view s, Tier &out);
// The tier for a measured round-trip time, before any CPU feedback.
Tier tier_for_rtt(uint64_t rtt_us);

class TierPolicy {
public:
	// Moves are at most one tier per sample; a step back up needs kRaiseAfter
	// samples in a row with headroom, so the tier does not flap.
	static constexpr uint32_t kRaiseAfter = 8;

	void observe_rtt(uint64_t rtt_us);
	// One interval of measurements: bytes the compressors consumed per second
	// (summed over the cores that compress) and the link's current send rate limit
	// in bytes per second (from the transport's pacing).
	void observe_throughput(double compress_in_bytes_per_s, double link_bytes_per_s, double ratio);
	Tier tier() const { return current_; }
	Tier rtt_tier() const { return rtt_tier_; }

private:
	Tier rtt_tier_ = Tier::zstd3;
	Tier current_ = Tier::zstd3;
	uint32_t headroom_samples_ = 0;
	bool throttled_ = false;
};

} // namespace dwcp::hde
