#pragma once
// DWCP wire format, version 1.
//
// A DWCP packet is the payload of one UDP datagram (IPv4, port 7470 by default):
//
//   common header (20 bytes, sent in the clear, covered by the AEAD as associated data)
//     0      u8   version (high nibble, = 1) | flags (low nibble)
//                   bit 0 PROTECTED  the body is AEAD-sealed and a 16-byte tag trails the packet
//                   bit 1 KEY_PHASE  which of the two current keys sealed it (key update, RFC 9001 §6)
//                   bits 2-3         reserved, sent as zero, packets with them set are dropped
//     1      u8   packet type (PacketType)
//     2..3   u16  stream id: 0 is the control stream, 1..kMaxStreams carry chunk data one
//                 way and, in CTRL packets, their acknowledgements the other way
//     4..11  u64  session id, chosen by the initiator at random, names the session on both sides
//     12..19 u64  packet number, per stream and per direction, starting at 0 and never reused
//                 (with the stream id it forms the AEAD nonce; keys are per session
//                 and per direction, dataplane/crypto/aead.h)
//   body (encrypted when PROTECTED)
//     DATA:            DataFrame (12 bytes) followed by chunk bytes
//     CTRL / INITIAL:  a sequence of frames (FrameType), each self-delimiting
//     RETRY:           one TOKEN frame (address validation, sent in the clear)
//
// Packet protection (security on, the default): INITIAL and RETRY packets are
// never sealed; they carry only the TLS 1.3 handshake (CRYPTO frames, whose records
// TLS itself encrypts after the ServerHello) and the address-validation token.
// Every DATA and CTRL packet is sealed with AES-256-GCM under the session's keys
// (dataplane/crypto), and a receiver with keys drops any that is not.
//   tag (16 bytes when PROTECTED)
//
// All integers are big-endian.  Fields are fixed width rather than QUIC varints: a
// header that is always 20 bytes is parsed with a few loads, and the 4 bytes a
// varint packet number would save are 0.3% of a full frame.
//
// Every parser here takes a length and checks it before it reads: a packet is
// hostile until proved otherwise.  Each rejection has its own ParseError, which the
// data plane turns into a named drop counter (rx.<error>).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

namespace dwcp::wire {

constexpr uint8_t kVersion = 1;
constexpr uint16_t kDefaultUdpPort = 7470;
constexpr size_t kHeaderLen = 20;
constexpr size_t kDataFrameLen = 12;
constexpr size_t kTagLen = 16;
constexpr uint16_t kControlStream = 0;
constexpr uint16_t kMaxStreams = 256; // data streams are 1..kMaxStreams
constexpr size_t kMaxAckRanges = 32;  // ranges one ACK frame carries, newest first
// Ethernet + IPv4 (no options) + UDP in front of every DWCP packet.
constexpr size_t kEncapLen = 14 + 20 + 8;

enum : uint8_t {
	flag_protected = 0x01,
	flag_key_phase = 0x02,
	flags_reserved = 0x0c,
};

enum class PacketType : uint8_t {
	data = 1,    // chunk bytes on a data stream
	ctrl = 2,    // frames: control-stream bytes on stream 0, ACK/WINDOW frames on any stream
	initial = 3, // frames of a session being set up (the first HELLO and its answer)
	retry = 4,   // address-validation token, sent statelessly before a session exists
};

struct Header {
	uint8_t flags = 0;
	PacketType type = PacketType::data;
	uint16_t stream_id = 0;
	uint64_t session_id = 0;
	uint64_t pn = 0;
};

// Where a DATA packet's bytes belong: the chunk, the offset inside the chunk's
// payload as sent (which is the encoded form when the chunk is delta-encoded) and
// that payload's total length, so the receiver knows when the chunk is whole
// without any other message.
struct DataFrame {
	uint32_t chunk_id = 0;
	uint32_t chunk_off = 0;
	uint32_t chunk_len = 0;
};

enum class FrameType : uint8_t {
	padding = 0x00, // one byte, ignored; the rest of the body may be padding
	ping = 0x01,    // asks for an acknowledgement, carries nothing
	ack = 0x02,     // AckFrame: what a data or control stream received
	crypto = 0x06,  // INITIAL only: TLS handshake bytes: u64 offset, u16 length, bytes
	token = 0x07,   // INITIAL/RETRY only: u8 length, address-validation token
	stream = 0x08,  // control-stream bytes: u64 offset, u16 length, bytes
	window = 0x10,  // u32: the receiver accepts chunk ids below this (flow control)
	close = 0x1c,   // u16 error code, u16 reason length, reason: the session ends
};

// Acknowledged packet numbers of one stream as inclusive ranges, largest first
// (ranges[0].hi is the largest acknowledged packet number).
struct AckRange {
	uint64_t lo = 0;
	uint64_t hi = 0;
};

struct AckFrame {
	uint16_t stream_id = 0;
	uint32_t ack_delay_us = 0; // how long the receiver held the largest before acking
	uint8_t nb_ranges = 0;
	AckRange ranges[kMaxAckRanges];
};

// Encoded size of an ACK frame with n ranges: type u8, stream u16, nb_ranges u8,
// ack_delay u32, largest u64, first range length u32, then per further range
// gap u32 and length u32 (each counted as in RFC 9000 §19.3.1).
constexpr size_t ack_frame_len(size_t nb_ranges) { return 1 + 2 + 1 + 4 + 8 + 4 + 8 * (nb_ranges - 1); }
constexpr size_t kStreamFrameOverhead = 1 + 8 + 2;
constexpr size_t kWindowFrameLen = 1 + 4;
constexpr size_t kCryptoFrameOverhead = 1 + 8 + 2;
constexpr size_t kMaxTokenLen = 64;
// A client's INITIAL packets are padded to at least this (as QUIC's are to 1200):
// a listener answers a smaller one with nothing, so its RETRY never amplifies.
constexpr size_t kMinInitialLen = 1200;

enum class ParseError : uint8_t {
	ok = 0,
	too_short,      // shorter than the header, or a frame runs past the end
	bad_version,    // a version this build does not speak
	reserved_flags, // a reserved flag bit is set
	bad_type,       // unknown packet or frame type
	bad_stream,     // stream id out of range for the packet type
	bad_chunk,      // data frame whose offset/length do not fit its chunk
	bad_ack,        // ack ranges that overlap, are out of order or underflow
	count_,
};
const char *parse_error_name(ParseError e);

// Big-endian loads and stores.  The compiler folds these into a load and a bswap.
inline void put_u16(uint8_t *p, uint16_t v) { p[0] = uint8_t(v >> 8), p[1] = uint8_t(v); }
inline void put_u32(uint8_t *p, uint32_t v) { v = __builtin_bswap32(v), memcpy(p, &v, 4); }
inline void put_u64(uint8_t *p, uint64_t v) { v = __builtin_bswap64(v), memcpy(p, &v, 8); }
inline uint16_t get_u16(const uint8_t *p) { return uint16_t(p[0] << 8 | p[1]); }
inline uint32_t get_u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return __builtin_bswap32(v); }
inline uint64_t get_u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return __builtin_bswap64(v); }

// Writes the 20-byte common header.
void encode_header(const Header &h, uint8_t *out);
// Reads the common header of a packet of len bytes (the UDP payload).
ParseError decode_header(const uint8_t *p, size_t len, Header *h);

void encode_data_frame(const DataFrame &f, uint8_t *out);
// Reads the data frame at the start of a DATA body; payload_len is the number of
// chunk bytes that follow it, checked against the chunk's declared length.
ParseError decode_data_frame(const uint8_t *p, size_t body_len, DataFrame *f, size_t *payload_len);

// Frame writers return the bytes written, or 0 when the frame does not fit in cap.
size_t encode_ack_frame(const AckFrame &f, uint8_t *out, size_t cap);
size_t encode_stream_frame(uint64_t offset, std::span<const uint8_t> data, uint8_t *out, size_t cap);
size_t encode_window_frame(uint32_t max_chunk, uint8_t *out, size_t cap);
size_t encode_close_frame(uint16_t code, std::span<const char> reason, uint8_t *out, size_t cap);
size_t encode_crypto_frame(uint64_t offset, std::span<const uint8_t> data, uint8_t *out, size_t cap);
size_t encode_token_frame(std::span<const uint8_t> token, uint8_t *out, size_t cap);

// One frame read from a CTRL/INITIAL body.
struct Frame {
	FrameType type = FrameType::padding;
	AckFrame ack;                  // type == ack
	uint64_t stream_off = 0;       // type == stream, crypto: offset of the bytes
	std::span<const uint8_t> data; // stream, crypto: the bytes; close: the reason; token: the token
	uint32_t max_chunk = 0;        // type == window
	uint16_t close_code = 0;       // type == close
};

// Iterates over the frames of a body.  next() returns ok with *f filled, or an error;
// done() says whether the body was consumed.  A body that is all padding yields
// nothing.
class FrameReader {
public:
	FrameReader(const uint8_t *p, size_t len) : p_(p), end_(p + len) {}
	bool done();
	ParseError next(Frame *f);

private:
	const uint8_t *p_;
	const uint8_t *end_;
};

// The first STREAM frame of a CTRL body, when every frame before it parses: what
// a listener looks at in a packet of an unknown session (does it open the
// control channel?).  False when there is none.
bool first_stream_frame(const uint8_t *body, size_t len, Frame *f);

// The most chunk bytes one DATA packet carries for a given IP MTU.
constexpr size_t data_payload_max(size_t ip_mtu, bool protect)
{
	return ip_mtu - 20 - 8 - kHeaderLen - kDataFrameLen - (protect ? kTagLen : 0);
}

} // namespace dwcp::wire
