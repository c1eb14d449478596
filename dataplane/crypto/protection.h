#pragma once
// Per-session packet protection state on one worker: which key seals, which keys
// open, key updates, and replay protection.  Pure state machines: no clock (now_ns
// is passed in), no I/O, no allocation after install.  The AEAD work is done by the
// worker's Aead (aead.h), passed into every call.
//
// Key update (RFC 9001 §6, with DWCP's per-stream packet numbers):
//   - The sender derives the next secret (next_secret), installs its key, drops the
//     old one and flips the KEY_PHASE header bit.
//   - The receiver holds the current key and, ready in advance, the next one.  A
//     packet whose phase bit differs from the current phase is either late (sealed
//     before the update) or the first of the next phase.  Per stream the receiver
//     remembers the lowest packet number it opened under the current key: below it
//     the packet is late and opens with the previous key, kept for retain_ns after
//     the update; otherwise it must open with the next key, and when it does the
//     receiver rotates (previous = current, current = next, next derived anew).
//     Only a packet that authenticates rotates keys, so a forged phase bit cannot.
//   - The sender must not update again before the receiver can have rotated (QUIC's
//     rule: a packet of the new phase was acknowledged); with retain_ns of a few
//     round trips that also bounds how late a reordered packet may be.
//
// Replay: each stream has a sliding window of kReplayWindow packet numbers.  A
// packet is checked before it is opened and recorded only after it authenticated,
// so forged packets cannot move the window.
//
// The worker counts the verdicts (rx.replay, rx.replay_old, rx.auth_failed,
// rx.no_key).
#include <array>
#include <cstdint>
#include <string>

#include "dataplane/amst/wire.h"
#include "dataplane/crypto/aead.h"

namespace dwcp::crypto {

// Packet numbers each stream's replay window spans.
constexpr uint64_t kReplayWindow = 2048;
// How long a receiver keeps the previous key after a key update, by default.
constexpr uint64_t kDefaultRetainNs = 2'000'000'000;

// The AEAD operation on one whole DWCP packet of len bytes, in place: the header
// as associated data, the body after it, the tag in the last kTagLen bytes, and
// the nonce inputs (stream id, packet number) read from the header.  len must be
// at least wire::kHeaderLen + kTagLen (decode_header refuses shorter PROTECTED
// packets).  m: the mbuf holding the packet, for the cryptodev op path.
inline AeadOp packet_op(uint8_t *pkt, size_t len, rte_mbuf *m = nullptr)
{
	uint32_t body = uint32_t(len - wire::kHeaderLen - kTagLen);
	return AeadOp{.aad = pkt,
		      .data = pkt + wire::kHeaderLen,
		      .len = body,
		      .tag = pkt + wire::kHeaderLen + body,
		      .stream = wire::get_u16(pkt + 2),
		      .pn = wire::get_u64(pkt + 12),
		      .m = m};
}

// The packet numbers of one stream in one direction that were opened: everything
// below the window (too old to tell), and a bitmap of the last kReplayWindow
// numbers up to the highest one recorded.
class ReplayWindow {
public:
	enum class Verdict { fresh, duplicate, too_old };
	// Whether pn may be opened: fresh, already recorded, or below the window.
	Verdict check(uint64_t pn) const;
	// Records pn as opened, sliding the window forward when pn is the highest yet.
	// A pn below the window is ignored.
	void commit(uint64_t pn);
	// The highest packet number recorded; only meaningful once any() is true.
	uint64_t highest() const { return highest_; }
	bool any() const { return any_; }

private:
	static constexpr size_t kWords = kReplayWindow / 64;
	bool test(uint64_t pn) const { return bits_[(pn / 64) % kWords] >> (pn % 64) & 1; }
	void set(uint64_t pn) { bits_[(pn / 64) % kWords] |= uint64_t(1) << (pn % 64); }
	void clear_range(uint64_t from, uint64_t to); // [from, to], to - from < kReplayWindow

	std::array<uint64_t, kWords> bits_{};
	uint64_t highest_ = 0;
	bool any_ = false;
};

// The sending direction of one session on one worker: the key that seals and its
// phase bit.
class TxProtection {
public:
	TxProtection() = default;
	TxProtection(const TxProtection &) = delete;
	TxProtection &operator=(const TxProtection &) = delete;
	~TxProtection();

	// Installs the key of the handshake's secret, phase 0.  False with *err one line
	// when the Aead has no room.
	bool install(Aead &a, const Secret &s, std::string *err);
	// Key update: seals from now on with the next secret's key under the other phase;
	// the old key is removed.  On failure nothing changes.
	bool update(Aead &a, std::string *err);
	// Removes the key from the Aead.  Safe on an object that was never installed;
	// call it before the Aead goes away (the destructor only wipes the secret).
	void clear(Aead &a);

	// The KEY_PHASE bit (0 or 1) every packet sealed with key() carries.
	uint8_t phase() const { return phase_; }
	// The Aead handle to seal with, -1 before install.
	int key() const { return key_; }
	// Key updates done since install.
	uint64_t generation() const { return generation_; }
	// Seals a burst with key() (the caller has set the KEY_PHASE bit in each header).
	void seal_burst(Aead &a, AeadOp *ops, unsigned n) const { a.seal_burst(key_, ops, n); }

private:
	Secret secret_{};
	int key_ = -1;
	uint8_t phase_ = 0;
	uint64_t generation_ = 0;
};

// The receiving direction of one session on one worker: previous, current and next
// keys, and a replay window per stream 0..wire::kMaxStreams.  About 80 KB: allocate
// it once per session, at install time, not per packet.
class RxProtection {
public:
	enum class Verdict : uint8_t {
		ok,          // authentic and not seen before: the body is now plaintext
		no_key,      // no key for its phase (before install, or the previous key expired,
		             // or a stream id beyond wire::kMaxStreams)
		duplicate,   // its packet number was opened before on that stream
		too_old,     // below the stream's replay window
		auth_failed, // forged, corrupted, truncated, or sealed under a key we do not hold
	};

	explicit RxProtection(uint64_t retain_ns = kDefaultRetainNs) : retain_ns_(retain_ns) {}
	RxProtection(const RxProtection &) = delete;
	RxProtection &operator=(const RxProtection &) = delete;
	~RxProtection();

	// Installs the handshake's secret as the current key (phase 0) and derives the
	// next one.  False with *err one line when the Aead has no room.
	bool install(Aead &a, const Secret &s, std::string *err);
	// Removes every key from the Aead.  Safe on an object that was never installed.
	void clear(Aead &a);

	// Opens one protected packet in place: aad = header, data = body, tag; phase is
	// the header's KEY_PHASE bit.  Replay is checked before the AEAD runs and the
	// window is advanced only after the packet authenticated.  On anything but ok
	// the body may have been overwritten and the packet must be dropped.
	Verdict open(Aead &a, AeadOp &op, uint8_t phase, uint64_t now_ns);
	// The same for a burst: verdicts[i] for ops[i] and phases[i].  Runs of packets
	// of the current phase go to the Aead as one burst (the common case: all of
	// them); packets of the other phase take open()'s path one by one.
	void open_burst(Aead &a, AeadOp *ops, const uint8_t *phases, Verdict *verdicts, unsigned n, uint64_t now_ns);

	// Key updates seen (rotations to the next key) since install.
	uint64_t generation() const { return generation_; }
	// The phase of the current key.
	uint8_t phase() const { return cur_phase_; }
	// Whether the previous key is still held (a key update happened less than
	// retain_ns ago).
	bool has_previous() const { return prev_ >= 0; }

private:
	static constexpr size_t kNbStreams = wire::kMaxStreams + 1;
	static constexpr uint64_t kNone = ~uint64_t(0);
	// The largest body the previous-then-next fallback can keep a copy of (see open).
	static constexpr size_t kScratch = 9216;

	void expire(Aead &a, uint64_t now_ns);
	void rotate(Aead &a, uint64_t now_ns, uint16_t stream, uint64_t pn);
	// Runs the AEAD with key h on one packet.
	static bool try_open(Aead &a, int h, AeadOp &op);
	void accept(AeadOp &op);

	uint64_t retain_ns_;
	Secret next_secret_{}; // the secret of next_
	int prev_ = -1, cur_ = -1, next_ = -1;
	uint8_t cur_phase_ = 0;
	uint64_t prev_expiry_ns_ = 0;
	uint64_t generation_ = 0;
	// Per stream, the lowest packet number opened with the current key (kNone: none
	// yet): the boundary between late packets of the previous phase and the next.
	std::array<uint64_t, kNbStreams> cur_first_pn_;
	std::array<ReplayWindow, kNbStreams> windows_{};
	std::array<uint8_t, kScratch> scratch_;
};

} // namespace dwcp::crypto
