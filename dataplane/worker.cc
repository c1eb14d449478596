#include "dataplane/worker.h"

#include <algorithm>
#include <cstring>
#include <ctime>

#include <sys/prctl.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_prefetch.h>

namespace dwcp::dataplane {

namespace {

// One time base for every thread: CLOCK_MONOTONIC, read on the hot path through the
// TSC.  Calibrated once per process, so workers and the control thread agree.
struct Clock {
	uint64_t tsc0 = 0;
	uint64_t mono0 = 0;
	double ns_per_tsc = 1;
};

const Clock &clock_base()
{
	static const Clock c = [] {
		Clock k;
		timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		k.tsc0 = rte_get_tsc_cycles();
		k.mono0 = uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
		k.ns_per_tsc = 1e9 / double(rte_get_tsc_hz());
		return k;
	}();
	return c;
}

std::string ring_name(const char *what, uint16_t index)
{
	return std::string("dwcp_") + what + std::to_string(index) + "_" + std::to_string(getpid());
}

} // namespace

Worker::~Worker()
{
	// Every worker is going: no share of another's pool to give back.
	for (Held &e : held_)
		rte_pktmbuf_free(e.m);
	held_.clear();
	drop_keys(); // and the sealed packets kept for them
	// Closures and mbufs still queued are freed with their rings.
	if (cmds_) {
		void *p;
		while (rte_ring_dequeue(cmds_, &p) == 0)
			delete static_cast<Command *>(p);
		rte_ring_free(cmds_);
	}
	if (handoff_) {
		void *p;
		while (rte_ring_dequeue(handoff_, &p) == 0)
			rte_pktmbuf_free(static_cast<rte_mbuf *>(p));
		rte_ring_free(handoff_);
	}
}

std::string Worker::init(const WorkerConfig &cfg, rte_ring *events, std::vector<Worker *> *peers)
{
	cfg_ = cfg;
	events_ = events;
	peers_ = peers;
	int socket = int(rte_lcore_to_socket_id(cfg.lcore));
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	cmds_ = rte_ring_create(ring_name("cmd", cfg.index).c_str(), 1024, socket, RING_F_SC_DEQ);
	handoff_ = rte_ring_create(ring_name("hand", cfg.index).c_str(), cfg.ring_size, socket, RING_F_SC_DEQ);
	if (!cmds_ || !handoff_)
		return "worker " + std::to_string(cfg.index) + ": cannot create its rings: " + rte_strerror(rte_errno);
	clock_base(); // calibrated once, before any worker reads it
	tx_cap_ = cfg.mtu - 20u - 8u;
	if (cfg.protect) {
		std::string err;
		aead_ = crypto::make_cryptodev_aead(uint8_t(cfg.crypto_dev), cfg.index, socket, &err);
		if (!aead_)
			return "worker " + std::to_string(cfg.index) + ": " + err;
		if (cfg.listen) {
			tokens_ = std::make_unique<crypto::RetryTokens>();
			limiter_ = std::make_unique<crypto::SourceLimiter>(cfg.handshakes_per_s, cfg.handshake_burst);
			validated_limiter_ = std::make_unique<crypto::SourceLimiter>(cfg.handshakes_per_s, cfg.handshake_burst);
		}
		held_.reserve(kHeldMax);
	}
	arp_.init(cfg.iface, rte_get_tsc_hz());
	return "";
}

uint64_t Worker::now_ns() const
{
	const Clock &c = clock_base();
	return c.mono0 + uint64_t(double(rte_get_tsc_cycles() - c.tsc0) * c.ns_per_tsc);
}

bool Worker::post(Command fn)
{
	auto *p = new Command(std::move(fn));
	if (rte_ring_mp_enqueue(cmds_, p) != 0) {
		delete p;
		return false;
	}
	return true;
}

void Worker::attach(std::shared_ptr<amst::Session> s, std::shared_ptr<const PeerPath> path)
{
	drop_keys(); // a new session starts in the clear, with the handshake
	session_ = std::move(s);
	path_ = std::move(path);
	session_id_ = session_ ? session_->config().session_id : 0;
}

void Worker::detach()
{
	session_.reset();
	path_.reset();
	session_id_ = 0;
	drop_keys();
	// The report is read right after the workers detach: it must see what the
	// detach dropped (rx_held_dropped), not the last 1 ms snapshot.
	publish(now_ns());
}

void Worker::drop_keys()
{
	if (txp_)
		txp_->clear(*aead_);
	if (rxp_)
		rxp_->clear(*aead_);
	txp_.reset();
	rxp_.reset();
	handshake_over_ = false;
	local_.keys = false;
	drop_early();
	drop_held();
}

bool Worker::holds(const wire::Header &h) const
{
	return h.type == wire::PacketType::data && session_ && !session_->config().sends_data && !session_->receiving();
}

std::atomic<uint32_t> &Worker::held_out_of(uint16_t owner)
{
	return owner == cfg_.index ? held_out_ : (*peers_)[owner]->held_out_;
}

// Keeps an opened DATA packet until release_held.  False when there is no room:
// this worker's share, or that of the pool the mbuf came from, is used up.
bool Worker::hold(const wire::Header &h, const uint8_t *body, uint32_t len, rte_mbuf *m)
{
	uint16_t owner = cfg_.index;
	if (m->pool != cfg_.pool) {
		owner = UINT16_MAX;
		for (size_t k = 0; peers_ && k < peers_->size(); k++)
			if ((*peers_)[k]->cfg_.pool == m->pool)
				owner = uint16_t(k);
	}
	if (owner == UINT16_MAX || held_.size() >= kHeldMax)
		return false;
	std::atomic<uint32_t> &out = held_out_of(owner);
	if (out.fetch_add(1, std::memory_order_relaxed) >= kHeldMax) {
		out.fetch_sub(1, std::memory_order_relaxed);
		return false;
	}
	held_.push_back({m, h, body, len, owner});
	return true;
}

void Worker::unhold(const Held &e)
{
	held_out_of(e.pool_owner).fetch_sub(1, std::memory_order_relaxed);
	rte_pktmbuf_free(e.m);
}

void Worker::drop_held()
{
	for (Held &e : held_)
		unhold(e);
	local_.rx_held_dropped += held_.size();
	held_.clear();
}

void Worker::release_held(uint64_t now)
{
	if (!session_ || !session_->receiving()) {
		drop_held();
		return;
	}
	for (Held &e : held_) {
		deliver(e.h, e.body, e.len, now);
		unhold(e);
	}
	held_.clear(); // keeps its capacity: no allocation on the RX path
}

void Worker::drop_early()
{
	for (Early &e : early_)
		rte_pktmbuf_free(e.m);
	local_.rx_no_key += early_.size();
	early_.clear();
}

std::string Worker::install_keys(const crypto::Secret &tx, const crypto::Secret &rx)
{
	if (!aead_)
		return "worker " + std::to_string(cfg_.index) + ": security is off";
	// What came sealed before the keys is opened with them, below.
	std::vector<Early> early;
	early.swap(early_);
	drop_keys();
	auto t = std::make_unique<crypto::TxProtection>();
	auto r = std::make_unique<crypto::RxProtection>();
	std::string err;
	if (!t->install(*aead_, tx, &err) || !r->install(*aead_, rx, &err)) {
		t->clear(*aead_);
		r->clear(*aead_);
		early_.swap(early);
		drop_early();
		return "worker " + std::to_string(cfg_.index) + ": cannot install the session keys: " + err;
	}
	txp_ = std::move(t);
	rxp_ = std::move(r);
	local_.keys = true;
	// What came sealed before the keys, in arrival order.
	uint64_t now = now_ns();
	for (Early &e : early)
		if (!handle_dwcp(e.v.payload, e.v.len, e.v, e.m, now))
			rte_pktmbuf_free(e.m);
	return "";
}

std::string Worker::update_tx_key()
{
	if (!txp_)
		return "worker " + std::to_string(cfg_.index) + ": no keys to update";
	std::string err;
	if (!txp_->update(*aead_, &err))
		return "worker " + std::to_string(cfg_.index) + ": key update failed: " + err;
	return "";
}

void Worker::send_initial(const std::vector<uint8_t> &pkt)
{
	if (!path_ || pkt.size() > tx_cap_)
		return;
	rte_mbuf *m = rte_pktmbuf_alloc(cfg_.pool);
	if (!m) {
		local_.tx_no_mbuf++;
		return;
	}
	uint8_t *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(pkt.size())));
	if (!p) {
		rte_pktmbuf_free(m);
		return;
	}
	memcpy(p, pkt.data(), pkt.size());
	if (!drivers::tx_encap(m, path_->tpl, path_->src_port[0], ip_id_++)) {
		rte_pktmbuf_free(m);
		return;
	}
	tx_one(m);
}

void Worker::emit(Event *ev)
{
	if (rte_ring_mp_enqueue(events_, ev) != 0)
		delete ev; // the control thread is far behind; it times the session out
}

void Worker::replay(const std::vector<uint8_t> &udp_payload)
{
	drivers::UdpView v{};
	if (path_) {
		v.src_ip = path_->ip;
		v.src_port = path_->udp_port;
	}
	std::vector<uint8_t> copy(udp_payload);
	handle_dwcp(copy.data(), uint16_t(copy.size()), v, nullptr, now_ns());
}

// ---------------------------------------------------------------- receive

namespace {

// Whether a stream-0 packet could open a session: its first STREAM frame starts
// the control channel with at least a message header.  The control thread checks
// the HELLO inside; this only keeps stray and forged packets from using up the
// new-peer reports.
bool opens_control_stream(const uint8_t *p, uint16_t len)
{
	wire::Frame f;
	return wire::first_stream_frame(p + wire::kHeaderLen, len - wire::kHeaderLen, &f) && f.stream_off == 0 &&
	       f.data.size() >= 6;
}

} // namespace

void Worker::emit_new_peer(const uint8_t *p, uint16_t len, const wire::Header &h, const drivers::UdpView &v,
			   uint64_t now)
{
	// At most one report every 10 ms however many arrive: the control thread looks
	// at the first, and a session it opens silences the rest.
	if (now < new_peer_reported_ns_ + 10'000'000) {
		local_.rx_initial_limited++;
		return;
	}
	new_peer_reported_ns_ = now;
	auto *ev = new Event{.kind = Event::Kind::new_peer};
	ev->session_id = h.session_id;
	ev->body.assign(p, p + len);
	ev->src_ip = v.src_ip;
	ev->src_port = v.src_port;
	ev->mac = v.src_mac;
	emit(ev);
}

void Worker::send_retry(const wire::Header &h, const drivers::UdpView &v, uint64_t now)
{
	rte_mbuf *m = rte_pktmbuf_alloc(cfg_.pool);
	if (!m) {
		local_.tx_no_mbuf++;
		return;
	}
	uint8_t token[crypto::kTokenLen];
	size_t tlen = tokens_->mint(v.src_ip, v.src_port, h.session_id, now, token);
	size_t len = wire::kHeaderLen + 2 + tlen;
	uint8_t *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(len)));
	if (!p) {
		rte_pktmbuf_free(m);
		return;
	}
	wire::encode_header({.flags = 0, .type = wire::PacketType::retry, .stream_id = 0, .session_id = h.session_id, .pn = 0},
			    p);
	wire::encode_token_frame({token, tlen}, p + wire::kHeaderLen, len - wire::kHeaderLen);
	// Back to where the INITIAL came from, on the DWCP port: a RETRY is the only
	// packet a listener sends to an address it has not validated, and it is no
	// larger than what it answers.
	drivers::TxTemplate tpl;
	drivers::tx_template_init(&tpl, cfg_.iface, v.src_mac, v.src_ip, cfg_.iface.udp_port, cfg_.offloads);
	if (!drivers::tx_encap(m, tpl, rte_be_to_cpu_16(cfg_.iface.udp_port), ip_id_++)) {
		rte_pktmbuf_free(m);
		return;
	}
	local_.retry_sent++;
	tx_one(m);
}

void Worker::handle_initial(const uint8_t *p, uint16_t len, const wire::Header &h, const drivers::UdpView &v,
			    uint64_t now)
{
	if (!cfg_.protect) {
		local_.rx_bad_initial++;
		return;
	}
	if (session_ && h.session_id == session_id_) {
		// Only the peer's address may speak in our handshake: the session id is
		// visible to anyone on the path, who could otherwise inject a RETRY or
		// CRYPTO bytes ahead of the real ones.
		if (path_ && v.src_ip != path_->ip) {
			local_.rx_bad_initial++;
			return;
		}
		// Our handshake: the control thread runs TLS.  Once it is over, or when more
		// arrive than any handshake needs (256 per 100 ms), they are dropped.
		if (handshake_over_) {
			local_.rx_initial_limited++;
			return;
		}
		if (now >= initial_window_ns_ + 100'000'000) {
			initial_window_ns_ = now;
			initial_events_ = 0;
		}
		if (++initial_events_ > 256) {
			local_.rx_initial_limited++;
			return;
		}
		auto *ev = new Event{.kind = Event::Kind::initial};
		ev->session_id = h.session_id;
		ev->type = uint16_t(h.type);
		ev->body.assign(p, p + len);
		ev->src_ip = v.src_ip;
		ev->src_port = v.src_port;
		emit(ev);
		return;
	}
	if (!cfg_.listen || h.type != wire::PacketType::initial) {
		local_.rx_unknown_session++;
		return;
	}
	// A new session: the first INITIAL must start the client's TLS stream, and
	// carry a token that proves the client receives at its address.  Without one
	// it gets a RETRY; nothing is allocated for it either way.
	wire::FrameReader r(p + wire::kHeaderLen, len - wire::kHeaderLen);
	wire::Frame f;
	std::span<const uint8_t> token;
	bool starts = false;
	while (!r.done()) {
		if (r.next(&f) != wire::ParseError::ok) {
			local_.rx_bad_initial++;
			return;
		}
		if (f.type == wire::FrameType::token)
			token = f.data;
		else if (f.type == wire::FrameType::crypto && f.stream_off == 0 && !f.data.empty())
			starts = true;
	}
	if (!starts) {
		local_.rx_bad_initial++;
		return;
	}
	if (token.empty()) {
		// A RETRY goes only to an INITIAL padded to kMinInitialLen, so it is never
		// larger than what it answers, and at most at the source's rate: spoofed
		// floods cannot turn the listener into an amplifier.
		if (len < wire::kMinInitialLen) {
			local_.rx_bad_initial++;
			return;
		}
		if (!limiter_->allow(v.src_ip, now)) {
			local_.rx_initial_limited++;
			return;
		}
		send_retry(h, v, now);
		return;
	}
	if (tokens_->check(v.src_ip, v.src_port, h.session_id, token, now) != crypto::RetryTokens::Check::ok) {
		local_.rx_bad_token++;
		return;
	}
	// The token proved the address: a limit of its own, which spoofed traffic
	// (that never gets a token) cannot drain.
	if (!validated_limiter_->allow(v.src_ip, now)) {
		local_.rx_initial_limited++;
		return;
	}
	if (session_) {
		local_.rx_busy++;
		return;
	}
	emit_new_peer(p, len, h, v, now);
}

bool Worker::handle_dwcp(uint8_t *p, uint16_t len, const drivers::UdpView &v, rte_mbuf *m, uint64_t now)
{
	wire::Header h;
	if (wire::decode_header(p, len, &h) != wire::ParseError::ok) {
		local_.rx_bad_header++;
		return false;
	}
	if (h.type == wire::PacketType::initial || h.type == wire::PacketType::retry) {
		handle_initial(p, len, h, v, now);
		return false;
	}
	if (!session_ || h.session_id != session_id_) {
		local_.rx_unknown_session++;
		// Security off: a listening worker 0 with no session tells the control
		// thread about a peer's hello (stream 0).
		if (!cfg_.protect && cfg_.listen && !session_ && h.stream_id == wire::kControlStream &&
		    h.type == wire::PacketType::ctrl && !(h.flags & wire::flag_protected) && opens_control_stream(p, len))
			emit_new_peer(p, len, h, v, now);
		return false;
	}
	size_t body_len = len - wire::kHeaderLen;
	if (cfg_.protect) {
		if (!(h.flags & wire::flag_protected)) {
			local_.rx_unprotected++;
			return false;
		}
		if (!rxp_) {
			// Kept only while the handshake runs, and only a few: they cannot be
			// told from forgeries until the keys are in.
			if (m && !handshake_over_ && early_.size() < kEarlyMax) {
				early_.push_back({m, v});
				return true;
			}
			local_.rx_no_key++;
			return false;
		}
		// With the keys in, RX bursts open sealed packets in open_burst; what
		// comes here is one of those kept from before the keys: the same path.
		if (!m)
			return false; // sealed packets always come in an mbuf
		SealedBurst one;
		one.add(h, p, len, m);
		open_burst(one, now); // delivers or holds it, and frees what it does not hold
		return true;
	} else if (h.flags & wire::flag_protected) {
		local_.rx_protected++;
		return false;
	}
	deliver(h, p + wire::kHeaderLen, body_len, now);
	return false;
}

void Worker::deliver(const wire::Header &h, const uint8_t *body, size_t len, uint64_t now)
{
	bool was_closed = session_->closed();
	session_->on_packet(h, body, len, now);
	if (!was_closed && session_->closed() && session_->close_code() != 0xffff) {
		auto *ev = new Event{.kind = Event::Kind::session_closed};
		ev->session_id = session_id_;
		ev->type = session_->close_code();
		ev->text = session_->close_reason();
		emit(ev);
	}
}

// The session's sealed DATA/CTRL packets of one burst are opened together: one
// cryptodev call for all of them instead of one each (RxProtection groups those of
// the current key phase).  Everything else goes through handle_dwcp.
bool Worker::sealed_for_us(const drivers::UdpView &v, wire::Header *h) const
{
	return cfg_.protect && rxp_ && session_ && v.len >= wire::kHeaderLen + crypto::kTagLen &&
	       wire::decode_header(v.payload, v.len, h) == wire::ParseError::ok && h->session_id == session_id_ &&
	       (h->flags & wire::flag_protected) &&
	       (h->type == wire::PacketType::data || h->type == wire::PacketType::ctrl);
}

void Worker::open_burst(SealedBurst &b, uint64_t now)
{
	crypto::RxProtection::Verdict verdict[kBurst];
	rxp_->open_burst(*aead_, b.ops, b.phase, verdict, b.n, now);
	for (unsigned i = 0; i < b.n; i++) {
		switch (verdict[i]) {
		case crypto::RxProtection::Verdict::ok:
			local_.rx_opened++;
			if (holds(b.hdr[i])) {
				// Delivered by release_held, when the receiver is ready.
				if (hold(b.hdr[i], b.ops[i].data, b.ops[i].len, b.m[i])) {
					local_.rx_held++;
					b.m[i] = nullptr; // not freed below
				} else {
					local_.rx_held_over++;
				}
			} else if (session_) {
				deliver(b.hdr[i], b.ops[i].data, b.ops[i].len, now);
			}
			break;
		case crypto::RxProtection::Verdict::no_key: local_.rx_no_key++; break;
		case crypto::RxProtection::Verdict::duplicate: local_.rx_replay++; break;
		case crypto::RxProtection::Verdict::too_old: local_.rx_replay_old++; break;
		case crypto::RxProtection::Verdict::auth_failed: local_.rx_auth_failed++; break;
		}
	}
	rte_pktmbuf_free_bulk(b.m, b.n); // held ones are NULL
	b.n = 0;
}

void Worker::handle_rx(rte_mbuf **pkts, uint16_t n, uint64_t now, bool handed_off)
{
	drivers::RxClass cls[kBurst];
	drivers::UdpView views[kBurst];
	uint16_t nb_udp = drivers::rx_classify_burst(pkts, n, cfg_.iface, cls, views, &local_.rx_class);
	(void)nb_udp;
	SealedBurst sealed;
	for (uint16_t i = 0; i < n; i++) {
		rte_mbuf *m = pkts[i];
		if (!handed_off) {
			local_.rx_packets++;
			local_.rx_bytes += m->pkt_len;
		}
		switch (cls[i]) {
		case drivers::RxClass::udp: {
			const drivers::UdpView &v = views[i];
			// The owner of a stream is worker stream % nb_workers; stream 0 and new
			// sessions belong to worker 0.
			if (cfg_.nb_workers > 1 && v.len >= wire::kHeaderLen) {
				uint16_t stream = wire::get_u16(v.payload + 2);
				uint16_t owner = uint16_t(stream % cfg_.nb_workers);
				if (owner != cfg_.index) {
					if (rte_ring_mp_enqueue((*peers_)[owner]->handoff_, m) == 0) {
						local_.rx_handoff++;
					} else {
						local_.rx_handoff_full++;
						rte_pktmbuf_free(m);
					}
					continue;
				}
			}
			wire::Header h;
			if (sealed_for_us(v, &h)) {
				sealed.add(h, v.payload, v.len, m);
				continue;
			}
			if (!handle_dwcp(v.payload, v.len, v, m, now))
				rte_pktmbuf_free(m);
			break;
		}
		case drivers::RxClass::arp:
			if (cfg_.index != 0) {
				if (rte_ring_mp_enqueue((*peers_)[0]->handoff_, m) != 0) {
					local_.rx_handoff_full++;
					rte_pktmbuf_free(m);
				}
				continue;
			}
			if (arp_.input(m, rte_get_tsc_cycles()) == drivers::ArpInput::reply)
				tx_one(m);
			else
				rte_pktmbuf_free(m);
			break;
		default:
			local_.rx_drops++;
			rte_pktmbuf_free(m);
			break;
		}
	}
	if (sealed.n)
		open_burst(sealed, now);
}

// ---------------------------------------------------------------- send

void Worker::tx_one(rte_mbuf *m)
{
	tx_[nb_tx_++] = m;
	if (nb_tx_ == kBurst)
		flush_tx();
}

void Worker::flush_tx()
{
	if (!nb_tx_)
		return;
	uint16_t sent = rte_eth_tx_burst(cfg_.port_id, cfg_.index, tx_, nb_tx_);
	for (uint16_t i = 0; i < sent; i++) {
		local_.tx_packets++;
		local_.tx_bytes += tx_[i]->pkt_len;
	}
	if (sent < nb_tx_) {
		// The queue is full.  The session counted these as sent; they are lost to it
		// and its loss detection sends them again, which is what a full queue on
		// the path would have done too.
		local_.tx_ring_full += nb_tx_ - sent;
		rte_pktmbuf_free_bulk(tx_ + sent, nb_tx_ - sent);
	}
	nb_tx_ = 0;
}

void Worker::seal(rte_mbuf **m, uint16_t n, bool *ok)
{
	crypto::AeadOp ops[kBurst];
	uint8_t flags = wire::flag_protected | (txp_->phase() ? wire::flag_key_phase : 0);
	for (uint16_t i = 0; i < n; i++) {
		uint8_t *p = rte_pktmbuf_mtod(m[i], uint8_t *);
		p[0] |= flags;
		ops[i] = crypto::packet_op(p, m[i]->data_len, m[i]);
	}
	aead_->seal_burst(txp_->key(), ops, n);
	for (uint16_t i = 0; i < n; i++)
		ok[i] = ops[i].ok;
	local_.tx_sealed += n;
}

uint16_t Worker::drop_unsealed(rte_mbuf **m, uint16_t *streams, uint16_t n, const bool *ok)
{
	// A packet the device failed to seal still holds its body in the clear: it is
	// freed here, never sent (the session's loss detection sends its bytes again).
	uint16_t kept = 0;
	for (uint16_t i = 0; i < n; i++) {
		if (ok[i]) {
			m[kept] = m[i], streams[kept] = streams[i], kept++;
		} else {
			rte_pktmbuf_free(m[i]);
			local_.tx_seal_failed++;
		}
	}
	return kept;
}

uint16_t Worker::fill_tx(uint64_t now)
{
	if (!session_ || !path_)
		return 0;
	// Security on: nothing of a session leaves in the clear, so without keys the
	// session waits (the control thread installs them before it queues anything).
	if (cfg_.protect && !txp_)
		return 0;
	rte_mbuf *bufs[kBurst];
	uint16_t streams[kBurst];
	uint16_t room = kBurst - nb_tx_;
	if (!room)
		return 0;
	if (rte_pktmbuf_alloc_bulk(cfg_.pool, bufs, room) != 0) {
		local_.tx_no_mbuf++;
		return 0;
	}
	uint16_t used = 0;
	while (used < room) {
		rte_mbuf *m = bufs[used];
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
		size_t cap = std::min<size_t>(tx_cap_, rte_pktmbuf_tailroom(m));
		size_t len = session_->poll_tx(now, p, cap, &streams[used]);
		if (!len)
			break;
		// The AEAD tag slot (tag_len bytes) follows the body.
		len += session_->config().tag_len;
		m->data_len = uint16_t(len);
		m->pkt_len = uint32_t(len);
		used++;
	}
	if (used && txp_) {
		bool ok[kBurst];
		seal(bufs, used, ok);
		uint16_t kept = drop_unsealed(bufs, streams, used, ok);
		// Close the gap so the unused mbufs after them are freed below.
		for (uint16_t i = used; i < room; i++)
			bufs[kept + (i - used)] = bufs[i];
		room = uint16_t(room - (used - kept));
		used = kept;
	}
	uint16_t sent = 0;
	for (; sent < used; sent++)
		if (!drivers::tx_encap(bufs[sent], path_->tpl, path_->src_port[streams[sent]], ip_id_++))
			break; // cannot happen with a pool built for the MTU; the mbuf is freed below
	for (uint16_t i = 0; i < sent; i++)
		tx_[nb_tx_++] = bufs[i];
	if (sent < room)
		rte_pktmbuf_free_bulk(bufs + sent, room - sent);
	return sent;
}

// ---------------------------------------------------------------- ARP, stats, idle

void Worker::run_arp(uint64_t now)
{
	if (!resolve_ip_ || now < next_arp_)
		return;
	next_arp_ = now + 1'000'000; // the table's own backoff decides when to send; look every ms
	rte_ether_addr mac;
	switch (arp_.resolve(resolve_ip_, rte_get_tsc_cycles(), &mac)) {
	case drivers::ArpResolve::resolved:
	case drivers::ArpResolve::refresh: {
		auto *ev = new Event{.kind = Event::Kind::arp_resolved};
		ev->src_ip = resolve_ip_;
		ev->mac = mac;
		emit(ev);
		resolve_ip_ = 0;
		break;
	}
	case drivers::ArpResolve::request: {
		rte_mbuf *m = rte_pktmbuf_alloc(cfg_.pool);
		if (m && drivers::arp_request(m, cfg_.iface, resolve_ip_))
			tx_one(m);
		else if (m)
			rte_pktmbuf_free(m);
		break;
	}
	case drivers::ArpResolve::pending:
		break;
	case drivers::ArpResolve::unreachable:
	case drivers::ArpResolve::table_full: {
		auto *ev = new Event{.kind = Event::Kind::arp_unreachable};
		ev->src_ip = resolve_ip_;
		ev->text = arp_.unreachable_message(resolve_ip_, cfg_.port_name);
		emit(ev);
		resolve_ip_ = 0;
		break;
	}
	}
}

void Worker::publish(uint64_t now)
{
	WorkerSnapshot &s = local_;
	s.at_ns = now;
	if (session_) {
		s.session = session_->counters();
		s.delivered_bytes = s.sent_packets = s.lost_packets = s.sent_bytes = s.bytes_in_flight = 0;
		s.pacing_bytes_per_s = 0;
		uint64_t best = 0;
		for (uint16_t st = 1; st <= session_->config().nb_streams; st++) {
			const amst::StreamSender *tx = session_->stream_tx(st);
			if (!tx)
				continue;
			const auto &x = tx->stats();
			s.delivered_bytes += tx->delivered();
			s.sent_packets += x.packets_sent;
			s.sent_bytes += x.bytes_sent;
			s.lost_packets += x.packets_lost;
			s.bytes_in_flight += tx->bytes_in_flight();
			if (st <= session_->active_streams())
				s.pacing_bytes_per_s += tx->pacing_rate();
			if (tx->delivered() >= best && tx->rtt().has_sample()) {
				best = tx->delivered();
				s.srtt_ns = tx->rtt().smoothed();
				s.min_rtt_ns = tx->rtt().min();
			}
		}
		if (!best) {
			// The receiver sends no data: its RTT is the control channel's.
			if (const amst::StreamSender *c = session_->stream_tx(0); c && c->rtt().has_sample()) {
				s.srtt_ns = c->rtt().smoothed();
				s.min_rtt_ns = c->rtt().min();
			}
		}
		s.streams_heard = session_->streams_heard();
		s.all_acked = session_->all_acked();
		s.ctrl_flushed = session_->ctrl_flushed();
		s.closed = session_->closed();
	}
	if (txp_)
		s.tx_key_generation = txp_->generation();
	if (rxp_)
		s.rx_key_generation = rxp_->generation();
	seq_.fetch_add(1, std::memory_order_acq_rel);
	std::atomic_thread_fence(std::memory_order_release);
	memcpy(static_cast<void *>(&shared_), &s, sizeof(s));
	std::atomic_thread_fence(std::memory_order_release);
	seq_.fetch_add(1, std::memory_order_acq_rel);
}

WorkerSnapshot Worker::snapshot() const
{
	WorkerSnapshot out;
	for (;;) {
		uint64_t a = seq_.load(std::memory_order_acquire);
		if (a & 1)
			continue;
		std::atomic_thread_fence(std::memory_order_acquire);
		memcpy(static_cast<void *>(&out), &shared_, sizeof(out));
		std::atomic_thread_fence(std::memory_order_acquire);
		if (seq_.load(std::memory_order_acquire) == a)
			return out;
	}
}

void Worker::sleep_idle(uint64_t now, uint64_t next_event)
{
	// The floor stays far below the path's RTT: back to back (memif, a LAN) a
	// 50 us nap per burst would cost more than the link itself.
	uint64_t floor = cfg_.batch_ns;
	if (local_.srtt_ns)
		floor = std::min(floor, local_.srtt_ns / 64);
	uint64_t ns = next_event > now ? next_event - now : 0;
	ns = std::clamp<uint64_t>(ns, floor, cfg_.idle_sleep_max_ns);
	if (ns < 4000) {
		rte_pause();
		return;
	}
	local_.idle_sleeps++;
	timespec ts{.tv_sec = 0, .tv_nsec = long(ns)};
	nanosleep(&ts, nullptr);
}

int Worker::run()
{
	rte_mbuf *pkts[kBurst];
	uint64_t next_event = 0;
	// Sleeps as short as asked: the default 50 us slack would stretch every pacing gap.
	prctl(PR_SET_TIMERSLACK, 1UL);
	while (!stop_.load(std::memory_order_relaxed)) {
		uint64_t now = now_ns();
		local_.loops++;
		// Saturated: a full RX burst came in or a full TX burst went out, so there is
		// more right now.  Otherwise the worker sleeps: until its session's next
		// timer or pacing slot, but at least batch_ns, so that a paced sender wakes
		// a few times per 100 us and hands the device several packets per kick
		// (one syscall per burst on af_packet) instead of one.
		bool saturated = false;

		if (unlikely(!rte_ring_empty(cmds_))) {
			void *c;
			while (rte_ring_sc_dequeue(cmds_, &c) == 0) {
				auto *fn = static_cast<Command *>(c);
				(*fn)(*this);
				delete fn;
			}
			next_event = 0;
			saturated = true;
		}

		uint16_t n = rte_eth_rx_burst(cfg_.port_id, cfg_.index, pkts, kBurst);
		bool rx = n != 0;
		if (n) {
			handle_rx(pkts, n, now, false);
			saturated |= n == kBurst;
		}
		if (cfg_.nb_workers > 1) {
			n = uint16_t(rte_ring_sc_dequeue_burst(handoff_, reinterpret_cast<void **>(pkts), kBurst, nullptr));
			if (n) {
				handle_rx(pkts, n, now, true);
				rx = true;
				saturated |= n == kBurst;
			}
		}

		if (session_) {
			if (rx || saturated || now >= next_event) {
				session_->on_timer(now);
				uint16_t room = kBurst - nb_tx_;
				uint16_t made = fill_tx(now);
				saturated |= made == room && room;
				next_event = session_->next_event_ns(now);
			}
		} else {
			next_event = now + cfg_.idle_sleep_max_ns;
		}
		run_arp(now);
		flush_tx();

		if (now >= next_publish_) {
			publish(now);
			next_publish_ = now + 1'000'000;
		}
		// While packets arrive, nap only the floor: a receiver that slept until its
		// ACK timer would stretch a short path's RTT past what the sender's window
		// (sized from the minimum RTT) covers.
		if (!saturated)
			sleep_idle(now, rx ? now : std::min(next_event, resolve_ip_ ? now + 1'000'000 : UINT64_MAX));
	}
	flush_tx();
	publish(now_ns());
	return 0;
}

} // namespace dwcp::dataplane
