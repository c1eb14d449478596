#pragma once
// The gateway's control messages: what travels on a session's control channel
// (stream 0: reliable, ordered, length-framed by the session) to set a transfer up,
// run it and end it.
//
//   sender                                   receiver
//   HELLO  object name, size, limits,  ->
//          the baseline it holds, the
//          new version, the RTT its TLS
//          handshake measured
//                                      <-    ACCEPT window, queues, whether it holds
//                                            that baseline too, READY (or REJECT why)
//   ... DATA on streams 1..N, ACK/WINDOW back ...
//
// The chunk layout (chunk size from the RTT, raw or HDE-encoded chunks) follows
// from the HELLO and the baseline the ACCEPT names, by layout_for() on both sides;
// the receiver has every worker holding the assembler before it answers, so data
// may follow the ACCEPT at once.  A whole transfer (no baseline offered) does not
// wait for it: the receiver's queues and window floor came with its TLS handshake
// (PortParams), so the data follows the HELLO, the receiver's workers hold what
// arrives before the assembler (a first round of drops would read as heavy loss
// to BBR), and the ACCEPT only confirms and widens the window.  A HELLO without
// an RTT (security off: no handshake came before it) gets an ACCEPT that is not
// ready, and one more round trip sets the layout from the RTT the HELLO measured:
//   BEGIN  chunk size, chunk count,    ->
//          raw or HDE-encoded chunks,
//          baseline, the new version
//                                      <-    READY
//   ... DATA ...
//   DIGEST sha-256 of the object       ->    (whenever the sender's hash is done)
//                                      <-    RESULT ok / why not, after the file is
//                                            verified and renamed (or removed)
//   CLOSE (session frame)
//
// Every message starts with its own version byte; integers are big-endian; strings
// are u16 length + bytes.  Decoders check every length and value and return a
// one-line error naming the field, because the peer may be anyone.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "control/sha256.h"

namespace dwcp::control {

constexpr uint8_t kMsgVersion = 2;
constexpr size_t kMaxNameLen = 255;
constexpr size_t kMaxTextLen = 512;

enum class MsgType : uint16_t {
	hello = 1,
	accept = 2,
	reject = 3,
	begin = 4,
	digest = 5,
	result = 6,
	ready = 7,   // no body
};
const char *msg_type_name(uint16_t type);

struct Hello {
	std::string name;         // the object's file name at the receiver: one path component
	uint64_t size = 0;        // bytes
	uint32_t mss = 0;         // chunk bytes per DATA packet
	uint16_t max_streams = 0; // data streams the sender may use (1..256)
	uint64_t link_bps = 0;    // the link rate the sender paces under (0 = unknown)
	uint16_t rx_queues = 1;   // the sender's RX queues and RSS table, so the receiver can
	uint16_t reta_size = 0;   // steer each stream's ACKs to the sender worker that owns it
	bool rss = false;
	// The newest baseline of this object the sender holds (its baseline store,
	// control/baselines.h): version 0 when none.
	uint64_t base_version = 0;
	Sha256 base_sha{};
	// The version both sides record the object as once verified (0: none).
	uint64_t new_version = 0;
	// The round-trip time the sender measured before this hello (its TLS
	// handshake), microseconds, at most kMaxHelloRttUs; 0 when it has none.
	uint32_t rtt_us = 0;
};

constexpr uint32_t kMaxHelloRttUs = 10'000'000;

// The least RTT set-up takes for a path, as the sender's own measure of the
// hello's round trip does: a path's layout and window must not depend on which
// side measured its RTT, or how close to zero a LAN's was.
constexpr uint64_t kMinSetupRttNs = 1'000'000;
// The hello's RTT in ns, at least kMinSetupRttNs.
inline uint64_t setup_rtt_ns(const Hello &h)
{
	return std::max<uint64_t>(uint64_t(h.rtt_us) * 1000, kMinSetupRttNs);
}

struct Accept {
	uint32_t window_chunks = 0; // chunks the receiver holds at once
	uint16_t rx_queues = 1;
	uint16_t reta_size = 0;
	bool rss = false;
	// The hello's base_version when the receiver holds that version with the same
	// digest (and checked its file), else 0: the sender may send deltas against it.
	uint64_t base_version = 0;
	// The hello carried an RTT, the receiver set up layout_for(hello, base_version)
	// and every worker holds it: data may follow at once, no BEGIN/READY.
	bool ready = false;
};

// A gateway's transport parameters, carried in its TLS handshake
// (control/handshake.h, kTransportParamsExt) rather than on the control stream:
// the sender knows the receiver's before the HELLO leaves, so a whole transfer's
// data follows the HELLO at once, one round trip before the ACCEPT would have
// come.  The ACCEPT must agree with them.
struct PortParams {
	uint16_t rx_queues = 1;     // workers, one RX queue each
	uint16_t reta_size = 0;     // RSS redirection table entries (0: none)
	bool rss = false;
	// The smallest window the receiver grants any transfer: what may be sent
	// before its ACCEPT names the real one.
	uint32_t window_floor = 0;
};

enum class RejectCode : uint16_t {
	bad_request = 1, // a message that does not parse or makes no sense
	exists = 2,      // a file of that name is there already
	no_space = 3,    // the disk cannot hold it
	io_error = 4,    // cannot create or write the file
	busy = 5,        // already receiving another object
};

struct Reject {
	RejectCode code = RejectCode::bad_request;
	std::string reason;
};

enum class ChunkEncoding : uint8_t {
	raw = 0, // a chunk's payload is its bytes
	hde = 1, // an HDE encoded chunk (dataplane/hde/block_delta.h), against the baseline if any
};

struct Begin {
	uint32_t chunk_size = 0;
	uint32_t nb_chunks = 0;
	ChunkEncoding encoding = ChunkEncoding::raw;
	uint64_t base_version = 0; // hde: the baseline the chunks are encoded against (0: none)
	uint64_t new_version = 0;  // the version both sides record the object as once verified (0: none)
};

struct Digest {
	Sha256 sha256{};
};

struct Result {
	bool ok = false;
	uint64_t bytes = 0;   // bytes the receiver stored
	std::string detail;   // why not, or where it went
};

std::vector<uint8_t> encode(const Hello &m);
std::vector<uint8_t> encode(const Accept &m);
std::vector<uint8_t> encode(const PortParams &m);
std::vector<uint8_t> encode(const Reject &m);
std::vector<uint8_t> encode(const Begin &m);
std::vector<uint8_t> encode(const Digest &m);
std::vector<uint8_t> encode(const Result &m);

// Each returns "" or what is wrong ("hello: name contains '/'").
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Hello *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Accept *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, PortParams *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Reject *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Begin *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Digest *m);
[[nodiscard]] std::string decode(std::span<const uint8_t> b, Result *m);

// A name the receiver may create in its directory: one non-empty path component,
// not "." or "..", not hidden (the receiver's temporary files are), no control
// characters, at most kMaxNameLen bytes.  Returns "" or why not.
std::string check_object_name(const std::string &name);

// A listening gateway makes a session only for a packet that opens one: a CTRL
// packet on stream 0 whose first STREAM frame starts the control channel (offset
// 0) with a whole, valid HELLO.  Anything else from an unknown session is
// dropped, so forged or stray packets cannot take the listener's place.
// Returns "" with *out filled, or why not.
[[nodiscard]] std::string hello_from_first_packet(std::span<const uint8_t> packet, Hello *out);

// The chunk layout of a transfer: chunk size min(256 KiB, RTT * link rate / 2) in
// whole packets (in 4 KiB blocks when HDE-encoded), from the hello's RTT
// (setup_rtt_ns), its link rate and mss; HDE chunks when a baseline was accepted (accepted_base
// != 0); the hello's new version.  Both sides derive it when the ACCEPT is ready;
// a sender without an RTT in its hello fills rtt_us with the hello's round trip
// and sends the result as its BEGIN.
Begin layout_for(const Hello &h, uint64_t accepted_base);

// Checks a BEGIN against the HELLO it follows and the baseline the ACCEPT offered.
[[nodiscard]] std::string check_begin(const Begin &b, const Hello &h, uint64_t accepted_base = 0);

} // namespace dwcp::control
