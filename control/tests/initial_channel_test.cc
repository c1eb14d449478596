// The handshake on the wire: INITIAL packets between two InitialChannels, with a
// listener's RETRY in front, as worker 0 of a listening gateway sends it.
#include "control/initial_channel.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include "dataplane/amst/wire.h"

namespace dwcp::control {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kSid = 0x5eed5eed5eed5eedull;
constexpr size_t kMaxPacket = 1472;

// Test credentials from control/dwcp-certs (meson passes its path as DWCP_CERTS).
class Certs : public ::testing::Environment {
public:
	void SetUp() override
	{
		const char *tool = getenv("DWCP_CERTS");
		ASSERT_NE(tool, nullptr) << "DWCP_CERTS must name control/dwcp-certs";
		dir = fs::temp_directory_path() / ("dwcp-ic-" + std::to_string(getpid()));
		std::string cmd = std::string(tool) + " --out " + dir.string() + " a.site b.site >/dev/null";
		ASSERT_EQ(system(cmd.c_str()), 0) << cmd;
	}
	void TearDown() override { fs::remove_all(dir); }
	static inline fs::path dir;
};

std::unique_ptr<TlsContext> context(const std::string &me, const std::string &peer, bool server)
{
	TlsConfig c{.cert_file = (Certs::dir / (me + ".pem")).string(),
		    .key_file = (Certs::dir / (me + ".key")).string(),
		    .ca_file = (Certs::dir / "ca.pem").string(),
		    .peer_name = peer};
	std::string err;
	auto ctx = TlsContext::load(c, server, &err);
	EXPECT_TRUE(ctx) << err;
	return ctx;
}

// What the listener reads in a client's INITIAL: its token, and whether it starts
// the TLS stream.
struct Parsed {
	bool ok = false;
	std::vector<uint8_t> token;
	bool starts = false;
};

Parsed parse(const std::vector<uint8_t> &p)
{
	Parsed r;
	wire::Header h;
	if (wire::decode_header(p.data(), p.size(), &h) != wire::ParseError::ok || h.type != wire::PacketType::initial ||
	    h.session_id != kSid || h.flags != 0)
		return r;
	wire::FrameReader fr(p.data() + wire::kHeaderLen, p.size() - wire::kHeaderLen);
	wire::Frame f;
	while (!fr.done()) {
		if (fr.next(&f) != wire::ParseError::ok)
			return r;
		if (f.type == wire::FrameType::token)
			r.token.assign(f.data.begin(), f.data.end());
		else if (f.type == wire::FrameType::crypto && f.stream_off == 0)
			r.starts = true;
	}
	r.ok = true;
	return r;
}

std::vector<uint8_t> retry_packet(const std::vector<uint8_t> &token, uint64_t sid = kSid)
{
	std::vector<uint8_t> p(wire::kHeaderLen + 2 + token.size());
	wire::encode_header({.type = wire::PacketType::retry, .stream_id = 0, .session_id = sid, .pn = 0}, p.data());
	wire::encode_token_frame(token, p.data() + wire::kHeaderLen, p.size() - wire::kHeaderLen);
	return p;
}

class InitialChannelTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		cctx = context("a.site", "b.site", false);
		sctx = context("b.site", "a.site", true);
		ASSERT_TRUE(cctx && sctx);
	}
	std::unique_ptr<TlsContext> cctx, sctx;
};

TEST_F(InitialChannelTest, RetryThenHandshakeWithAgreeingKeys)
{
	InitialChannel client(*cctx, Handshake::Role::client, kSid, kMaxPacket);
	uint64_t now = 0;
	auto first = client.poll(now);
	ASSERT_EQ(first.size(), 1u); // a ClientHello fits one packet
	Parsed p = parse(first[0]);
	ASSERT_TRUE(p.ok);
	EXPECT_TRUE(p.starts);
	EXPECT_TRUE(p.token.empty());

	// The listener answers with a token; the client sends its hello again with it.
	const std::vector<uint8_t> token(24, 0xab);
	client.on_packet(retry_packet(token), now);
	EXPECT_TRUE(client.retried());
	auto again = client.poll(now);
	ASSERT_EQ(again.size(), 1u);
	p = parse(again[0]);
	ASSERT_TRUE(p.ok);
	EXPECT_TRUE(p.starts);
	EXPECT_EQ(p.token, token);

	// With the token, the listener opens the session and runs the server side.
	InitialChannel server(*sctx, Handshake::Role::server, kSid, kMaxPacket);
	server.on_packet(again[0], now);
	for (int round = 0; round < 10 && !(client.handshake().complete() && server.handshake().complete()); round++) {
		now += 50'000'000;
		for (auto &pkt : server.poll(now))
			client.on_packet(pkt, now);
		now += 50'000'000;
		for (auto &pkt : client.poll(now)) {
			EXPECT_EQ(parse(pkt).token, token); // every client INITIAL keeps it
			server.on_packet(pkt, now);
		}
	}
	ASSERT_TRUE(client.handshake().complete()) << client.handshake().error();
	ASSERT_TRUE(server.handshake().complete()) << server.handshake().error();
	EXPECT_EQ(client.handshake().tx_secret(), server.handshake().rx_secret());
	EXPECT_EQ(client.handshake().rx_secret(), server.handshake().tx_secret());
	EXPECT_EQ(client.ignored(), 0u);
	EXPECT_EQ(server.ignored(), 0u);
}

TEST_F(InitialChannelTest, RttComesFromFlightsSentOnce)
{
	// The client's RTT (which its HELLO carries, so that the chunk layout needs no
	// round trip of its own) is the quickest answer to a flight sent once: the
	// RETRY after 120 ms, the server's flight 100 ms after the hello went again.
	constexpr uint64_t kMs = 1'000'000;
	InitialChannel client(*cctx, Handshake::Role::client, kSid, kMaxPacket);
	InitialChannel server(*sctx, Handshake::Role::server, kSid, kMaxPacket);
	ASSERT_EQ(client.poll(5 * kMs).size(), 1u);
	EXPECT_EQ(client.rtt_ns(), 0u);
	client.on_packet(retry_packet(std::vector<uint8_t>(20, 1)), 125 * kMs);
	EXPECT_EQ(client.rtt_ns(), 120 * kMs);
	auto again = client.poll(130 * kMs);
	ASSERT_EQ(again.size(), 1u);
	server.on_packet(again[0], 180 * kMs);
	auto flight = server.poll(180 * kMs);
	ASSERT_FALSE(flight.empty());
	for (auto &pkt : flight)
		client.on_packet(pkt, 230 * kMs);
	EXPECT_EQ(client.rtt_ns(), 100 * kMs);

	// A flight the handshake had to send twice gives no sample: the answer may be
	// to either copy.
	InitialChannel slow(*cctx, Handshake::Role::client, kSid, kMaxPacket, 200 * kMs);
	ASSERT_EQ(slow.poll(0).size(), 1u);
	ASSERT_EQ(slow.poll(slow.next_timeout_ns()).size(), 1u);
	slow.on_packet(retry_packet(std::vector<uint8_t>(20, 1)), 450 * kMs);
	EXPECT_EQ(slow.rtt_ns(), 0u);
	// The hello sent again with the token is a new flight, sent once.
	auto with_token = slow.poll(460 * kMs);
	ASSERT_EQ(with_token.size(), 1u);
	InitialChannel server2(*sctx, Handshake::Role::server, kSid, kMaxPacket);
	server2.on_packet(with_token[0], 500 * kMs);
	for (auto &pkt : server2.poll(500 * kMs))
		slow.on_packet(pkt, 545 * kMs);
	EXPECT_EQ(slow.rtt_ns(), 85 * kMs);
}

TEST_F(InitialChannelTest, OnlyOneRetryAndOnlyBeforeTheServerSpeaks)
{
	InitialChannel client(*cctx, Handshake::Role::client, kSid, kMaxPacket);
	InitialChannel server(*sctx, Handshake::Role::server, kSid, kMaxPacket);
	auto hello = client.poll(0);
	client.on_packet(retry_packet(std::vector<uint8_t>(20, 1)), 0);
	// A second RETRY (an attacker's, or a stale one) changes nothing.
	client.on_packet(retry_packet(std::vector<uint8_t>(20, 2)), 0);
	EXPECT_EQ(client.ignored(), 1u);
	auto with_token = client.poll(0);
	ASSERT_EQ(with_token.size(), 1u);
	EXPECT_EQ(parse(with_token[0]).token, std::vector<uint8_t>(20, 1));
	// A RETRY for another session, and one sent to a server, are ignored.
	client.on_packet(retry_packet(std::vector<uint8_t>(20, 3), kSid + 1), 0);
	server.on_packet(retry_packet(std::vector<uint8_t>(20, 4)), 0);
	EXPECT_EQ(client.ignored(), 2u);
	EXPECT_EQ(server.ignored(), 1u);
	// Malformed INITIALs: truncated, a STREAM frame (not allowed here), sealed.
	std::vector<uint8_t> cut(with_token[0].begin(), with_token[0].begin() + 30);
	server.on_packet(cut, 0);
	std::vector<uint8_t> bad(wire::kHeaderLen + 32);
	wire::encode_header({.type = wire::PacketType::initial, .session_id = kSid}, bad.data());
	const uint8_t junk[8] = {};
	bad.resize(wire::kHeaderLen + wire::encode_stream_frame(0, junk, bad.data() + wire::kHeaderLen, 32));
	server.on_packet(bad, 0);
	std::vector<uint8_t> sealed = with_token[0];
	sealed[0] |= wire::flag_protected;
	server.on_packet(sealed, 0);
	EXPECT_EQ(server.ignored(), 4u);
	EXPECT_FALSE(server.handshake().failed());
}

TEST_F(InitialChannelTest, TamperedHandshakeBytesFailTheHandshake)
{
	InitialChannel client(*cctx, Handshake::Role::client, kSid, kMaxPacket);
	InitialChannel server(*sctx, Handshake::Role::server, kSid, kMaxPacket);
	for (auto &pkt : client.poll(0))
		server.on_packet(pkt, 0);
	auto flight = server.poll(0);
	ASSERT_FALSE(flight.empty());
	// An attacker on the path flips a byte of the server's encrypted records.
	std::vector<uint8_t> &last = flight.back();
	last[last.size() - 20] ^= 0x40;
	for (auto &pkt : flight)
		client.on_packet(pkt, 0);
	EXPECT_TRUE(client.handshake().failed());
	EXPECT_FALSE(client.handshake().error().empty());
	EXPECT_FALSE(client.handshake().complete());
}

} // namespace
} // namespace dwcp::control

int main(int argc, char **argv)
{
	::testing::InitGoogleTest(&argc, argv);
	::testing::AddGlobalTestEnvironment(new dwcp::control::Certs);
	return RUN_ALL_TESTS();
}
