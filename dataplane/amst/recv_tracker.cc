#include "dataplane/amst/recv_tracker.h"

#include <algorithm>

namespace dwcp::amst {

bool RecvTracker::is_duplicate(uint64_t pn) const
{
	if (floor_valid_ && pn <= floor_)
		return true;
	for (size_t i = 0; i < nb_ranges_; i++) {
		if (pn > ranges_[i].hi)
			return false;
		if (pn >= ranges_[i].lo)
			return true;
	}
	return false;
}

void RecvTracker::insert_range(size_t at, uint64_t lo, uint64_t hi)
{
	if (nb_ranges_ == kMaxRanges) {
		// Fold the oldest range into the floor: it and everything below count as seen.
		floor_ = ranges_[kMaxRanges - 1].hi;
		floor_valid_ = true;
		nb_ranges_--;
		if (at > nb_ranges_) {
			// The new range itself is older than every kept one: below the new floor.
			return;
		}
	}
	std::copy_backward(ranges_ + at, ranges_ + nb_ranges_, ranges_ + nb_ranges_ + 1);
	ranges_[at] = {lo, hi};
	nb_ranges_++;
}

void RecvTracker::erase_range(size_t at)
{
	std::copy(ranges_ + at + 1, ranges_ + nb_ranges_, ranges_ + at);
	nb_ranges_--;
}

RecvTracker::Result RecvTracker::on_packet(uint64_t pn, uint64_t now_ns, bool ack_eliciting)
{
	if (is_duplicate(pn))
		return Result::duplicate;
	if (nb_ranges_ && pn == ranges_[0].hi + 1) {
		ranges_[0].hi = pn; // the common case: the next packet in order
	} else if (!nb_ranges_ || pn > ranges_[0].hi) {
		// A jump past the largest: a gap opens, which the sender should learn of now.
		if (nb_ranges_ || pn != (floor_valid_ ? floor_ + 1 : 0))
			urgent_ = true;
		insert_range(0, pn, pn);
	} else {
		// Fills part of a gap below the largest: find the first range below pn.
		urgent_ = true;
		size_t i = 0;
		while (i < nb_ranges_ && ranges_[i].lo > pn)
			i++;
		// ranges_[i-1] is above pn, ranges_[i] (if any) below.
		bool joins_above = ranges_[i - 1].lo == pn + 1;
		bool joins_below = i < nb_ranges_ && ranges_[i].hi + 1 == pn;
		if (joins_above && joins_below) {
			ranges_[i - 1].lo = ranges_[i].lo;
			erase_range(i);
		} else if (joins_above) {
			ranges_[i - 1].lo = pn;
		} else if (joins_below) {
			ranges_[i].hi = pn;
		} else {
			insert_range(i, pn, pn);
		}
	}
	if (pn == largest())
		largest_recv_ns_ = now_ns;
	if (ack_eliciting) {
		if (!unacked_eliciting_)
			oldest_unacked_ns_ = now_ns;
		unacked_eliciting_++;
	}
	return Result::fresh;
}

void RecvTracker::fill_ack(uint16_t stream_id, uint64_t now_ns, wire::AckFrame *f)
{
	f->stream_id = stream_id;
	uint64_t delay = now_ns > largest_recv_ns_ ? now_ns - largest_recv_ns_ : 0;
	f->ack_delay_us = uint32_t(std::min<uint64_t>(delay / 1000, UINT32_MAX));
	size_t n = std::min(nb_ranges_, wire::kMaxAckRanges);
	for (size_t i = 0; i < n; i++)
		f->ranges[i] = ranges_[i];
	// The floor is never reported: it stands for "too old to accept", and the gaps
	// folded into it were never received.  The sender has declared those packets lost
	// by the packet-threshold rule long before a range is folded.
	f->nb_ranges = uint8_t(n);
	unacked_eliciting_ = 0;
	urgent_ = false;
}

} // namespace dwcp::amst
