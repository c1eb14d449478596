#pragma once
// The poll-mode worker: one per worker lcore, one RX/TX queue pair each.
//
// Run to completion, l2fwd-style: receive a burst of 32, classify it (drivers/net.h),
// answer ARP, hand each DWCP packet to the worker that owns its stream, feed the
// packets it owns to its Session shard, run the session's timers, and fill a TX
// burst with what the session's pacers release.  No locks and no allocation per
// packet; the only shared state is the session's chunk scheduler/assembler
// (atomics) and three rings:
//
//   commands   control thread -> worker   closures run between bursts: attach a
//                                          session, send a control message, publish
//                                          a new stream count or rate ceiling
//   events     worker -> control thread   control messages received, a new peer's
//                                          first packet, ARP verdicts
//   handoff    worker -> worker           packets that arrived on a queue whose worker
//                                          does not own their stream (devices without
//                                          RSS, or a peer that does not steer)
//
// Stats go the other way through a seqlock'd snapshot the worker refreshes every
// millisecond, so the control thread reads consistent numbers without stopping it.
//
// Sleeping: two cores here host the WAN emulator and two gateways, so a worker that
// is not saturated (no full RX or TX burst) sleeps until its session's next timer
// or pacing slot, at least batch_ns (250 us, or srtt/64 on a short path) and at
// most idle_sleep_max_ns.  The floor batches a paced sender's packets into bursts
// of several per device kick (one syscall each on af_packet): at 1 Gbit/s a 50 us
// floor kicked every 4 packets, 250 us every 20, which left the two shared cores
// 12% idle instead of 7% at 100 ms / 1% and raised goodput 860 -> 868 Mbit/s.  The
// pacer's credit (8 ms under a link ceiling) keeps the nap from costing slots; at
// line rate every burst is full and the worker never sleeps.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/amst/session.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/protection.h"
#include "dataplane/crypto/retry.h"
#include "drivers/arp.h"
#include "drivers/net.h"

namespace dwcp::dataplane {

constexpr uint16_t kBurst = 32;

// Where a session's packets go: one peer, and the UDP source port of each stream
// (chosen so that the peer's RSS puts the stream on the queue of its owner).
struct PeerPath {
	drivers::TxTemplate tpl{};
	uint16_t src_port[wire::kMaxStreams + 1] = {};
	rte_be32_t ip = 0;
	rte_be16_t udp_port = 0;
	rte_ether_addr mac{};
};

// What a worker tells the control thread.  Allocated by the worker, freed by the
// reader: events are rare (set-up, control messages, ARP verdicts).
struct Event {
	enum class Kind : uint8_t {
		ctrl_message,    // the session's control channel delivered (type, body)
		new_peer,        // a stream-0 packet of an unknown session (listening worker 0 only)
		arp_resolved,    // mac holds the peer's MAC
		arp_unreachable, // text says why
		session_closed,  // the peer closed: code, text = reason
		initial,         // an INITIAL or RETRY packet of our session (the handshake): body = the DWCP packet
	};
	Kind kind;
	uint16_t type = 0;   // ctrl_message: message type; session_closed: close code
	uint64_t session_id = 0;
	std::vector<uint8_t> body; // ctrl_message: body; new_peer: the UDP payload
	rte_be32_t src_ip = 0;
	rte_be16_t src_port = 0;
	rte_ether_addr mac{};
	std::string text;
};

// Counters of one worker, and its session's state, as the control thread reads it.
struct WorkerSnapshot {
	uint64_t at_ns = 0;
	uint64_t rx_packets = 0, rx_bytes = 0, tx_packets = 0, tx_bytes = 0;
	uint64_t tx_ring_full = 0;      // tx.ring_full: packets the TX queue refused (freed)
	uint64_t tx_no_mbuf = 0;        // tx.no_mbuf: bursts cut short for want of mbufs
	uint64_t rx_handoff = 0;        // packets handed to another worker
	uint64_t rx_handoff_full = 0;   // rx.handoff_full: dropped, the owner's ring was full
	uint64_t rx_bad_header = 0;     // rx.bad_header: DWCP header did not parse
	uint64_t rx_unknown_session = 0;// rx.unknown_session
	uint64_t rx_protected = 0;      // rx.protected: sealed packets, but security is off here
	// Security (WorkerConfig::protect)
	uint64_t rx_opened = 0;         // sealed packets that opened
	uint64_t rx_no_key = 0;         // rx.no_key: sealed before this side had the session keys
	uint64_t rx_unprotected = 0;    // rx.unprotected: a DATA/CTRL packet in the clear
	uint64_t rx_auth_failed = 0;    // rx.auth_failed: forged, corrupted or truncated
	uint64_t rx_held = 0;           // sealed DATA held until the receiver was ready for it
	uint64_t rx_held_over = 0;      // rx.held_over: DATA before the receiver was ready, beyond kHeldMax
	uint64_t rx_held_dropped = 0;   // held DATA freed undelivered: the session went or refused it
	uint64_t rx_replay = 0;         // rx.replay: a packet number opened before
	uint64_t rx_replay_old = 0;     // rx.replay_old: below the replay window
	uint64_t rx_bad_initial = 0;    // rx.bad_initial: an INITIAL that cannot open a session
	uint64_t rx_bad_token = 0;      // rx.bad_token: forged, expired or misdirected token
	uint64_t rx_initial_limited = 0;// rx.initial_limited: handshake packets over the per-source or event limits
	uint64_t rx_busy = 0;           // rx.busy: a valid new session while one is running
	uint64_t retry_sent = 0;        // RETRY packets (tokens) sent
	uint64_t tx_sealed = 0;
	uint64_t tx_seal_failed = 0;    // tx.seal_failed: the device did not seal it (freed, not sent)
	uint64_t tx_key_generation = 0, rx_key_generation = 0; // key updates done / seen
	bool keys = false;
	uint64_t rx_drops = 0;          // frames drivers/net.h dropped (sum of rx.<reason>)
	drivers::RxCounters rx_class;
	amst::SessionCounters session;
	// Data streams this worker owns: sums, and the RTT of the stream that delivered most.
	uint64_t delivered_bytes = 0;   // wire bytes acknowledged (sender)
	uint64_t sent_packets = 0, lost_packets = 0, sent_bytes = 0, bytes_in_flight = 0;
	uint64_t pacing_bytes_per_s = 0;
	uint64_t srtt_ns = 0, min_rtt_ns = 0;
	uint16_t streams_heard = 0;     // data streams that delivered a packet here (receiver)
	bool all_acked = false;         // every chunk this shard sent is acknowledged
	bool ctrl_flushed = false;
	bool closed = false;
	uint64_t idle_sleeps = 0, loops = 0;
};

struct WorkerConfig {
	unsigned lcore = 0;
	uint16_t index = 0;             // worker number = queue number = session shard
	uint16_t nb_workers = 1;
	uint16_t port_id = 0;
	std::string port_name;
	uint16_t mtu = 1500;
	rte_mempool *pool = nullptr;
	drivers::Iface iface;
	drivers::TxOffloads offloads;
	bool listen = false;            // worker 0 of a receiver: report unknown sessions' hellos
	uint64_t idle_sleep_max_ns = 500'000;
	uint64_t batch_ns = 250'000;
	uint32_t ring_size = 4096;      // command, handoff rings
	// Security: every DATA/CTRL packet sealed and opened with AES-256-GCM on this
	// worker's queue pair of cryptodev crypto_dev; new sessions must prove their
	// address with a RETRY token (worker 0 of a listener).
	bool protect = false;
	int crypto_dev = -1;
	double handshakes_per_s = 20;   // per source address: RETRYs and new sessions
	double handshake_burst = 40;
};

class Worker {
public:
	using Command = std::function<void(Worker &)>;

	Worker() = default;
	~Worker();
	Worker(const Worker &) = delete;
	Worker &operator=(const Worker &) = delete;

	// Creates the rings (init path).  events is shared by every worker (MP/SC).
	[[nodiscard]] std::string init(const WorkerConfig &cfg, rte_ring *events, std::vector<Worker *> *peers);

	// The lcore's main loop, until stop().
	int run();
	void stop() { stop_.store(true, std::memory_order_relaxed); }

	// --- control thread side ---
	// Queues fn to run on the worker between bursts.  False when the ring is full.
	bool post(Command fn);
	// The newest snapshot (a consistent copy).
	WorkerSnapshot snapshot() const;

	// --- worker side, for commands ---
	void attach(std::shared_ptr<amst::Session> s, std::shared_ptr<const PeerPath> path);
	void detach();
	amst::Session *session() { return session_.get(); }
	// Starts resolving ip on this worker's ARP table (worker 0); the verdict comes
	// back as an event.
	void resolve(rte_be32_t ip) { resolve_ip_ = ip, arp_.forget(ip); }
	// Sends the packet (a new session's first) as if it had just arrived.
	void replay(const std::vector<uint8_t> &udp_payload);
	// Security: installs the attached session's keys (one secret per direction,
	// from the TLS exporter); from then on every packet is sealed.  Empty or an error.
	std::string install_keys(const crypto::Secret &tx, const crypto::Secret &rx);
	// Key update of the sending direction (the peer follows the key phase bit).
	std::string update_tx_key();
	// Sends one INITIAL packet of the attached session's handshake, in the clear.
	void send_initial(const std::vector<uint8_t> &dwcp_packet);
	// The handshake is over for this side: INITIAL packets are dropped from now on.
	void end_handshake() { handshake_over_ = true; }
	// A receiving session's assembler is attached: the DATA held until then is
	// delivered, in arrival order.
	void release_held(uint64_t now);
	// DATA a receiving session's worker holds while it has no assembler yet: the
	// sender starts data right behind its HELLO (the handshake told it the
	// receiver's parameters), and the receiver's set-up (file, buffers) takes
	// some ms of that.  Dropped, those packets would be a first round of heavy
	// loss.  They are opened on arrival, so forgeries and replays never take a
	// slot and a key update meanwhile does not matter; what is held is plaintext.
	// Beyond kHeldMax (1.6 ms at 10 Gbit/s, 25 ms at 1) they are dropped and sent
	// again.  Each worker's pool holds kHeldMax more mbufs for them, and at most
	// kHeldMax of one pool's mbufs are held at once over all workers (a packet
	// handed off from another queue is held from its own pool's share).
	static constexpr unsigned kHeldMax = 2048;

	const WorkerConfig &config() const { return cfg_; }
	// The AEAD engine this worker seals with ("" when security is off).
	std::string aead_name() const { return aead_ ? aead_->name() : ""; }
	uint64_t now_ns() const;

private:
	friend struct WorkerTestAccess; // dataplane/tests/worker_eal_test.cc
	void handle_rx(rte_mbuf **pkts, uint16_t n, uint64_t now, bool handed_off);
	// Returns true when it kept m (a sealed packet that came before the keys).
	bool handle_dwcp(uint8_t *p, uint16_t len, const drivers::UdpView &v, rte_mbuf *m, uint64_t now);
	void handle_initial(const uint8_t *p, uint16_t len, const wire::Header &h, const drivers::UdpView &v, uint64_t now);
	void send_retry(const wire::Header &h, const drivers::UdpView &v, uint64_t now);
	void emit_new_peer(const uint8_t *p, uint16_t len, const wire::Header &h, const drivers::UdpView &v, uint64_t now);
	void deliver(const wire::Header &h, const uint8_t *body, size_t len, uint64_t now);
	// The session's sealed packets of one RX burst, opened with one call.
	struct SealedBurst {
		unsigned n = 0;
		crypto::AeadOp ops[kBurst];
		uint8_t phase[kBurst];
		wire::Header hdr[kBurst];
		rte_mbuf *m[kBurst];
		void add(const wire::Header &h, uint8_t *p, uint16_t len, rte_mbuf *mb)
		{
			ops[n] = crypto::packet_op(p, len, mb);
			phase[n] = (h.flags & wire::flag_key_phase) ? 1 : 0;
			hdr[n] = h;
			m[n++] = mb;
		}
	};
	bool sealed_for_us(const drivers::UdpView &v, wire::Header *h) const;
	void open_burst(SealedBurst &b, uint64_t now);
	void seal(rte_mbuf **m, uint16_t n, bool *ok);
	uint16_t drop_unsealed(rte_mbuf **m, uint16_t *streams, uint16_t n, const bool *ok);
	void drop_keys();
	uint16_t fill_tx(uint64_t now);
	void flush_tx();
	void tx_one(rte_mbuf *m);
	void run_arp(uint64_t now);
	void publish(uint64_t now);
	void emit(Event *ev);
	void sleep_idle(uint64_t now, uint64_t next_event);

	WorkerConfig cfg_;
	std::atomic<bool> stop_{false};
	rte_ring *cmds_ = nullptr;
	rte_ring *handoff_ = nullptr;
	rte_ring *events_ = nullptr;
	std::vector<Worker *> *peers_ = nullptr;

	std::shared_ptr<amst::Session> session_;
	std::shared_ptr<const PeerPath> path_;
	uint64_t session_id_ = 0;
	uint16_t ip_id_ = 0;
	uint32_t tx_cap_ = 0;           // DWCP bytes per packet: mtu - IPv4 - UDP
	rte_mbuf *tx_[kBurst];
	uint16_t nb_tx_ = 0;

	// Security: the cryptodev queue pair, the session's keys each way, and (worker 0
	// of a listener) the Retry token key and per-source handshake limits.
	std::unique_ptr<crypto::Aead> aead_;
	std::unique_ptr<crypto::TxProtection> txp_;
	std::unique_ptr<crypto::RxProtection> rxp_;
	bool handshake_over_ = false;
	// Sealed packets of our session that came before its keys: the peer's first
	// sealed packets may overtake the handshake's last flight on its way through
	// the control thread.  Opened once the keys are in (as QUIC buffers packets it
	// cannot decrypt yet); beyond kEarlyMax they are dropped (rx.no_key).
	static constexpr unsigned kEarlyMax = 64;
	struct Early {
		rte_mbuf *m;
		drivers::UdpView v;
	};
	std::vector<Early> early_;
	void drop_early();
	struct Held {
		rte_mbuf *m;
		wire::Header h;
		const uint8_t *body; // opened, in m
		uint32_t len;
		uint16_t pool_owner; // the worker whose pool m is from
	};
	std::vector<Held> held_;
	std::atomic<uint32_t> held_out_{0}; // mbufs of this worker's pool some worker holds
	std::atomic<uint32_t> &held_out_of(uint16_t owner); // that counter of worker `owner`
	bool holds(const wire::Header &h) const;
	bool hold(const wire::Header &h, const uint8_t *body, uint32_t len, rte_mbuf *m);
	void unhold(const Held &e);
	void drop_held();
	std::unique_ptr<crypto::RetryTokens> tokens_;
	std::unique_ptr<crypto::SourceLimiter> limiter_;           // RETRYs per source address
	std::unique_ptr<crypto::SourceLimiter> validated_limiter_; // new sessions per validated address
	uint64_t initial_window_ns_ = 0;
	uint32_t initial_events_ = 0;

	drivers::ArpTable arp_;
	rte_be32_t resolve_ip_ = 0;
	uint64_t next_arp_ = 0;
	uint64_t new_peer_reported_ns_ = 0;

	WorkerSnapshot local_;
	uint64_t next_publish_ = 0;
	mutable std::atomic<uint64_t> seq_{0};
	WorkerSnapshot shared_;
};

} // namespace dwcp::dataplane
