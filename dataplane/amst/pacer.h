#pragma once
// Software packet pacing: a token bucket measured in nanoseconds of link time.
//
// Each stream is paced at min(its controller's pacing rate, its share of the link,
// link_rate * 0.95 / streams).  Tokens accrue at `rate` and cap at `burst` bytes, so
// after an idle spell a stream may send at most one burst back to back.  A burst is
// about one quantum of link time (see burst_for): 1 ms where only the congestion
// controller sets the pace, 8 ms where the stream has a share of a declared link
// ceiling (StreamSenderConfig::ceiling_quantum_ns).  There a worker that
// lost its core for a few milliseconds (to the peer gateway, the WAN emulator, the
// kernel writing the received file back) sends the slots it missed when it runs
// again instead of losing them - a sender at the link ceiling on two shared cores
// sent 900-920 of its 950 Mbit/s with a 1 ms quantum, 930-940 with 4 ms and
// 940-950 with 8 ms - while a bottleneck queue sees at most 8 ms of data at once,
// and only after such a stall (a worker on a core of its own never falls behind).
//
// Time comes in from the caller (TSC converted to ns in the workers, a virtual clock
// in tests), so the pacer is exact and deterministic.
#include <algorithm>
#include <cstdint>

namespace dwcp::amst {

class Pacer {
public:
	// Bytes a stream may send back to back: `quantum_ns` worth at `rate`, at least
	// two packets.
	static uint64_t burst_for(uint64_t rate_bytes_per_s, uint32_t packet_bytes, uint64_t quantum_ns)
	{
		uint64_t b = rate_bytes_per_s * quantum_ns / 1'000'000'000ull;
		return std::max<uint64_t>(b, 2ull * packet_bytes);
	}

	void set_rate(uint64_t rate_bytes_per_s, uint64_t burst_bytes, uint64_t now_ns)
	{
		refill(now_ns);
		rate_ = std::max<uint64_t>(rate_bytes_per_s, 1);
		burst_ = burst_bytes;
		burst_ns_ = int64_t(std::min<unsigned __int128>((unsigned __int128)burst_bytes * kNs / rate_, INT64_MAX / 2));
		credit_ns_ = std::min(credit_ns_, burst_ns_);
	}

	uint64_t rate() const { return rate_; }
	uint64_t burst() const { return burst_; } // bytes, as last set

	// Whether a packet may leave now.  A packet may take the bucket below zero by at
	// most its own cost, so the rate is exact on average whatever the packet sizes.
	bool can_send(uint64_t now_ns)
	{
		refill(now_ns);
		return credit_ns_ > 0;
	}

	void on_sent(uint64_t bytes) { credit_ns_ -= int64_t((bytes * kNs + rate_ - 1) / rate_); }

	// When can_send will next be true (now if it already is).
	uint64_t next_send_ns(uint64_t now_ns)
	{
		refill(now_ns);
		return credit_ns_ > 0 ? now_ns : now_ns + uint64_t(1 - credit_ns_);
	}

private:
	static constexpr uint64_t kNs = 1'000'000'000ull;

	// Credit is kept in nanoseconds of link time, not bytes: a refill every few
	// hundred nanoseconds then loses nothing to integer division.
	void refill(uint64_t now_ns)
	{
		if (now_ns > last_ns_) {
			credit_ns_ = std::min(credit_ns_ + int64_t(now_ns - last_ns_), burst_ns_);
			last_ns_ = now_ns;
		}
	}

	uint64_t rate_ = 1;
	uint64_t burst_ = 0;
	int64_t burst_ns_ = 0;
	int64_t credit_ns_ = 0;
	uint64_t last_ns_ = 0;
};

} // namespace dwcp::amst
