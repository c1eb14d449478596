#include "control/initial_channel.h"

#include <algorithm>
#include <cstring>

#include "dataplane/amst/wire.h"

namespace dwcp::control {

InitialChannel::InitialChannel(TlsContext &ctx, Handshake::Role role, uint64_t session_id, size_t max_packet,
			       uint64_t initial_timeout_ns, std::vector<uint8_t> local_params)
	: hs_(ctx, role, initial_timeout_ns, std::move(local_params)), role_(role), session_id_(session_id), max_packet_(max_packet)
{
}

void InitialChannel::frame(const std::vector<CryptoSegment> &segs, std::vector<std::vector<uint8_t>> *out)
{
	for (const CryptoSegment &s : segs) {
		std::vector<uint8_t> p(max_packet_);
		wire::encode_header({.flags = 0,
				     .type = wire::PacketType::initial,
				     .stream_id = wire::kControlStream,
				     .session_id = session_id_,
				     .pn = pn_++},
				    p.data());
		size_t len = wire::kHeaderLen;
		if (!token_.empty())
			len += wire::encode_token_frame(token_, p.data() + len, p.size() - len);
		size_t n = wire::encode_crypto_frame(s.offset, s.data, p.data() + len, p.size() - len);
		if (!n)
			continue; // cannot happen: segments are cut to fit (see max_segment below)
		len += n;
		// Padding (zero bytes are PADDING frames) to kMinInitialLen, so a listener
		// may answer with a RETRY without amplifying anything.
		if (role_ == Handshake::Role::client && len < wire::kMinInitialLen && p.size() >= wire::kMinInitialLen) {
			memset(p.data() + len, 0, wire::kMinInitialLen - len);
			len = wire::kMinInitialLen;
		}
		p.resize(len);
		out->push_back(std::move(p));
		sent_++;
	}
}

std::vector<std::vector<uint8_t>> InitialChannel::poll(uint64_t now_ns)
{
	std::vector<std::vector<uint8_t>> out;
	if (resend_first_) {
		resend_first_ = false;
		frame(first_flight_, &out);
	}
	// Room for the header, the largest token and the CRYPTO frame's own fields.
	size_t max_segment = max_packet_ - wire::kHeaderLen - (2 + wire::kMaxTokenLen) - wire::kCryptoFrameOverhead;
	std::vector<CryptoSegment> segs = hs_.poll(now_ns, max_segment);
	// Kept once: a repeat of the flight on the handshake's timer brings the same
	// bytes again, and the token's resend needs them once.
	if (role_ == Handshake::Role::client && !peer_spoke_)
		for (const CryptoSegment &sg : segs)
			if (first_flight_.empty() ||
			    sg.offset >= first_flight_.back().offset + first_flight_.back().data.size())
				first_flight_.push_back(sg);
	frame(segs, &out);
	if (role_ == Handshake::Role::client && !out.empty()) {
		if (flight_sends_++ == 0)
			flight_sent_ns_ = now_ns;
	}
	return out;
}

void InitialChannel::on_answer(uint64_t now_ns)
{
	if (flight_sends_ == 1 && now_ns > flight_sent_ns_)
		rtt_ns_ = rtt_ns_ ? std::min(rtt_ns_, now_ns - flight_sent_ns_) : now_ns - flight_sent_ns_;
	flight_sends_ = 0; // what goes next is a new flight
}

void InitialChannel::on_packet(std::span<const uint8_t> pkt, uint64_t now_ns)
{
	wire::Header h;
	if (wire::decode_header(pkt.data(), pkt.size(), &h) != wire::ParseError::ok || h.session_id != session_id_ ||
	    (h.type != wire::PacketType::initial && h.type != wire::PacketType::retry) || h.flags != 0) {
		ignored_++;
		return;
	}
	wire::FrameReader r(pkt.data() + wire::kHeaderLen, pkt.size() - wire::kHeaderLen);
	wire::Frame f;
	if (h.type == wire::PacketType::retry) {
		// A client takes one RETRY, and only before the server has said anything
		// (as in QUIC): later ones are an attacker's or stale.
		if (role_ != Handshake::Role::client || !token_.empty() || peer_spoke_ || r.next(&f) != wire::ParseError::ok ||
		    f.type != wire::FrameType::token || !r.done()) {
			ignored_++;
			return;
		}
		received_++;
		on_answer(now_ns);
		token_.assign(f.data.begin(), f.data.end());
		resend_first_ = true;
		return;
	}
	// Validate the whole packet before any byte reaches TLS.
	while (!r.done()) {
		if (r.next(&f) != wire::ParseError::ok ||
		    (f.type != wire::FrameType::crypto && f.type != wire::FrameType::token)) {
			ignored_++;
			return;
		}
	}
	received_++;
	if (role_ == Handshake::Role::client && !peer_spoke_)
		on_answer(now_ns);
	wire::FrameReader r2(pkt.data() + wire::kHeaderLen, pkt.size() - wire::kHeaderLen);
	while (!r2.done()) {
		r2.next(&f);
		if (f.type != wire::FrameType::crypto)
			continue;
		peer_spoke_ = true;
		if (!hs_.on_peer_bytes(f.stream_off, f.data, now_ns))
			return;
	}
	if (peer_spoke_)
		first_flight_.clear();
}

} // namespace dwcp::control
