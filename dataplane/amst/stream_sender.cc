#include "dataplane/amst/stream_sender.h"

#include <algorithm>
#include <bit>

namespace dwcp::amst {

StreamSender::StreamSender(const StreamSenderConfig &cfg)
	: cfg_(cfg), cap_(std::bit_ceil<uint64_t>(std::max<uint32_t>(cfg.max_inflight_packets, 64))), mask_(cap_ - 1),
	  rtt_(cfg.initial_rtt_ns)
{
	ring_.assign(cap_, Sent{});
	skip_.assign(cap_, 0);
	// Every lost packet's ref waits here until re-sent; there are never more of them
	// than packets the ring can hold in flight, twice over for refs that are lost,
	// re-sent and lost again before the queue is compacted.
	lost_.reserve(2 * cap_);
	CcConfig cc{.mss = cfg.mss + cfg.packet_overhead,
		    .initial_cwnd_packets = cfg.initial_cwnd_packets,
		    .min_cwnd_packets = cfg.min_cwnd_packets};
	cc.initial_rtt_ns = cfg.initial_rtt_ns;
	// Streams start their probing cycles at different phases, so they do not all
	// probe for bandwidth in the same round trip.
	cc.seed = cfg.stream_id;
	cc_ = make_cc(cfg.cc, cc);
	update_pacing(0);
}

uint64_t StreamSender::next_unresolved(uint64_t pn)
{
	// Union-find over packet numbers: skip_ of an unresolved packet points at itself,
	// of a resolved one at a later packet.  Two passes: find, then compress the path.
	uint64_t root = pn;
	while (root < next_pn_ && skip_[root & mask_] != root)
		root = skip_[root & mask_];
	while (pn < root) {
		uint64_t next = skip_[pn & mask_];
		skip_[pn & mask_] = root;
		pn = next;
	}
	return root;
}

void StreamSender::resolve(uint64_t pn) { skip_[pn & mask_] = pn + 1; }

void StreamSender::advance_base() { base_pn_ = next_unresolved(base_pn_); }

bool StreamSender::can_send(uint64_t now_ns, uint32_t bytes)
{
	(void)bytes;
	if (ring_full() || bytes_in_flight_ >= cc_->cwnd())
		return false;
	return pacer_.can_send(now_ns);
}

void StreamSender::on_sent(uint64_t now_ns, uint32_t wire_bytes, bool eliciting, const PacketRef &ref)
{
	uint64_t pn = next_pn_++;
	Sent &s = slot(pn);
	stats_.packets_sent++;
	stats_.bytes_sent += wire_bytes;
	if (!eliciting) {
		// Not acknowledged, not in flight: nothing to wait for.
		s.state = kAcked;
		resolve(pn);
		if (base_pn_ == pn)
			base_pn_ = pn + 1;
		return;
	}
	if (bytes_in_flight_ == 0)
		first_sent_ns_ = delivered_ns_ = now_ns;
	s = Sent{.sent_ns = now_ns,
		 .delivered = delivered_,
		 .delivered_ns = delivered_ns_,
		 .first_sent_ns = first_sent_ns_,
		 .ref = ref,
		 .bytes = wire_bytes,
		 .state = kOutstanding,
		 .eliciting = true,
		 .app_limited = app_limited_until_ != 0};
	skip_[pn & mask_] = pn;
	cc_->on_packet_sent(now_ns, wire_bytes, bytes_in_flight_);
	bytes_in_flight_ += wire_bytes;
	eliciting_in_flight_++;
	pacer_.on_sent(wire_bytes);
	last_eliciting_sent_ns_ = now_ns;
	if (!pto_at_ns_)
		rearm_pto(now_ns);
}

void StreamSender::on_app_limited()
{
	app_limited_until_ = std::max<uint64_t>(delivered_ + bytes_in_flight_, 1);
	cc_->on_app_limited();
}

bool StreamSender::on_ack(const wire::AckFrame &ack, uint64_t now_ns, std::vector<PacketRef> *acked)
{
	uint64_t largest = ack.ranges[0].hi;
	if (largest >= next_pn_)
		return false;
	uint64_t prior_in_flight = bytes_in_flight_;
	uint64_t newly_acked = 0;
	bool largest_newly_acked = false;
	uint64_t largest_sent_ns = 0;
	// The rate sample comes from the most recently sent packet this ACK acknowledges.
	bool rs_valid = false;
	uint64_t rs_prior_delivered = 0, rs_prior_ns = 0, rs_send_elapsed = 0, rs_ack_elapsed = 0, rs_sent_ns = 0;
	bool rs_app_limited = false;

	for (size_t i = 0; i < ack.nb_ranges; i++) {
		const wire::AckRange &r = ack.ranges[i];
		if (r.hi < base_pn_)
			break; // ranges are newest first: the rest is older still
		for (uint64_t p = next_unresolved(std::max(r.lo, base_pn_)); p <= r.hi; p = next_unresolved(p + 1)) {
			Sent &s = slot(p);
			s.state = kAcked;
			resolve(p);
			bytes_in_flight_ -= s.bytes;
			eliciting_in_flight_--;
			newly_acked += s.bytes;
			delivered_ += s.bytes;
			delivered_ns_ = now_ns;
			stats_.packets_acked++;
			if (!rs_valid || s.delivered >= rs_prior_delivered) {
				rs_valid = true;
				rs_prior_delivered = s.delivered;
				rs_prior_ns = s.delivered_ns;
				rs_app_limited = s.app_limited;
				rs_send_elapsed = s.sent_ns - s.first_sent_ns;
				rs_ack_elapsed = now_ns - s.delivered_ns;
				rs_sent_ns = s.sent_ns;
				first_sent_ns_ = s.sent_ns;
			}
			if (p == largest) {
				largest_newly_acked = true;
				largest_sent_ns = s.sent_ns;
			}
			if (s.ref.len && acked)
				acked->push_back(s.ref);
		}
	}
	if (!any_acked_ || largest > largest_acked_) {
		largest_acked_ = largest;
		any_acked_ = true;
	}
	if (largest_newly_acked) {
		uint64_t ack_delay = std::min<uint64_t>(uint64_t(ack.ack_delay_us) * 1000, cfg_.peer_max_ack_delay_ns);
		rtt_.on_sample(now_ns - largest_sent_ns, ack_delay);
	}

	uint64_t lost_bytes = 0, largest_lost_sent = 0, first_lost_sent = 0, last_lost_sent = 0;
	detect_lost(now_ns, &lost_bytes, &largest_lost_sent, &first_lost_sent, &last_lost_sent);
	if (newly_acked) {
		if (app_limited_until_ && delivered_ > app_limited_until_)
			app_limited_until_ = 0;
		AckEvent ev{.now_ns = now_ns,
			    .newly_acked = newly_acked,
			    .bytes_in_flight = bytes_in_flight_,
			    .prior_in_flight = prior_in_flight,
			    .rtt_ns = largest_newly_acked ? rtt_.latest() : 0,
			    .min_rtt_ns = rtt_.min(),
			    .srtt_ns = rtt_.smoothed(),
			    .delivered = delivered_,
			    .prior_delivered = rs_prior_delivered,
			    .is_app_limited = rs_app_limited,
			    .newest_acked_sent_ns = rs_sent_ns,
			    .newly_lost = lost_bytes};
		ev.interval_ns = std::max(rs_send_elapsed, rs_ack_elapsed);
		// A sample over less than one min RTT overstates the rate (ACK compression):
		// the BBR draft drops it.
		if (rs_valid && ev.interval_ns >= rtt_.min() && ev.interval_ns > 0)
			ev.delivery_rate = (delivered_ - rs_prior_delivered) * 1'000'000'000ull / ev.interval_ns;
		(void)rs_prior_ns;
		cc_->on_ack(ev);
		pto_backoff_ = 0;
	}
	if (lost_bytes) {
		cc_->on_loss(LossEvent{.now_ns = now_ns,
				       .lost_bytes = lost_bytes,
				       .largest_lost_sent_ns = largest_lost_sent,
				       .bytes_in_flight = bytes_in_flight_});
		// RFC 9002 §7.6: losses spanning more than three probe timeouts, with an RTT
		// sample to judge by, mean the path was gone, not just congested.
		uint64_t span = last_lost_sent - first_lost_sent;
		if (rtt_.has_sample() && span > 3 * rtt_.pto(cfg_.peer_max_ack_delay_ns)) {
			cc_->on_persistent_congestion(now_ns);
			stats_.persistent_congestion++;
		}
	}
	advance_base();
	rearm_pto(now_ns);
	update_pacing(now_ns);
	return true;
}

void StreamSender::detect_lost(uint64_t now_ns, uint64_t *lost_bytes, uint64_t *largest_lost_sent_ns,
			       uint64_t *first_lost_sent_ns, uint64_t *last_lost_sent_ns)
{
	loss_time_ns_ = 0;
	if (!any_acked_)
		return;
	uint64_t loss_delay = rtt_.loss_delay();
	for (uint64_t p = next_unresolved(base_pn_); p < largest_acked_; p = next_unresolved(p + 1)) {
		Sent &s = slot(p);
		// Packet threshold 3, time threshold 9/8 RTT (RFC 9002 §6.1).  Packets are in
		// send order, so the first one that is not yet lost ends the scan.
		if (largest_acked_ < p + 3 && s.sent_ns + loss_delay > now_ns) {
			loss_time_ns_ = s.sent_ns + loss_delay;
			break;
		}
		s.state = kLost;
		resolve(p);
		bytes_in_flight_ -= s.bytes;
		eliciting_in_flight_--;
		if (!*lost_bytes)
			*first_lost_sent_ns = s.sent_ns;
		*last_lost_sent_ns = s.sent_ns;
		*lost_bytes += s.bytes;
		*largest_lost_sent_ns = std::max(*largest_lost_sent_ns, s.sent_ns);
		stats_.packets_lost++;
		stats_.bytes_lost += s.bytes;
		if (s.ref.len) {
			if (lost_.size() == lost_.capacity() && lost_head_) {
				lost_.erase(lost_.begin(), lost_.begin() + ptrdiff_t(lost_head_));
				lost_head_ = 0;
			}
			lost_.push_back(s.ref);
		}
	}
}

void StreamSender::pop_lost()
{
	if (++lost_head_ == lost_.size()) {
		lost_.clear();
		lost_head_ = 0;
	}
}

bool StreamSender::oldest_in_flight(PacketRef *ref) const
{
	for (uint64_t p = base_pn_; p < next_pn_; p++) {
		const Sent &s = slot(p);
		if (s.state == kOutstanding && s.ref.len) {
			*ref = s.ref;
			return true;
		}
	}
	return false;
}

bool StreamSender::prev_in_flight(uint64_t *below, PacketRef *ref) const
{
	for (uint64_t p = std::min(*below, next_pn_); p > base_pn_;) {
		const Sent &s = slot(--p);
		if (s.state == kOutstanding && s.ref.len) {
			*ref = s.ref;
			*below = p;
			return true;
		}
	}
	*below = base_pn_;
	return false;
}

unsigned StreamSender::on_timer(uint64_t now_ns)
{
	if (loss_time_ns_ && now_ns >= loss_time_ns_) {
		uint64_t lost_bytes = 0, largest_lost_sent = 0, first = 0, last = 0;
		detect_lost(now_ns, &lost_bytes, &largest_lost_sent, &first, &last);
		if (lost_bytes)
			cc_->on_loss(LossEvent{.now_ns = now_ns,
					       .lost_bytes = lost_bytes,
					       .largest_lost_sent_ns = largest_lost_sent,
					       .bytes_in_flight = bytes_in_flight_});
		advance_base();
		rearm_pto(now_ns);
		update_pacing(now_ns);
		return 0;
	}
	if (pto_at_ns_ && now_ns >= pto_at_ns_) {
		stats_.pto_count++;
		pto_backoff_ = std::min<uint32_t>(pto_backoff_ + 1, 16);
		// Re-arm from now: the probes the owner sends next move it again.
		last_eliciting_sent_ns_ = now_ns;
		pto_at_ns_ = 0;
		rearm_pto(now_ns);
		return 2;
	}
	return 0;
}

uint64_t StreamSender::next_timer_ns() const
{
	if (loss_time_ns_)
		return loss_time_ns_;
	return pto_at_ns_ ? pto_at_ns_ : UINT64_MAX;
}

void StreamSender::rearm_pto(uint64_t now_ns)
{
	(void)now_ns;
	if (!eliciting_in_flight_) {
		pto_at_ns_ = 0;
		return;
	}
	uint64_t pto = rtt_.pto(cfg_.peer_max_ack_delay_ns);
	pto = std::min(pto << std::min<uint32_t>(pto_backoff_, 20), cfg_.max_pto_ns);
	pto_at_ns_ = last_eliciting_sent_ns_ + pto;
}

bool StreamSender::set_initial_window(uint32_t packets, uint64_t rtt_ns, uint64_t now_ns)
{
	if (next_pn_ != 0)
		return false;
	cfg_.initial_cwnd_packets = packets;
	cfg_.initial_rtt_ns = rtt_ns;
	rtt_ = RttEstimator(rtt_ns);
	CcConfig cc{.mss = cfg_.mss + cfg_.packet_overhead,
		    .initial_cwnd_packets = packets,
		    .min_cwnd_packets = cfg_.min_cwnd_packets};
	cc.initial_rtt_ns = rtt_ns;
	cc.seed = cfg_.stream_id;
	cc_ = make_cc(cfg_.cc, cc);
	if (rate_ceiling_)
		cc_->set_rate_ceiling(rate_ceiling_);
	update_pacing(now_ns);
	return true;
}

void StreamSender::set_rate_ceiling(uint64_t bytes_per_s, uint64_t now_ns)
{
	rate_ceiling_ = bytes_per_s;
	cc_->set_rate_ceiling(bytes_per_s);
	update_pacing(now_ns);
}

void StreamSender::update_pacing(uint64_t now_ns)
{
	uint64_t rate = cc_->pacing_rate();
	if (rate_ceiling_ && rate > rate_ceiling_)
		rate = rate_ceiling_;
	uint64_t burst = Pacer::burst_for(rate, cfg_.mss + cfg_.packet_overhead,
					  rate_ceiling_ ? cfg_.ceiling_quantum_ns : cfg_.pacing_quantum_ns);
	if (rate != pacer_.rate() || burst != pacer_.burst())
		pacer_.set_rate(rate, burst, now_ns);
}

} // namespace dwcp::amst
