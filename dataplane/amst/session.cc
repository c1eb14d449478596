#include "dataplane/amst/session.h"

#include <algorithm>
#include <bit>
#include <cstring>

namespace dwcp::amst {

namespace {

// A control-channel PacketRef with this chunk id stands for the CLOSE frame rather
// than control-stream bytes, so that a lost CLOSE is re-sent like anything else.
constexpr uint32_t kCloseRef = UINT32_MAX;
// Control message framing on stream 0: u32 body length, u16 type, body.
constexpr size_t kCtrlMsgHeader = 6;

} // namespace

Session::Session(const SessionConfig &cfg, ChunkScheduler *sched, ChunkProvider *provider, ChunkAssembler *assembler,
		 CtrlHandler on_ctrl)
	: cfg_(cfg), sched_(sched), provider_(provider), assembler_(assembler), on_ctrl_(std::move(on_ctrl)),
	  streams_(size_t(cfg.nb_streams) + 1), active_streams_(cfg.nb_streams), ack_owed_((size_t(cfg.nb_streams) + 64) / 64)
{
	bool sender = sched_ || cfg.sends_data;
	for (uint16_t s = 0; s <= cfg.nb_streams; s++) {
		if (s % cfg.nb_shards != cfg.shard)
			continue;
		StreamSenderConfig sc = cfg.data;
		sc.stream_id = s;
		sc.mss = cfg.mss;
		sc.packet_overhead = cfg.packet_overhead;
		sc.peer_max_ack_delay_ns = cfg.max_ack_delay_ns;
		if (s == 0) {
			// The control channel carries a few kilobytes: Reno with a modest ring.
			sc.cc = CcAlgo::reno;
			sc.max_inflight_packets = 256;
		} else if (!sender) {
			// This side only acknowledges on data streams: its packets are never in flight.
			sc.max_inflight_packets = 64;
		}
		streams_[s].tx = std::make_unique<StreamSender>(sc);
	}
	span_ = sender ? cfg.nb_streams : 0;
	if (sched_)
		attach_sender(sched_, provider_);
	acked_scratch_.reserve(1024);
	ctrl_out_.reserve(4096);
}

void Session::attach_sender(ChunkScheduler *sched, ChunkProvider *provider)
{
	sched_ = sched;
	provider_ = provider;
	uint32_t slots_per_chunk = (kMaxChunkSize + cfg_.mss - 1) / cfg_.mss;
	for (uint16_t s = 1; s <= cfg_.nb_streams; s++) {
		if (!owns(s) || !streams_[s].chunks.empty())
			continue;
		// Enough claimed-chunk records for a full ring of packets, plus the chunk
		// being sent and one claimed ahead.
		Stream &st = streams_[s];
		uint32_t ring = cfg_.data.max_inflight_packets;
		uint32_t n = std::bit_ceil(ring / std::max<uint32_t>(slots_per_chunk / 2, 1) + 4);
		st.chunks.resize(n);
		for (auto &c : st.chunks)
			c.acked.assign((slots_per_chunk * 2 + 63) / 64, 0);
	}
}

size_t Session::write_header(uint8_t *out, wire::PacketType type, uint16_t s, uint64_t pn) const
{
	wire::encode_header({.flags = 0, .type = type, .stream_id = s, .session_id = cfg_.session_id, .pn = pn}, out);
	return wire::kHeaderLen;
}

// ---------------------------------------------------------------- receive

Session::Rx Session::on_packet(const wire::Header &h, const uint8_t *body, size_t body_len, uint64_t now_ns)
{
	ctr_.rx_packets++;
	if (!owns(h.stream_id)) {
		ctr_.rx_bad_stream++;
		return Rx::dropped;
	}
	Stream &st = streams_[h.stream_id];
	span_ = std::max(span_, h.stream_id);
	if (st.rx.is_duplicate(h.pn)) {
		ctr_.rx_duplicate++;
		return Rx::duplicate;
	}
	bool eliciting = false;
	if (h.type == wire::PacketType::data) {
		if (!assembler_) {
			ctr_.rx_unexpected++;
			return Rx::dropped;
		}
		wire::DataFrame f;
		size_t n = 0;
		if (wire::decode_data_frame(body, body_len, &f, &n) != wire::ParseError::ok) {
			ctr_.rx_bad_frame++;
			return Rx::dropped;
		}
		switch (assembler_->on_data(f, body + wire::kDataFrameLen, n)) {
		case ChunkAssembler::Result::placed:
		case ChunkAssembler::Result::completed:
			ctr_.rx_data_bytes += n;
			break;
		case ChunkAssembler::Result::duplicate:
			ctr_.rx_dup_data++;
			break;
		case ChunkAssembler::Result::out_of_window:
			// Not stored, so not acknowledged: the sender will send it again.
			ctr_.rx_out_of_window++;
			return Rx::dropped;
		case ChunkAssembler::Result::bad_chunk:
			ctr_.rx_bad_chunk++;
			return Rx::dropped;
		}
		eliciting = true;
	} else if (h.type == wire::PacketType::ctrl || h.type == wire::PacketType::initial) {
		if (!handle_frames(h.stream_id, body, body_len, now_ns, &eliciting)) {
			ctr_.rx_bad_frame++;
			return Rx::dropped;
		}
	} else {
		ctr_.rx_unexpected++;
		return Rx::dropped;
	}
	st.rx.on_packet(h.pn, now_ns, eliciting);
	if (eliciting)
		ack_owed_[h.stream_id / 64] |= 1ull << (h.stream_id % 64);
	return closed_ ? Rx::closed : Rx::ok;
}

bool Session::handle_frames(uint16_t s, const uint8_t *body, size_t len, uint64_t now_ns, bool *eliciting)
{
	// Frames are validated as a whole before any takes effect, so a packet that is
	// half good changes nothing.
	wire::FrameReader check(body, len);
	wire::Frame f;
	while (!check.done()) {
		if (check.next(&f) != wire::ParseError::ok)
			return false;
		if ((f.type == wire::FrameType::stream || f.type == wire::FrameType::close) && s != wire::kControlStream)
			return false;
		// Handshake frames belong to INITIAL packets, which the session never sees.
		if (f.type == wire::FrameType::crypto || f.type == wire::FrameType::token)
			return false;
		if (f.type == wire::FrameType::ack && (f.ack.stream_id > cfg_.nb_streams || !owns(f.ack.stream_id)))
			return false;
	}
	wire::FrameReader r(body, len);
	while (!r.done()) {
		r.next(&f);
		switch (f.type) {
		case wire::FrameType::ack: {
			Stream &st = streams_[f.ack.stream_id];
			acked_scratch_.clear();
			if (!st.tx->on_ack(f.ack, now_ns, &acked_scratch_)) {
				ctr_.rx_bad_ack++;
				break;
			}
			if (f.ack.stream_id == wire::kControlStream) {
				for (const PacketRef &ref : acked_scratch_)
					if (ref.chunk_id != kCloseRef)
						ctrl_acked_bytes_ += ref.len;
			} else {
				for (const PacketRef &ref : acked_scratch_)
					on_chunk_acked(st, ref);
			}
			break;
		}
		case wire::FrameType::window:
			if (sched_)
				sched_->raise_window(f.max_chunk);
			break;
		case wire::FrameType::stream:
			*eliciting = true;
			on_ctrl_bytes(f.stream_off, f.data);
			break;
		case wire::FrameType::close:
			*eliciting = true;
			if (!closed_) {
				closed_ = true;
				close_code_ = f.close_code;
				close_reason_.assign((const char *)f.data.data(), f.data.size());
			}
			break;
		case wire::FrameType::ping:
			*eliciting = true;
			break;
		case wire::FrameType::padding:
		case wire::FrameType::crypto:
		case wire::FrameType::token:
			break;
		}
	}
	return true;
}

void Session::on_chunk_acked(Stream &st, const PacketRef &ref)
{
	TxChunk *c = find_chunk(st, ref.chunk_id);
	if (!c)
		return; // fully acknowledged before (a late ACK of a spurious retransmission)
	uint32_t slot = uint32_t(ref.off / cfg_.mss);
	uint64_t bit = 1ull << (slot % 64);
	if (c->acked[slot / 64] & bit)
		return;
	c->acked[slot / 64] |= bit;
	if (--c->unacked_slots)
		return;
	provider_->chunk_acked(c->chunk_id);
	ctr_.chunks_acked++;
	// Retire whole chunks from the front of the ring; one acknowledged out of order
	// waits (with unacked_slots == 0) until those before it are done.
	while (st.nb_chunks) {
		TxChunk &front = st.chunks[st.chunk_head];
		if (front.unacked_slots || front.next_off < front.len)
			break;
		st.chunk_head = (st.chunk_head + 1) & uint32_t(st.chunks.size() - 1);
		st.nb_chunks--;
	}
}

Session::TxChunk *Session::find_chunk(Stream &st, uint32_t chunk_id)
{
	// A stream claims chunks in increasing order, so the ring is sorted by id.
	uint32_t mask = uint32_t(st.chunks.size() - 1);
	uint32_t lo = 0, hi = st.nb_chunks;
	while (lo < hi) {
		uint32_t mid = (lo + hi) / 2;
		uint32_t id = st.chunks[(st.chunk_head + mid) & mask].chunk_id;
		if (id == chunk_id)
			return st.chunks[(st.chunk_head + mid) & mask].unacked_slots ? &st.chunks[(st.chunk_head + mid) & mask]
										 : nullptr;
		if (id < chunk_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return nullptr;
}

void Session::on_ctrl_bytes(uint64_t off, std::span<const uint8_t> data)
{
	if (off + data.size() <= ctrl_in_next_)
		return; // all of it delivered before
	if (off > ctrl_in_next_) {
		if (ctrl_early_bytes_ + data.size() > cfg_.max_ctrl_buffered) {
			close(1, std::span<const char>("control channel overrun"));
			return;
		}
		auto [it, fresh] = ctrl_early_.try_emplace(off, data.begin(), data.end());
		if (fresh)
			ctrl_early_bytes_ += data.size();
		return;
	}
	size_t skip = size_t(ctrl_in_next_ - off);
	ctrl_msg_.insert(ctrl_msg_.end(), data.begin() + ptrdiff_t(skip), data.end());
	ctrl_in_next_ = off + data.size();
	// Held segments that now follow on.
	for (auto it = ctrl_early_.begin(); it != ctrl_early_.end() && it->first <= ctrl_in_next_;) {
		uint64_t end = it->first + it->second.size();
		if (end > ctrl_in_next_) {
			ctrl_msg_.insert(ctrl_msg_.end(), it->second.begin() + ptrdiff_t(ctrl_in_next_ - it->first),
					 it->second.end());
			ctrl_in_next_ = end;
		}
		ctrl_early_bytes_ -= it->second.size();
		it = ctrl_early_.erase(it);
	}
	deliver_ctrl();
}

void Session::deliver_ctrl()
{
	size_t at = 0;
	while (ctrl_msg_.size() - at >= kCtrlMsgHeader) {
		uint32_t len = wire::get_u32(&ctrl_msg_[at]);
		uint16_t type = wire::get_u16(&ctrl_msg_[at + 4]);
		if (len > cfg_.max_ctrl_message) {
			close(1, std::span<const char>("control message too large"));
			ctrl_msg_.clear();
			return;
		}
		if (ctrl_msg_.size() - at < kCtrlMsgHeader + len)
			break;
		if (on_ctrl_)
			on_ctrl_(type, {&ctrl_msg_[at + kCtrlMsgHeader], len});
		at += kCtrlMsgHeader + len;
	}
	ctrl_msg_.erase(ctrl_msg_.begin(), ctrl_msg_.begin() + ptrdiff_t(at));
}

// ---------------------------------------------------------------- control channel out

void Session::send_ctrl(uint16_t type, std::span<const uint8_t> body)
{
	uint8_t hdr[kCtrlMsgHeader];
	wire::put_u32(hdr, uint32_t(body.size()));
	wire::put_u16(hdr + 4, type);
	ctrl_out_.insert(ctrl_out_.end(), hdr, hdr + kCtrlMsgHeader);
	ctrl_out_.insert(ctrl_out_.end(), body.begin(), body.end());
}

void Session::close(uint16_t code, std::span<const char> reason)
{
	if (close_pending_ || closed_)
		return;
	close_pending_ = true;
	close_code_ = code;
	close_reason_.assign(reason.begin(), reason.end());
	while (!close_reason_.empty() && close_reason_.back() == '\0')
		close_reason_.pop_back();
}

bool Session::ctrl_flushed() const { return ctrl_next_ == ctrl_out_.size() && ctrl_acked_bytes_ >= ctrl_out_.size(); }

// ---------------------------------------------------------------- send

bool Session::ack_due(const Stream &st, uint64_t now_ns) const
{
	return st.rx.ack_pending() && (st.rx.ack_urgent() || st.rx.unacked_eliciting() >= cfg_.ack_every ||
				       now_ns >= st.rx.oldest_unacked_ns() + cfg_.max_ack_delay_ns);
}

size_t Session::build_ack(uint16_t s, uint64_t now_ns, uint8_t *out, size_t cap)
{
	Stream &st = streams_[s];
	size_t len = write_header(out, wire::PacketType::ctrl, s, st.tx->next_pn());
	wire::AckFrame a;
	// This stream's ACK first, then every other ACK this worker owes, while they fit.
	st.rx.fill_ack(s, now_ns, &a);
	len += wire::encode_ack_frame(a, out + len, cap - len);
	for (uint16_t o = 0; o <= span_; o++) {
		if (o == s || !owns(o) || !streams_[o].rx.ack_pending())
			continue;
		if (cap - len < wire::ack_frame_len(wire::kMaxAckRanges) + wire::kWindowFrameLen)
			break;
		streams_[o].rx.fill_ack(o, now_ns, &a);
		len += wire::encode_ack_frame(a, out + len, cap - len);
	}
	if (assembler_) {
		window_sent_ = assembler_->window_limit();
		window_sent_ns_ = now_ns;
		len += wire::encode_window_frame(window_sent_, out + len, cap - len);
	}
	st.tx->on_sent(now_ns, uint32_t(len + cfg_.tag_len + wire::kEncapLen), false, {});
	ctr_.tx_ack_packets++;
	return len;
}

bool Session::window_update_due(uint64_t now_ns) const
{
	if (!assembler_ || !owns(0) || closed_ || assembler_->all_complete())
		return false;
	uint32_t w = assembler_->window_limit();
	// A quarter of the window opened since the last advertisement (acks carry it
	// while data flows, so this fires when the sender is blocked), or a refresh.
	return w >= window_sent_ + std::max<uint32_t>(assembler_->window() / 4, 1) ||
	       now_ns >= window_sent_ns_ + cfg_.window_refresh_ns;
}

size_t Session::build_window(uint64_t now_ns, uint8_t *out, size_t cap)
{
	Stream &st = streams_[0];
	size_t len = write_header(out, wire::PacketType::ctrl, 0, st.tx->next_pn());
	window_sent_ = assembler_->window_limit();
	window_sent_ns_ = now_ns;
	len += wire::encode_window_frame(window_sent_, out + len, cap - len);
	st.tx->on_sent(now_ns, uint32_t(len + cfg_.tag_len + wire::kEncapLen), false, {});
	ctr_.tx_window_updates++;
	return len;
}

size_t Session::build_ctrl(uint64_t now_ns, uint8_t *out, size_t cap, bool probe)
{
	Stream &st = streams_[0];
	if (!close_pending_ && !st.tx->has_lost() && ctrl_next_ >= ctrl_out_.size() && !probe)
		return 0;
	size_t len = write_header(out, wire::PacketType::ctrl, 0, st.tx->next_pn());
	PacketRef ref{};
	if (st.rx.ack_pending()) {
		wire::AckFrame a;
		st.rx.fill_ack(0, now_ns, &a);
		len += wire::encode_ack_frame(a, out + len, cap - len);
	}
	size_t room = cap - len;
	if (close_pending_ && room > 5 + close_reason_.size()) {
		len += wire::encode_close_frame(close_code_, close_reason_, out + len, cap - len);
		ref = {.off = 0, .chunk_id = kCloseRef, .len = 1};
		close_pending_ = false;
		closed_ = true;
	} else if (st.tx->has_lost()) {
		PacketRef lost = st.tx->front_lost();
		st.tx->pop_lost();
		if (lost.chunk_id == kCloseRef) {
			len += wire::encode_close_frame(close_code_, close_reason_, out + len, cap - len);
			ref = lost;
		} else {
			uint32_t n = uint32_t(std::min<uint64_t>(lost.len, room - wire::kStreamFrameOverhead));
			len += wire::encode_stream_frame(lost.off, {&ctrl_out_[lost.off], n}, out + len, cap - len);
			ref = {.off = lost.off, .chunk_id = 0, .len = n};
			if (n < lost.len) {
				// The rest goes in the next packet: it is simply sent again as new.
				ctrl_next_ = std::min<uint64_t>(ctrl_next_, lost.off + n);
			}
		}
		ctr_.tx_retransmits++;
	} else if (ctrl_next_ < ctrl_out_.size()) {
		uint32_t n = uint32_t(std::min<uint64_t>({ctrl_out_.size() - ctrl_next_, room - wire::kStreamFrameOverhead,
							   0xffff}));
		len += wire::encode_stream_frame(ctrl_next_, {&ctrl_out_[ctrl_next_], n}, out + len, cap - len);
		ref = {.off = ctrl_next_, .chunk_id = 0, .len = n};
		ctrl_next_ += n;
	} else {
		out[len++] = uint8_t(wire::FrameType::ping); // a probe with nothing else to carry
	}
	st.tx->on_sent(now_ns, uint32_t(len + cfg_.tag_len + wire::kEncapLen), true, ref);
	return len;
}

bool Session::claim_chunk(Stream &st)
{
	if (!sched_ || st.nb_chunks == st.chunks.size())
		return false;
	uint32_t id;
	if (!sched_->claim(&id))
		return false;
	std::span<const uint8_t> p = provider_->chunk_payload(id);
	TxChunk &c = st.chunks[(st.chunk_head + st.nb_chunks) & uint32_t(st.chunks.size() - 1)];
	c.chunk_id = id;
	c.len = uint32_t(p.size());
	c.data = p.data();
	c.next_off = 0;
	c.unacked_slots = (c.len + cfg_.mss - 1) / cfg_.mss;
	std::fill(c.acked.begin(), c.acked.end(), 0);
	st.nb_chunks++;
	return true;
}

bool Session::stream_has_data(Stream &st)
{
	if (st.tx->has_lost())
		return true;
	if (st.nb_chunks) {
		const TxChunk &last = st.chunks[(st.chunk_head + st.nb_chunks - 1) & uint32_t(st.chunks.size() - 1)];
		if (last.next_off < last.len)
			return true;
	}
	return false;
}

size_t Session::build_data(Stream &st, uint16_t s, uint64_t now_ns, uint8_t *out, size_t cap, bool probe)
{
	PacketRef ref;
	const uint8_t *src = nullptr;
	uint32_t chunk_len = 0;
	bool retransmit = false, tail_copy = false;
	// Lost bytes first, skipping any that were acknowledged after all.
	while (st.tx->has_lost()) {
		ref = st.tx->front_lost();
		st.tx->pop_lost();
		TxChunk *c = find_chunk(st, ref.chunk_id);
		uint32_t slot = uint32_t(ref.off / cfg_.mss);
		if (c && !(c->acked[slot / 64] & (1ull << (slot % 64)))) {
			src = c->data + ref.off;
			chunk_len = c->len;
			retransmit = true;
			break;
		}
	}
	if (!src) {
		TxChunk *c = nullptr;
		if (st.nb_chunks) {
			c = &st.chunks[(st.chunk_head + st.nb_chunks - 1) & uint32_t(st.chunks.size() - 1)];
			if (c->next_off >= c->len)
				c = nullptr;
		}
		if (!c && s <= active_streams_ && claim_chunk(st))
			c = &st.chunks[(st.chunk_head + st.nb_chunks - 1) & uint32_t(st.chunks.size() - 1)];
		if (c) {
			uint32_t n = std::min(cfg_.mss, c->len - c->next_off);
			ref = {.off = c->next_off, .chunk_id = c->chunk_id, .len = n};
			src = c->data + c->next_off;
			chunk_len = c->len;
			c->next_off += n;
		} else if (probe && st.tx->oldest_in_flight(&ref)) {
			TxChunk *oc = find_chunk(st, ref.chunk_id);
			if (!oc)
				return 0;
			src = oc->data + ref.off;
			chunk_len = oc->len;
			retransmit = true;
		} else if (!probe && next_tail_copy(st, &ref, &src, &chunk_len)) {
			tail_copy = true;
		} else {
			return 0;
		}
	}
	size_t len = write_header(out, wire::PacketType::data, s, st.tx->next_pn());
	if (len + wire::kDataFrameLen + ref.len > cap)
		return 0;
	wire::encode_data_frame({.chunk_id = ref.chunk_id, .chunk_off = uint32_t(ref.off), .chunk_len = chunk_len}, out + len);
	len += wire::kDataFrameLen;
	memcpy(out + len, src, ref.len);
	len += ref.len;
	st.tx->on_sent(now_ns, uint32_t(len + cfg_.tag_len + wire::kEncapLen), true, ref);
	ctr_.tx_data_packets++;
	if (retransmit)
		ctr_.tx_retransmits++;
	ctr_.tx_tail_copies += tail_copy;
	return len;
}

bool Session::tail_copies_due(const Stream &st) const
{
	return cfg_.tail_copies && sched_ && sched_->all_claimed() && !st.copies_done;
}

bool Session::next_tail_copy(Stream &st, PacketRef *ref, const uint8_t **src, uint32_t *chunk_len)
{
	if (!tail_copies_due(st))
		return false;
	if (!st.copying) {
		st.copying = true;
		st.copy_below = st.tx->next_pn();
	}
	while (st.tx->prev_in_flight(&st.copy_below, ref)) {
		TxChunk *c = find_chunk(st, ref->chunk_id);
		if (!c)
			continue; // its chunk is acknowledged whole
		uint32_t slot = uint32_t(ref->off / cfg_.mss);
		if (c->acked[slot / 64] & (1ull << (slot % 64)))
			continue;
		*src = c->data + ref->off;
		*chunk_len = c->len;
		return true;
	}
	st.copies_done = true;
	return false;
}

size_t Session::poll_tx(uint64_t now_ns, uint8_t *out, size_t cap, uint16_t *stream_id)
{
	if (cap < wire::kHeaderLen + wire::kDataFrameLen + cfg_.mss + cfg_.tag_len)
		return 0;
	cap -= cfg_.tag_len;
	size_t len;
	// 1. Acknowledgements owed: they drive the peer's clock, so they go first.
	// Stream 0's go with the control channel, below.
	for (size_t w = 0; w < ack_owed_.size(); w++) {
		for (uint64_t bits = ack_owed_[w] & (w ? ~0ull : ~1ull); bits; bits &= bits - 1) {
			unsigned b = unsigned(__builtin_ctzll(bits));
			uint16_t s = uint16_t(w * 64 + b);
			if (!streams_[s].rx.ack_pending()) {
				ack_owed_[w] &= ~(1ull << b); // sent, with another stream's
				continue;
			}
			if (ack_due(streams_[s], now_ns)) {
				*stream_id = s;
				ctr_.tx_packets++;
				return build_ack(s, now_ns, out, cap);
			}
		}
	}
	// 2. The control channel (which carries its own ACK when one is owed).
	if (owns(0)) {
		Stream &c = streams_[0];
		bool has_ctrl = close_pending_ || c.tx->has_lost() || ctrl_next_ < ctrl_out_.size();
		if (c.probes || (has_ctrl && c.tx->can_send(now_ns, 0)) || ack_due(c, now_ns)) {
			bool probe = c.probes > 0;
			if (c.probes)
				c.probes--;
			if ((len = build_ctrl(now_ns, out, cap, probe)) || (len = build_ack(0, now_ns, out, cap))) {
				*stream_id = 0;
				ctr_.tx_packets++;
				ctr_.tx_probes += probe;
				return len;
			}
		}
	}
	if (closed_)
		return 0;
	if (window_update_due(now_ns)) {
		*stream_id = 0;
		ctr_.tx_packets++;
		return build_window(now_ns, out, cap);
	}
	// 3. Probes owed after a probe timeout: past the window and the pacer.
	for (uint16_t s = 1; data_probes_ && s <= span_; s++) {
		if (!owns(s) || !streams_[s].probes)
			continue;
		Stream &st = streams_[s];
		st.probes--;
		data_probes_--;
		if ((len = build_data(st, s, now_ns, out, cap, true))) {
			*stream_id = s;
			ctr_.tx_packets++;
			ctr_.tx_probes++;
			return len;
		}
	}
	// 4. Data, round robin over the streams whose window and pacer allow a packet.
	if (!sched_)
		return 0;
	for (uint16_t i = 0; i < span_; i++) {
		uint16_t s = rr_cursor_;
		rr_cursor_ = rr_cursor_ >= span_ ? 1 : rr_cursor_ + 1;
		if (!owns(s))
			continue;
		Stream &st = streams_[s];
		if (!st.tx->can_send(now_ns, cfg_.mss + cfg_.packet_overhead))
			continue;
		if ((len = build_data(st, s, now_ns, out, cap, false))) {
			st.app_limited = false;
			*stream_id = s;
			ctr_.tx_packets++;
			return len;
		}
		if (!st.app_limited) {
			// Room to send and nothing to send: what the stream measures now says
			// nothing about the link.
			st.app_limited = true;
			st.tx->on_app_limited();
		}
	}
	return 0;
}

void Session::on_timer(uint64_t now_ns)
{
	for (uint16_t s = 0; s <= span_; s++) {
		if (!owns(s))
			continue;
		Stream &st = streams_[s];
		if (st.tx->next_timer_ns() <= now_ns) {
			unsigned p = st.tx->on_timer(now_ns);
			st.probes += p;
			if (s)
				data_probes_ += p;
		}
	}
}

uint64_t Session::next_event_ns(uint64_t now_ns)
{
	uint64_t next = UINT64_MAX;
	for (uint16_t s = 0; s <= span_; s++) {
		if (!owns(s))
			continue;
		Stream &st = streams_[s];
		if (st.probes)
			return now_ns;
		if (st.rx.ack_pending())
			next = std::min(next, ack_due(st, now_ns) ? now_ns : st.rx.oldest_unacked_ns() + cfg_.max_ack_delay_ns);
		next = std::min(next, st.tx->next_timer_ns());
		if (s == 0 && assembler_ && !closed_ && !assembler_->all_complete())
			next = std::min(next, window_update_due(now_ns) ? now_ns : window_sent_ns_ + cfg_.window_refresh_ns);
		bool has = s == 0 ? (close_pending_ || st.tx->has_lost() || ctrl_next_ < ctrl_out_.size())
				  : (!closed_ && (stream_has_data(st) ||
						  (tail_copies_due(st) && st.tx->bytes_in_flight()) ||
						  (sched_ && s <= active_streams_ && !sched_->window_blocked() &&
						   !sched_->all_claimed() && st.nb_chunks < st.chunks.size())));
		if (has && !st.tx->cwnd_limited() && !st.tx->ring_full())
			next = std::min(next, st.tx->next_pacing_ns(now_ns));
	}
	return std::max(next, now_ns);
}

void Session::set_active_streams(uint16_t n, uint64_t now_ns)
{
	uint16_t before = active_streams_;
	active_streams_ = std::min(n, cfg_.nb_streams);
	span_ = std::max(span_, active_streams_);
	if (active_streams_ <= before || !sched_)
		return;
	const StreamSender *ref = nullptr;
	for (uint16_t s = 1; s <= span_; s++) {
		const StreamSender *tx = stream_tx(s);
		if (tx && tx->rtt().has_sample() && (!ref || tx->delivered() > ref->delivered()))
			ref = tx;
	}
	if (!ref)
		return;
	uint32_t pkts = uint32_t(std::max<uint64_t>(ref->cc().cwnd() / (cfg_.mss + cfg_.packet_overhead), 32));
	for (uint16_t s = uint16_t(before + 1); s <= active_streams_; s++)
		if (owns(s))
			streams_[s].tx->set_initial_window(pkts, ref->rtt().smoothed(), now_ns);
}

void Session::set_initial_windows(uint32_t packets, uint64_t rtt_ns, uint64_t now_ns)
{
	for (uint16_t s = 1; s <= cfg_.nb_streams; s++)
		if (owns(s))
			streams_[s].tx->set_initial_window(packets, rtt_ns, now_ns);
}

void Session::set_rate_ceiling(uint64_t bytes_per_s, uint64_t now_ns)
{
	ceiling_ = bytes_per_s;
	uint64_t per_stream = bytes_per_s / std::max<uint16_t>(active_streams_, 1);
	for (uint16_t s = 1; s <= cfg_.nb_streams; s++)
		if (owns(s))
			streams_[s].tx->set_rate_ceiling(per_stream, now_ns);
}

uint16_t Session::streams_heard() const
{
	uint16_t n = 0;
	for (uint16_t s = 1; s <= span_; s++)
		n += owns(s) && streams_[s].rx.any_received();
	return n;
}

uint64_t Session::bytes_in_flight() const
{
	uint64_t sum = 0;
	for (uint16_t s = 0; s <= cfg_.nb_streams; s++)
		if (owns(s))
			sum += streams_[s].tx->bytes_in_flight();
	return sum;
}

bool Session::all_acked() const
{
	if (!sched_ || !sched_->all_claimed())
		return false;
	for (uint16_t s = 1; s <= cfg_.nb_streams; s++)
		if (owns(s) && streams_[s].nb_chunks)
			return false;
	return true;
}

} // namespace dwcp::amst
