#pragma once
// A deterministic model of one stream over one bottleneck, for driving the
// congestion controllers in tests.  No clock, no sleeps: time is a counter that
// jumps from event to event.
//
// The sender is what the AMST stream does, reduced to what a controller sees:
// it sends full packets while bytes in flight + mss <= cwnd, spaced by
// min(pacing_rate, ceiling); it samples the delivery rate as
// draft-cardwell-iccrg-bbr-congestion-control ("Delivery Rate Estimation")
// describes; it keeps srtt/min_rtt as RFC 9002 does and calls on_loss before
// on_ack.  The path is a FIFO bottleneck of `rate` bytes/s with `buffer_bytes`
// of queue (tail drop), followed by `base_rtt_ns` of propagation and an optional
// deterministic loss function (random loss on the wire).  Every packet is acked
// on its own; a lost packet is declared lost when its ACK would have arrived,
// which is when the ACK of the packet behind it arrives.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <functional>

#include "dataplane/amst/cc/cc.h"

namespace dwcp::amst::test {

struct LinkConfig {
	uint64_t rate = 12'500'000;          // bottleneck, bytes/s
	uint64_t base_rtt_ns = 100'000'000;  // propagation RTT, may be raised between runs
	uint64_t buffer_bytes = UINT64_MAX;  // bottleneck queue
	uint64_t ceiling = 0;                // the stream's pacer ceiling, bytes/s; 0 = none
	uint64_t app_rate = 0;               // data the application offers, bytes/s; 0 = unlimited
	// Returns true to drop packet `seq` (sent at `now_ns`) after the bottleneck.
	std::function<bool(uint64_t seq, uint64_t now_ns)> drop;
};

// Reproducible "random" loss: drops about `fraction` of packets.
inline std::function<bool(uint64_t, uint64_t)> random_loss(double fraction, uint64_t seed = 1)
{
	uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
	return [state, fraction](uint64_t, uint64_t) mutable {
		state = state * 6364136223846793005ull + 1442695040888963407ull;
		return double(state >> 11) * 0x1.0p-53 < fraction;
	};
}

class LinkSim {
public:
	LinkSim(CongestionController &cc, LinkConfig cfg, uint32_t mss = 1424)
		: cc_(cc), cfg_(std::move(cfg)), mss_(mss) {}

	LinkConfig &config() { return cfg_; }
	uint64_t now() const { return now_; }
	uint64_t delivered() const { return delivered_; }
	uint64_t lost() const { return lost_; }
	uint64_t bytes_in_flight() const { return in_flight_; }
	uint64_t min_rtt_ns() const { return min_rtt_; }
	uint64_t srtt_ns() const { return srtt_; }
	uint64_t next_seq() const { return next_seq_; }

	// Called after every send and every ACK or loss, with the time.
	std::function<void(uint64_t now_ns)> after_event;

	void run_until(uint64_t until_ns)
	{
		for (;;) {
			const uint64_t ack_at = packets_.empty() ? UINT64_MAX : packets_.front().event_ns;
			const uint64_t send_at = next_send_time();
			const uint64_t t = std::min(ack_at, send_at);
			if (t > until_ns) {
				now_ = until_ns;
				return;
			}
			now_ = std::max(now_, t);
			if (ack_at <= send_at)
				complete_front();
			else
				send();
			if (after_event)
				after_event(now_);
		}
	}

	void run_for(uint64_t ns) { run_until(now_ + ns); }

private:
	struct Packet {
		uint64_t seq;
		uint64_t sent_ns;
		uint64_t event_ns; // ACK arrival, or when the loss is detected
		bool dropped;
		// Delivery-rate sampling state at send time.
		uint64_t delivered;
		uint64_t delivered_ns;
		uint64_t first_sent_ns;
		bool app_limited;
	};

	bool app_has_data_at(uint64_t t) const
	{
		if (cfg_.app_rate == 0)
			return true;
		// Bytes offered by t, counted from when the app rate was set.
		const double offered = double(t - app_epoch_ns_) * 1e-9 * double(cfg_.app_rate);
		return offered >= double(app_sent_ + mss_);
	}

	uint64_t next_send_time()
	{
		if (in_flight_ + mss_ > cc_.cwnd())
			return UINT64_MAX;
		uint64_t t = std::max(now_, next_pace_ns_);
		if (cfg_.app_rate != 0) {
			if (app_rate_seen_ != cfg_.app_rate) {
				app_rate_seen_ = cfg_.app_rate;
				app_epoch_ns_ = now_;
				app_sent_ = 0;
			}
			if (!app_has_data_at(t)) {
				// Window and pacer would allow a packet but there is no
				// data: the draft's app-limited marking.
				if (app_limited_until_ == 0) {
					app_limited_until_ = std::max<uint64_t>(delivered_ + in_flight_, 1);
					cc_.on_app_limited();
				}
				const double ready_s = double(app_sent_ + mss_) / double(cfg_.app_rate);
				t = std::max(t, app_epoch_ns_ + uint64_t(ready_s * 1e9) + 1);
			}
		} else {
			app_rate_seen_ = 0;
		}
		return t;
	}

	void send()
	{
		if (in_flight_ == 0) {
			first_sent_ns_ = now_;
			delivered_ns_ = now_;
		}
		Packet p{next_seq_++, now_, 0, false, delivered_, delivered_ns_, first_sent_ns_,
			app_limited_until_ != 0};
		const uint64_t queue_start = std::max(link_free_ns_, now_);
		const double queued = double(queue_start - now_) * 1e-9 * double(cfg_.rate);
		if (queued + mss_ > double(cfg_.buffer_bytes)) {
			p.dropped = true;
			p.event_ns = queue_start + cfg_.base_rtt_ns;
		} else {
			link_free_ns_ = queue_start + uint64_t(double(mss_) * 1e9 / double(cfg_.rate));
			p.event_ns = link_free_ns_ + cfg_.base_rtt_ns;
			if (cfg_.drop && cfg_.drop(p.seq, now_))
				p.dropped = true;
		}
		// Keep completion times in send order (a raised base RTT only
		// delays later packets; it never reorders).
		if (!packets_.empty())
			p.event_ns = std::max(p.event_ns, packets_.back().event_ns);
		cc_.on_packet_sent(now_, mss_, in_flight_);
		in_flight_ += mss_;
		app_sent_ += mss_;
		uint64_t rate = cc_.pacing_rate();
		if (cfg_.ceiling != 0)
			rate = std::min(rate, cfg_.ceiling);
		next_pace_ns_ = std::max(next_pace_ns_, now_) + uint64_t(double(mss_) * 1e9 / double(std::max<uint64_t>(rate, 1)));
		packets_.push_back(p);
	}

	void complete_front()
	{
		const Packet p = packets_.front();
		packets_.pop_front();
		const uint64_t prior_in_flight = in_flight_;
		in_flight_ -= mss_;
		if (p.dropped) {
			lost_ += mss_;
			LossEvent le;
			le.now_ns = now_;
			le.lost_bytes = mss_;
			le.largest_lost_sent_ns = p.sent_ns;
			le.bytes_in_flight = in_flight_;
			cc_.on_loss(le);
			return;
		}
		delivered_ += mss_;
		delivered_ns_ = now_;
		if (app_limited_until_ != 0 && delivered_ > app_limited_until_)
			app_limited_until_ = 0;

		const uint64_t rtt = now_ - p.sent_ns;
		min_rtt_ = std::min(min_rtt_, rtt);
		srtt_ = srtt_ == 0 ? rtt : (7 * srtt_ + rtt) / 8;

		AckEvent ev;
		ev.now_ns = now_;
		ev.newly_acked = mss_;
		ev.bytes_in_flight = in_flight_;
		ev.prior_in_flight = prior_in_flight;
		ev.rtt_ns = rtt;
		ev.min_rtt_ns = min_rtt_;
		ev.srtt_ns = srtt_;
		ev.delivered = delivered_;
		ev.prior_delivered = p.delivered;
		const uint64_t send_elapsed = p.sent_ns - p.first_sent_ns;
		const uint64_t ack_elapsed = now_ - p.delivered_ns;
		first_sent_ns_ = p.sent_ns;
		ev.interval_ns = std::max(send_elapsed, ack_elapsed);
		// A sample over less than min_rtt would overestimate (draft,
		// "IsSampleValid"); such samples carry no rate.
		if (ev.interval_ns != 0 && ev.interval_ns >= min_rtt_)
			ev.delivery_rate = uint64_t(double(delivered_ - p.delivered) * 1e9 / double(ev.interval_ns));
		ev.is_app_limited = p.app_limited;
		ev.newest_acked_sent_ns = p.sent_ns;
		cc_.on_ack(ev);
	}

	CongestionController &cc_;
	LinkConfig cfg_;
	const uint32_t mss_;
	std::deque<Packet> packets_;
	uint64_t now_ = 0;
	uint64_t next_seq_ = 0;
	uint64_t in_flight_ = 0;
	uint64_t delivered_ = 0;
	uint64_t delivered_ns_ = 0;
	uint64_t first_sent_ns_ = 0;
	uint64_t lost_ = 0;
	uint64_t link_free_ns_ = 0;
	uint64_t next_pace_ns_ = 0;
	uint64_t min_rtt_ = UINT64_MAX;
	uint64_t srtt_ = 0;
	uint64_t app_limited_until_ = 0;
	uint64_t app_rate_seen_ = 0;
	uint64_t app_epoch_ns_ = 0;
	uint64_t app_sent_ = 0;
};

} // namespace dwcp::amst::test
