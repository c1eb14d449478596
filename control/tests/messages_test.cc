#include "control/messages.h"

#include <gtest/gtest.h>

#include "dataplane/amst/wire.h"

namespace dwcp::control {
namespace {

Hello sample_hello()
{
	return Hello{.name = "vm-17.img", .size = 4ull << 30, .mss = 1440, .max_streams = 64,
		     .link_bps = 1'000'000'000, .rx_queues = 2, .reta_size = 128, .rss = true};
}

TEST(Messages, EveryMessageRoundTrips)
{
	Hello h = sample_hello(), h2;
	ASSERT_EQ(decode(encode(h), &h2), "");
	EXPECT_EQ(h2.name, h.name);
	EXPECT_EQ(h2.size, h.size);
	EXPECT_EQ(h2.mss, h.mss);
	EXPECT_EQ(h2.max_streams, h.max_streams);
	EXPECT_EQ(h2.link_bps, h.link_bps);
	EXPECT_EQ(h2.rx_queues, 2);
	EXPECT_EQ(h2.reta_size, 128);
	EXPECT_TRUE(h2.rss);
	EXPECT_EQ(h2.base_version, 0u);
	h.base_version = 41;
	h.base_sha[0] = 0xab, h.base_sha[31] = 0xcd;
	ASSERT_EQ(decode(encode(h), &h2), "");
	EXPECT_EQ(h2.base_version, 41u);
	EXPECT_EQ(h2.base_sha, h.base_sha);
	EXPECT_EQ(h2.new_version, 0u);
	EXPECT_EQ(h2.rtt_us, 0u);
	h.new_version = 42;
	h.rtt_us = 301'234;
	ASSERT_EQ(decode(encode(h), &h2), "");
	EXPECT_EQ(h2.new_version, 42u);
	EXPECT_EQ(h2.rtt_us, 301'234u);

	Accept a{.window_chunks = 512, .rx_queues = 4, .reta_size = 512, .rss = false, .base_version = 41}, a2;
	ASSERT_EQ(decode(encode(a), &a2), "");
	EXPECT_EQ(a2.window_chunks, 512u);
	EXPECT_EQ(a2.rx_queues, 4);
	EXPECT_EQ(a2.base_version, 41u);
	EXPECT_FALSE(a2.ready);
	a.ready = true;
	ASSERT_EQ(decode(encode(a), &a2), "");
	EXPECT_TRUE(a2.ready);
	std::vector<uint8_t> bad_ready = encode(a);
	bad_ready.back() = 2;
	EXPECT_EQ(decode(bad_ready, &a2), "accept: ready: not 0 or 1");

	PortParams pp{.rx_queues = 4, .reta_size = 128, .rss = true, .window_floor = 512}, pp2;
	ASSERT_EQ(decode(encode(pp), &pp2), "");
	EXPECT_EQ(pp2.rx_queues, 4);
	EXPECT_EQ(pp2.reta_size, 128);
	EXPECT_TRUE(pp2.rss);
	EXPECT_EQ(pp2.window_floor, 512u);
	std::vector<uint8_t> pp_short = encode(pp);
	pp_short.pop_back();
	EXPECT_EQ(decode(pp_short, &pp2), "transport parameters: window_floor: truncated");
	pp.window_floor = 0;
	EXPECT_EQ(decode(encode(pp), &pp2), "transport parameters: window_floor: 0 is not in 1..65536");

	Reject r{.code = RejectCode::no_space, .reason = "no space for 'x'"}, r2;
	ASSERT_EQ(decode(encode(r), &r2), "");
	EXPECT_EQ(r2.code, RejectCode::no_space);
	EXPECT_EQ(r2.reason, r.reason);

	Begin b{.chunk_size = 1440 * 182, .nb_chunks = 7}, b2;
	ASSERT_EQ(decode(encode(b), &b2), "");
	EXPECT_EQ(b2.chunk_size, b.chunk_size);
	EXPECT_EQ(b2.nb_chunks, 7u);
	EXPECT_EQ(b2.encoding, ChunkEncoding::raw);
	Begin bd{.chunk_size = 262144, .nb_chunks = 7, .encoding = ChunkEncoding::hde, .base_version = 41, .new_version = 42};
	ASSERT_EQ(decode(encode(bd), &b2), "");
	EXPECT_EQ(b2.encoding, ChunkEncoding::hde);
	EXPECT_EQ(b2.base_version, 41u);
	EXPECT_EQ(b2.new_version, 42u);
	std::vector<uint8_t> bad_enc = encode(bd);
	bad_enc[9] = 7; // version, chunk_size u32, nb_chunks u32, encoding
	EXPECT_EQ(decode(bad_enc, &b2), "begin: encoding: 7 is not 0 (raw) or 1 (hde)");

	Digest d, d2;
	for (int i = 0; i < 32; i++)
		d.sha256[i] = uint8_t(i * 7);
	ASSERT_EQ(decode(encode(d), &d2), "");
	EXPECT_EQ(d2.sha256, d.sha256);

	Result res{.ok = true, .bytes = 99, .detail = "/srv/in/x"}, res2;
	ASSERT_EQ(decode(encode(res), &res2), "");
	EXPECT_TRUE(res2.ok);
	EXPECT_EQ(res2.bytes, 99u);
	EXPECT_EQ(res2.detail, res.detail);
}

TEST(Messages, EveryTruncationIsRefusedWithTheFieldNamed)
{
	std::vector<uint8_t> b = encode(sample_hello());
	for (size_t n = 0; n < b.size(); n++) {
		Hello h;
		std::string err = decode(std::span(b.data(), n), &h);
		EXPECT_NE(err, "") << "prefix of " << n << " bytes accepted";
		EXPECT_EQ(err.rfind("hello: ", 0), 0u) << err;
	}
	b.push_back(0);
	Hello h;
	EXPECT_NE(decode(b, &h).find("after the last field"), std::string::npos);
}

TEST(Messages, WrongVersionIsRefused)
{
	std::vector<uint8_t> b = encode(Begin{.chunk_size = 1440, .nb_chunks = 1});
	b[0] = 9;
	Begin x;
	EXPECT_NE(decode(b, &x).find("version 9"), std::string::npos);
}

TEST(Messages, HelloValuesAreChecked)
{
	auto bad = [](auto mutate) {
		Hello h = sample_hello();
		mutate(h);
		Hello out;
		return decode(encode(h), &out);
	};
	EXPECT_NE(bad([](Hello &h) { h.name = "etc/passwd"; }).find("'/'"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.name = ".."; }), "");
	EXPECT_NE(bad([](Hello &h) { h.name = ".hidden"; }).find("hidden"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.name = ""; }).find("empty"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.name = std::string("a\nb"); }).find("control"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.mss = 10; }).find("mss"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.max_streams = 0; }).find("max_streams"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.max_streams = 257; }).find("max_streams"), std::string::npos);
	EXPECT_NE(bad([](Hello &h) { h.rx_queues = 0; }).find("rx_queues"), std::string::npos);
	EXPECT_EQ(bad([](Hello &h) { h.rtt_us = kMaxHelloRttUs + 1; }), "hello: rtt_us: 10000001 is more than 10000000");
	EXPECT_EQ(bad([](Hello &h) { h.base_version = 5, h.new_version = 5; }),
		  "hello: new_version: 5 is not after the baseline's 5");
	EXPECT_EQ(bad([](Hello &) {}), "");
}

TEST(Messages, BeginMustCoverTheObject)
{
	Hello h = sample_hello();
	h.size = 1440 * 10 + 1;
	EXPECT_EQ(check_begin(Begin{.chunk_size = 1440 * 2, .nb_chunks = 6}, h), "");
	EXPECT_NE(check_begin(Begin{.chunk_size = 1440 * 2, .nb_chunks = 5}, h).find("does not cover"), std::string::npos);
	EXPECT_NE(check_begin(Begin{.chunk_size = 1441, .nb_chunks = 11}, h).find("multiple"), std::string::npos);
	EXPECT_NE(check_begin(Begin{.chunk_size = 1440 * 1000, .nb_chunks = 1}, h).find("chunk_size"), std::string::npos);
	h.size = 0;
	EXPECT_EQ(check_begin(Begin{.chunk_size = 1440, .nb_chunks = 0}, h), "");
}

TEST(Messages, BeginDeltasOnlyAgainstTheAcceptedBaseline)
{
	Hello h = sample_hello();
	h.size = 1 << 20;
	Begin b{.chunk_size = 262144, .nb_chunks = 4, .encoding = ChunkEncoding::hde, .base_version = 3, .new_version = 4};
	EXPECT_EQ(check_begin(b, h, 3), "");
	EXPECT_EQ(check_begin(b, h, 0), "begin: baseline version 3 was not accepted");
	EXPECT_EQ(check_begin(b, h, 2), "begin: baseline version 3 is not the one accepted (2)");
	b.new_version = 3;
	EXPECT_NE(check_begin(b, h, 3).find("is not after"), std::string::npos);
	// HDE chunks are whole 4 KiB blocks, not whole packets; raw chunks the reverse.
	Begin odd{.chunk_size = 1440 * 182, .nb_chunks = 5, .encoding = ChunkEncoding::hde};
	EXPECT_NE(check_begin(odd, h).find("multiple of 4096"), std::string::npos);
	Begin raw_base{.chunk_size = 1440 * 182, .nb_chunks = 5, .base_version = 3};
	EXPECT_NE(check_begin(raw_base, h, 3).find("baseline version 3"), std::string::npos);
	EXPECT_EQ(check_begin(Begin{.chunk_size = 262144, .nb_chunks = 4, .encoding = ChunkEncoding::hde}, h), "");
}

TEST(Messages, BothSidesDeriveTheSameLayoutFromTheHello)
{
	// 100 ms at 1 Gbit/s: half a BDP is 6.25 MB, so the 256 KiB cap, in whole
	// packets for raw chunks and whole 4 KiB blocks for HDE ones.
	Hello h = sample_hello();
	h.rtt_us = 100'000;
	h.new_version = 9;
	Begin raw = layout_for(h, 0);
	EXPECT_EQ(raw.encoding, ChunkEncoding::raw);
	EXPECT_EQ(raw.chunk_size, 262144u / 1440 * 1440);
	EXPECT_EQ(raw.nb_chunks, uint32_t((h.size + raw.chunk_size - 1) / raw.chunk_size));
	EXPECT_EQ(raw.base_version, 0u);
	EXPECT_EQ(raw.new_version, 9u);
	EXPECT_EQ(check_begin(raw, h, 0), "");
	h.base_version = 8;
	Begin hde = layout_for(h, 8);
	EXPECT_EQ(hde.encoding, ChunkEncoding::hde);
	EXPECT_EQ(hde.chunk_size, 262144u / 1440 * 1440 / 4096 * 4096);
	EXPECT_EQ(hde.base_version, 8u);
	EXPECT_EQ(check_begin(hde, h, 8), "");
	// 2 ms on a 100 Mbit/s link: half a BDP is 12.5 kB, under the 16-packet floor.
	h.rtt_us = 2'000;
	h.link_bps = 100'000'000;
	EXPECT_EQ(layout_for(h, 0).chunk_size, 16u * 1440);
	EXPECT_EQ(layout_for(h, 8).chunk_size, 16u * 1440 / 4096 * 4096);
	// A LAN's 200 us counts as 1 ms, the floor of the sender's own hello round
	// trip: at 10 Gbit/s, 256 KiB chunks either way, not 125 kB with security on.
	h.link_bps = 10'000'000'000;
	h.rtt_us = 200;
	EXPECT_EQ(layout_for(h, 0).chunk_size, 262144u / 1440 * 1440);
	// A hostile size the chunk count cannot hold is caught by check_begin.
	h.size = UINT64_MAX / 2;
	Begin huge = layout_for(h, 0);
	EXPECT_NE(check_begin(huge, h, 0).find("does not cover"), std::string::npos);
}

TEST(Messages, ResultOkMustBeABoolean)
{
	std::vector<uint8_t> b = encode(Result{.ok = true, .bytes = 1, .detail = ""});
	b[1] = 2;
	Result r;
	EXPECT_NE(decode(b, &r).find("ok"), std::string::npos);
}

} // namespace
} // namespace dwcp::control

namespace dwcp::control {
namespace {

// A first packet as a sender's session builds it: header, then a STREAM frame at
// offset 0 holding one framed control message.
std::vector<uint8_t> first_packet(uint16_t type, const std::vector<uint8_t> &body, uint64_t offset = 0,
				  wire::PacketType ptype = wire::PacketType::ctrl, uint16_t stream = 0)
{
	std::vector<uint8_t> msg(6 + body.size());
	wire::put_u32(msg.data(), uint32_t(body.size()));
	wire::put_u16(msg.data() + 4, type);
	std::copy(body.begin(), body.end(), msg.begin() + 6);
	std::vector<uint8_t> pkt(1500);
	wire::encode_header({.flags = 0, .type = ptype, .stream_id = stream, .session_id = 42, .pn = 0}, pkt.data());
	size_t n = wire::encode_stream_frame(offset, msg, pkt.data() + wire::kHeaderLen, pkt.size() - wire::kHeaderLen);
	pkt.resize(wire::kHeaderLen + n);
	return pkt;
}

TEST(FirstPacket, OnlyAWholeValidHelloOpensASession)
{
	Hello h;
	EXPECT_EQ(hello_from_first_packet(first_packet(1, encode(sample_hello())), &h), "");
	EXPECT_EQ(h.name, "vm-17.img");
	EXPECT_NE(hello_from_first_packet(first_packet(uint16_t(MsgType::begin), encode(Begin{})), &h)
			  .find("not hello"), std::string::npos);
	EXPECT_NE(hello_from_first_packet(first_packet(1, encode(sample_hello()), 100), &h), "");
	EXPECT_NE(hello_from_first_packet(first_packet(1, encode(sample_hello()), 0, wire::PacketType::data), &h), "");
	EXPECT_NE(hello_from_first_packet(first_packet(1, encode(sample_hello()), 0, wire::PacketType::ctrl, 3), &h), "");
	auto cut = first_packet(1, encode(sample_hello()));
	cut.resize(cut.size() - 5);
	EXPECT_NE(hello_from_first_packet(cut, &h), "");
	std::vector<uint8_t> junk(40, 0xab);
	EXPECT_NE(hello_from_first_packet(junk, &h), "");
	Hello bad = sample_hello();
	bad.name = "a/b";
	EXPECT_NE(hello_from_first_packet(first_packet(1, encode(bad)), &h).find("'/'"), std::string::npos);
}

} // namespace
} // namespace dwcp::control
