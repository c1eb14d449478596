#include "dataplane/crypto/retry.h"

#include <algorithm>
#include <cstring>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "dataplane/amst/wire.h"

namespace dwcp::crypto {

namespace {

constexpr char kTokenLabel[] = "dwcp retry";

EVP_MAC_CTX *hmac_sha256(const uint8_t *key, size_t key_len)
{
	EVP_MAC *mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
	if (!mac)
		return nullptr;
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (!ctx)
		return nullptr;
	char digest[] = "SHA256";
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
		OSSL_PARAM_construct_end(),
	};
	if (EVP_MAC_init(ctx, key, key_len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		return nullptr;
	}
	return ctx;
}

} // namespace

RetryTokens::RetryTokens(uint64_t lifetime_ns) : lifetime_ns_(lifetime_ns)
{
	std::array<uint8_t, kRetryKeyLen> key;
	if (RAND_bytes(key.data(), int(key.size())) == 1)
		ctx_ = hmac_sha256(key.data(), key.size());
	OPENSSL_cleanse(key.data(), key.size());
}

RetryTokens::RetryTokens(const std::array<uint8_t, kRetryKeyLen> &key, uint64_t lifetime_ns)
	: ctx_(hmac_sha256(key.data(), key.size())), lifetime_ns_(lifetime_ns)
{
}

RetryTokens::~RetryTokens()
{
	EVP_MAC_CTX_free(ctx_); // clears the key material
}

void RetryTokens::mac(uint32_t time_s, uint32_t src_ip, uint16_t src_port, uint64_t session_id, uint8_t out[32])
{
	uint8_t msg[sizeof(kTokenLabel) - 1 + 4 + 4 + 2 + 8];
	size_t n = sizeof(kTokenLabel) - 1;
	memcpy(msg, kTokenLabel, n);
	wire::put_u32(msg + n, time_s);
	n += 4;
	memcpy(msg + n, &src_ip, 4);
	n += 4;
	memcpy(msg + n, &src_port, 2);
	n += 2;
	wire::put_u64(msg + n, session_id);
	n += 8;
	// Init without a key restarts HMAC with the key given at construction: no
	// allocation, the inner and outer pads are kept.
	size_t len = 0;
	if (EVP_MAC_init(ctx_, nullptr, 0, nullptr) != 1 || EVP_MAC_update(ctx_, msg, n) != 1 ||
	    EVP_MAC_final(ctx_, out, &len, 32) != 1 || len != 32)
		RAND_bytes(out, 32); // matches nothing: the token is refused as forged
}

size_t RetryTokens::mint(uint32_t src_ip, uint16_t src_port, uint64_t session_id, uint64_t now_ns, uint8_t *out)
{
	uint32_t t = uint32_t(now_ns / 1'000'000'000);
	uint8_t m[32] = {};
	if (ctx_)
		mac(t, src_ip, src_port, session_id, m);
	wire::put_u32(out, t);
	memcpy(out + kTokenTimeLen, m, kTokenMacLen);
	return kTokenLen;
}

RetryTokens::Check RetryTokens::check(uint32_t src_ip, uint16_t src_port, uint64_t session_id,
				      std::span<const uint8_t> token, uint64_t now_ns)
{
	if (token.size() != kTokenLen)
		return Check::malformed;
	if (!ctx_)
		return Check::forged;
	uint32_t t = wire::get_u32(token.data());
	uint8_t m[32];
	mac(t, src_ip, src_port, session_id, m);
	if (CRYPTO_memcmp(m, token.data() + kTokenTimeLen, kTokenMacLen) != 0)
		return Check::forged;
	// Seconds modulo 2^32, compared with wrap-around: the age is now - t.
	uint32_t age_s = uint32_t(now_ns / 1'000'000'000) - t;
	if (age_s >= 0x80000000u)
		return Check::future;
	if (uint64_t(age_s) * 1'000'000'000 > lifetime_ns_)
		return Check::expired;
	return Check::ok;
}

// ---------------------------------------------------------------- SourceLimiter

namespace {

inline uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

inline void sipround(uint64_t &v0, uint64_t &v1, uint64_t &v2, uint64_t &v3)
{
	v0 += v1;
	v1 = rotl(v1, 13);
	v1 ^= v0;
	v0 = rotl(v0, 32);
	v2 += v3;
	v3 = rotl(v3, 16);
	v3 ^= v2;
	v0 += v3;
	v3 = rotl(v3, 21);
	v3 ^= v0;
	v2 += v1;
	v1 = rotl(v1, 17);
	v1 ^= v2;
	v2 = rotl(v2, 32);
}

size_t round_up_pow2(size_t n)
{
	size_t p = 1;
	while (p < n)
		p <<= 1;
	return p;
}

} // namespace

uint64_t siphash24_u32(uint64_t k0, uint64_t k1, uint32_t v)
{
	uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
	uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
	uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
	uint64_t v3 = k1 ^ 0x7465646279746573ull;
	// Four bytes: no full block, only the last one (length in the top byte).
	uint64_t b = (uint64_t(4) << 56) | v;
	v3 ^= b;
	sipround(v0, v1, v2, v3);
	sipround(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		sipround(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

SourceLimiter::SourceLimiter(double per_second, double burst, size_t slots, uint64_t key0, uint64_t key1)
	: rate_per_ns_(per_second / 1e9), burst_(burst), k0_(key0), k1_(key1),
	  buckets_(round_up_pow2(std::max<size_t>(slots, 1)), Bucket{burst, 0})
{
}

SourceLimiter::SourceLimiter(double per_second, double burst, size_t slots)
	: SourceLimiter(per_second, burst, slots, 0, 0)
{
	uint64_t k[2] = {};
	RAND_bytes(reinterpret_cast<uint8_t *>(k), sizeof(k));
	k0_ = k[0];
	k1_ = k[1];
}

size_t SourceLimiter::slot_of(uint32_t src_ip) const
{
	return size_t(siphash24_u32(k0_, k1_, src_ip)) & (buckets_.size() - 1);
}

bool SourceLimiter::allow(uint32_t src_ip, uint64_t now_ns)
{
	Bucket &b = buckets_[slot_of(src_ip)];
	if (now_ns > b.last_ns) {
		b.tokens = std::min(burst_, b.tokens + double(now_ns - b.last_ns) * rate_per_ns_);
		b.last_ns = now_ns;
	}
	if (b.tokens < 1.0)
		return false;
	b.tokens -= 1.0;
	return true;
}

} // namespace dwcp::crypto
