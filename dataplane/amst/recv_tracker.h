#pragma once
// What one stream has received of the peer's packet numbers: the ranges to
// acknowledge, and the duplicate / too-old check (the replay window).
//
// Ranges are kept newest first in a fixed array.  In order arrival extends
// ranges_[0] in O(1); a packet that fills a gap touches the few ranges above it.
// When more than kMaxRanges ranges would be needed, the oldest ones are folded
// into the floor: every packet number at or below floor_ counts as seen.  Such an
// old packet is refused as a duplicate, which is what a replay window does; the
// floor is never acknowledged, so a packet that never arrived is never reported as
// received.  The sender gave it up as lost long before (a packet that far back is
// older than the packet-threshold loss rule allows).
#include <cstdint>

#include "dataplane/amst/wire.h"

namespace dwcp::amst {

class RecvTracker {
public:
	static constexpr size_t kMaxRanges = 64;

	enum class Result : uint8_t { fresh, duplicate };

	// Records packet `pn` arriving at now_ns.  Returns duplicate when it was seen
	// before (or is older than the window); such a packet must not be processed.
	Result on_packet(uint64_t pn, uint64_t now_ns, bool ack_eliciting);

	// Whether pn would be accepted, without recording it (used before authenticating).
	bool is_duplicate(uint64_t pn) const;

	// Fills an ACK frame with up to wire::kMaxAckRanges ranges, newest first, and
	// marks everything pending as acknowledged.
	void fill_ack(uint16_t stream_id, uint64_t now_ns, wire::AckFrame *f);

	bool any_received() const { return nb_ranges_ > 0 || floor_valid_; }
	uint64_t largest() const { return nb_ranges_ ? ranges_[0].hi : floor_; }
	// Ack-eliciting packets received since the last ACK was built.
	uint32_t unacked_eliciting() const { return unacked_eliciting_; }
	// An ACK should go out at once: a packet arrived out of order (it fills or opens a
	// gap), which the sender's loss detection wants to hear about quickly.
	bool ack_urgent() const { return urgent_; }
	uint64_t oldest_unacked_ns() const { return oldest_unacked_ns_; }
	bool ack_pending() const { return unacked_eliciting_ > 0; }

private:
	void insert_range(size_t at, uint64_t lo, uint64_t hi);
	void erase_range(size_t at);

	wire::AckRange ranges_[kMaxRanges];
	size_t nb_ranges_ = 0;
	uint64_t floor_ = 0; // every pn <= floor_ is seen, when floor_valid_
	bool floor_valid_ = false;
	uint64_t largest_recv_ns_ = 0;
	uint64_t oldest_unacked_ns_ = 0;
	uint32_t unacked_eliciting_ = 0;
	bool urgent_ = false;
};

} // namespace dwcp::amst
