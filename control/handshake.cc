#include "control/handshake.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace dwcp::control {

namespace {

constexpr unsigned char kAlpn[] = {6, 'd', 'w', 'c', 'p', '/', '1'};
constexpr char kLabelC2s[] = "EXPORTER-dwcp c2s";
constexpr char kLabelS2c[] = "EXPORTER-dwcp s2c";
constexpr size_t kMaxPemBytes = 1 << 20;

struct X509Free {
	void operator()(X509 *x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

struct PkeyFree {
	void operator()(EVP_PKEY *k) const { EVP_PKEY_free(k); }
};

struct CtxFree {
	void operator()(SSL_CTX *c) const { SSL_CTX_free(c); }
};

std::string reason_text(unsigned long e)
{
	if (const char *r = ERR_reason_error_string(e))
		return r;
	return "OpenSSL error " + std::to_string(ERR_GET_REASON(e));
}

// Errors name what came from the peer; keep them one printable line.
std::string printable(std::string s)
{
	for (char &c : s)
		if (uint8_t(c) < 0x20 || uint8_t(c) >= 0x7f)
			c = '?';
	return s;
}

std::string name_text(const X509_NAME *name)
{
	BIO *b = BIO_new(BIO_s_mem());
	X509_NAME_print_ex(b, name, 0, XN_FLAG_RFC2253);
	char *p = nullptr;
	long n = BIO_get_mem_data(b, &p);
	std::string s = printable(std::string(p, size_t(std::max(n, 0L))));
	BIO_free(b);
	return s.empty() ? "an empty name" : s;
}

std::string subject_text(X509 *x)
{
	return x ? name_text(X509_get_subject_name(x)) : "no certificate";
}

std::string issuer_text(X509 *x)
{
	return x ? name_text(X509_get_issuer_name(x)) : "nobody";
}

// "'a.site', 'x.site'" from the subjectAltName, or why there is none.
std::string dns_names_text(X509 *x)
{
	std::string s;
	auto *names = static_cast<GENERAL_NAMES *>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr));
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		if (g->type != GEN_DNS)
			continue;
		const unsigned char *d = ASN1_STRING_get0_data(g->d.dNSName);
		std::string name(reinterpret_cast<const char *>(d), size_t(ASN1_STRING_length(g->d.dNSName)));
		s += (s.empty() ? "'" : ", '") + printable(name) + "'";
	}
	GENERAL_NAMES_free(names);
	return s.empty() ? "no DNS name (" + subject_text(x) + ")" : s;
}

// OpenSSL 3.0 names no TLS 1.3 alert.
std::string alert_text(int desc)
{
	switch (desc) {
	case 109: return "missing extension";
	case 116: return "certificate required";
	case 120: return "no application protocol";
	}
	std::string s = SSL_alert_desc_string_long(desc);
	return s == "unknown" ? "alert " + std::to_string(desc) : s;
}

std::string time_text(const ASN1_TIME *t)
{
	struct tm tm {};
	if (!t || !ASN1_TIME_to_tm(t, &tm))
		return "an unreadable date";
	char buf[64];
	strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
	return buf;
}

// A whole small file; "" or why not.
std::string read_small_file(const std::string &path, std::string *out)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (!f)
		return strerror(errno);
	out->clear();
	char buf[4096];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		out->append(buf, n);
		if (out->size() > kMaxPemBytes) {
			fclose(f);
			return "larger than 1 MiB, not a PEM file";
		}
	}
	int e = errno;
	bool bad = ferror(f);
	fclose(f);
	return bad ? strerror(e) : "";
}

// Every PEM certificate in `pem`, in order; "" or what is wrong with one.
std::string parse_certs(const std::string &pem, std::vector<X509Ptr> *out)
{
	ERR_clear_error();
	BIO *b = BIO_new_mem_buf(pem.data(), int(pem.size()));
	while (X509 *x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr))
		out->emplace_back(x);
	BIO_free(b);
	unsigned long e = ERR_peek_last_error();
	ERR_clear_error();
	if (e && !(ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE))
		return "certificate " + std::to_string(out->size() + 1) + " is malformed (" + reason_text(e) + ")";
	return "";
}

// Our peer must chain to the CA store under its role's purpose; so must we.
std::string check_chain(SSL_CTX *ctx, X509 *leaf, const std::vector<X509Ptr> &certs, bool server)
{
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	STACK_OF(X509) *chain = sk_X509_new_null();
	for (size_t i = 1; i < certs.size(); i++)
		sk_X509_push(chain, certs[i].get());
	std::string why;
	if (!X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx), leaf, chain))
		why = "cannot set up chain verification";
	else {
		X509_STORE_CTX_set_purpose(sctx, server ? X509_PURPOSE_SSL_SERVER : X509_PURPOSE_SSL_CLIENT);
		if (X509_verify_cert(sctx) != 1)
			why = X509_verify_cert_error_string(X509_STORE_CTX_get_error(sctx));
	}
	sk_X509_free(chain);
	X509_STORE_CTX_free(sctx);
	ERR_clear_error();
	return why;
}

} // namespace

// OpenSSL calls back into the handshake through these (SSL app data is the Handshake).
struct HandshakeCallbacks {
	static Handshake *of(const SSL *ssl) { return static_cast<Handshake *>(SSL_get_app_data(ssl)); }

	static int verify(int ok, X509_STORE_CTX *sctx)
	{
		if (ok)
			return 1;
		auto *ssl = static_cast<SSL *>(X509_STORE_CTX_get_ex_data(sctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
		Handshake *h = ssl ? of(ssl) : nullptr;
		if (h && h->verify_error_.empty()) {
			int e = X509_STORE_CTX_get_error(sctx);
			X509 *cur = X509_STORE_CTX_get_current_cert(sctx);
			if (e == X509_V_ERR_HOSTNAME_MISMATCH)
				h->verify_error_ = "peer name mismatch: expected '" + h->peer_name_ +
						   "', certificate is for " + dns_names_text(cur);
			else
				h->verify_error_ = std::string("peer certificate rejected: ") +
						   X509_verify_cert_error_string(e) + " (" + subject_text(cur) +
						   ", issued by " + issuer_text(cur) + ")";
		}
		return 0;
	}

	static void info(const SSL *ssl, int where, int ret)
	{
		if (!(where & SSL_CB_ALERT) || !(where & SSL_CB_READ))
			return;
		Handshake *h = of(ssl);
		if (h && h->alert_received_ < 0 && (ret & 0xff) != SSL_AD_CLOSE_NOTIFY)
			h->alert_received_ = ret & 0xff;
	}

	// The server refuses a ClientHello without ALPN: TLS would otherwise go on
	// without it, and the peer would not be a DWCP gateway.
	static int client_hello(SSL *ssl, int *alert, void *)
	{
		const unsigned char *p;
		size_t n;
		if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &p, &n) == 1)
			return SSL_CLIENT_HELLO_SUCCESS;
		if (Handshake *h = of(ssl); h && h->local_error_.empty())
			h->local_error_ = "peer offered no ALPN (dwcp/1 is required)";
		*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
		return SSL_CLIENT_HELLO_ERROR;
	}

	// The transport-parameter extension (kTransportParamsExt): added to the
	// ClientHello, and to the EncryptedExtensions when the client's carried it,
	// whenever this side has parameters.
	static int params_add(SSL *ssl, unsigned, unsigned, const unsigned char **out, size_t *outlen, X509 *, size_t,
			      int *, void *)
	{
		Handshake *h = of(ssl);
		if (!h || h->local_params_.empty())
			return 0;
		*out = h->local_params_.data();
		*outlen = h->local_params_.size();
		return 1;
	}
	static int params_parse(SSL *ssl, unsigned, unsigned, const unsigned char *in, size_t inlen, X509 *, size_t,
				int *al, void *)
	{
		Handshake *h = of(ssl);
		if (!h)
			return 1;
		if (inlen > kMaxTransportParams) {
			if (h->local_error_.empty())
				h->local_error_ = "peer sent " + std::to_string(inlen) +
						  " bytes of transport parameters, at most " + std::to_string(kMaxTransportParams);
			*al = SSL_AD_DECODE_ERROR;
			return 0;
		}
		h->peer_params_.assign(in, in + inlen);
		h->has_peer_params_ = true;
		return 1;
	}

	static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
			       unsigned int inlen, void *)
	{
		for (unsigned i = 0; i < inlen;) {
			unsigned n = in[i];
			if (n > inlen - i - 1)
				break;
			if (n == kAlpn[0] && memcmp(in + i, kAlpn, sizeof kAlpn) == 0) {
				*out = in + i + 1;
				*outlen = uint8_t(n);
				return SSL_TLSEXT_ERR_OK;
			}
			i += 1 + n;
		}
		if (Handshake *h = of(ssl); h && h->local_error_.empty())
			h->local_error_ = "peer does not offer ALPN dwcp/1";
		return SSL_TLSEXT_ERR_ALERT_FATAL;
	}
};

TlsContext::~TlsContext() { SSL_CTX_free(ctx_); }

std::unique_ptr<TlsContext> TlsContext::load(const TlsConfig &cfg, bool server, std::string *err)
{
	return make(cfg, server, true, err);
}

std::unique_ptr<TlsContext> TlsContext::load_unchecked(const TlsConfig &cfg, bool server, std::string *err)
{
	return make(cfg, server, false, err);
}

std::unique_ptr<TlsContext> TlsContext::make(const TlsConfig &cfg, bool server, bool check, std::string *err)
{
	auto failed = [&](std::string why) {
		*err = "tls: " + why;
		return nullptr;
	};
	if (cfg.peer_name.empty())
		return failed("no peer name configured (the name the peer's certificate must carry)");
	if (check && cfg.cert_file.empty())
		return failed("no certificate file configured");
	if (check && cfg.key_file.empty())
		return failed("no key file configured");
	if (check && cfg.ca_file.empty())
		return failed("no CA file configured");

	ERR_clear_error();
	std::unique_ptr<SSL_CTX, CtxFree> ctx(SSL_CTX_new(TLS_method()));
	if (!ctx)
		return failed("cannot create an SSL_CTX: " + reason_text(ERR_get_error()));
	SSL_CTX *c = ctx.get();
	SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(c, TLS1_3_VERSION);
	// No tickets, no session cache, no early data: every session is a full
	// handshake with both certificates checked.  No middlebox-compatibility
	// ChangeCipherSpec either: nothing but gateways sees these bytes.
	SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
	SSL_CTX_clear_options(c, SSL_OP_ENABLE_MIDDLEBOX_COMPAT);
	SSL_CTX_set_num_tickets(c, 0);
	SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_max_early_data(c, 0);
	SSL_CTX_set_verify_depth(c, 4);
	// Send the certificate file's chain only, not the root from the CA store: the
	// peer holds that already, and each certificate costs ~450 bytes of a flight.
	SSL_CTX_set_mode(c, SSL_MODE_NO_AUTO_CHAIN);
	SSL_CTX_set_client_hello_cb(c, HandshakeCallbacks::client_hello, nullptr);
	SSL_CTX_set_alpn_select_cb(c, HandshakeCallbacks::alpn_select, nullptr);
	if (SSL_CTX_add_custom_ext(c, kTransportParamsExt, SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_ENCRYPTED_EXTENSIONS,
				   HandshakeCallbacks::params_add, nullptr, nullptr, HandshakeCallbacks::params_parse,
				   nullptr) != 1)
		return failed("cannot register the transport-parameter extension: " + reason_text(ERR_get_error()));

	std::string pem, why;
	if (!cfg.ca_file.empty()) {
		std::vector<X509Ptr> cas;
		if (!(why = read_small_file(cfg.ca_file, &pem)).empty())
			return failed("cannot read CA file " + cfg.ca_file + ": " + why);
		if (!(why = parse_certs(pem, &cas)).empty())
			return failed("CA file " + cfg.ca_file + ": " + why);
		if (cas.empty())
			return failed("CA file " + cfg.ca_file + " holds no PEM certificate");
		for (auto &x : cas)
			X509_STORE_add_cert(SSL_CTX_get_cert_store(c), x.get());
	}

	if (!cfg.cert_file.empty()) {
		const std::string &cf = cfg.cert_file, &kf = cfg.key_file;
		std::vector<X509Ptr> certs;
		if (!(why = read_small_file(cf, &pem)).empty())
			return failed("cannot read certificate " + cf + ": " + why);
		if (!(why = parse_certs(pem, &certs)).empty())
			return failed("certificate " + cf + ": " + why);
		if (certs.empty())
			return failed("certificate " + cf + " holds no PEM certificate");
		X509 *leaf = certs[0].get();
		if (check && X509_cmp_current_time(X509_get0_notAfter(leaf)) < 0)
			return failed("certificate " + cf + " expired on " + time_text(X509_get0_notAfter(leaf)));
		if (check && X509_cmp_current_time(X509_get0_notBefore(leaf)) > 0)
			return failed("certificate " + cf + " is not valid until " + time_text(X509_get0_notBefore(leaf)));

		if (kf.empty())
			return failed("certificate " + cf + " has no key file configured");
		if (!(why = read_small_file(kf, &pem)).empty())
			return failed("cannot read key " + kf + ": " + why);
		if (pem.find("ENCRYPTED") != std::string::npos)
			return failed("key " + kf + " is encrypted; dwcp needs an unencrypted key");
		BIO *b = BIO_new_mem_buf(pem.data(), int(pem.size()));
		std::unique_ptr<EVP_PKEY, PkeyFree> key(PEM_read_bio_PrivateKey(b, nullptr, nullptr, nullptr));
		BIO_free(b);
		ERR_clear_error();
		if (!key)
			return failed("key " + kf + " holds no PEM private key");
		if (X509_check_private_key(leaf, key.get()) != 1) {
			ERR_clear_error();
			return failed("key " + kf + " does not match certificate " + cf);
		}
		if (SSL_CTX_use_certificate(c, leaf) != 1 || SSL_CTX_use_PrivateKey(c, key.get()) != 1)
			return failed("certificate " + cf + " or key " + kf + " refused: " + reason_text(ERR_get_error()));
		for (size_t i = 1; i < certs.size(); i++)
			SSL_CTX_add1_chain_cert(c, certs[i].get());
		if (check && !(why = check_chain(c, leaf, certs, server)).empty())
			return failed("certificate " + cf + " does not chain to CA file " + cfg.ca_file + ": " + why);
	}
	ERR_clear_error();
	return std::unique_ptr<TlsContext>(new TlsContext(ctx.release(), cfg.peer_name));
}

Handshake::Handshake(TlsContext &ctx, Role role, uint64_t initial_timeout_ns, std::vector<uint8_t> local_params)
	: role_(role), peer_name_(ctx.peer_name()), initial_timeout_ns_(std::max<uint64_t>(initial_timeout_ns, 1)),
	  rto_ns_(initial_timeout_ns_), local_params_(std::move(local_params))
{
	if (local_params_.size() > kMaxTransportParams) {
		fail("tls: " + std::to_string(local_params_.size()) + " bytes of transport parameters, at most " +
		     std::to_string(kMaxTransportParams));
		return;
	}
	ERR_clear_error();
	ssl_ = SSL_new(ctx.ssl_ctx());
	BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
	if (!ssl_ || !rbio || !wbio) {
		BIO_free(rbio);
		BIO_free(wbio);
		fail("tls: cannot create a TLS session: " + reason_text(ERR_get_error()));
		return;
	}
	SSL_set_app_data(ssl_, this);
	SSL_set_bio(ssl_, rbio, wbio);
	SSL_set_verify(ssl_, SSL_VERIFY_PEER | (role == Role::server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0),
		       HandshakeCallbacks::verify);
	SSL_set_info_callback(ssl_, HandshakeCallbacks::info);
	// The name check runs inside chain verification, for a client certificate too.
	SSL_set_hostflags(ssl_, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	if (SSL_set1_host(ssl_, peer_name_.c_str()) != 1) {
		fail("tls: peer name '" + printable(peer_name_) + "' cannot be checked");
		return;
	}
	if (role == Role::client) {
		SSL_set_alpn_protos(ssl_, kAlpn, sizeof kAlpn);
		SSL_set_connect_state(ssl_);
		drive(); // the ClientHello
	} else {
		SSL_set_accept_state(ssl_);
	}
}

Handshake::~Handshake()
{
	SSL_free(ssl_);
	OPENSSL_cleanse(tx_secret_.data(), tx_secret_.size());
	OPENSSL_cleanse(rx_secret_.data(), rx_secret_.size());
}

bool Handshake::on_peer_bytes(uint64_t offset, std::span<const uint8_t> data, uint64_t now_ns)
{
	bool rate_ok = now_ns >= last_flight_send_ns_ && now_ns - last_flight_send_ns_ >= initial_timeout_ns_ / 4;
	if (failed_) {
		// The peer goes on sending: it may have lost our alert.
		if (!data.empty() && alert_flight_ && flight_start_ < sent_end_ && rate_ok)
			resend_ = true;
		return false;
	}
	if (data.empty())
		return true;
	if (offset > UINT64_MAX - data.size()) {
		fail("peer handshake bytes at offset " + std::to_string(offset) + " run past the end of a stream");
		return false;
	}
	uint64_t end = offset + data.size();
	if (end <= rx_end_) {
		// Old bytes.  All of them within what our last flight answered: the peer
		// did not get that flight (DTLS's rule), so send it again.
		if (end <= answered_rx_end_ && timer_wanted() && flight_start_ < sent_end_ && rate_ok)
			resend_ = true;
		return true;
	}
	if (end - rx_end_ > kHandshakeReorderBytes) {
		fail("peer handshake bytes at offset " + std::to_string(offset) + " end more than " +
		     std::to_string(kHandshakeReorderBytes) + " bytes past the first missing byte at " +
		     std::to_string(rx_end_));
		return false;
	}
	uint64_t from = std::max(offset, rx_end_);
	size_t need = size_t(end - rx_end_);
	if (rx_buf_.size() < need) {
		rx_buf_.resize(need);
		rx_have_.resize(need, false);
	}
	std::copy(data.begin() + long(from - offset), data.end(), rx_buf_.begin() + long(from - rx_end_));
	std::fill(rx_have_.begin() + long(from - rx_end_), rx_have_.begin() + long(need), true);
	size_t n = 0;
	while (n < rx_have_.size() && rx_have_[n])
		n++;
	if (n == 0)
		return true;
	BIO_write(SSL_get_rbio(ssl_), rx_buf_.data(), int(n));
	rx_buf_.erase(rx_buf_.begin(), rx_buf_.begin() + long(n));
	rx_have_.erase(rx_have_.begin(), rx_have_.begin() + long(n));
	rx_end_ += n;
	drive();
	return !failed_;
}

void Handshake::drive()
{
	if (failed_ || !ssl_)
		return;
	ERR_clear_error();
	uint64_t before = tx_.size();
	if (!complete_) {
		int r = SSL_do_handshake(ssl_);
		if (r == 1)
			finish();
		else if (int e = SSL_get_error(ssl_, r); e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			fail_from_ssl();
	}
	if (complete_ && !failed_) {
		// Nothing but an alert may follow the handshake: it is how a server says
		// it refused our certificate after we finished.
		uint8_t b[64];
		int r = SSL_read(ssl_, b, sizeof b);
		if (r > 0)
			fail("peer sent application data in the handshake stream");
		else if (int e = SSL_get_error(ssl_, r); e == SSL_ERROR_ZERO_RETURN)
			fail("peer closed the session during the handshake");
		else if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
			fail_from_ssl();
	}
	drain_output(before);
	ERR_clear_error();
}

void Handshake::drain_output(uint64_t before)
{
	BIO *w = SSL_get_wbio(ssl_);
	uint8_t buf[4096];
	int n;
	while ((n = BIO_read(w, buf, sizeof buf)) > 0)
		tx_.insert(tx_.end(), buf, buf + n);
	if (tx_.size() == before)
		return;
	// What TLS writes in one go answers everything it read: a new flight, unless
	// the previous one has not gone out yet (then they leave together).
	if (sent_end_ == before)
		flight_start_ = before;
	answered_rx_end_ = rx_end_;
	alert_flight_ = failed_;
	rto_ns_ = initial_timeout_ns_;
	nb_retx_ = 0;
	resend_ = false;
	deadline_ns_ = UINT64_MAX;
}

void Handshake::finish()
{
	const unsigned char *alpn = nullptr;
	unsigned alpn_len = 0;
	SSL_get0_alpn_selected(ssl_, &alpn, &alpn_len);
	if (alpn_len != kAlpn[0] || memcmp(alpn, kAlpn + 1, alpn_len) != 0) {
		fail("peer did not agree to ALPN dwcp/1");
		return;
	}
	if (SSL_version(ssl_) != TLS1_3_VERSION || !SSL_get0_peer_certificate(ssl_) ||
	    SSL_get_verify_result(ssl_) != X509_V_OK) {
		fail("peer certificate not verified");
		return;
	}
	Secret c2s, s2c;
	if (SSL_export_keying_material(ssl_, c2s.data(), c2s.size(), kLabelC2s, strlen(kLabelC2s), nullptr, 0, 0) != 1 ||
	    SSL_export_keying_material(ssl_, s2c.data(), s2c.size(), kLabelS2c, strlen(kLabelS2c), nullptr, 0, 0) != 1) {
		fail("tls: keying material export failed");
		return;
	}
	tx_secret_ = role_ == Role::client ? c2s : s2c;
	rx_secret_ = role_ == Role::client ? s2c : c2s;
	OPENSSL_cleanse(c2s.data(), c2s.size());
	OPENSSL_cleanse(s2c.data(), s2c.size());
	complete_ = true;
}

void Handshake::fail(std::string why)
{
	if (failed_)
		return;
	failed_ = true;
	error_ = std::move(why);
	resend_ = false;
	deadline_ns_ = UINT64_MAX;
	OPENSSL_cleanse(tx_secret_.data(), tx_secret_.size());
	OPENSSL_cleanse(rx_secret_.data(), rx_secret_.size());
}

void Handshake::fail_from_ssl()
{
	// The most specific cause first: our own check of the peer, what the peer
	// told us, then what OpenSSL saw.
	unsigned long e = ERR_peek_error();
	std::string why;
	if (!verify_error_.empty())
		why = verify_error_;
	else if (!local_error_.empty())
		why = local_error_;
	else if (alert_received_ >= 0)
		why = "peer sent alert: " + alert_text(alert_received_);
	else if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)
		why = "no client certificate";
	else if (e)
		why = "handshake failed: " + reason_text(e);
	else
		why = "handshake failed";
	ERR_clear_error();
	fail(why);
}

bool Handshake::timer_wanted() const
{
	if (failed_ || flight_start_ >= tx_.size())
		return false;
	return role_ == Role::server ? !complete_ : !confirmed_;
}

void Handshake::emit(uint64_t from, uint64_t to, size_t max_segment, std::vector<CryptoSegment> *out) const
{
	for (uint64_t at = from; at < to;) {
		size_t n = size_t(std::min<uint64_t>(to - at, max_segment));
		out->push_back({at, std::vector<uint8_t>(tx_.begin() + long(at), tx_.begin() + long(at + n))});
		at += n;
	}
}

std::vector<CryptoSegment> Handshake::poll(uint64_t now_ns, size_t max_segment)
{
	std::vector<CryptoSegment> out;
	max_segment = std::max<size_t>(max_segment, 1);
	if (timer_wanted() && deadline_ns_ != UINT64_MAX && now_ns >= deadline_ns_) {
		if (nb_retx_ >= kHandshakeMaxRetransmits) {
			fail("handshake timed out");
			return out;
		}
		nb_retx_++;
		rto_ns_ = std::min(rto_ns_ * 2, std::max(kHandshakeMaxTimeoutNs, initial_timeout_ns_));
		resend_ = true;
	}
	bool sent = false;
	if (resend_ && flight_start_ < sent_end_) {
		emit(flight_start_, sent_end_, max_segment, &out);
		nb_retx_total_++;
		sent = true;
	}
	resend_ = false;
	if (sent_end_ < tx_.size()) {
		emit(sent_end_, tx_.size(), max_segment, &out);
		sent_end_ = tx_.size();
		sent = true;
	}
	if (sent) {
		last_flight_send_ns_ = now_ns;
		deadline_ns_ = timer_wanted() ? now_ns + rto_ns_ : UINT64_MAX;
	}
	return out;
}

uint64_t Handshake::next_timeout_ns() const
{
	if (resend_ || sent_end_ < tx_.size())
		return 0;
	return timer_wanted() ? deadline_ns_ : UINT64_MAX;
}

std::string Handshake::peer_subject() const
{
	return complete() ? subject_text(SSL_get0_peer_certificate(ssl_)) : "";
}

void Handshake::peer_confirmed()
{
	if (complete())
		confirmed_ = true;
}

bool Handshake::done_sending() const
{
	if (failed_)
		return sent_end_ == tx_.size();
	return complete_ && (role_ == Role::server || confirmed_);
}

} // namespace dwcp::control
