#pragma once
// One worker's part of a DWCP session: the streams it owns, in both directions.
//
// Every stream is a pair of packet-number spaces, one per direction.  The side that
// sends an object sends DATA packets on streams 1..N; the other side acknowledges
// them with CTRL packets on the same stream numbers, carrying ACK frames (for that
// stream and any other it owes an ACK) and a WINDOW frame (how far the sender may
// claim chunks).  Stream 0 is the control channel: a reliable, ordered byte stream
// each way, which carries length-prefixed control messages (session set-up, stream
// count changes, the object's digest, the result) and is acknowledged like data.
//
// With several workers, stream s belongs to worker s % nb_shards (stream 0 to
// worker 0); each worker holds its own Session for its streams and they share only
// the ChunkScheduler / ChunkAssembler (atomics) and the provider/sink.
//
// The Session does no I/O and reads no clock.  The worker hands it received DWCP
// packets (header already parsed) and asks it for packets to send; it says when it
// next needs to run (next_event_ns).  The same object runs in the simulated-link
// tests with a virtual clock.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <vector>

#include "dataplane/amst/chunks.h"
#include "dataplane/amst/recv_tracker.h"
#include "dataplane/amst/stream_sender.h"
#include "dataplane/amst/wire.h"

namespace dwcp::amst {

// Where the sending side gets a chunk's payload.
class ChunkProvider {
public:
	virtual ~ChunkProvider() = default;
	// The payload of a claimed chunk (raw or encoded), which must stay valid and
	// unchanged until chunk_acked(chunk_id).
	virtual std::span<const uint8_t> chunk_payload(uint32_t chunk_id) = 0;
	// Every byte of the chunk was acknowledged; its payload may be released.
	virtual void chunk_acked(uint32_t chunk_id) = 0;
};

struct SessionConfig {
	uint64_t session_id = 0;
	uint32_t mss = 1424;            // chunk bytes in a full DATA packet
	uint32_t packet_overhead = 90;  // wire bytes per packet besides those (Ethernet to tag)
	uint16_t nb_streams = 16;       // data streams 1..nb_streams exist
	uint16_t shard = 0;             // this worker owns streams s with s % nb_shards == shard
	uint16_t nb_shards = 1;
	uint32_t tag_len = 0;           // bytes left free at each packet's end for the AEAD tag
	StreamSenderConfig data;        // data streams' senders (stream_id is filled in)
	uint32_t ack_every = 8;         // ack after this many ack-eliciting packets on a stream,
	uint64_t max_ack_delay_ns = 1'000'000; // or once the oldest has waited this long
	uint32_t max_ctrl_message = 64 * 1024;
	uint32_t max_ctrl_buffered = 1 << 20; // out-of-order control bytes held at most
	// This side will send the object even if its scheduler is attached later (the
	// gateway's sender learns the chunk layout only after the hello/accept exchange).
	bool sends_data = false;
	// The receiver repeats its WINDOW this often while chunks remain and it has sent
	// no acknowledgement (which carries it), so a sender blocked on a window that a
	// slow disk writer has since opened (ChunkAssembler::set_flow_limit) always hears.
	uint64_t window_refresh_ns = 50'000'000;
	// Tail copies: once every chunk is claimed, a stream with nothing new to send
	// sends each of its data packets in flight once more, newest first, in pacing
	// slots that would otherwise go unused.  A loss in the last round trip then
	// costs no retransmission round trip (both copies are lost with p^2: 1e-4 at
	// 1% loss), for at most one window of extra bytes at the very end.
	bool tail_copies = true;
};

// Per-session counters, summed by the stats reader.  Drops are named
// <stage>.<reason> where they are exported.
struct SessionCounters {
	uint64_t rx_packets = 0;
	uint64_t rx_data_bytes = 0;      // chunk bytes newly placed
	uint64_t rx_duplicate = 0;       // packet number seen before (or replayed)
	uint64_t rx_dup_data = 0;        // fresh packet, but its chunk bytes were held already
	uint64_t rx_out_of_window = 0;
	uint64_t rx_bad_chunk = 0;
	uint64_t rx_bad_frame = 0;
	uint64_t rx_bad_stream = 0;      // a stream this worker does not own or that does not exist
	uint64_t rx_bad_ack = 0;         // an ACK of packets never sent
	uint64_t rx_unexpected = 0;      // e.g. DATA at the side that sends the object
	uint64_t tx_packets = 0;
	uint64_t tx_data_packets = 0;
	uint64_t tx_retransmits = 0;
	uint64_t tx_tail_copies = 0;     // data packets sent again in the tail (not counted as retransmits)
	uint64_t tx_ack_packets = 0;
	uint64_t tx_probes = 0;
	uint64_t tx_window_updates = 0;  // WINDOW frames sent on their own (receiver back-pressure)
	uint64_t chunks_acked = 0;
};

class Session {
public:
	enum class Rx : uint8_t { ok, duplicate, dropped, closed };
	using CtrlHandler = std::function<void(uint16_t type, std::span<const uint8_t> body)>;

	// The side that sends the object passes a scheduler and provider; the side that
	// receives it passes an assembler.  Either side may pass neither (a session only
	// exchanging control messages).
	Session(const SessionConfig &cfg, ChunkScheduler *sched, ChunkProvider *provider, ChunkAssembler *assembler,
		CtrlHandler on_ctrl);

	// A gateway sets the session up over its control channel first and attaches
	// the object afterwards: the sender its scheduler and provider (the session
	// must have been made with sends_data), the receiver its assembler.  Data that
	// arrives before the assembler is dropped unacknowledged, so it is sent again.
	void attach_sender(ChunkScheduler *sched, ChunkProvider *provider);
	void attach_receiver(ChunkAssembler *assembler) { assembler_ = assembler; }
	bool receiving() const { return assembler_ != nullptr; }

	// --- receive ---
	// One DWCP packet whose header decoded; body is what follows the header (tag
	// removed and already verified when protected).
	Rx on_packet(const wire::Header &h, const uint8_t *body, size_t body_len, uint64_t now_ns);

	// --- send ---
	// Builds the next packet to send now, if any, into out[0..cap): the 20-byte
	// header and the body, leaving tag_len bytes after it unwritten.  Returns the
	// length without the tag (0: nothing to send now) and the stream it belongs to.
	size_t poll_tx(uint64_t now_ns, uint8_t *out, size_t cap, uint16_t *stream_id);
	// When poll_tx or on_timer next have work, given nothing arrives before.
	uint64_t next_event_ns(uint64_t now_ns);
	// Runs loss and probe timers; call when next_event_ns has come.
	void on_timer(uint64_t now_ns);

	// --- control channel (shard 0 only) ---
	// Queues one control message (type, body) for reliable delivery.
	void send_ctrl(uint16_t type, std::span<const uint8_t> body);
	// Queues a CLOSE frame; the session stops sending data once it has gone.
	void close(uint16_t code, std::span<const char> reason);
	bool closed() const { return closed_; }
	uint16_t close_code() const { return close_code_; }
	const std::string &close_reason() const { return close_reason_; }
	// Every control byte queued has been acknowledged.
	bool ctrl_flushed() const;

	// --- tuning, published by the control plane ---
	// Streams 1..n may claim new chunks; streams above n finish what they hold.
	// Streams that join and have never sent start from the window and RTT of the
	// stream that has delivered most, so that one the tuner adds fills its share
	// at once instead of slow-starting while the others' shares shrink.
	void set_active_streams(uint16_t n, uint64_t now_ns = 0);
	uint16_t active_streams() const { return active_streams_; }
	// Data streams that have not sent yet start from a window of `packets` and an
	// RTT of rtt_ns: what the control plane learnt from the set-up exchanges (the
	// configured window is a guess made before any RTT was known).
	void set_initial_windows(uint32_t packets, uint64_t rtt_ns, uint64_t now_ns);
	// The whole session's pacing ceiling in bytes/s, shared out evenly over the
	// active streams (the spec's rate = bw * 0.95 / streams, with bw*0.95 passed in).
	void set_rate_ceiling(uint64_t bytes_per_s, uint64_t now_ns);

	// --- state ---
	const SessionCounters &counters() const { return ctr_; }
	const SessionConfig &config() const { return cfg_; }
	// The data streams this worker owns (nullptr for others).
	const StreamSender *stream_tx(uint16_t s) const { return owns(s) ? streams_[s].tx.get() : nullptr; }
	bool owns(uint16_t s) const { return s <= cfg_.nb_streams && s % cfg_.nb_shards == cfg_.shard && streams_[s].tx; }
	// Data streams of this shard that have received at least one packet.
	uint16_t streams_heard() const;
	// Bytes in flight summed over the streams, and their delivery so far.
	uint64_t bytes_in_flight() const;
	// Every chunk this side sends is acknowledged.
	bool all_acked() const;

private:
	// A chunk a stream claimed and has not seen fully acknowledged.
	struct TxChunk {
		uint32_t chunk_id = 0;
		uint32_t len = 0;
		const uint8_t *data = nullptr;
		uint32_t next_off = 0;      // first byte never sent
		uint32_t unacked_slots = 0; // packet slots not yet acknowledged
		std::vector<uint64_t> acked; // bit per packet slot
	};
	struct Stream {
		std::unique_ptr<StreamSender> tx;
		RecvTracker rx;
		std::vector<TxChunk> chunks; // ring of claimed chunks, oldest first
		uint32_t chunk_head = 0, nb_chunks = 0;
		unsigned probes = 0;         // probe packets owed after a PTO
		bool app_limited = false;
		// Tail copies: started, every packet in flight had one, and the packet
		// number the next copy is below.
		bool copying = false, copies_done = false;
		uint64_t copy_below = 0;
	};
	// The transfer is in its tail and the stream may still send copies (see
	// SessionConfig::tail_copies).
	bool tail_copies_due(const Stream &st) const;
	// A tail copy for the stream (see SessionConfig::tail_copies): false when
	// the transfer is not in its tail or every packet in flight has had one.
	bool next_tail_copy(Stream &st, PacketRef *ref, const uint8_t **src, uint32_t *chunk_len);

	bool stream_has_data(Stream &st);
	TxChunk *find_chunk(Stream &st, uint32_t chunk_id);
	bool claim_chunk(Stream &st);
	size_t build_data(Stream &st, uint16_t s, uint64_t now_ns, uint8_t *out, size_t cap, bool probe);
	size_t build_ack(uint16_t s, uint64_t now_ns, uint8_t *out, size_t cap);
	size_t build_ctrl(uint64_t now_ns, uint8_t *out, size_t cap, bool probe);
	bool window_update_due(uint64_t now_ns) const;
	size_t build_window(uint64_t now_ns, uint8_t *out, size_t cap);
	bool ack_due(const Stream &st, uint64_t now_ns) const;
	void on_chunk_acked(Stream &st, const PacketRef &ref);
	bool handle_frames(uint16_t s, const uint8_t *body, size_t len, uint64_t now_ns, bool *eliciting);
	void on_ctrl_bytes(uint64_t off, std::span<const uint8_t> data);
	void deliver_ctrl();
	size_t write_header(uint8_t *out, wire::PacketType type, uint16_t s, uint64_t pn) const;

	SessionConfig cfg_;
	ChunkScheduler *sched_;
	ChunkProvider *provider_;
	ChunkAssembler *assembler_;
	CtrlHandler on_ctrl_;
	std::vector<Stream> streams_; // index = stream id; 0 = control
	uint16_t active_streams_;
	// Streams above span_ have never been active nor received a packet, so they hold
	// no state: the per-packet loops stop there (a receiver made for 256 streams
	// whose sender uses 16 walks 16).
	uint16_t span_ = 0;
	uint16_t rr_cursor_ = 1;
	// What poll_tx, called once per packet, would otherwise find by walking every
	// stream twice: the streams that may owe an ACK (bit s set when an eliciting
	// packet arrives on s, cleared once its ACK has gone), and the probes the data
	// streams owe after a PTO.  At line rate with 64 streams those walks were two
	// thirds of the sending worker's own cycles.
	std::vector<uint64_t> ack_owed_; // (nb_streams + 1) bits, sized at construction
	unsigned data_probes_ = 0;
	uint64_t ceiling_ = 0;
	std::vector<PacketRef> acked_scratch_;
	uint32_t window_sent_ = 0;      // the receiver's last advertised window, and when
	uint64_t window_sent_ns_ = 0;

	// Control channel, outgoing: every byte queued since the start (messages are few
	// and small: set-up, tuning changes, the end), and what is to go next.
	std::vector<uint8_t> ctrl_out_;
	uint64_t ctrl_next_ = 0;
	uint64_t ctrl_acked_bytes_ = 0;
	// Incoming: bytes delivered in order so far, early segments held, and the
	// message being assembled.
	uint64_t ctrl_in_next_ = 0;
	std::map<uint64_t, std::vector<uint8_t>> ctrl_early_;
	size_t ctrl_early_bytes_ = 0;
	std::vector<uint8_t> ctrl_msg_;
	bool close_pending_ = false;
	bool closed_ = false;
	uint16_t close_code_ = 0;
	std::string close_reason_;

	SessionCounters ctr_;
};

} // namespace dwcp::amst
