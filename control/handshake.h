#pragma once
// The TLS 1.3 handshake that opens a DWCP session: both gateways prove who they are
// with certificates from the operator's CA, and the session keys come out of the
// TLS exporter.  TLS runs over memory BIOs; its records travel as one byte stream
// per direction inside the gateway's own CRYPTO segments (offset + bytes), as QUIC
// carries its handshake, except that OpenSSL 3.0 has no QUIC API, so whole TLS
// records are carried rather than handshake messages.
//
//   client                                         server
//   ClientHello                          ->
//                                        <-  ServerHello, {EncryptedExtensions,
//                                            CertificateRequest, Certificate,
//                                            CertificateVerify, Finished}
//   {Certificate, CertificateVerify,     ->  (server complete: verified the client)
//    Finished}  (client complete)
//                                        <-  first protected packet: peer_confirmed()
//
// Loss is repaired per flight, as DTLS does: a side resends its whole last flight
// when its timer fires (1 s, doubling, at most 60 s, 8 times) or when the peer
// repeats a flight this side has answered already (at most once per quarter of the
// initial timeout).  The receiver puts segments back in order by offset and drops
// what it holds already, so resending the same bytes at the same offsets is safe.
// The client keeps its last flight until peer_confirmed(): the server may have lost
// it, and TLS 1.3 sends nothing back that would say so.  A complete server ignores
// repeats of it: the gateway's protected packets are the answer.  A server that
// refuses the client's certificate does so after the client has finished, with an
// alert that turns the client from complete() to failed().
//
// With EC P-256 certificates and no chain: ClientHello ~200 bytes, the server's
// flight ~810, the client's ~610; each fits one 1200-byte segment.
//
// Only TLS 1.3, both sides authenticated, ALPN "dwcp/1", no tickets, resumption or
// early data.  Handshake reads no clock (now_ns is passed in) and does no I/O.
#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

struct ssl_ctx_st;
struct ssl_st;

namespace dwcp::control {

struct TlsConfig {
	std::string cert_file; // PEM: this gateway's certificate (chain allowed)
	std::string key_file;  // PEM private key, unencrypted
	std::string ca_file;   // PEM: the operator's CA; the peer must chain to it
	std::string peer_name; // the DNS name (SAN) the peer's certificate must carry
};

// An SSL_CTX with DWCP's settings, shared by the handshakes of one role.
class TlsContext {
public:
	// Checks everything up front (files readable and PEM, certificate within its
	// validity, key matches, the CA file holds a certificate, the certificate chains
	// to it with the purpose of its role: `server` wants serverAuth, a client
	// clientAuth).  Returns nullptr with *err set to one line naming the file and
	// the problem: "tls: certificate /etc/dwcp/a.pem expired on 2025-01-01 00:00:00 UTC".
	// Only the certificate file's chain is sent, not the root: each side has the CA.
	static std::unique_ptr<TlsContext> load(const TlsConfig &cfg, bool server, std::string *err);
	// As load() but without the validity and chain checks, and with no certificate
	// at all when cert_file is empty: for tests of how a peer refuses such a side.
	static std::unique_ptr<TlsContext> load_unchecked(const TlsConfig &cfg, bool server, std::string *err);
	~TlsContext();
	TlsContext(const TlsContext &) = delete;
	TlsContext &operator=(const TlsContext &) = delete;

	ssl_ctx_st *ssl_ctx() const { return ctx_; }
	const std::string &peer_name() const { return peer_name_; }

private:
	TlsContext(ssl_ctx_st *ctx, std::string peer_name) : ctx_(ctx), peer_name_(std::move(peer_name)) {}
	static std::unique_ptr<TlsContext> make(const TlsConfig &cfg, bool server, bool check, std::string *err);

	ssl_ctx_st *ctx_;
	std::string peer_name_;
};

struct CryptoSegment {
	uint64_t offset = 0; // in this side's handshake byte stream
	std::vector<uint8_t> data;
};

using Secret = std::array<uint8_t, 32>;

constexpr size_t kHandshakeReorderBytes = 64 * 1024; // peer bytes held beyond a gap
constexpr uint32_t kHandshakeMaxRetransmits = 8;
constexpr uint64_t kHandshakeMaxTimeoutNs = 60'000'000'000;

// DWCP's transport parameters ride the handshake in a TLS extension of their own,
// as QUIC's do (RFC 9001 §8.2): the client's in its ClientHello, the server's in
// its EncryptedExtensions (sent only to a client that sent its own).  The
// handshake transcript authenticates both, and each side holds the other's when
// the handshake completes, before any data.  The type is from TLS's private-use
// range (RFC 8446 §11: first byte 255); what the bytes mean is the gateway's
// (control/messages.h, PortParams).
constexpr unsigned kTransportParamsExt = 0xffd7;
constexpr size_t kMaxTransportParams = 256;

class Handshake {
public:
	enum class Role { client, server };

	// The handshake takes its own reference on the context's SSL_CTX.
	// local_params: this side's transport parameters (at most
	// kMaxTransportParams bytes); empty sends none.
	Handshake(TlsContext &ctx, Role role, uint64_t initial_timeout_ns = 1'000'000'000,
		  std::vector<uint8_t> local_params = {});
	~Handshake();
	Handshake(const Handshake &) = delete;
	Handshake &operator=(const Handshake &) = delete;

	// The peer's handshake bytes at `offset` of its stream, in any order; overlaps
	// and duplicates are fine.  At most kHandshakeReorderBytes past the first
	// missing byte are held; beyond that the handshake fails.  Returns false once
	// the handshake has failed.
	bool on_peer_bytes(uint64_t offset, std::span<const uint8_t> data, uint64_t now_ns);
	// Segments to send now, each at most max_segment bytes: bytes TLS produced since
	// the last poll, or the whole last flight again when the timer fired or the
	// peer repeated a flight this side answered.  After a failure: the TLS alert
	// that tells the peer why.
	std::vector<CryptoSegment> poll(uint64_t now_ns, size_t max_segment);
	// When poll() has something to do: 0 when it has bytes to send now, UINT64_MAX
	// when nothing is pending.
	uint64_t next_timeout_ns() const;

	bool complete() const { return complete_ && !failed_; } // done and peer verified
	bool failed() const { return failed_; }
	const std::string &error() const { return error_; }    // one line, "" until failed

	// After complete(): 32-byte secrets from the TLS exporter, one per direction,
	// seen from this side (the client's tx is the server's rx).
	const Secret &tx_secret() const { return tx_secret_; }
	const Secret &rx_secret() const { return rx_secret_; }
	std::string peer_subject() const; // the verified peer certificate's subject, for logs
	// The peer's transport parameters, once its hello carried them (a server's
	// come only to a client that sent its own); check the handshake completed
	// before trusting them.
	bool has_peer_params() const { return has_peer_params_; }
	const std::vector<uint8_t> &peer_params() const { return peer_params_; }

	// Client: a protected packet from the server opened, so it holds the keys and
	// has accepted this side's certificate; stop resending the last flight.
	void peer_confirmed();
	// Nothing more to resend: the server once complete, the client once confirmed,
	// either side once failed and its alert is out.
	bool done_sending() const;

	uint32_t nb_retransmits() const { return nb_retx_total_; } // timer and repeat resends
	uint64_t bytes_sent() const { return tx_.size(); }       // stream length so far

private:
	friend struct HandshakeCallbacks; // OpenSSL's verify, info and ClientHello callbacks
	void drive();
	void drain_output(uint64_t before);
	void fail(std::string why);
	void fail_from_ssl();
	void finish();
	bool timer_wanted() const;
	void emit(uint64_t from, uint64_t to, size_t max_segment, std::vector<CryptoSegment> *out) const;

	ssl_st *ssl_ = nullptr;
	Role role_;
	std::string peer_name_;
	uint64_t initial_timeout_ns_;

	// Peer stream: everything before rx_end_ went to TLS; rx_buf_/rx_have_ hold
	// what arrived beyond it, indexed from rx_end_.
	uint64_t rx_end_ = 0;
	std::vector<uint8_t> rx_buf_;
	std::vector<bool> rx_have_;
	uint64_t answered_rx_end_ = 0; // the peer stream up to here got our last flight in reply

	// Our stream: all of it is kept (a handshake is a few KiB).
	std::vector<uint8_t> tx_;
	uint64_t sent_end_ = 0;     // bytes sent at least once
	uint64_t flight_start_ = 0; // the last flight is [flight_start_, tx_.size())
	bool resend_ = false;
	bool alert_flight_ = false; // the last flight is the alert that ended a failed handshake
	uint64_t last_flight_send_ns_ = 0;
	uint64_t deadline_ns_ = UINT64_MAX;
	uint64_t rto_ns_;
	uint32_t nb_retx_ = 0;       // timer fires for the current flight
	uint32_t nb_retx_total_ = 0;

	bool complete_ = false;
	bool confirmed_ = false;
	bool failed_ = false;
	std::string error_;
	std::string verify_error_;
	std::string local_error_;
	int alert_received_ = -1;
	Secret tx_secret_{};
	Secret rx_secret_{};
	std::vector<uint8_t> local_params_;
	std::vector<uint8_t> peer_params_;
	bool has_peer_params_ = false;
};

} // namespace dwcp::control
