#pragma once
// The sending half of one stream: packet numbers, the record of packets in flight,
// loss detection (RFC 9002 §6, per stream), delivery-rate sampling (for BBR), the
// stream's congestion controller and its pacer.
//
// It knows nothing of what the packets carry.  Each sent packet records a
// PacketRef (which chunk bytes, or which control-stream bytes); when a packet is
// declared lost its ref goes to the retransmission queue and the owner sends those
// bytes again in a new packet with a new number.  Nothing waits for one lost packet:
// new data keeps flowing while lost data is re-sent ahead of it.
//
// Packets in flight live in a ring indexed by packet number (numbers are dense per
// stream).  A "next unresolved" array with path compression lets an ACK, which
// repeats ranges acknowledged before, jump straight to the packets it can still
// change, so the cost of an ACK is the packets it newly acknowledges or loses plus
// its number of ranges, not the window.
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/amst/cc/cc.h"
#include "dataplane/amst/pacer.h"
#include "dataplane/amst/rtt.h"
#include "dataplane/amst/wire.h"

namespace dwcp::amst {

// What a packet carried, so that it can be sent again.
struct PacketRef {
	uint64_t off = 0;      // offset in the chunk, or in the control stream
	uint32_t chunk_id = 0; // data streams
	uint32_t len = 0;      // payload bytes; 0 for a packet with nothing to resend (ACK, PING)
};

struct StreamSenderConfig {
	uint16_t stream_id = 1;
	uint32_t mss = 1424;             // payload bytes in a full packet
	uint32_t packet_overhead = 90;   // wire bytes per packet besides the payload
	uint32_t max_inflight_packets = 1 << 14; // ring size (rounded up to a power of two)
	CcAlgo cc = CcAlgo::bbr;
	uint32_t initial_cwnd_packets = 32;
	// Never less in flight than this: twice the receiver's ack_every (Session), so
	// a window never sits waiting for the peer's delayed-ACK timer.  With 4, a
	// back-to-back path (RTT 0.1 ms) settled where every flight waited 1 ms for
	// its ACK and BBR measured 50 Mbit/s per stream.
	uint32_t min_cwnd_packets = 16;
	uint64_t initial_rtt_ns = 100'000'000;
	uint64_t peer_max_ack_delay_ns = 2'000'000;
	// Burst size in link time (see Pacer): 8 ms when the stream has a share of a
	// declared link ceiling (its pace, whatever the controller asks, stays within a
	// rate the path is declared to take), so a worker that lost its core makes up
	// the slots it missed; 1 ms without one, where BBR's startup and probes run
	// above the bottleneck's rate and a larger burst only overflows its queue.
	// Only at the ceiling would not do: slots lost to a stall lower the delivery
	// samples, the controller's pace drops under the ceiling, and more are lost.
	uint64_t pacing_quantum_ns = 1'000'000;
	uint64_t ceiling_quantum_ns = 8'000'000;
	uint64_t max_pto_ns = 1'000'000'000;    // cap on the backed-off probe timeout
};

struct StreamSenderStats {
	uint64_t packets_sent = 0;
	uint64_t bytes_sent = 0; // wire bytes
	uint64_t packets_acked = 0;
	uint64_t packets_lost = 0;
	uint64_t bytes_lost = 0;
	uint64_t pto_count = 0;
	uint64_t persistent_congestion = 0;
};

class StreamSender {
public:
	explicit StreamSender(const StreamSenderConfig &cfg);

	uint16_t stream_id() const { return cfg_.stream_id; }

	// --- sending ---
	// May a packet of `bytes` wire bytes that counts against the window leave now?
	// Checks the congestion window, the ring, and the pacer.
	bool can_send(uint64_t now_ns, uint32_t bytes);
	// Earliest time can_send could become true through pacing alone (now if it is
	// not pacing that holds the stream back).
	uint64_t next_pacing_ns(uint64_t now_ns) { return pacer_.next_send_ns(now_ns); }
	// The window is full: no packet that counts in flight may leave (same rule as can_send).
	bool cwnd_limited() const { return bytes_in_flight_ >= cc_->cwnd(); }
	bool ring_full() const { return next_pn_ - base_pn_ >= cap_; }
	// The packet number the next packet will carry.
	uint64_t next_pn() const { return next_pn_; }
	// Records that packet next_pn() left, carrying `ref`.  `eliciting` packets are
	// acknowledged and count in flight; ACK-only packets do neither.
	void on_sent(uint64_t now_ns, uint32_t wire_bytes, bool eliciting, const PacketRef &ref);
	// The sender had room in the window but nothing to send: samples taken from here
	// until the data fills the window again are app-limited.
	void on_app_limited();

	// --- feedback ---
	// Processes one ACK frame for this stream.  Newly acknowledged refs are appended to
	// *acked (the owner uses them to retire chunk data), lost ones to the
	// retransmission queue.  Returns false for an ACK of packets never sent, which the
	// caller counts and drops (a confused or hostile peer).
	bool on_ack(const wire::AckFrame &ack, uint64_t now_ns, std::vector<PacketRef> *acked);
	// Runs the loss timer or the probe timeout, if due.  Returns the number of probe
	// packets the owner should send now (0, 1 or 2).
	unsigned on_timer(uint64_t now_ns);
	// When on_timer next has work; UINT64_MAX when nothing is in flight.
	uint64_t next_timer_ns() const;

	// --- retransmission ---
	bool has_lost() const { return lost_head_ != lost_.size(); }
	const PacketRef &front_lost() const { return lost_[lost_head_]; }
	void pop_lost();
	// Probe timeout with nothing lost: the owner re-sends the oldest data in flight.
	bool oldest_in_flight(PacketRef *ref) const;
	// Tail copies: the newest data packet still outstanding below packet number
	// *below (down to the oldest in the ring), with *below moved to it.  False,
	// and *below at the oldest, when none is.
	bool prev_in_flight(uint64_t *below, PacketRef *ref) const;

	// --- start ---
	// Before the stream's first packet: start from a window of `packets` and an
	// RTT of rtt_ns (what the session has learnt on its other streams) instead of
	// the configured guesses.  Returns false, changing nothing, once it has sent.
	bool set_initial_window(uint32_t packets, uint64_t rtt_ns, uint64_t now_ns);

	// --- pacing ---
	// The stream's share of the link: pacing never exceeds it (0 = no ceiling).
	void set_rate_ceiling(uint64_t bytes_per_s, uint64_t now_ns);
	uint64_t pacing_rate() const { return pacer_.rate(); }

	// --- state for stats and the control plane ---
	uint64_t bytes_in_flight() const { return bytes_in_flight_; }
	const RttEstimator &rtt() const { return rtt_; }
	const CongestionController &cc() const { return *cc_; }
	const StreamSenderStats &stats() const { return stats_; }
	uint64_t delivered() const { return delivered_; }
	bool idle() const { return bytes_in_flight_ == 0 && !has_lost(); }

private:
	struct Sent {
		uint64_t sent_ns;
		uint64_t delivered;      // rate sampling: C.delivered when sent
		uint64_t delivered_ns;   // C.delivered_time when sent
		uint64_t first_sent_ns;  // C.first_sent_time when sent
		PacketRef ref;
		uint32_t bytes;
		uint8_t state;           // kOutstanding, kAcked, kLost, kEmpty
		bool eliciting;
		bool app_limited;
	};
	enum : uint8_t { kEmpty = 0, kOutstanding, kAcked, kLost };

	Sent &slot(uint64_t pn) { return ring_[pn & mask_]; }
	const Sent &slot(uint64_t pn) const { return ring_[pn & mask_]; }
	uint64_t next_unresolved(uint64_t pn);
	void resolve(uint64_t pn);
	void advance_base();
	void detect_lost(uint64_t now_ns, uint64_t *lost_bytes, uint64_t *largest_lost_sent_ns,
			 uint64_t *first_lost_sent_ns, uint64_t *last_lost_sent_ns);
	void update_pacing(uint64_t now_ns);
	void rearm_pto(uint64_t now_ns);

	StreamSenderConfig cfg_;
	std::vector<Sent> ring_;
	std::vector<uint64_t> skip_; // next_unresolved links, indexed like ring_
	uint64_t cap_;
	uint64_t mask_;
	uint64_t next_pn_ = 0;
	uint64_t base_pn_ = 0;       // oldest packet still in the ring
	uint64_t largest_acked_ = 0;
	bool any_acked_ = false;
	uint64_t bytes_in_flight_ = 0;
	uint64_t eliciting_in_flight_ = 0;

	// Delivery-rate estimation state (C.* in the BBR draft).
	uint64_t delivered_ = 0;
	uint64_t delivered_ns_ = 0;
	uint64_t first_sent_ns_ = 0;
	uint64_t app_limited_until_ = 0; // C.app_limited: delivered mark; 0 = not app-limited

	RttEstimator rtt_;
	std::unique_ptr<CongestionController> cc_;
	Pacer pacer_;
	uint64_t rate_ceiling_ = 0;

	uint64_t loss_time_ns_ = 0;  // earliest time-threshold loss, 0 = none pending
	uint64_t pto_at_ns_ = 0;     // 0 = not armed
	uint32_t pto_backoff_ = 0;
	uint64_t last_eliciting_sent_ns_ = 0;

	std::vector<PacketRef> lost_; // retransmission queue (FIFO, compacted when drained)
	size_t lost_head_ = 0;

	StreamSenderStats stats_;
};

} // namespace dwcp::amst
