#include "dataplane/amst/wire.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

using namespace dwcp::wire;

TEST(Wire, HeaderRoundTrip)
{
	Header h{.flags = flag_protected | flag_key_phase, .type = PacketType::data, .stream_id = 17,
		 .session_id = 0x0123456789abcdefull, .pn = 0xfedcba9876543210ull};
	uint8_t buf[kHeaderLen + kTagLen] = {};
	encode_header(h, buf);
	EXPECT_EQ(buf[0], 0x13); // version 1, protected + key phase
	Header d;
	ASSERT_EQ(decode_header(buf, sizeof(buf), &d), ParseError::ok);
	EXPECT_EQ(d.flags, h.flags);
	EXPECT_EQ(d.type, h.type);
	EXPECT_EQ(d.stream_id, 17);
	EXPECT_EQ(d.session_id, h.session_id);
	EXPECT_EQ(d.pn, h.pn);
}

TEST(Wire, HeaderRejects)
{
	uint8_t buf[64] = {};
	Header h{.type = PacketType::ctrl, .stream_id = 0, .session_id = 1, .pn = 2};
	Header d;
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen - 1, &d), ParseError::too_short);
	ASSERT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::ok);
	buf[0] = 0x21; // version 2
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_version);
	buf[0] = 0x14; // reserved flag
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::reserved_flags);
	buf[0] = 0x11; // protected but no room for the tag
	EXPECT_EQ(decode_header(buf, kHeaderLen + kTagLen - 1, &d), ParseError::too_short);
	buf[0] = 0x10;
	buf[1] = 9;
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_type);
	buf[1] = 0;
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_type);
	// Data on the control stream, set-up on a data stream, data beyond the last stream.
	h.type = PacketType::data;
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_stream);
	h.type = PacketType::initial, h.stream_id = 3;
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_stream);
	h.type = PacketType::ctrl; // acknowledgements travel on the data stream they ack
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::ok);
	h.type = PacketType::data, h.stream_id = kMaxStreams + 1;
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::bad_stream);
	h.stream_id = kMaxStreams;
	encode_header(h, buf);
	EXPECT_EQ(decode_header(buf, kHeaderLen, &d), ParseError::ok);
}

TEST(Wire, DataFrame)
{
	uint8_t buf[kDataFrameLen];
	encode_data_frame({.chunk_id = 7, .chunk_off = 1424, .chunk_len = 262144}, buf);
	DataFrame f;
	size_t n = 0;
	ASSERT_EQ(decode_data_frame(buf, kDataFrameLen + 1424, &f, &n), ParseError::ok);
	EXPECT_EQ(f.chunk_id, 7u);
	EXPECT_EQ(f.chunk_off, 1424u);
	EXPECT_EQ(f.chunk_len, 262144u);
	EXPECT_EQ(n, 1424u);
	EXPECT_EQ(decode_data_frame(buf, kDataFrameLen - 1, &f, &n), ParseError::too_short);
	EXPECT_EQ(decode_data_frame(buf, kDataFrameLen, &f, &n), ParseError::bad_chunk); // empty
	// Runs past the chunk's end.
	encode_data_frame({.chunk_id = 7, .chunk_off = 262144 - 10, .chunk_len = 262144}, buf);
	EXPECT_EQ(decode_data_frame(buf, kDataFrameLen + 11, &f, &n), ParseError::bad_chunk);
	EXPECT_EQ(decode_data_frame(buf, kDataFrameLen + 10, &f, &n), ParseError::ok);
	// Offset near 2^32 must not wrap.
	encode_data_frame({.chunk_id = 7, .chunk_off = 0xfffffff0u, .chunk_len = 0xffffffffu}, buf);
	EXPECT_EQ(decode_data_frame(buf, kDataFrameLen + 0x20, &f, &n), ParseError::bad_chunk);
}

TEST(Wire, AckFrameRoundTrip)
{
	AckFrame a{.stream_id = 5, .ack_delay_us = 250, .nb_ranges = 3};
	a.ranges[0] = {100, 120};
	a.ranges[1] = {90, 97}; // 98, 99 missing
	a.ranges[2] = {0, 0};
	uint8_t buf[256];
	size_t n = encode_ack_frame(a, buf, sizeof(buf));
	ASSERT_EQ(n, ack_frame_len(3));
	FrameReader r(buf, n);
	Frame f;
	ASSERT_EQ(r.next(&f), ParseError::ok);
	ASSERT_EQ(f.type, FrameType::ack);
	EXPECT_EQ(f.ack.stream_id, 5);
	EXPECT_EQ(f.ack.ack_delay_us, 250u);
	ASSERT_EQ(f.ack.nb_ranges, 3);
	for (int i = 0; i < 3; i++) {
		EXPECT_EQ(f.ack.ranges[i].lo, a.ranges[i].lo);
		EXPECT_EQ(f.ack.ranges[i].hi, a.ranges[i].hi);
	}
	EXPECT_TRUE(r.done());
	EXPECT_EQ(encode_ack_frame(a, buf, n - 1), 0u);
}

TEST(Wire, AckFrameRejectsUnderflow)
{
	AckFrame a{.stream_id = 1, .nb_ranges = 2};
	a.ranges[0] = {10, 20};
	a.ranges[1] = {2, 5};
	uint8_t buf[64];
	size_t n = encode_ack_frame(a, buf, sizeof(buf));
	// Make the second range's gap reach below packet 0.
	put_u32(buf + 20, 100);
	FrameReader r(buf, n);
	Frame f;
	EXPECT_EQ(r.next(&f), ParseError::bad_ack);
	// First range longer than its largest.
	n = encode_ack_frame(a, buf, sizeof(buf));
	put_u32(buf + 16, 21);
	FrameReader r2(buf, n);
	EXPECT_EQ(r2.next(&f), ParseError::bad_ack);
	// Zero ranges, and a truncated frame.
	n = encode_ack_frame(a, buf, sizeof(buf));
	buf[3] = 0;
	FrameReader r3(buf, n);
	EXPECT_EQ(r3.next(&f), ParseError::bad_ack);
	n = encode_ack_frame(a, buf, sizeof(buf));
	FrameReader r4(buf, n - 1);
	EXPECT_EQ(r4.next(&f), ParseError::too_short);
}

TEST(Wire, MixedFrames)
{
	uint8_t buf[512];
	size_t off = 0;
	const uint8_t msg[] = {1, 2, 3, 4, 5};
	off += encode_stream_frame(4096, msg, buf + off, sizeof(buf) - off);
	off += encode_window_frame(12345, buf + off, sizeof(buf) - off);
	buf[off++] = uint8_t(FrameType::ping);
	const char reason[] = "disk full";
	off += encode_close_frame(3, {reason, 9}, buf + off, sizeof(buf) - off);
	memset(buf + off, 0, 7); // trailing padding
	off += 7;
	FrameReader r(buf, off);
	Frame f;
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::stream);
	EXPECT_EQ(f.stream_off, 4096u);
	ASSERT_EQ(f.data.size(), 5u);
	EXPECT_EQ(f.data[4], 5);
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::window);
	EXPECT_EQ(f.max_chunk, 12345u);
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::ping);
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::close);
	EXPECT_EQ(f.close_code, 3);
	EXPECT_EQ(std::string((const char *)f.data.data(), f.data.size()), "disk full");
	EXPECT_TRUE(r.done());
}

TEST(Wire, HandshakeFrames)
{
	uint8_t buf[256];
	const uint8_t tok[20] = {9, 8, 7};
	const uint8_t hs[] = {0x16, 0x03, 0x01, 0x00, 0x04};
	size_t off = encode_token_frame(tok, buf, sizeof(buf));
	ASSERT_EQ(off, 22u);
	off += encode_crypto_frame(300, hs, buf + off, sizeof(buf) - off);
	FrameReader r(buf, off);
	Frame f;
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::token);
	ASSERT_EQ(f.data.size(), 20u);
	EXPECT_EQ(f.data[1], 8);
	ASSERT_EQ(r.next(&f), ParseError::ok);
	EXPECT_EQ(f.type, FrameType::crypto);
	EXPECT_EQ(f.stream_off, 300u);
	ASSERT_EQ(f.data.size(), 5u);
	EXPECT_TRUE(r.done());

	// Tokens are 1..kMaxTokenLen bytes; a length running past the body is short.
	uint8_t big[kMaxTokenLen + 1] = {};
	EXPECT_EQ(encode_token_frame({big, sizeof(big)}, buf, sizeof(buf)), 0u);
	EXPECT_EQ(encode_token_frame({big, size_t(0)}, buf, sizeof(buf)), 0u);
	const uint8_t empty_tok[] = {uint8_t(FrameType::token), 0};
	FrameReader r2(empty_tok, sizeof(empty_tok));
	EXPECT_EQ(r2.next(&f), ParseError::bad_type);
	const uint8_t cut_tok[] = {uint8_t(FrameType::token), 8, 1, 2};
	FrameReader r3(cut_tok, sizeof(cut_tok));
	EXPECT_EQ(r3.next(&f), ParseError::too_short);
}

TEST(Wire, RandomBodiesNeverOverrun)
{
	// Every prefix of random bytes parses or fails cleanly, and never reads past its end
	// (the vector is exactly the body length, so ASan/valgrind would see an overrun).
	std::mt19937_64 rng(42);
	for (int iter = 0; iter < 20000; iter++) {
		std::vector<uint8_t> body(rng() % 80);
		for (auto &b : body)
			b = uint8_t(rng() % 4 == 0 ? rng() % 0x20 : rng());
		FrameReader r(body.data(), body.size());
		Frame f;
		int frames = 0;
		while (!r.done() && r.next(&f) == ParseError::ok)
			ASSERT_LT(++frames, 100);
	}
}

TEST(Wire, PayloadBudget)
{
	// 1500-byte MTU: 1424 chunk bytes per packet with a tag, 1440 without.
	EXPECT_EQ(data_payload_max(1500, true), 1424u);
	EXPECT_EQ(data_payload_max(1500, false), 1440u);
}
