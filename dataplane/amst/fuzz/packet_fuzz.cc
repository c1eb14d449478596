// Fuzz target for the DWCP packet parser as a session meets it: the common header,
// then the body (a DATA frame and chunk bytes, or control frames) fed to a
// receiving and a sending Session, as a worker does after opening a packet.
//
// The input is a sequence of packets, each a u16 length (big-endian) and that many
// bytes, so one input can build state (chunks half placed, ACK ranges, control
// bytes out of order) that later packets meet.  Whatever the bytes, the sessions
// must neither crash nor read outside the packet.
#include <cstdint>
#include <cstring>
#include <vector>

#include "dataplane/amst/chunks.h"
#include "dataplane/amst/session.h"
#include "dataplane/amst/wire.h"

using namespace dwcp;

namespace {

constexpr uint32_t kChunk = 8 * 1424;
constexpr uint32_t kChunks = 64;

class Sink final : public amst::ChunkSink {
public:
	uint8_t *chunk_buffer(uint32_t id, uint32_t len) override
	{
		if (id >= kChunks || len != kChunk)
			return nullptr;
		return buf_.data() + size_t(id) * kChunk;
	}
	void chunk_complete(uint32_t, uint32_t) override {}

private:
	std::vector<uint8_t> buf_ = std::vector<uint8_t>(size_t(kChunk) * kChunks);
};

class Provider final : public amst::ChunkProvider {
public:
	std::span<const uint8_t> chunk_payload(uint32_t id) override
	{
		return {buf_.data() + size_t(id % kChunks) * kChunk, kChunk};
	}
	void chunk_acked(uint32_t) override {}

private:
	std::vector<uint8_t> buf_ = std::vector<uint8_t>(size_t(kChunk) * kChunks, 0x5a);
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	amst::SessionConfig c;
	c.session_id = 0x0102030405060708ull;
	c.nb_streams = 8;
	Sink sink;
	Provider provider;
	amst::ChunkAssembler assembler(kChunks, 16, c.mss, &sink);
	amst::ChunkScheduler sched(kChunks, 16);
	auto on_ctrl = [](uint16_t, std::span<const uint8_t>) {};
	amst::Session rx(c, nullptr, nullptr, &assembler, on_ctrl);
	c.sends_data = true;
	amst::Session tx(c, &sched, &provider, nullptr, on_ctrl);
	uint64_t now = 1'000'000;
	uint8_t out[1500];
	uint16_t stream;
	// The sender has packets in flight, so ACKs in the input have something to meet.
	for (int i = 0; i < 16; i++)
		if (!tx.poll_tx(now, out, sizeof(out), &stream))
			break;
	while (size >= 2) {
		size_t n = wire::get_u16(data);
		data += 2, size -= 2;
		if (n > size)
			n = size;
		// Each packet in a buffer of its own length, so an overread is an overread.
		std::vector<uint8_t> pkt(data, data + n);
		data += n, size -= n;
		wire::Header h;
		if (wire::decode_header(pkt.data(), pkt.size(), &h) != wire::ParseError::ok)
			continue;
		now += 1000;
		rx.on_packet(h, pkt.data() + wire::kHeaderLen, pkt.size() - wire::kHeaderLen, now);
		tx.on_packet(h, pkt.data() + wire::kHeaderLen, pkt.size() - wire::kHeaderLen, now);
		rx.on_timer(now);
		tx.on_timer(now);
		while (rx.poll_tx(now, out, sizeof(out), &stream))
			;
		(void)tx.poll_tx(now, out, sizeof(out), &stream);
	}
	return 0;
}
