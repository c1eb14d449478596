#pragma once
// A deterministic simulated WAN link and a harness that moves an object across it
// between two real AMST sessions, on a virtual clock.
//
// Each direction has a bottleneck (rate, tail-drop queue in ns of backlog), a
// one-way delay, and seeded impairments: random loss, duplication, reordering (a
// packet held back by up to reorder_ns), jitter, and blackout windows during
// which every packet is lost.  Nothing sleeps and nothing reads a clock, so a run
// is a pure function of its seed: a failure replays exactly.
//
// The harness plays the parts of the two workers: it parses headers as the
// data plane does, feeds packets to the sessions, asks them what to send, and
// jumps the clock to the next event.
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <random>
#include <vector>

#include "dataplane/amst/chunks.h"
#include "dataplane/amst/session.h"
#include "dataplane/crypto/aead.h"

namespace dwcp::sim {

struct LinkShape {
	uint64_t rate_bytes_per_s = 125'000'000; // 1 Gbit/s
	uint64_t delay_ns = 50'000'000;          // one way
	uint64_t queue_ns = 100'000'000;         // bottleneck backlog before tail drop
	double loss = 0;
	double duplicate = 0;
	double reorder = 0;        // share of packets held back
	uint64_t reorder_ns = 0;   // by up to this long
	uint64_t jitter_ns = 0;    // uniform +-, applied to every packet
	struct Blackout {
		uint64_t from_ns, to_ns;
	};
	std::vector<Blackout> blackouts;
};

struct LinkStats {
	uint64_t sent = 0, delivered = 0, lost = 0, queue_drops = 0, blackout_drops = 0, duplicated = 0, reordered = 0;
};

// One direction of the link.
class SimPipe {
public:
	SimPipe(const LinkShape &shape, uint64_t seed) : shape_(shape), rng_(seed) {}

	// A packet of `wire_bytes` on the wire (the payload is what the receiver sees).
	void send(uint64_t now_ns, std::vector<uint8_t> payload, uint32_t wire_bytes);
	// Packets whose arrival time has come, in arrival order.
	bool pop_due(uint64_t now_ns, std::vector<uint8_t> *out);
	uint64_t next_arrival_ns() const { return q_.empty() ? UINT64_MAX : q_.top().at_ns; }
	const LinkStats &stats() const { return stats_; }

private:
	struct InFlight {
		uint64_t at_ns;
		uint64_t seq;
		std::vector<uint8_t> payload;
		bool operator>(const InFlight &o) const { return at_ns != o.at_ns ? at_ns > o.at_ns : seq > o.seq; }
	};
	double uniform() { return std::uniform_real_distribution<double>(0, 1)(rng_); }
	void enqueue(uint64_t at_ns, std::vector<uint8_t> payload);

	LinkShape shape_;
	std::mt19937_64 rng_;
	uint64_t wire_free_ns_ = 0;
	uint64_t seq_ = 0;
	std::priority_queue<InFlight, std::vector<InFlight>, std::greater<>> q_;
	LinkStats stats_;
};

// Packet protection as the workers apply it (dataplane/crypto), with the OpenSSL
// backend: every packet sealed by its sender and opened by its receiver.
struct SimSecurity {
	bool on = false;
	crypto::Secret forward{};  // the data direction's traffic secret
	crypto::Secret reverse{};  // the acknowledgements' direction
	uint64_t key_update_ns = 0; // the sender updates its sending key this often (0: never)
};

// An attacker on the data direction, between the sender and the link.  For each
// sealed packet, with these probabilities, it replays a copy up to replay_delay_ns
// later (so also out of order), adds a forgery (the header with a packet number
// 2^40 ahead, random body and tag), and tampers with the packet itself: one bit
// of its body or tag flipped, or its end cut off (the original never arrives).
// Its packets cross the link like any.
struct SimAttack {
	double replay = 0, flip = 0, truncate = 0, forge = 0;
	uint64_t replay_delay_ns = 300'000'000;
};

// What the receiving sides' protection decided, and what the attacker sent.
struct SecurityStats {
	uint64_t opened = 0, duplicate = 0, too_old = 0, auth_failed = 0, no_key = 0, unprotected = 0;
	// Key updates made, those that sealed at least one packet afterwards (an update
	// after the sender's last packet is never seen), and those the receivers followed.
	uint64_t key_updates_sent = 0, key_updates_used = 0, key_updates_seen = 0;
	uint64_t replayed = 0, flipped = 0, truncated = 0, forged = 0;
};

struct TransferConfig {
	amst::SessionConfig session;  // shared by both ends (session_id, mss, streams, ...)
	uint32_t chunk_size = 256 * 1024;
	uint32_t window_chunks = 256;
	uint64_t rate_ceiling = 0;    // bytes/s for the whole session, 0 = none
	uint64_t time_limit_ns = 600'000'000'000ull;
	SimSecurity security;       // on: session.tag_len must be crypto::kTagLen
	SimAttack attack;           // needs security on
};

struct TransferResult {
	bool completed = false;      // receiver whole and sender saw everything acknowledged
	uint64_t finish_ns = 0;      // virtual time when the receiver had every chunk
	std::vector<uint8_t> received;
	amst::SessionCounters sender, receiver;
	amst::StreamSenderStats sender_streams; // summed over data streams
	LinkStats forward, reverse;
	std::vector<std::pair<uint16_t, std::vector<uint8_t>>> ctrl_at_receiver, ctrl_at_sender;
	SecurityStats security;     // both receiving sides summed
};

// Moves `object` from a sender to a receiver over `fwd` (data direction) and
// `rev` (acknowledgements).  `on_step`, if given, runs after every event with the
// current time and may act on the sessions (e.g. change stream counts).
TransferResult run_transfer(const std::vector<uint8_t> &object, const TransferConfig &cfg, const LinkShape &fwd,
			    const LinkShape &rev, uint64_t seed,
			    const std::function<void(uint64_t now_ns, amst::Session &tx, amst::Session &rx)> &on_step = {});

} // namespace dwcp::sim
