#include "control/messages.h"

#include <algorithm>

#include "dataplane/amst/chunks.h"
#include "dataplane/amst/wire.h"

namespace dwcp::control {

namespace {

class Writer {
public:
	explicit Writer(std::vector<uint8_t> *out) : out_(out)
	{
		out_->reserve(64);
		out_->push_back(kMsgVersion);
	}
	void u8(uint8_t v) { out_->push_back(v); }
	void u16(uint16_t v) { put(v, 2); }
	void u32(uint32_t v) { put(v, 4); }
	void u64(uint64_t v) { put(v, 8); }
	void str(const std::string &s, size_t max)
	{
		size_t n = std::min(s.size(), max);
		u16(uint16_t(n));
		out_->insert(out_->end(), s.begin(), s.begin() + n);
	}
	void bytes(std::span<const uint8_t> b) { out_->insert(out_->end(), b.begin(), b.end()); }

private:
	void put(uint64_t v, int n)
	{
		for (int i = n - 1; i >= 0; i--)
			out_->push_back(uint8_t(v >> (8 * i)));
	}
	std::vector<uint8_t> *out_;
};

// Reads fields in order; the first failure sticks and names the field.
class Reader {
public:
	Reader(std::span<const uint8_t> b, const char *msg) : b_(b), msg_(msg)
	{
		if (b_.empty())
			fail("version", "message is empty");
		else if (b_[0] != kMsgVersion)
			fail("version", "version " + std::to_string(b_[0]) + " is not " + std::to_string(kMsgVersion));
		pos_ = 1;
	}
	uint64_t uint(const char *field, int n)
	{
		if (!err_.empty())
			return 0;
		if (b_.size() - pos_ < size_t(n)) {
			fail(field, "truncated");
			return 0;
		}
		uint64_t v = 0;
		for (int i = 0; i < n; i++)
			v = v << 8 | b_[pos_++];
		return v;
	}
	std::string str(const char *field, size_t max)
	{
		size_t n = uint(field, 2);
		if (!err_.empty())
			return {};
		if (n > max) {
			fail(field, std::to_string(n) + " bytes, at most " + std::to_string(max));
			return {};
		}
		if (b_.size() - pos_ < n) {
			fail(field, "truncated");
			return {};
		}
		std::string s(reinterpret_cast<const char *>(b_.data() + pos_), n);
		pos_ += n;
		return s;
	}
	void bytes(const char *field, std::span<uint8_t> out)
	{
		if (!err_.empty())
			return;
		if (b_.size() - pos_ < out.size()) {
			fail(field, "truncated");
			return;
		}
		std::copy_n(b_.begin() + long(pos_), out.size(), out.begin());
		pos_ += out.size();
	}
	void fail(const char *field, const std::string &why)
	{
		if (err_.empty())
			err_ = std::string(msg_) + ": " + field + ": " + why;
	}
	std::string finish()
	{
		if (err_.empty() && pos_ != b_.size())
			err_ = std::string(msg_) + ": " + std::to_string(b_.size() - pos_) + " bytes after the last field";
		return err_;
	}

private:
	std::span<const uint8_t> b_;
	const char *msg_;
	size_t pos_ = 0;
	std::string err_;
};

} // namespace

const char *msg_type_name(uint16_t type)
{
	switch (MsgType(type)) {
	case MsgType::hello: return "hello";
	case MsgType::accept: return "accept";
	case MsgType::reject: return "reject";
	case MsgType::begin: return "begin";
	case MsgType::digest: return "digest";
	case MsgType::result: return "result";
	case MsgType::ready: return "ready";
	}
	return "unknown";
}

std::vector<uint8_t> encode(const Hello &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.str(m.name, kMaxNameLen);
	w.u64(m.size);
	w.u32(m.mss);
	w.u16(m.max_streams);
	w.u64(m.link_bps);
	w.u16(m.rx_queues);
	w.u16(m.reta_size);
	w.u8(m.rss);
	w.u64(m.base_version);
	w.bytes(m.base_sha);
	w.u64(m.new_version);
	w.u32(m.rtt_us);
	return b;
}

std::vector<uint8_t> encode(const Accept &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.u32(m.window_chunks);
	w.u16(m.rx_queues);
	w.u16(m.reta_size);
	w.u8(m.rss);
	w.u64(m.base_version);
	w.u8(m.ready);
	return b;
}

std::vector<uint8_t> encode(const PortParams &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.u16(m.rx_queues);
	w.u16(m.reta_size);
	w.u8(m.rss);
	w.u32(m.window_floor);
	return b;
}

std::vector<uint8_t> encode(const Reject &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.u16(uint16_t(m.code));
	w.str(m.reason, kMaxTextLen);
	return b;
}

std::vector<uint8_t> encode(const Begin &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.u32(m.chunk_size);
	w.u32(m.nb_chunks);
	w.u8(uint8_t(m.encoding));
	w.u64(m.base_version);
	w.u64(m.new_version);
	return b;
}

std::vector<uint8_t> encode(const Digest &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.bytes(m.sha256);
	return b;
}

std::vector<uint8_t> encode(const Result &m)
{
	std::vector<uint8_t> b;
	Writer w(&b);
	w.u8(m.ok);
	w.u64(m.bytes);
	w.str(m.detail, kMaxTextLen);
	return b;
}

static void check_queues(Reader &r, uint16_t rx_queues, uint16_t reta_size, uint8_t rss)
{
	if (rx_queues < 1 || rx_queues > 1024)
		r.fail("rx_queues", std::to_string(rx_queues) + " is not in 1..1024");
	if (reta_size > 8192)
		r.fail("reta_size", std::to_string(reta_size) + " is more than 8192");
	if (rss > 1)
		r.fail("rss", "not 0 or 1");
}

std::string decode(std::span<const uint8_t> b, Hello *m)
{
	Reader r(b, "hello");
	m->name = r.str("name", kMaxNameLen);
	m->size = r.uint("size", 8);
	m->mss = uint32_t(r.uint("mss", 4));
	m->max_streams = uint16_t(r.uint("max_streams", 2));
	m->link_bps = r.uint("link_bps", 8);
	m->rx_queues = uint16_t(r.uint("rx_queues", 2));
	m->reta_size = uint16_t(r.uint("reta_size", 2));
	uint8_t rss = uint8_t(r.uint("rss", 1));
	m->rss = rss == 1;
	m->base_version = r.uint("base_version", 8);
	r.bytes("base_sha", m->base_sha);
	m->new_version = r.uint("new_version", 8);
	m->rtt_us = uint32_t(r.uint("rtt_us", 4));
	std::string err = r.finish();
	if (!err.empty())
		return err;
	if (std::string why = check_object_name(m->name); !why.empty())
		r.fail("name", why);
	if (m->mss < 256 || m->mss > 9000)
		r.fail("mss", std::to_string(m->mss) + " is not in 256..9000");
	if (m->max_streams < 1 || m->max_streams > wire::kMaxStreams)
		r.fail("max_streams", std::to_string(m->max_streams) + " is not in 1..256");
	check_queues(r, m->rx_queues, m->reta_size, rss);
	if (m->new_version && m->new_version <= m->base_version)
		r.fail("new_version", std::to_string(m->new_version) + " is not after the baseline's " +
					      std::to_string(m->base_version));
	if (m->rtt_us > kMaxHelloRttUs)
		r.fail("rtt_us", std::to_string(m->rtt_us) + " is more than " + std::to_string(kMaxHelloRttUs));
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, PortParams *m)
{
	Reader r(b, "transport parameters");
	m->rx_queues = uint16_t(r.uint("rx_queues", 2));
	m->reta_size = uint16_t(r.uint("reta_size", 2));
	uint8_t rss = uint8_t(r.uint("rss", 1));
	m->rss = rss == 1;
	m->window_floor = uint32_t(r.uint("window_floor", 4));
	std::string err = r.finish();
	if (!err.empty())
		return err;
	if (m->window_floor < 1 || m->window_floor > 65536)
		r.fail("window_floor", std::to_string(m->window_floor) + " is not in 1..65536");
	check_queues(r, m->rx_queues, m->reta_size, rss);
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, Accept *m)
{
	Reader r(b, "accept");
	m->window_chunks = uint32_t(r.uint("window_chunks", 4));
	m->rx_queues = uint16_t(r.uint("rx_queues", 2));
	m->reta_size = uint16_t(r.uint("reta_size", 2));
	uint8_t rss = uint8_t(r.uint("rss", 1));
	m->rss = rss == 1;
	m->base_version = r.uint("base_version", 8);
	uint8_t ready = uint8_t(r.uint("ready", 1));
	m->ready = ready == 1;
	std::string err = r.finish();
	if (!err.empty())
		return err;
	if (ready > 1)
		r.fail("ready", "not 0 or 1");
	if (m->window_chunks < 1 || m->window_chunks > 65536)
		r.fail("window_chunks", std::to_string(m->window_chunks) + " is not in 1..65536");
	check_queues(r, m->rx_queues, m->reta_size, rss);
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, Reject *m)
{
	Reader r(b, "reject");
	m->code = RejectCode(r.uint("code", 2));
	m->reason = r.str("reason", kMaxTextLen);
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, Begin *m)
{
	Reader r(b, "begin");
	m->chunk_size = uint32_t(r.uint("chunk_size", 4));
	m->nb_chunks = uint32_t(r.uint("nb_chunks", 4));
	uint8_t enc = uint8_t(r.uint("encoding", 1));
	m->encoding = ChunkEncoding(enc);
	m->base_version = r.uint("base_version", 8);
	m->new_version = r.uint("new_version", 8);
	if (enc > uint8_t(ChunkEncoding::hde))
		r.fail("encoding", std::to_string(enc) + " is not 0 (raw) or 1 (hde)");
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, Digest *m)
{
	Reader r(b, "digest");
	r.bytes("sha256", m->sha256);
	return r.finish();
}

std::string decode(std::span<const uint8_t> b, Result *m)
{
	Reader r(b, "result");
	uint8_t ok = uint8_t(r.uint("ok", 1));
	m->ok = ok == 1;
	m->bytes = r.uint("bytes", 8);
	m->detail = r.str("detail", kMaxTextLen);
	if (ok > 1)
		r.fail("ok", "not 0 or 1");
	return r.finish();
}

std::string check_object_name(const std::string &name)
{
	if (name.empty())
		return "empty";
	if (name.size() > kMaxNameLen)
		return "longer than " + std::to_string(kMaxNameLen) + " bytes";
	if (name == "." || name == "..")
		return "'" + name + "' is not a file name";
	if (name[0] == '.')
		return "starts with '.' (hidden names are the receiver's temporary files)";
	for (unsigned char c : name) {
		if (c == '/')
			return "contains '/'";
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
	}
	return "";
}

std::string hello_from_first_packet(std::span<const uint8_t> packet, Hello *out)
{
	wire::Header h;
	if (wire::decode_header(packet.data(), packet.size(), &h) != wire::ParseError::ok)
		return "not a DWCP packet";
	if (h.type != wire::PacketType::ctrl || h.stream_id != wire::kControlStream || (h.flags & wire::flag_protected))
		return "not a control-stream packet";
	wire::Frame f;
	if (!wire::first_stream_frame(packet.data() + wire::kHeaderLen, packet.size() - wire::kHeaderLen, &f))
		return "no control-stream data";
	if (f.stream_off != 0)
		return "does not start the control channel";
	// Control messages are framed as u32 body length, u16 type, body.
	if (f.data.size() < 6)
		return "truncated control message";
	uint32_t len = wire::get_u32(f.data.data());
	uint16_t type = wire::get_u16(f.data.data() + 4);
	if (type != uint16_t(MsgType::hello))
		return std::string("first message is ") + msg_type_name(type) + ", not hello";
	if (len > f.data.size() - 6)
		return "hello does not fit its first packet";
	return decode(f.data.subspan(6, len), out);
}

Begin layout_for(const Hello &h, uint64_t accepted_base)
{
	Begin b;
	b.encoding = accepted_base ? ChunkEncoding::hde : ChunkEncoding::raw;
	b.base_version = accepted_base;
	b.new_version = h.new_version;
	b.chunk_size = amst::chunk_size_for(setup_rtt_ns(h), h.link_bps / 8, h.mss);
	if (b.encoding == ChunkEncoding::hde)
		b.chunk_size = std::max<uint32_t>(4096, b.chunk_size / 4096 * 4096);
	b.nb_chunks = amst::nb_chunks_for(h.size, b.chunk_size);
	return b;
}

std::string check_begin(const Begin &b, const Hello &h, uint64_t accepted_base)
{
	if (b.chunk_size < h.mss || b.chunk_size > amst::kMaxChunkSize)
		return "begin: chunk_size " + std::to_string(b.chunk_size) + " is not in " + std::to_string(h.mss) +
		       ".." + std::to_string(amst::kMaxChunkSize);
	// Raw chunks fill whole packets; HDE cuts the object into 4 KiB blocks.
	if (b.encoding == ChunkEncoding::raw && b.chunk_size % h.mss)
		return "begin: chunk_size " + std::to_string(b.chunk_size) + " is not a multiple of the mss " +
		       std::to_string(h.mss);
	if (b.encoding == ChunkEncoding::hde && b.chunk_size % 4096)
		return "begin: chunk_size " + std::to_string(b.chunk_size) + " of HDE chunks is not a multiple of 4096";
	if (b.base_version && (b.encoding != ChunkEncoding::hde || b.base_version != accepted_base))
		return "begin: baseline version " + std::to_string(b.base_version) +
		       (accepted_base ? " is not the one accepted (" + std::to_string(accepted_base) + ")"
				      : " was not accepted");
	if (b.new_version && b.new_version <= b.base_version)
		return "begin: new version " + std::to_string(b.new_version) + " is not after the baseline's " +
		       std::to_string(b.base_version);
	uint64_t want = (h.size + b.chunk_size - 1) / b.chunk_size;
	if (want > UINT32_MAX - 1 || b.nb_chunks != want)
		return "begin: nb_chunks " + std::to_string(b.nb_chunks) + " does not cover " + std::to_string(h.size) +
		       " bytes in chunks of " + std::to_string(b.chunk_size) + " (" + std::to_string(want) + ")";
	return "";
}

} // namespace dwcp::control
