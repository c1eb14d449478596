#pragma once
// Packet-timed round trips, counted from delivery-rate samples.
//
// A round trip ends when the newest packet an ACK acknowledges was sent after
// the previous round ended, that is when its prior_delivered (C.delivered at its
// send time) has caught up with C.delivered at the end of the last round
// (draft-cardwell-iccrg-bbr-congestion-control, "Round Counting").  Counting
// rounds this way needs no clock, and a round is one flight of data whatever
// the RTT does meanwhile.
#include <cstdint>

#include "dataplane/amst/cc/cc.h"

namespace dwcp::amst {

class RoundCounter {
public:
	// Returns true when this ACK starts a new round.  ACKs without a delivery
	// sample (delivered == 0) never do.
	bool on_ack(const AckEvent &ev)
	{
		if (ev.delivered == 0 || ev.prior_delivered < next_round_delivered_)
			return false;
		next_round_delivered_ = ev.delivered;
		++count_;
		return true;
	}

	// Makes the current round end with the first packet sent from now on
	// (ProbeRTT uses it to hold for at least one full round).
	void restart(uint64_t delivered) { next_round_delivered_ = delivered; }

	uint64_t count() const { return count_; }

private:
	uint64_t next_round_delivered_ = 0;
	uint64_t count_ = 0;
};

} // namespace dwcp::amst
