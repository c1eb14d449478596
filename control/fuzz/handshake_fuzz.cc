// Fuzz target: a server Handshake fed arbitrary bytes as the first thing a stranger
// sends, in a few segments at offsets the input chooses (overlapping, out of order,
// with gaps).  It must not crash, must send only segments within max_segment, and
// a failure must come with a one-line error.
//
// Input: byte 0 = n - 1 in its low two bits (1..4 segments), then n times
// (u16 start, u16 length) big-endian into the payload, then the payload: the
// peer's stream from offset 0.  Seeds in corpus/handshake/ hold a real
// ClientHello so mutations reach past the record layer.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "control/handshake.h"

namespace {

using namespace dwcp::control;

X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 365L * 24 * 3600);
	X509_set_pubkey(x, key);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
				   reinterpret_cast<const unsigned char *>(cn), -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
	X509V3_CTX v3;
	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, nullptr, nullptr, 0);
	std::string san = std::string("DNS:") + cn;
	const std::pair<int, const char *> exts[] = {
		{NID_basic_constraints, issuer ? "critical,CA:FALSE" : "critical,CA:TRUE"},
		{NID_key_usage, issuer ? "critical,digitalSignature" : "critical,keyCertSign"},
		{NID_ext_key_usage, issuer ? "serverAuth,clientAuth" : nullptr},
		{NID_subject_alt_name, issuer ? san.c_str() : nullptr},
	};
	for (auto [nid, value] : exts) {
		if (!value)
			continue;
		X509_EXTENSION *e = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256());
	return x;
}

// A CA and b.site's certificate, written to a temporary directory, loaded, and
// removed again: made once per process.
TlsContext &server_context()
{
	static std::unique_ptr<TlsContext> ctx = [] {
		char tmpl[] = "/tmp/dwcp-hs-fuzz-XXXXXX";
		if (!mkdtemp(tmpl))
			abort();
		std::filesystem::path dir = tmpl;
		EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *key = EVP_EC_gen("P-256");
		X509 *ca = make_cert("fuzz CA", ca_key, nullptr, nullptr);
		X509 *cert = make_cert("b.site", key, ca, ca_key);
		auto write = [&](const char *name, X509 *x, EVP_PKEY *k) {
			FILE *f = fopen((dir / name).c_str(), "w");
			if (!f)
				abort();
			if (x)
				PEM_write_X509(f, x);
			if (k)
				PEM_write_PrivateKey(f, k, nullptr, nullptr, 0, nullptr, nullptr);
			fclose(f);
		};
		write("ca.pem", ca, nullptr);
		write("b.pem", cert, nullptr);
		write("b.key", nullptr, key);
		std::string err;
		auto c = TlsContext::load({(dir / "b.pem").string(), (dir / "b.key").string(),
					   (dir / "ca.pem").string(), "a.site"},
					  true, &err);
		std::filesystem::remove_all(dir);
		X509_free(ca);
		X509_free(cert);
		EVP_PKEY_free(ca_key);
		EVP_PKEY_free(key);
		if (!c) {
			fprintf(stderr, "handshake_fuzz: %s\n", err.c_str());
			abort();
		}
		return c;
	}();
	return *ctx;
}

void check_segments(const Handshake &h, const std::vector<CryptoSegment> &segs, size_t max_segment)
{
	for (auto &s : segs)
		if (s.data.empty() || s.data.size() > max_segment || s.offset + s.data.size() > h.bytes_sent())
			abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	size_t n = (data[0] & 3) + 1;
	if (size < 1 + 4 * n)
		return 0;
	const uint8_t *payload = data + 1 + 4 * n;
	size_t len = size - 1 - 4 * n;

	Handshake s(server_context(), Handshake::Role::server);
	uint64_t now = 0;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *h = data + 1 + 4 * i;
		size_t start = std::min<size_t>(size_t(h[0]) << 8 | h[1], len);
		size_t count = std::min<size_t>(size_t(h[2]) << 8 | h[3], len - start);
		bool alive = s.on_peer_bytes(start, std::span(payload + start, count), now);
		if (alive == s.failed())
			abort();
		check_segments(s, s.poll(now, 1200), 1200);
		now += 100'000'000;
	}
	// Let the timers run out: resends, then giving up.
	for (int i = 0; i < 12 && s.next_timeout_ns() != UINT64_MAX; i++) {
		now = std::max(now, s.next_timeout_ns());
		check_segments(s, s.poll(now, 300), 300);
	}
	if (s.failed() && (s.error().empty() || s.error().find('\n') != std::string::npos))
		abort();
	if (s.complete())
		abort(); // no client could have finished without our flight
	return 0;
}
