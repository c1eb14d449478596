#pragma once
// What a listener does before it holds any state for a peer (QUIC's Retry, RFC 9000
// §8.1): a stateless address-validation token, and per-source flood limits.
//
// A new peer's first INITIAL without a token is answered with a RETRY carrying one;
// the peer repeats its INITIAL with the token, which proves it receives packets at
// its source address and port.  The token is an HMAC under a key only this listener
// knows, so checking it needs no table; it names the address, port and session id
// it was minted for and expires after a lifetime.  SourceLimiter caps how many
// INITIALs per second each source address may cost the listener, in a fixed table,
// so a flood from any number of addresses needs no memory.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include <openssl/types.h>

namespace dwcp::crypto {

// A token: issue time (u32 BE, seconds of now_ns) then the first 16 bytes of
// HMAC-SHA256(key, "dwcp retry" | time | address | port | session id).
constexpr size_t kTokenTimeLen = 4;
constexpr size_t kTokenMacLen = 16;
constexpr size_t kTokenLen = kTokenTimeLen + kTokenMacLen;
constexpr size_t kRetryKeyLen = 32;
constexpr uint64_t kDefaultTokenLifetimeNs = 10'000'000'000;

// Mints and checks tokens.  Not thread-safe (one HMAC context, re-keyed per call
// without allocation): one per listening worker.
class RetryTokens {
public:
	enum class Check {
		ok,
		malformed, // not kTokenLen bytes
		forged,    // the MAC does not match: another key, address, port or session id
		expired,   // older than the lifetime
		future,    // issued after now: a clock that went backwards, or a replayed key
	};

	// A fresh random key (RAND_bytes).
	explicit RetryTokens(uint64_t lifetime_ns = kDefaultTokenLifetimeNs);
	// A given key (tests, or listeners that share one).
	RetryTokens(const std::array<uint8_t, kRetryKeyLen> &key, uint64_t lifetime_ns = kDefaultTokenLifetimeNs);
	RetryTokens(const RetryTokens &) = delete;
	RetryTokens &operator=(const RetryTokens &) = delete;
	~RetryTokens();

	// False when OpenSSL could not set up HMAC-SHA256 or make a key: then every
	// token checks as forged.
	bool ok() const { return ctx_ != nullptr; }
	// Writes the token for (src_ip, src_port, session_id) at now_ns to out (kTokenLen
	// bytes) and returns kTokenLen.  Address and port are taken as the caller holds
	// them (network order is fine) and must be given the same way to check().
	size_t mint(uint32_t src_ip, uint16_t src_port, uint64_t session_id, uint64_t now_ns, uint8_t *out);
	// Whether token was minted here for (src_ip, src_port, session_id) within the
	// lifetime.  The MAC is compared in constant time.
	Check check(uint32_t src_ip, uint16_t src_port, uint64_t session_id, std::span<const uint8_t> token,
		    uint64_t now_ns);

private:
	void mac(uint32_t time_s, uint32_t src_ip, uint16_t src_port, uint64_t session_id, uint8_t out[32]);

	EVP_MAC_CTX *ctx_ = nullptr;
	uint64_t lifetime_ns_;
};

// Per-source token buckets in a fixed table: slots buckets (rounded up to a power of
// two), a source's bucket chosen by SipHash-2-4 of its address under a random key.
// Sources whose addresses share a slot share its bucket, so however many addresses
// a flood uses, the table holds slots buckets and admits at most
// slots * (burst + per_second * t) packets in t seconds.  An attacker cannot aim at
// a given source's slot without the key.
class SourceLimiter {
public:
	SourceLimiter(double per_second, double burst, size_t slots = 4096);
	// A given hash key (tests).
	SourceLimiter(double per_second, double burst, size_t slots, uint64_t key0, uint64_t key1);

	// Takes one token from src_ip's bucket; false when it is empty.  now_ns must not
	// go backwards by much (a step back only refills nothing).
	bool allow(uint32_t src_ip, uint64_t now_ns);
	// The slot src_ip maps to (tests).
	size_t slot_of(uint32_t src_ip) const;
	size_t nb_slots() const { return buckets_.size(); }

private:
	struct Bucket {
		double tokens;
		uint64_t last_ns;
	};
	double rate_per_ns_;
	double burst_;
	uint64_t k0_, k1_;
	std::vector<Bucket> buckets_;
};

// SipHash-2-4 of a 32-bit value, little-endian bytes (exposed for its test).
uint64_t siphash24_u32(uint64_t k0, uint64_t k1, uint32_t v);

} // namespace dwcp::crypto
