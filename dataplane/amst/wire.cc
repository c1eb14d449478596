#include "dataplane/amst/wire.h"

namespace dwcp::wire {

const char *parse_error_name(ParseError e)
{
	switch (e) {
	case ParseError::ok: return "ok";
	case ParseError::too_short: return "too_short";
	case ParseError::bad_version: return "bad_version";
	case ParseError::reserved_flags: return "reserved_flags";
	case ParseError::bad_type: return "bad_type";
	case ParseError::bad_stream: return "bad_stream";
	case ParseError::bad_chunk: return "bad_chunk";
	case ParseError::bad_ack: return "bad_ack";
	case ParseError::count_: break;
	}
	return "unknown";
}

void encode_header(const Header &h, uint8_t *out)
{
	out[0] = uint8_t(kVersion << 4 | (h.flags & 0x0f));
	out[1] = uint8_t(h.type);
	put_u16(out + 2, h.stream_id);
	put_u64(out + 4, h.session_id);
	put_u64(out + 12, h.pn);
}

ParseError decode_header(const uint8_t *p, size_t len, Header *h)
{
	if (len < kHeaderLen)
		return ParseError::too_short;
	if (p[0] >> 4 != kVersion)
		return ParseError::bad_version;
	h->flags = p[0] & 0x0f;
	if (h->flags & flags_reserved)
		return ParseError::reserved_flags;
	if (p[1] < uint8_t(PacketType::data) || p[1] > uint8_t(PacketType::retry))
		return ParseError::bad_type;
	h->type = PacketType(p[1]);
	h->stream_id = get_u16(p + 2);
	h->session_id = get_u64(p + 4);
	h->pn = get_u64(p + 12);
	// Data rides on streams 1..kMaxStreams, acknowledgements (CTRL) on any stream,
	// set-up and retry only on stream 0.
	if (h->stream_id > kMaxStreams ||
	    (h->type == PacketType::data && h->stream_id == kControlStream) ||
	    ((h->type == PacketType::initial || h->type == PacketType::retry) && h->stream_id != kControlStream))
		return ParseError::bad_stream;
	if (h->flags & flag_protected && len < kHeaderLen + kTagLen)
		return ParseError::too_short;
	return ParseError::ok;
}

void encode_data_frame(const DataFrame &f, uint8_t *out)
{
	put_u32(out, f.chunk_id);
	put_u32(out + 4, f.chunk_off);
	put_u32(out + 8, f.chunk_len);
}

ParseError decode_data_frame(const uint8_t *p, size_t body_len, DataFrame *f, size_t *payload_len)
{
	if (body_len < kDataFrameLen)
		return ParseError::too_short;
	f->chunk_id = get_u32(p);
	f->chunk_off = get_u32(p + 4);
	f->chunk_len = get_u32(p + 8);
	size_t n = body_len - kDataFrameLen;
	// An empty data frame carries nothing and would only cost a lookup: refuse it.
	// 64-bit arithmetic: offset + n cannot wrap.
	if (n == 0 || uint64_t(f->chunk_off) + n > f->chunk_len)
		return ParseError::bad_chunk;
	*payload_len = n;
	return ParseError::ok;
}

size_t encode_ack_frame(const AckFrame &f, uint8_t *out, size_t cap)
{
	if (f.nb_ranges == 0 || f.nb_ranges > kMaxAckRanges)
		return 0;
	size_t len = ack_frame_len(f.nb_ranges);
	if (len > cap)
		return 0;
	out[0] = uint8_t(FrameType::ack);
	put_u16(out + 1, f.stream_id);
	out[3] = f.nb_ranges;
	put_u32(out + 4, f.ack_delay_us);
	put_u64(out + 8, f.ranges[0].hi);
	put_u32(out + 16, uint32_t(f.ranges[0].hi - f.ranges[0].lo));
	uint8_t *p = out + 20;
	for (size_t i = 1; i < f.nb_ranges; i++) {
		// gap: packets missing between this range and the previous (larger) one, minus one,
		// as in RFC 9000, so adjacent ranges (which a correct sender never emits) are unencodable.
		put_u32(p, uint32_t(f.ranges[i - 1].lo - f.ranges[i].hi - 2));
		put_u32(p + 4, uint32_t(f.ranges[i].hi - f.ranges[i].lo));
		p += 8;
	}
	return len;
}

size_t encode_stream_frame(uint64_t offset, std::span<const uint8_t> data, uint8_t *out, size_t cap)
{
	if (data.size() > 0xffff || kStreamFrameOverhead + data.size() > cap)
		return 0;
	out[0] = uint8_t(FrameType::stream);
	put_u64(out + 1, offset);
	put_u16(out + 9, uint16_t(data.size()));
	if (!data.empty())
		memcpy(out + kStreamFrameOverhead, data.data(), data.size());
	return kStreamFrameOverhead + data.size();
}

size_t encode_window_frame(uint32_t max_chunk, uint8_t *out, size_t cap)
{
	if (cap < kWindowFrameLen)
		return 0;
	out[0] = uint8_t(FrameType::window);
	put_u32(out + 1, max_chunk);
	return kWindowFrameLen;
}

size_t encode_close_frame(uint16_t code, std::span<const char> reason, uint8_t *out, size_t cap)
{
	size_t n = reason.size() > 512 ? 512 : reason.size();
	if (5 + n > cap)
		return 0;
	out[0] = uint8_t(FrameType::close);
	put_u16(out + 1, code);
	put_u16(out + 3, uint16_t(n));
	if (n)
		memcpy(out + 5, reason.data(), n);
	return 5 + n;
}

size_t encode_crypto_frame(uint64_t offset, std::span<const uint8_t> data, uint8_t *out, size_t cap)
{
	size_t n = encode_stream_frame(offset, data, out, cap);
	if (n)
		out[0] = uint8_t(FrameType::crypto);
	return n;
}

size_t encode_token_frame(std::span<const uint8_t> token, uint8_t *out, size_t cap)
{
	if (token.empty() || token.size() > kMaxTokenLen || 2 + token.size() > cap)
		return 0;
	out[0] = uint8_t(FrameType::token);
	out[1] = uint8_t(token.size());
	memcpy(out + 2, token.data(), token.size());
	return 2 + token.size();
}

bool FrameReader::done()
{
	while (p_ < end_ && *p_ == uint8_t(FrameType::padding))
		p_++;
	return p_ == end_;
}

ParseError FrameReader::next(Frame *f)
{
	if (done())
		return ParseError::too_short;
	size_t left = size_t(end_ - p_);
	f->type = FrameType(*p_);
	switch (f->type) {
	case FrameType::ping:
		p_ += 1;
		return ParseError::ok;
	case FrameType::ack: {
		if (left < ack_frame_len(1))
			return ParseError::too_short;
		AckFrame &a = f->ack;
		a.stream_id = get_u16(p_ + 1);
		a.nb_ranges = p_[3];
		if (a.nb_ranges == 0 || a.nb_ranges > kMaxAckRanges)
			return ParseError::bad_ack;
		if (left < ack_frame_len(a.nb_ranges))
			return ParseError::too_short;
		if (a.stream_id > kMaxStreams)
			return ParseError::bad_stream;
		a.ack_delay_us = get_u32(p_ + 4);
		uint64_t hi = get_u64(p_ + 8);
		uint32_t len = get_u32(p_ + 16);
		if (len > hi)
			return ParseError::bad_ack;
		a.ranges[0] = {hi - len, hi};
		const uint8_t *q = p_ + 20;
		for (size_t i = 1; i < a.nb_ranges; i++, q += 8) {
			uint64_t gap = get_u32(q), rlen = get_u32(q + 4);
			uint64_t prev_lo = a.ranges[i - 1].lo;
			// The next range ends at prev_lo - gap - 2 and starts rlen below that.
			if (prev_lo < gap + 2 || prev_lo - gap - 2 < rlen)
				return ParseError::bad_ack;
			hi = prev_lo - gap - 2;
			a.ranges[i] = {hi - rlen, hi};
		}
		p_ += ack_frame_len(a.nb_ranges);
		return ParseError::ok;
	}
	case FrameType::stream:
	case FrameType::crypto: {
		if (left < kStreamFrameOverhead)
			return ParseError::too_short;
		f->stream_off = get_u64(p_ + 1);
		size_t n = get_u16(p_ + 9);
		if (left < kStreamFrameOverhead + n)
			return ParseError::too_short;
		if (f->stream_off > (uint64_t(1) << 62))
			return ParseError::bad_stream;
		f->data = {p_ + kStreamFrameOverhead, n};
		p_ += kStreamFrameOverhead + n;
		return ParseError::ok;
	}
	case FrameType::window:
		if (left < kWindowFrameLen)
			return ParseError::too_short;
		f->max_chunk = get_u32(p_ + 1);
		p_ += kWindowFrameLen;
		return ParseError::ok;
	case FrameType::close: {
		if (left < 5)
			return ParseError::too_short;
		f->close_code = get_u16(p_ + 1);
		size_t n = get_u16(p_ + 3);
		if (left < 5 + n)
			return ParseError::too_short;
		f->data = {p_ + 5, n};
		p_ += 5 + n;
		return ParseError::ok;
	}
	case FrameType::token: {
		if (left < 2)
			return ParseError::too_short;
		size_t n = p_[1];
		if (n == 0 || n > kMaxTokenLen)
			return ParseError::bad_type;
		if (left < 2 + n)
			return ParseError::too_short;
		f->data = {p_ + 2, n};
		p_ += 2 + n;
		return ParseError::ok;
	}
	case FrameType::padding:
		break;
	}
	return ParseError::bad_type;
}

bool first_stream_frame(const uint8_t *body, size_t len, Frame *f)
{
	FrameReader r(body, len);
	while (!r.done()) {
		if (r.next(f) != ParseError::ok)
			return false;
		if (f->type == FrameType::stream)
			return true;
	}
	return false;
}

} // namespace dwcp::wire
