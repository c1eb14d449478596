#pragma once
// The TLS handshake of one DWCP session on the wire: INITIAL packets on stream 0,
// in the clear, carrying the handshake's bytes in CRYPTO frames (TLS encrypts its
// own records from the ServerHello on), and on the client the address-validation
// token a listener's RETRY handed out.
//
//   client                                   listener (worker 0)
//   INITIAL  CRYPTO(ClientHello)      --->   no token: RETRY(token), nothing kept
//            <---  RETRY TOKEN
//   INITIAL  TOKEN, CRYPTO(ClientHello) ->   token valid: the control thread opens
//                                            the session and runs the server side
//            <---  INITIAL CRYPTO(ServerHello .. Finished)
//   INITIAL  TOKEN, CRYPTO(Certificate .. Finished) --->
//   both sides: keys from the TLS exporter; DATA/CTRL packets sealed from here on
//
// Loss is the Handshake's business (it repeats flights on its timer); this class
// only frames its segments into packets and reads the peer's.  Like the session,
// it does no I/O and reads no clock.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "control/handshake.h"

namespace dwcp::control {

class InitialChannel {
public:
	// max_packet: DWCP bytes per UDP datagram (MTU - IPv4 - UDP).
	// local_params: this side's transport parameters (Handshake).
	InitialChannel(TlsContext &ctx, Handshake::Role role, uint64_t session_id, size_t max_packet,
		       uint64_t initial_timeout_ns = 1'000'000'000, std::vector<uint8_t> local_params = {});

	// Whole INITIAL packets to send now.
	std::vector<std::vector<uint8_t>> poll(uint64_t now_ns);
	// One INITIAL or RETRY packet of this session from the peer.  Malformed ones,
	// RETRYs to a server, a second RETRY or one after the server spoke are
	// counted in ignored() and change nothing.
	void on_packet(std::span<const uint8_t> pkt, uint64_t now_ns);
	// When poll() next has something to send (UINT64_MAX: nothing pending).
	uint64_t next_timeout_ns() const { return hs_.next_timeout_ns(); }

	Handshake &handshake() { return hs_; }
	const Handshake &handshake() const { return hs_; }
	bool retried() const { return !token_.empty(); }
	uint64_t packets_sent() const { return sent_; }
	uint64_t packets_received() const { return received_; }
	uint64_t ignored() const { return ignored_; }
	// Client: the shortest time from a flight sent once to the peer's first answer
	// (its RETRY, or its first INITIAL), ns; 0 before any.  A flight the handshake
	// had to repeat gives no sample: which copy was answered is unknown.
	uint64_t rtt_ns() const { return rtt_ns_; }

private:
	void frame(const std::vector<CryptoSegment> &segs, std::vector<std::vector<uint8_t>> *out);

	Handshake hs_;
	Handshake::Role role_;
	uint64_t session_id_;
	size_t max_packet_;
	uint64_t pn_ = 0;
	std::vector<uint8_t> token_;
	// Client, until the server speaks: every segment sent, to send again with the
	// token when a RETRY comes.
	std::vector<CryptoSegment> first_flight_;
	bool peer_spoke_ = false;
	bool resend_first_ = false;
	uint64_t sent_ = 0, received_ = 0, ignored_ = 0;
	// The client's RTT samples: the current flight's first send and how many times
	// it went, until the peer answers.
	void on_answer(uint64_t now_ns);
	uint64_t flight_sent_ns_ = 0;
	uint32_t flight_sends_ = 0;
	uint64_t rtt_ns_ = 0;
};

} // namespace dwcp::control
