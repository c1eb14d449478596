#include "tests/sim/sim_link.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "dataplane/crypto/protection.h"

namespace dwcp::sim {

void SimPipe::enqueue(uint64_t at_ns, std::vector<uint8_t> payload)
{
	q_.push(InFlight{at_ns, seq_++, std::move(payload)});
}

void SimPipe::send(uint64_t now_ns, std::vector<uint8_t> payload, uint32_t wire_bytes)
{
	stats_.sent++;
	for (const auto &b : shape_.blackouts) {
		if (now_ns >= b.from_ns && now_ns < b.to_ns) {
			stats_.blackout_drops++;
			return;
		}
	}
	uint64_t start = std::max(wire_free_ns_, now_ns);
	if (start - now_ns > shape_.queue_ns) {
		stats_.queue_drops++;
		return;
	}
	wire_free_ns_ = start + wire_bytes * 1'000'000'000ull / shape_.rate_bytes_per_s;
	if (shape_.loss > 0 && uniform() < shape_.loss) {
		stats_.lost++;
		return;
	}
	uint64_t at = wire_free_ns_ + shape_.delay_ns;
	if (shape_.jitter_ns)
		at = at + uint64_t(uniform() * 2 * double(shape_.jitter_ns)) - shape_.jitter_ns;
	if (shape_.reorder > 0 && uniform() < shape_.reorder) {
		at += uint64_t(uniform() * double(shape_.reorder_ns));
		stats_.reordered++;
	}
	if (shape_.duplicate > 0 && uniform() < shape_.duplicate) {
		stats_.duplicated++;
		enqueue(at + uint64_t(uniform() * 1e6), payload);
	}
	enqueue(at, std::move(payload));
}

bool SimPipe::pop_due(uint64_t now_ns, std::vector<uint8_t> *out)
{
	if (q_.empty() || q_.top().at_ns > now_ns)
		return false;
	*out = std::move(const_cast<InFlight &>(q_.top()).payload);
	q_.pop();
	stats_.delivered++;
	return true;
}

namespace {

// The sending side's object: chunks are slices of the buffer, released on ack.
class BufferProvider final : public amst::ChunkProvider {
public:
	BufferProvider(const std::vector<uint8_t> &obj, uint32_t chunk_size) : obj_(obj), chunk_size_(chunk_size) {}
	std::span<const uint8_t> chunk_payload(uint32_t id) override
	{
		size_t off = size_t(id) * chunk_size_;
		return {obj_.data() + off, std::min<size_t>(chunk_size_, obj_.size() - off)};
	}
	void chunk_acked(uint32_t) override { acked_++; }
	uint32_t acked() const { return acked_; }

private:
	const std::vector<uint8_t> &obj_;
	uint32_t chunk_size_;
	uint32_t acked_ = 0;
};

// The receiving side's object: chunks land straight in place.
class BufferSink final : public amst::ChunkSink {
public:
	BufferSink(std::vector<uint8_t> &out, uint32_t chunk_size) : out_(out), chunk_size_(chunk_size) {}
	uint8_t *chunk_buffer(uint32_t id, uint32_t len) override
	{
		size_t off = size_t(id) * chunk_size_;
		if (off >= out_.size() || len != std::min<size_t>(chunk_size_, out_.size() - off))
			return nullptr;
		return out_.data() + off;
	}
	void chunk_complete(uint32_t, uint32_t) override { completed_++; }

private:
	std::vector<uint8_t> &out_;
	uint32_t chunk_size_;
	uint32_t completed_ = 0;
};

// One side's packet protection, as its worker holds it.
struct Side {
	crypto::Aead *aead = nullptr; // null: security off
	crypto::TxProtection tx;
	crypto::RxProtection rx;
};

// Parses, opens and delivers every packet due on `pipe` to `to`, as a worker would.
void deliver(SimPipe &pipe, amst::Session &to, Side &side, SecurityStats &sec, uint64_t now_ns)
{
	std::vector<uint8_t> pkt;
	while (pipe.pop_due(now_ns, &pkt)) {
		wire::Header h;
		if (wire::decode_header(pkt.data(), pkt.size(), &h) != wire::ParseError::ok)
			continue;
		size_t body = pkt.size() - wire::kHeaderLen;
		if (side.aead) {
			if (!(h.flags & wire::flag_protected)) {
				sec.unprotected++;
				continue;
			}
			body -= crypto::kTagLen;
			crypto::AeadOp op = crypto::packet_op(pkt.data(), pkt.size());
			switch (side.rx.open(*side.aead, op, (h.flags & wire::flag_key_phase) ? 1 : 0, now_ns)) {
			case crypto::RxProtection::Verdict::ok: sec.opened++; break;
			case crypto::RxProtection::Verdict::duplicate: sec.duplicate++; continue;
			case crypto::RxProtection::Verdict::too_old: sec.too_old++; continue;
			case crypto::RxProtection::Verdict::auth_failed: sec.auth_failed++; continue;
			case crypto::RxProtection::Verdict::no_key: sec.no_key++; continue;
			}
		}
		to.on_packet(h, pkt.data() + wire::kHeaderLen, body, now_ns);
	}
}

// The attacker's own packets, waiting for their time (replays go out late).
using AttackQueue = std::multimap<uint64_t, std::vector<uint8_t>>;

// The attacker sees pkt on its way: it may replace it with an altered copy (one
// bit flipped, or cut short: the original never arrives, as with a tampering
// router), and queue a replay of it for later and a forgery.
void attack(const SimAttack &a, std::vector<uint8_t> &pkt, uint64_t now_ns, std::mt19937_64 &rng, AttackQueue &q,
	    SecurityStats &sec)
{
	auto coin = [&](double p) { return p > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < p; };
	if (coin(a.replay)) {
		q.emplace(now_ns + rng() % (a.replay_delay_ns + 1), pkt);
		sec.replayed++;
	}
	if (coin(a.forge)) {
		std::vector<uint8_t> c = pkt;
		wire::put_u64(c.data() + 12, wire::get_u64(c.data() + 12) + (uint64_t(1) << 40));
		for (size_t i = wire::kHeaderLen; i < c.size(); i++)
			c[i] = uint8_t(rng());
		q.emplace(now_ns, std::move(c));
		sec.forged++;
	}
	if (coin(a.flip)) {
		pkt[wire::kHeaderLen + rng() % (pkt.size() - wire::kHeaderLen)] ^= uint8_t(1u << (rng() % 8));
		sec.flipped++;
	} else if (coin(a.truncate) && pkt.size() > wire::kHeaderLen + crypto::kTagLen + 1) {
		pkt.resize(pkt.size() - 1 - rng() % std::min<size_t>(40, pkt.size() - wire::kHeaderLen - crypto::kTagLen - 1));
		sec.truncated++;
	}
}

// Sends everything `from` will send now into `pipe`, sealed when security is on,
// and lets the attacker (if any) add its own.
void drain(amst::Session &from, SimPipe &pipe, Side &side, uint64_t now_ns, uint32_t tag_len, const SimAttack *a,
	   std::mt19937_64 &rng, AttackQueue &q, SecurityStats &sec)
{
	uint8_t buf[2048];
	uint16_t stream;
	for (;;) {
		size_t len = from.poll_tx(now_ns, buf, sizeof(buf) - tag_len, &stream);
		if (!len)
			return;
		len += tag_len;
		if (side.aead) {
			buf[0] |= wire::flag_protected | (side.tx.phase() ? wire::flag_key_phase : 0);
			crypto::AeadOp op = crypto::packet_op(buf, len);
			side.tx.seal_burst(*side.aead, &op, 1);
			sec.key_updates_used = std::max(sec.key_updates_used, side.tx.generation());
		}
		std::vector<uint8_t> pkt(buf, buf + len);
		if (a)
			attack(*a, pkt, now_ns, rng, q, sec);
		pipe.send(now_ns, std::move(pkt), uint32_t(len + wire::kEncapLen));
	}
}

} // namespace

TransferResult run_transfer(const std::vector<uint8_t> &object, const TransferConfig &cfg, const LinkShape &fwd,
			    const LinkShape &rev, uint64_t seed,
			    const std::function<void(uint64_t, amst::Session &, amst::Session &)> &on_step)
{
	TransferResult res;
	res.received.assign(object.size(), 0);
	uint32_t nb_chunks = amst::nb_chunks_for(object.size(), cfg.chunk_size);
	amst::ChunkScheduler sched(nb_chunks, cfg.window_chunks);
	BufferProvider provider(object, cfg.chunk_size);
	BufferSink sink(res.received, cfg.chunk_size);
	amst::ChunkAssembler assembler(nb_chunks, cfg.window_chunks, cfg.session.mss, &sink);
	amst::Session tx(cfg.session, &sched, &provider, nullptr, [&](uint16_t type, std::span<const uint8_t> b) {
		res.ctrl_at_sender.emplace_back(type, std::vector<uint8_t>(b.begin(), b.end()));
	});
	amst::Session rx(cfg.session, nullptr, nullptr, &assembler, [&](uint16_t type, std::span<const uint8_t> b) {
		res.ctrl_at_receiver.emplace_back(type, std::vector<uint8_t>(b.begin(), b.end()));
	});
	if (cfg.rate_ceiling)
		tx.set_rate_ceiling(cfg.rate_ceiling, 0);
	SimPipe fpipe(fwd, seed * 2 + 1), rpipe(rev, seed * 2 + 2);

	// Security: each side seals with its own Aead (as each gateway's worker does).
	std::unique_ptr<crypto::Aead> tx_aead, rx_aead;
	Side tx_side, rx_side;
	SecurityStats &sec = res.security;
	if (cfg.security.on) {
		tx_aead = crypto::make_openssl_aead();
		rx_aead = crypto::make_openssl_aead();
		std::string err;
		tx_side.aead = tx_aead.get();
		rx_side.aead = rx_aead.get();
		if (!tx_side.tx.install(*tx_aead, cfg.security.forward, &err) ||
		    !tx_side.rx.install(*tx_aead, cfg.security.reverse, &err) ||
		    !rx_side.tx.install(*rx_aead, cfg.security.reverse, &err) ||
		    !rx_side.rx.install(*rx_aead, cfg.security.forward, &err))
			return res;
	}
	bool attacking = cfg.security.on && (cfg.attack.replay > 0 || cfg.attack.flip > 0 || cfg.attack.truncate > 0 ||
					     cfg.attack.forge > 0);
	std::mt19937_64 attack_rng(seed * 2 + 3);
	AttackQueue attacks, none;
	uint64_t next_key_update = cfg.security.key_update_ns ? cfg.security.key_update_ns : UINT64_MAX;

	uint64_t now = 0;
	uint32_t tag = cfg.session.tag_len;
	while (now < cfg.time_limit_ns) {
		deliver(fpipe, rx, rx_side, sec, now);
		deliver(rpipe, tx, tx_side, sec, now);
		tx.on_timer(now);
		rx.on_timer(now);
		if (now >= next_key_update) {
			std::string err;
			if (tx_side.tx.update(*tx_aead, &err))
				sec.key_updates_sent++;
			next_key_update = now + cfg.security.key_update_ns;
		}
		drain(tx, fpipe, tx_side, now, tag, attacking ? &cfg.attack : nullptr, attack_rng, attacks, sec);
		drain(rx, rpipe, rx_side, now, tag, nullptr, attack_rng, none, sec);
		while (!attacks.empty() && attacks.begin()->first <= now) {
			uint32_t wire_bytes = uint32_t(attacks.begin()->second.size() + wire::kEncapLen);
			fpipe.send(now, std::move(attacks.begin()->second), wire_bytes);
			attacks.erase(attacks.begin());
		}
		if (on_step)
			on_step(now, tx, rx);
		if (!res.finish_ns && assembler.all_complete())
			res.finish_ns = now;
		if (res.finish_ns && tx.all_acked() && tx.ctrl_flushed() && rx.ctrl_flushed()) {
			res.completed = true;
			break;
		}
		uint64_t next = std::min({fpipe.next_arrival_ns(), rpipe.next_arrival_ns(), tx.next_event_ns(now),
					  rx.next_event_ns(now), attacks.empty() ? UINT64_MAX : attacks.begin()->first,
					  next_key_update});
		// Sessions may ask to run "now" again when a pacer releases within the same
		// nanosecond; step at least 1 ns so virtual time always moves.
		now = std::max(next, now + 1);
	}
	res.sender = tx.counters();
	res.receiver = rx.counters();
	for (uint16_t s = 1; s <= cfg.session.nb_streams; s++) {
		if (const amst::StreamSender *st = tx.stream_tx(s)) {
			const auto &x = st->stats();
			res.sender_streams.packets_sent += x.packets_sent;
			res.sender_streams.bytes_sent += x.bytes_sent;
			res.sender_streams.packets_acked += x.packets_acked;
			res.sender_streams.packets_lost += x.packets_lost;
			res.sender_streams.bytes_lost += x.bytes_lost;
			res.sender_streams.pto_count += x.pto_count;
			res.sender_streams.persistent_congestion += x.persistent_congestion;
		}
	}
	res.forward = fpipe.stats();
	res.reverse = rpipe.stats();
	if (cfg.security.on) {
		sec.key_updates_seen = rx_side.rx.generation() + tx_side.rx.generation();
		tx_side.tx.clear(*tx_aead);
		tx_side.rx.clear(*tx_aead);
		rx_side.tx.clear(*rx_aead);
		rx_side.rx.clear(*rx_aead);
	}
	return res;
}

} // namespace dwcp::sim
