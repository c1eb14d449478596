#include "control/handshake.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>

namespace dwcp::control {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMs = 1'000'000, kSec = 1'000'000'000;

// ---- Credentials, made once with the OpenSSL API in a temporary directory ----

X509 *make_cert(const std::string &cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long from_s, long to_s)
{
	static long serial = 1;
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_s);
	X509_gmtime_adj(X509_getm_notAfter(x), to_s);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   reinterpret_cast<const unsigned char *>(cn.c_str()), -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
	auto add = [&](int nid, const std::string &value) {
		X509_EXTENSION *e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	};
	if (!issuer) {
		add(NID_basic_constraints, "critical,CA:TRUE");
		add(NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		add(NID_basic_constraints, "critical,CA:FALSE");
		add(NID_key_usage, "critical,digitalSignature");
		add(NID_ext_key_usage, "serverAuth,clientAuth");
		add(NID_subject_alt_name, "DNS:" + cn);
	}
	add(NID_subject_key_identifier, "hash");
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

void write_pem(const fs::path &p, X509 *x, EVP_PKEY *k)
{
	FILE *f = fopen(p.c_str(), "w");
	ASSERT_NE(f, nullptr) << p;
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
	fclose(f);
}

// ca: the operator's CA; a, b: gateways a.site and b.site; expired, future: a.site
// outside its validity; other_ca, other: b.site under another CA.
class Creds : public ::testing::Environment {
public:
	static fs::path dir;
	void SetUp() override
	{
		char tmpl[] = "/tmp/dwcp-handshake-XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		dir = tmpl;
		const long hour = 3600, day = 24 * hour;
		EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_ca_key = EVP_EC_gen("P-256");
		X509 *ca = make_cert("dwcp test CA", ca_key, nullptr, nullptr, -hour, 10 * day);
		X509 *other_ca = make_cert("other CA", other_ca_key, nullptr, nullptr, -hour, 10 * day);
		write_pem(dir / "ca.pem", ca, nullptr);
		write_pem(dir / "other_ca.pem", other_ca, nullptr);
		struct Leaf {
			const char *file, *cn;
			X509 *issuer;
			EVP_PKEY *issuer_key;
			long from, to;
		} leaves[] = {
			{"a", "a.site", ca, ca_key, -hour, day},
			{"b", "b.site", ca, ca_key, -hour, day},
			{"expired", "a.site", ca, ca_key, -10 * day, -day},
			{"future", "a.site", ca, ca_key, day, 10 * day},
			{"other", "b.site", other_ca, other_ca_key, -hour, day},
		};
		for (auto &l : leaves) {
			EVP_PKEY *k = EVP_EC_gen("P-256");
			X509 *x = make_cert(l.cn, k, l.issuer, l.issuer_key, l.from, l.to);
			write_pem(dir / (std::string(l.file) + ".pem"), x, nullptr);
			write_pem(dir / (std::string(l.file) + ".key"), nullptr, k);
			X509_free(x);
			EVP_PKEY_free(k);
		}
		X509_free(ca);
		X509_free(other_ca);
		EVP_PKEY_free(ca_key);
		EVP_PKEY_free(other_ca_key);
	}
	void TearDown() override { fs::remove_all(dir); }
};
fs::path Creds::dir;
::testing::Environment *const creds_env = ::testing::AddGlobalTestEnvironment(new Creds);

std::string path(const std::string &name) { return (Creds::dir / name).string(); }

TlsConfig config(const std::string &me, const std::string &peer, const std::string &ca = "ca")
{
	return {path(me + ".pem"), path(me + ".key"), path(ca + ".pem"), peer};
}

std::unique_ptr<TlsContext> load_ok(const TlsConfig &cfg, bool server)
{
	std::string err;
	auto ctx = TlsContext::load(cfg, server, &err);
	EXPECT_NE(ctx, nullptr) << err;
	return ctx;
}

std::unique_ptr<TlsContext> load_unchecked_ok(const TlsConfig &cfg, bool server)
{
	std::string err;
	auto ctx = TlsContext::load_unchecked(cfg, server, &err);
	EXPECT_NE(ctx, nullptr) << err;
	return ctx;
}

std::string load_error(const TlsConfig &cfg, bool server = false)
{
	std::string err;
	auto ctx = TlsContext::load(cfg, server, &err);
	EXPECT_EQ(ctx, nullptr);
	EXPECT_EQ(err.find('\n'), std::string::npos) << err;
	return err;
}

bool has(const std::string &s, const std::string &part) { return s.find(part) != std::string::npos; }

// ---- Exchanges ----

struct Flights {
	std::vector<size_t> bytes;    // per poll that sent something
	std::vector<size_t> segments;
};

// Hands every segment straight to the other side until neither sends anything;
// the server's completion stands for its first protected packet.
void exchange(Handshake &c, Handshake &s, uint64_t now = 0, size_t mss = 1200, Flights *fl = nullptr)
{
	for (int round = 0; round < 16; round++) {
		bool any = false;
		for (auto [from, to] : {std::pair{&c, &s}, std::pair{&s, &c}}) {
			auto segs = from->poll(now, mss);
			size_t n = 0;
			for (auto &seg : segs) {
				EXPECT_LE(seg.data.size(), mss);
				to->on_peer_bytes(seg.offset, seg.data, now);
				n += seg.data.size();
			}
			if (fl && n) {
				fl->bytes.push_back(n);
				fl->segments.push_back(segs.size());
			}
			any |= !segs.empty();
		}
		if (s.complete())
			c.peer_confirmed();
		if (!any)
			return;
	}
}

void expect_keys_agree(const Handshake &c, const Handshake &s)
{
	ASSERT_TRUE(c.complete()) << c.error();
	ASSERT_TRUE(s.complete()) << s.error();
	EXPECT_EQ(c.tx_secret(), s.rx_secret());
	EXPECT_EQ(c.rx_secret(), s.tx_secret());
	EXPECT_NE(c.tx_secret(), c.rx_secret());
	EXPECT_NE(c.tx_secret(), Secret{});
}

TEST(Handshake, CompletesBothWaysWithAgreeingSecrets)
{
	for (bool a_is_client : {true, false}) {
		std::string cn = a_is_client ? "a" : "b", sn = a_is_client ? "b" : "a";
		auto cctx = load_ok(config(cn, sn + ".site"), false);
		auto sctx = load_ok(config(sn, cn + ".site"), true);
		ASSERT_TRUE(cctx && sctx);
		Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server);
		EXPECT_EQ(c.next_timeout_ns(), 0u); // the ClientHello is waiting
		EXPECT_EQ(s.next_timeout_ns(), UINT64_MAX);
		Flights fl;
		exchange(c, s, 0, 1200, &fl);
		expect_keys_agree(c, s);
		EXPECT_EQ(c.peer_subject(), "CN=" + sn + ".site");
		EXPECT_EQ(s.peer_subject(), "CN=" + cn + ".site");
		EXPECT_TRUE(s.done_sending());
		EXPECT_TRUE(c.done_sending());
		EXPECT_EQ(c.next_timeout_ns(), UINT64_MAX);
		EXPECT_EQ(s.next_timeout_ns(), UINT64_MAX);
		EXPECT_EQ(c.nb_retransmits() + s.nb_retransmits(), 0u);
		ASSERT_EQ(fl.bytes.size(), 3u);
		printf("flights (EC P-256, 1200-byte segments): ClientHello %zu B in %zu, server %zu B in %zu, "
		       "client %zu B in %zu\n",
		       fl.bytes[0], fl.segments[0], fl.bytes[1], fl.segments[1], fl.bytes[2], fl.segments[2]);

		// A second session on the same contexts gets fresh secrets: no resumption.
		Handshake c2(*cctx, Handshake::Role::client), s2(*sctx, Handshake::Role::server);
		exchange(c2, s2);
		expect_keys_agree(c2, s2);
		EXPECT_NE(c2.tx_secret(), c.tx_secret());
	}
}

TEST(Handshake, CarriesTransportParametersBothWays)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	ASSERT_TRUE(cctx && sctx);
	const std::vector<uint8_t> cp = {1, 2, 3}, sp = {9, 8, 7, 6, 5};
	{
		Handshake c(*cctx, Handshake::Role::client, kSec, cp), s(*sctx, Handshake::Role::server, kSec, sp);
		exchange(c, s);
		expect_keys_agree(c, s);
		ASSERT_TRUE(c.has_peer_params() && s.has_peer_params());
		EXPECT_EQ(c.peer_params(), sp);
		EXPECT_EQ(s.peer_params(), cp);
	}
	{
		// A client that sends none gets none: TLS answers only extensions offered.
		Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server, kSec, sp);
		exchange(c, s);
		expect_keys_agree(c, s);
		EXPECT_FALSE(c.has_peer_params());
		EXPECT_FALSE(s.has_peer_params());
	}
	{
		// A server that has none sends none; the client's still arrive.
		Handshake c(*cctx, Handshake::Role::client, kSec, cp), s(*sctx, Handshake::Role::server);
		exchange(c, s);
		expect_keys_agree(c, s);
		EXPECT_FALSE(c.has_peer_params());
		EXPECT_EQ(s.peer_params(), cp);
	}
	// More than the limit is refused before anything is sent.
	Handshake big(*cctx, Handshake::Role::client, kSec, std::vector<uint8_t>(kMaxTransportParams + 1, 0));
	EXPECT_TRUE(big.failed());
	EXPECT_NE(big.error().find("transport parameters"), std::string::npos) << big.error();
}

TEST(Handshake, ClientKeepsItsLastFlightUntilConfirmed)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server);
	auto hello = c.poll(0, 1200);
	for (auto &seg : hello)
		s.on_peer_bytes(seg.offset, seg.data, 0);
	auto server_flight = s.poll(0, 1200);
	EXPECT_EQ(s.next_timeout_ns(), 1 * kSec);
	for (auto &seg : server_flight)
		c.on_peer_bytes(seg.offset, seg.data, 10 * kMs);
	ASSERT_TRUE(c.complete()) << c.error();
	auto last = c.poll(10 * kMs, 1200);
	ASSERT_FALSE(last.empty());
	EXPECT_FALSE(c.done_sending());
	EXPECT_EQ(c.next_timeout_ns(), 10 * kMs + kSec);

	// The flight was lost.  The timer sends it again, at the same offsets.
	EXPECT_TRUE(c.poll(kSec, 1200).empty());
	auto again = c.poll(10 * kMs + kSec, 1200);
	ASSERT_EQ(again.size(), last.size());
	for (size_t i = 0; i < last.size(); i++) {
		EXPECT_EQ(again[i].offset, last[i].offset);
		EXPECT_EQ(again[i].data, last[i].data);
	}
	EXPECT_EQ(c.next_timeout_ns(), 10 * kMs + 3 * kSec);

	// The server repeats its flight: the client answers again, once per quarter
	// of the initial timeout.
	for (auto &seg : server_flight)
		c.on_peer_bytes(seg.offset, seg.data, 2 * kSec);
	EXPECT_EQ(c.poll(2 * kSec, 1200).size(), last.size());
	for (auto &seg : server_flight)
		c.on_peer_bytes(seg.offset, seg.data, 2 * kSec + 100 * kMs);
	EXPECT_TRUE(c.poll(2 * kSec + 100 * kMs, 1200).empty());

	for (auto &seg : again)
		s.on_peer_bytes(seg.offset, seg.data, 2 * kSec);
	expect_keys_agree(c, s);
	EXPECT_TRUE(s.done_sending());
	c.peer_confirmed();
	EXPECT_TRUE(c.done_sending());
	EXPECT_EQ(c.next_timeout_ns(), UINT64_MAX);
	EXPECT_TRUE(c.poll(100 * kSec, 1200).empty());
}

TEST(Handshake, ServerAnswersARepeatedClientHelloRateLimited)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server);
	auto hello = c.poll(0, 1200);
	for (auto &seg : hello)
		s.on_peer_bytes(seg.offset, seg.data, 0);
	auto flight = s.poll(0, 1200);
	ASSERT_FALSE(flight.empty());
	for (auto &seg : hello)
		s.on_peer_bytes(seg.offset, seg.data, 100 * kMs);
	EXPECT_TRUE(s.poll(100 * kMs, 1200).empty()); // too soon after the first
	for (auto &seg : hello)
		s.on_peer_bytes(seg.offset, seg.data, 300 * kMs);
	auto again = s.poll(300 * kMs, 1200);
	ASSERT_EQ(again.size(), flight.size());
	EXPECT_EQ(again[0].offset, 0u);
	EXPECT_EQ(again.back().data, flight.back().data);
	EXPECT_EQ(s.nb_retransmits(), 1u);
}

TEST(Handshake, GivesUpAfterEightRetransmissions)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	Handshake c(*cctx, Handshake::Role::client);
	auto hello = c.poll(0, 1200);
	ASSERT_EQ(hello.size(), 1u);
	// 1 s doubling, capped at 60 s.
	const uint64_t at_s[] = {1, 3, 7, 15, 31, 63, 123, 183};
	for (uint64_t t : at_s) {
		ASSERT_EQ(c.next_timeout_ns(), t * kSec);
		EXPECT_TRUE(c.poll(t * kSec - 1, 1200).empty());
		auto segs = c.poll(t * kSec, 1200);
		ASSERT_EQ(segs.size(), 1u);
		EXPECT_EQ(segs[0].offset, 0u);
		EXPECT_EQ(segs[0].data, hello[0].data);
	}
	EXPECT_EQ(c.next_timeout_ns(), 243 * kSec);
	EXPECT_TRUE(c.poll(243 * kSec, 1200).empty());
	EXPECT_TRUE(c.failed());
	EXPECT_EQ(c.error(), "handshake timed out");
	EXPECT_EQ(c.next_timeout_ns(), UINT64_MAX);
}

// A seeded link that drops, duplicates and delays (so reorders) every segment;
// the server's first protected packet is a "confirm" on the same link.
struct SimResult {
	bool ok = false;
	uint64_t end_ns = 0;
	uint32_t nb_retx = 0;
};

SimResult run_lossy(TlsContext &cctx, TlsContext &sctx, uint64_t seed, size_t mss, double drop, double dup)
{
	std::mt19937_64 rng(seed);
	std::uniform_real_distribution<double> u(0, 1);
	Handshake c(cctx, Handshake::Role::client), s(sctx, Handshake::Role::server);
	struct Pkt {
		bool to_server, confirm;
		CryptoSegment seg;
	};
	std::multimap<uint64_t, Pkt> wire;
	auto send = [&](uint64_t now, Pkt p) {
		if (u(rng) < drop)
			return;
		int copies = u(rng) < dup ? 2 : 1;
		for (int i = 0; i < copies; i++)
			wire.emplace(now + 20 * kMs + uint64_t(u(rng) * 60 * kMs), p);
	};
	uint64_t now = 0;
	for (int step = 0; step < 100000; step++) {
		for (auto [h, to_server] : {std::pair{&c, true}, std::pair{&s, false}}) {
			for (auto &seg : h->poll(now, mss)) {
				EXPECT_LE(seg.data.size(), mss);
				send(now, {to_server, false, seg});
			}
			EXPECT_GT(h->next_timeout_ns(), now) << "poll left work due";
		}
		if (c.failed() || s.failed()) {
			ADD_FAILURE() << "seed " << seed << ": client '" << c.error() << "', server '" << s.error() << "'";
			return {};
		}
		if (c.done_sending() && s.done_sending()) {
			expect_keys_agree(c, s);
			return {true, now, c.nb_retransmits() + s.nb_retransmits()};
		}
		uint64_t next = std::min(c.next_timeout_ns(), s.next_timeout_ns());
		if (!wire.empty())
			next = std::min(next, wire.begin()->first);
		if (next == UINT64_MAX) {
			ADD_FAILURE() << "seed " << seed << ": stuck at " << now;
			return {};
		}
		now = std::max(now, next);
		while (!wire.empty() && wire.begin()->first <= now) {
			Pkt p = wire.begin()->second;
			wire.erase(wire.begin());
			if (p.confirm) {
				c.peer_confirmed();
			} else if (p.to_server) {
				s.on_peer_bytes(p.seg.offset, p.seg.data, now);
				if (s.complete())
					send(now, {false, true, {}});
			} else {
				c.on_peer_bytes(p.seg.offset, p.seg.data, now);
			}
		}
	}
	ADD_FAILURE() << "seed " << seed << ": did not finish";
	return {};
}

TEST(Handshake, CompletesOverALossyReorderingDuplicatingLink)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	for (size_t mss : {size_t(1200), size_t(200)}) {
		uint64_t worst = 0, retx = 0;
		int nb_seeds = 60;
		for (int seed = 1; seed <= nb_seeds; seed++) {
			SimResult r = run_lossy(*cctx, *sctx, uint64_t(seed), mss, 0.2, 0.1);
			ASSERT_TRUE(r.ok) << "seed " << seed << " mss " << mss;
			worst = std::max(worst, r.end_ns);
			retx += r.nb_retx;
		}
		printf("lossy link, %zu-byte segments: %d seeds done, worst %.2f s virtual, %.1f resends per handshake\n",
		       mss, nb_seeds, double(worst) / kSec, double(retx) / nb_seeds);
	}
}

TEST(Handshake, ReassemblesReversedAndOverlappingSegments)
{
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server);
	auto deliver = [](std::vector<CryptoSegment> segs, Handshake &to) {
		// Last first, then every segment again shifted by half a segment.
		std::reverse(segs.begin(), segs.end());
		for (auto &seg : segs)
			EXPECT_TRUE(to.on_peer_bytes(seg.offset, seg.data, 0)) << to.error();
		for (auto &seg : segs) {
			size_t h = seg.data.size() / 2;
			to.on_peer_bytes(seg.offset + h, std::span(seg.data).subspan(h), 0);
		}
	};
	deliver(c.poll(0, 50), s);
	deliver(s.poll(0, 50), c);
	deliver(c.poll(0, 50), s);
	expect_keys_agree(c, s);
}

TEST(Handshake, BoundedReorderBuffer)
{
	auto sctx = load_ok(config("b", "a.site"), true);
	Handshake s(*sctx, Handshake::Role::server);
	std::vector<uint8_t> one(1, 0x16);
	EXPECT_TRUE(s.on_peer_bytes(kHandshakeReorderBytes - 1, one, 0));
	EXPECT_FALSE(s.on_peer_bytes(kHandshakeReorderBytes, one, 0));
	EXPECT_TRUE(has(s.error(), "65536 bytes past the first missing byte at 0")) << s.error();
	Handshake s2(*sctx, Handshake::Role::server);
	EXPECT_FALSE(s2.on_peer_bytes(UINT64_MAX, one, 0));
	EXPECT_TRUE(s2.failed());
}

struct Outcome {
	std::string client, server; // each side's error
};

Outcome outcome(TlsContext &cctx, TlsContext &sctx)
{
	Handshake c(cctx, Handshake::Role::client), s(sctx, Handshake::Role::server);
	exchange(c, s);
	EXPECT_FALSE(c.complete());
	EXPECT_FALSE(s.complete());
	EXPECT_EQ(c.error().find('\n'), std::string::npos);
	EXPECT_EQ(s.error().find('\n'), std::string::npos);
	EXPECT_TRUE(c.done_sending() && s.done_sending());
	return {c.error(), s.error()};
}

TEST(Handshake, WrongCaIsRejectedByEitherSide)
{
	// The server's certificate is from another CA.
	auto cctx = load_ok(config("a", "b.site"), false);
	auto sctx = load_ok(config("other", "a.site", "other_ca"), true);
	Outcome o = outcome(*cctx, *sctx);
	EXPECT_EQ(o.client, "peer certificate rejected: unable to get local issuer certificate (CN=b.site, issued by CN=other CA)");
	EXPECT_EQ(o.server, "peer sent alert: unknown CA");

	// The client's certificate is from another CA (load would refuse it).
	auto cctx2 = load_unchecked_ok(config("other", "b.site"), false);
	auto sctx2 = load_ok(config("b", "b.site"), true);
	o = outcome(*cctx2, *sctx2);
	EXPECT_EQ(o.server, "peer certificate rejected: unable to get local issuer certificate (CN=b.site, issued by CN=other CA)");
	EXPECT_EQ(o.client, "peer sent alert: unknown CA");
}

TEST(Handshake, WrongPeerNameIsRejectedByEitherSide)
{
	auto cctx = load_ok(config("a", "c.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Outcome o = outcome(*cctx, *sctx);
	EXPECT_EQ(o.client, "peer name mismatch: expected 'c.site', certificate is for 'b.site'");
	EXPECT_EQ(o.server, "peer sent alert: bad certificate");

	// The client finishes before the server checks it; the alert undoes that.
	auto cctx2 = load_ok(config("a", "b.site"), false);
	auto sctx2 = load_ok(config("b", "c.site"), true);
	o = outcome(*cctx2, *sctx2);
	EXPECT_EQ(o.server, "peer name mismatch: expected 'c.site', certificate is for 'a.site'");
	EXPECT_EQ(o.client, "peer sent alert: bad certificate");
}

TEST(Handshake, ExpiredOrNotYetValidCertificate)
{
	std::string err = load_error(config("expired", "b.site"));
	EXPECT_TRUE(std::regex_search(err, std::regex("^tls: certificate " + path("expired.pem") +
						      " expired on \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d UTC$")))
		<< err;
	err = load_error(config("future", "b.site"));
	EXPECT_TRUE(has(err, "tls: certificate " + path("future.pem") + " is not valid until ")) << err;

	// Loaded anyway, the peer refuses it, whichever side presents it.
	auto cctx = load_unchecked_ok(config("expired", "b.site"), false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Outcome o = outcome(*cctx, *sctx);
	EXPECT_EQ(o.server, "peer certificate rejected: certificate has expired (CN=a.site, issued by CN=dwcp test CA)");
	EXPECT_EQ(o.client, "peer sent alert: certificate expired");

	auto cctx2 = load_ok(config("b", "a.site"), false);
	auto sctx2 = load_unchecked_ok(config("future", "b.site"), true);
	o = outcome(*cctx2, *sctx2);
	EXPECT_EQ(o.client, "peer certificate rejected: certificate is not yet valid (CN=a.site, issued by CN=dwcp test CA)");
	EXPECT_TRUE(has(o.server, "peer sent alert: ")) << o.server;
}

TEST(Handshake, ServerRequiresAClientCertificate)
{
	auto cctx = load_unchecked_ok({"", "", path("ca.pem"), "b.site"}, false);
	auto sctx = load_ok(config("b", "a.site"), true);
	Outcome o = outcome(*cctx, *sctx);
	EXPECT_EQ(o.server, "no client certificate");
	EXPECT_EQ(o.client, "peer sent alert: certificate required");
}

TEST(Handshake, GarbageFailsTheServerWithAClearError)
{
	auto sctx = load_ok(config("b", "a.site"), true);
	std::string http = "GET / HTTP/1.1\r\nHost: b.site\r\n\r\n";
	std::vector<std::vector<uint8_t>> inputs = {
		std::vector<uint8_t>(http.begin(), http.end()),
		{0x16, 0x03, 0x01, 0xff, 0xff},                   // a record longer than TLS allows
		{0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00}, // an empty ClientHello
	};
	std::mt19937_64 rng(7);
	for (int i = 0; i < 20; i++) {
		std::vector<uint8_t> v(1 + rng() % 2000);
		for (auto &b : v)
			b = uint8_t(rng());
		inputs.push_back(v);
	}
	for (auto &in : inputs) {
		Handshake s(*sctx, Handshake::Role::server);
		bool alive = s.on_peer_bytes(0, in, 0);
		if (alive) // a prefix of something that might parse: the rest never comes
			continue;
		EXPECT_TRUE(s.failed());
		EXPECT_TRUE(has(s.error(), "handshake failed: ")) << s.error();
		EXPECT_EQ(s.error().find('\n'), std::string::npos);
		s.poll(0, 1200); // the alert, if any
		EXPECT_TRUE(s.done_sending());
		EXPECT_FALSE(s.on_peer_bytes(in.size(), in, 1));
		EXPECT_FALSE(s.complete());
	}
	std::pair<size_t, const char *> known[] = {
		{0, "handshake failed: http request"},
		{1, "handshake failed: packet length too long"},
		{2, "handshake failed: length too short"},
	};
	for (auto [i, error] : known) {
		Handshake s(*sctx, Handshake::Role::server);
		EXPECT_FALSE(s.on_peer_bytes(0, inputs[i], 0));
		EXPECT_EQ(s.error(), error);
	}
}

// A plain OpenSSL client's ClientHello, to try what a DWCP client never sends.
std::vector<uint8_t> foreign_client_hello(bool alpn, int max_version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_max_proto_version(ctx, max_version);
	SSL *ssl = SSL_new(ctx);
	SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
	if (alpn) {
		static const unsigned char h2[] = {2, 'h', '2'};
		SSL_set_alpn_protos(ssl, h2, sizeof h2);
	}
	SSL_set_connect_state(ssl);
	SSL_do_handshake(ssl);
	std::vector<uint8_t> out(16384);
	int n = BIO_read(SSL_get_wbio(ssl), out.data(), int(out.size()));
	out.resize(size_t(std::max(n, 0)));
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return out;
}

TEST(Handshake, ServerRefusesForeignClients)
{
	auto sctx = load_ok(config("b", "a.site"), true);
	struct Case {
		bool alpn;
		int version;
		const char *error;
	} cases[] = {
		{false, TLS1_3_VERSION, "peer offered no ALPN (dwcp/1 is required)"},
		{true, TLS1_3_VERSION, "peer does not offer ALPN dwcp/1"},
		{true, TLS1_2_VERSION, "handshake failed: unsupported protocol"},
	};
	for (auto &k : cases) {
		Handshake s(*sctx, Handshake::Role::server);
		auto hello = foreign_client_hello(k.alpn, k.version);
		ASSERT_FALSE(hello.empty());
		EXPECT_FALSE(s.on_peer_bytes(0, hello, 0));
		EXPECT_EQ(s.error(), k.error);
		EXPECT_FALSE(s.poll(0, 1200).empty()) << "an alert tells the peer why";
	}
}

TEST(TlsContext, LoadErrorsNameTheFileAndTheProblem)
{
	EXPECT_EQ(load_error(config("missing", "b.site")),
		  "tls: cannot read certificate " + path("missing.pem") + ": No such file or directory");
	EXPECT_EQ(load_error({path("a.pem"), path("a.key"), path("nope.pem"), "b.site"}),
		  "tls: cannot read CA file " + path("nope.pem") + ": No such file or directory");
	EXPECT_EQ(load_error({Creds::dir.string(), path("a.key"), path("ca.pem"), "b.site"}),
		  "tls: cannot read certificate " + Creds::dir.string() + ": Is a directory");
	if (geteuid() != 0) { // root reads anything
		fs::copy_file(path("a.pem"), path("locked.pem"), fs::copy_options::overwrite_existing);
		chmod(path("locked.pem").c_str(), 0);
		EXPECT_EQ(load_error({path("locked.pem"), path("a.key"), path("ca.pem"), "b.site"}),
			  "tls: cannot read certificate " + path("locked.pem") + ": Permission denied");
	}
	EXPECT_EQ(load_error({path("a.pem"), path("b.key"), path("ca.pem"), "b.site"}),
		  "tls: key " + path("b.key") + " does not match certificate " + path("a.pem"));
	EXPECT_EQ(load_error({path("a.key"), path("a.key"), path("ca.pem"), "b.site"}),
		  "tls: certificate " + path("a.key") + " holds no PEM certificate");
	EXPECT_EQ(load_error({path("a.pem"), path("a.pem"), path("ca.pem"), "b.site"}),
		  "tls: key " + path("a.pem") + " holds no PEM private key");
	EXPECT_EQ(load_error({path("a.pem"), path("a.key"), path("a.key"), "b.site"}),
		  "tls: CA file " + path("a.key") + " holds no PEM certificate");
	EXPECT_EQ(load_error({path("other.pem"), path("other.key"), path("ca.pem"), "a.site"}, true),
		  "tls: certificate " + path("other.pem") + " does not chain to CA file " + path("ca.pem") +
			  ": unable to get local issuer certificate");
	EXPECT_EQ(load_error({path("a.pem"), path("a.key"), path("ca.pem"), ""}),
		  "tls: no peer name configured (the name the peer's certificate must carry)");

	std::ofstream(path("junk.pem")) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
	std::string err = load_error({path("junk.pem"), path("a.key"), path("ca.pem"), "b.site"});
	EXPECT_TRUE(has(err, "tls: certificate " + path("junk.pem") + ": certificate 1 is malformed")) << err;
}

// dwcp-certs (the openssl CLI) makes files TlsContext loads and a handshake uses.
TEST(DwcpCerts, WritesACaAndGatewayCertificatesThatWork)
{
	const char *script = getenv("DWCP_CERTS");
	if (!script)
		GTEST_SKIP() << "DWCP_CERTS is not set (meson test sets it)";
	fs::path out = Creds::dir / "certs";
	std::string log = (Creds::dir / "certs.log").string();
	auto run = [&](const std::string &args) {
		std::string cmd = std::string(script) + " " + args + " >" + log + " 2>&1";
		int rc = std::system(cmd.c_str());
		std::ifstream f(log);
		std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
		return std::pair{WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, text};
	};
	auto [rc, text] = run("--out " + out.string() + " --days 2 a.site b.site");
	ASSERT_EQ(rc, 0) << text;
	for (const char *f : {"ca.pem", "ca.key", "a.site.pem", "a.site.key", "b.site.pem", "b.site.key"})
		EXPECT_TRUE(fs::exists(out / f)) << f;
	for (const char *f : {"ca.key", "a.site.key", "b.site.key"}) {
		struct stat st;
		ASSERT_EQ(stat((out / f).c_str(), &st), 0);
		EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
	}
	auto cfg = [&](const std::string &me, const std::string &peer) {
		return TlsConfig{(out / (me + ".pem")).string(), (out / (me + ".key")).string(),
				 (out / "ca.pem").string(), peer};
	};
	auto cctx = load_ok(cfg("a.site", "b.site"), false);
	auto sctx = load_ok(cfg("b.site", "a.site"), true);
	ASSERT_TRUE(cctx && sctx);
	Handshake c(*cctx, Handshake::Role::client), s(*sctx, Handshake::Role::server);
	exchange(c, s);
	expect_keys_agree(c, s);

	std::tie(rc, text) = run("--out " + out.string() + " a.site");
	EXPECT_EQ(rc, 1);
	EXPECT_TRUE(has(text, "exists")) << text;
	EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
	std::tie(rc, text) = run("--out " + out.string() + " --force a.site");
	EXPECT_EQ(rc, 0) << text;
	std::tie(rc, text) = run("--out " + out.string() + " --force 'bad name'");
	EXPECT_NE(rc, 0);
	EXPECT_TRUE(has(text, "bad name")) << text;
	std::tie(rc, text) = run("--out " + out.string() + " --days x a.site");
	EXPECT_NE(rc, 0);
	EXPECT_TRUE(has(text, "--days")) << text;
}

} // namespace
} // namespace dwcp::control
