#pragma once
// Per-stream congestion control for AMST.
//
// Each data stream runs its own controller (BBR by default, CUBIC or Reno on
// request).  The stream's sender owns loss detection (RFC 9002) and delivery-rate
// sampling (draft-cardwell-iccrg-bbr-congestion-control, "Delivery Rate
// Estimation"); the controller only turns those events into a congestion window
// and a pacing rate.  Controllers read no clock: every event carries now_ns.
//
// Global coordination happens outside the controller: the stream's pacer runs at
// min(pacing_rate(), the session's per-stream ceiling), where the ceiling is
// link_rate * 0.95 / streams (see pacer.h and control/autotune.h).
#include <cstdint>
#include <memory>
#include <string_view>

namespace dwcp::amst {

enum class CcAlgo : uint8_t { bbr = 0, cubic = 1, reno = 2 };
const char *cc_algo_name(CcAlgo a);
// Parses "bbr", "cubic" or "reno"; returns false for anything else.
bool parse_cc_algo(std::string_view s, CcAlgo *out);

struct CcConfig {
	uint32_t mss = 1424;              // bytes of one full packet as counted in flight
	uint32_t initial_cwnd_packets = 32;
	uint32_t min_cwnd_packets = 4;
	// An upper bound on the pacing rate this stream will ever be allowed (its
	// share of the configured link rate), bytes/s; 0 when unknown.  Controllers
	// may use it to leave startup early; they never need to exceed it.
	uint64_t rate_ceiling = 0;
	// The RTT assumed before the first sample, for the initial pacing rate
	// (initial cwnd / initial_rtt_ns * gain).  100 ms is the short end of the
	// paths dwcp runs on: guessing short paces the first window out a little
	// faster than one RTT, which the initial cwnd bounds anyway.
	uint64_t initial_rtt_ns = 100'000'000;
	// BBR: the fraction of a round's packets that must be lost before BBR
	// treats the loss as congestion and caps inflight (inflight_hi) or leaves
	// Startup.  BBRv2 uses 2%, which is the random loss of the links dwcp runs
	// on; 10% is well above random loss and still bounds a real overload.
	double bbr_loss_threshold = 0.10;
	// BBR: picks the ProbeBW phase a stream starts in, so that the streams of a
	// session do not all probe in the same round trip (pass e.g. the stream id).
	uint32_t seed = 0;
};

// What one ACK frame told the sender, after loss detection ran on it.
struct AckEvent {
	uint64_t now_ns = 0;
	uint64_t newly_acked = 0;     // bytes newly acknowledged by this ACK
	uint64_t bytes_in_flight = 0; // after removing acked and lost packets
	uint64_t prior_in_flight = 0; // before this ACK
	uint64_t rtt_ns = 0;          // latest RTT sample, 0 when this ACK gave none
	uint64_t min_rtt_ns = 0;      // min RTT seen over the connection
	uint64_t srtt_ns = 0;         // smoothed RTT (RFC 9002)
	// Delivery-rate sample of the newest packet this ACK acknowledged.
	uint64_t delivered = 0;       // total bytes delivered so far on this stream
	uint64_t prior_delivered = 0; // delivered when that packet was sent
	uint64_t interval_ns = 0;     // max(send interval, ack interval) of the sample
	uint64_t delivery_rate = 0;   // bytes/s; 0 when the sample is not valid
	bool is_app_limited = false;  // the sample was taken while the sender had nothing to send
	uint64_t newest_acked_sent_ns = 0; // send time of the newest acknowledged packet
	uint64_t newly_lost = 0;      // bytes this ACK declared lost (also reported by on_loss)
};

// Packets declared lost by one pass of loss detection.
struct LossEvent {
	uint64_t now_ns = 0;
	uint64_t lost_bytes = 0;
	uint64_t largest_lost_sent_ns = 0; // send time of the newest lost packet: a loss of a
	                                   // packet sent before the current recovery began
	                                   // does not start another recovery
	uint64_t bytes_in_flight = 0;      // after removing the lost packets
};

class CongestionController {
public:
	virtual ~CongestionController() = default;
	virtual CcAlgo algo() const = 0;
	// A packet of `bytes` left, with bytes_in_flight counted before it.
	virtual void on_packet_sent(uint64_t now_ns, uint32_t bytes, uint64_t bytes_in_flight) = 0;
	// For one ACK frame that also declared packets lost, on_ack and on_loss may
	// come in either order (RFC 9002's OnAckReceived reports the loss first);
	// the controllers here do not depend on it.  AckEvent::newly_lost is not
	// read: on_loss is where losses count.
	virtual void on_ack(const AckEvent &ev) = 0;
	virtual void on_loss(const LossEvent &ev) = 0;
	// RFC 9002 §7.6: every packet over a long enough span was lost.
	virtual void on_persistent_congestion(uint64_t now_ns) = 0;
	// The sender ran out of data (or hit flow control) with room in the window;
	// samples taken until the window refills are app-limited.  Reno and CUBIC
	// stop growing cwnd until a packet sent fills the window again; BBR relies
	// on AckEvent::is_app_limited instead and ignores this call.
	virtual void on_app_limited() {}
	// The stream's share of the link changed (bytes/s, 0 = unknown); replaces
	// CcConfig::rate_ceiling.  Only BBR uses it (to leave Startup early).
	virtual void set_rate_ceiling(uint64_t bytes_per_s) {}
	// Congestion window in bytes; the sender keeps bytes_in_flight below it.
	virtual uint64_t cwnd() const = 0;
	// Pacing rate in bytes per second.
	virtual uint64_t pacing_rate() const = 0;
	// The controller's state for the progress line and stats, e.g. "startup".
	virtual const char *state_name() const = 0;
	// Its current bottleneck bandwidth estimate in bytes/s (BBR's max filter; for
	// loss-based controllers cwnd / srtt), 0 before the first sample.
	virtual uint64_t bandwidth_estimate() const = 0;
};

std::unique_ptr<CongestionController> make_cc(CcAlgo algo, const CcConfig &cfg);

} // namespace dwcp::amst
