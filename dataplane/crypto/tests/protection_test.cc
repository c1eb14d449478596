// Replay windows, key updates, Retry tokens and per-source limits, on the OpenSSL
// Aead with a manual clock.
#include "dataplane/crypto/protection.h"
#include "dataplane/crypto/retry.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "dataplane/amst/wire.h"

using namespace dwcp;
using namespace dwcp::crypto;
using Verdict = RxProtection::Verdict;

namespace {

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kSec = 1'000'000'000;

// ---------------------------------------------------------------- ReplayWindow

TEST(ReplayWindow, FreshThenDuplicate)
{
	ReplayWindow w;
	EXPECT_EQ(w.check(0), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(12345), ReplayWindow::Verdict::fresh);
	w.commit(7);
	EXPECT_EQ(w.check(7), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(w.check(6), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(8), ReplayWindow::Verdict::fresh);
	w.commit(5); // out of order, inside the window
	EXPECT_EQ(w.check(5), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(w.check(6), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.highest(), 7u);
}

TEST(ReplayWindow, TooOldBelowTheWindow)
{
	ReplayWindow w;
	w.commit(5000);
	EXPECT_EQ(w.check(5000 - kReplayWindow), ReplayWindow::Verdict::too_old);
	EXPECT_EQ(w.check(5000 - kReplayWindow + 1), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(0), ReplayWindow::Verdict::too_old);
	w.commit(10); // ignored
	EXPECT_EQ(w.check(10), ReplayWindow::Verdict::too_old);
	EXPECT_EQ(w.highest(), 5000u);
}

TEST(ReplayWindow, LargeJumpClearsEverything)
{
	ReplayWindow w;
	for (uint64_t pn = 0; pn <= 10; pn++)
		w.commit(pn);
	const uint64_t far = 1'000'000'000;
	w.commit(far);
	EXPECT_EQ(w.check(5), ReplayWindow::Verdict::too_old);
	EXPECT_EQ(w.check(far), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(w.check(far - 1), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(far - kReplayWindow + 1), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(far - kReplayWindow), ReplayWindow::Verdict::too_old);
	// A jump of just under the window keeps the overlap.
	ReplayWindow v;
	v.commit(100);
	v.commit(100 + kReplayWindow - 1);
	EXPECT_EQ(v.check(100), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(v.check(101), ReplayWindow::Verdict::fresh);
	v.commit(100 + kReplayWindow);
	EXPECT_EQ(v.check(100), ReplayWindow::Verdict::too_old);
}

TEST(ReplayWindow, SlidingForgetsOnlyWhatLeaves)
{
	ReplayWindow w;
	for (uint64_t pn = 0; pn < 10000; pn += 2) { // the even numbers
		ASSERT_EQ(w.check(pn), ReplayWindow::Verdict::fresh) << pn;
		w.commit(pn);
		ASSERT_EQ(w.check(pn), ReplayWindow::Verdict::duplicate) << pn;
	}
	for (uint64_t pn = 9998 - kReplayWindow + 1; pn <= 9998; pn++)
		EXPECT_EQ(w.check(pn), pn % 2 ? ReplayWindow::Verdict::fresh : ReplayWindow::Verdict::duplicate) << pn;
}

TEST(ReplayWindow, TopOfTheNumberSpace)
{
	ReplayWindow w;
	const uint64_t top = ~uint64_t(0);
	w.commit(top - 5);
	w.commit(top);
	EXPECT_EQ(w.check(top), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(w.check(top - 5), ReplayWindow::Verdict::duplicate);
	EXPECT_EQ(w.check(top - 1), ReplayWindow::Verdict::fresh);
	EXPECT_EQ(w.check(top - kReplayWindow), ReplayWindow::Verdict::too_old);
}

// Random commits and checks against a set of everything committed.
TEST(ReplayWindow, MatchesAReferenceModel)
{
	std::mt19937_64 rng(11);
	ReplayWindow w;
	std::set<uint64_t> seen;
	uint64_t highest = 0;
	bool any = false;
	for (int i = 0; i < 200000; i++) {
		uint64_t base = highest + 100000;
		uint64_t pn = base - 100000 + rng() % 6000 - 3000 + (rng() % 64 == 0 ? rng() % 10000 : 0);
		ReplayWindow::Verdict want;
		if (!any || pn > highest)
			want = ReplayWindow::Verdict::fresh;
		else if (highest - pn >= kReplayWindow)
			want = ReplayWindow::Verdict::too_old;
		else
			want = seen.count(pn) ? ReplayWindow::Verdict::duplicate : ReplayWindow::Verdict::fresh;
		ASSERT_EQ(w.check(pn), want) << "step " << i << " pn " << pn << " highest " << highest;
		if (want == ReplayWindow::Verdict::fresh && rng() % 2) {
			w.commit(pn);
			seen.insert(pn);
			if (!any || pn > highest)
				highest = pn;
			any = true;
		}
	}
}

// ---------------------------------------------------------------- Tx/RxProtection

Secret secret_of(uint8_t seed)
{
	Secret s;
	for (size_t i = 0; i < s.size(); i++)
		s[i] = uint8_t(seed * 31 + i);
	return s;
}

struct Packet {
	std::vector<uint8_t> b;
	uint16_t stream = 0;
	uint64_t pn = 0;
	uint8_t phase = 0;

	AeadOp op()
	{
		size_t body = b.size() - wire::kHeaderLen - kTagLen;
		return AeadOp{.aad = b.data(), .data = b.data() + wire::kHeaderLen, .len = uint32_t(body),
			      .tag = b.data() + wire::kHeaderLen + body, .stream = stream, .pn = pn};
	}
};

// One direction of a session: the sender's and the receiver's Aead and state.
class Link : public ::testing::Test {
protected:
	void SetUp() override
	{
		std::string err;
		ASSERT_TRUE(tx.install(*ta, secret_of(1), &err)) << err;
		ASSERT_TRUE(rx.install(*ra, secret_of(1), &err)) << err;
	}

	Packet seal(uint16_t stream, uint64_t pn, size_t body = 200)
	{
		Packet p;
		p.stream = stream;
		p.pn = pn;
		p.phase = tx.phase();
		p.b.resize(wire::kHeaderLen + body + kTagLen);
		wire::encode_header({.flags = uint8_t(wire::flag_protected | (p.phase ? wire::flag_key_phase : 0)),
				     .type = wire::PacketType::data,
				     .stream_id = stream,
				     .session_id = 42,
				     .pn = pn},
				    p.b.data());
		for (size_t i = 0; i < body; i++)
			p.b[wire::kHeaderLen + i] = uint8_t(i * 7 + pn);
		AeadOp op = p.op();
		tx.seal_burst(*ta, &op, 1);
		EXPECT_TRUE(op.ok);
		return p;
	}

	// Opens a copy, so the same packet can be delivered again.
	Verdict deliver(Packet p, uint64_t now) { return deliver_inplace(p, now); }
	Verdict deliver_inplace(Packet &p, uint64_t now)
	{
		AeadOp op = p.op();
		Verdict v = rx.open(*ra, op, p.phase, now);
		EXPECT_EQ(op.ok, v == Verdict::ok);
		if (v == Verdict::ok)
			for (size_t i = 0; i < op.len; i++)
				if (op.data[i] != uint8_t(i * 7 + p.pn)) {
					ADD_FAILURE() << "plaintext differs at " << i;
					break;
				}
		return v;
	}

	std::unique_ptr<Aead> ta = make_openssl_aead(), ra = make_openssl_aead();
	TxProtection tx;
	RxProtection rx{100 * kMs};
};

TEST_F(Link, OpensInOrderAndOutOfOrder)
{
	std::vector<Packet> ps;
	for (uint64_t pn = 0; pn < 20; pn++)
		ps.push_back(seal(1, pn));
	for (int i = 19; i >= 10; i--)
		EXPECT_EQ(deliver(ps[size_t(i)], 0), Verdict::ok) << i;
	for (int i = 0; i < 10; i++)
		EXPECT_EQ(deliver(ps[size_t(i)], 0), Verdict::ok) << i;
	EXPECT_EQ(rx.generation(), 0u);
}

TEST_F(Link, ReplayIsRefused)
{
	Packet p = seal(3, 77);
	EXPECT_EQ(deliver(p, 0), Verdict::ok);
	EXPECT_EQ(deliver(p, 0), Verdict::duplicate);
	// The same packet number on another stream is another packet.
	EXPECT_EQ(deliver(seal(4, 77), 0), Verdict::ok);
	// Far behind the window.
	Packet old = seal(3, 1);
	EXPECT_EQ(deliver(seal(3, 77 + kReplayWindow), 0), Verdict::ok);
	EXPECT_EQ(deliver(old, 0), Verdict::too_old);
}

TEST_F(Link, ForgeryFailsAndDoesNotMoveTheWindow)
{
	Packet good = seal(1, 500);
	for (size_t byte : {size_t(0), size_t(3), size_t(19), size_t(20), size_t(100), good.b.size() - 1}) {
		Packet bad = good;
		bad.b[byte] ^= 0x04;
		EXPECT_EQ(deliver(bad, 0), Verdict::auth_failed) << byte;
	}
	// A forged packet far ahead must not slide the window past real ones.
	Packet ahead = seal(1, 500 + 10 * kReplayWindow);
	ahead.b[30] ^= 1;
	EXPECT_EQ(deliver(ahead, 0), Verdict::auth_failed);
	EXPECT_EQ(deliver(good, 0), Verdict::ok);
	EXPECT_EQ(deliver(good, 0), Verdict::duplicate);
}

TEST_F(Link, NoKeyBeforeInstallAndForUnknownStreams)
{
	RxProtection fresh;
	Packet p = seal(1, 0);
	AeadOp op = p.op();
	EXPECT_EQ(fresh.open(*ra, op, 0, 0), Verdict::no_key);
	Packet q = seal(wire::kMaxStreams + 1, 0);
	EXPECT_EQ(deliver(q, 0), Verdict::no_key);
	EXPECT_EQ(deliver(seal(wire::kMaxStreams, 0), 0), Verdict::ok);
}

TEST_F(Link, KeyUpdateAcrossThePhaseFlip)
{
	std::vector<Packet> before, after;
	for (uint64_t pn = 0; pn < 10; pn++)
		before.push_back(seal(1, pn));
	Packet before_s2 = seal(2, 0);
	std::string err;
	ASSERT_TRUE(tx.update(*ta, &err)) << err;
	EXPECT_EQ(tx.phase(), 1);
	EXPECT_EQ(tx.generation(), 1u);
	for (uint64_t pn = 10; pn < 20; pn++)
		after.push_back(seal(1, pn));

	for (int i = 0; i < 5; i++)
		EXPECT_EQ(deliver(before[size_t(i)], 1 * kMs), Verdict::ok);
	// The first packet of the new phase rotates the receiver.
	EXPECT_EQ(deliver(after[0], 2 * kMs), Verdict::ok);
	EXPECT_EQ(rx.generation(), 1u);
	EXPECT_EQ(rx.phase(), 1);
	EXPECT_TRUE(rx.has_previous());
	for (size_t i = 1; i < after.size(); i++)
		EXPECT_EQ(deliver(after[i], 3 * kMs), Verdict::ok);
	// Reordered packets of the old phase still open while the previous key is held,
	// on the stream that moved and on one that has seen nothing of the new phase.
	for (int i = 5; i < 8; i++)
		EXPECT_EQ(deliver(before[size_t(i)], 50 * kMs), Verdict::ok) << i;
	EXPECT_EQ(deliver(before_s2, 60 * kMs), Verdict::ok);
	EXPECT_EQ(rx.generation(), 1u);
	// After the retention (100 ms from the rotation at 2 ms) they are refused.
	EXPECT_EQ(deliver(before[8], 103 * kMs), Verdict::no_key);
	EXPECT_FALSE(rx.has_previous());
	EXPECT_EQ(deliver(before[9], 200 * kMs), Verdict::no_key);
	// Replay of a new-phase packet is still a duplicate.
	EXPECT_EQ(deliver(after[3], 200 * kMs), Verdict::duplicate);
}

TEST_F(Link, ManyUpdatesKeepTheKeyTablesSmall)
{
	// Both sides with room for only the keys they need: Tx 2 (new before old goes),
	// Rx 3 (previous, current, next).
	ta = make_openssl_aead(2);
	ra = make_openssl_aead(3);
	std::string err;
	ASSERT_TRUE(tx.install(*ta, secret_of(5), &err)) << err;
	ASSERT_TRUE(rx.install(*ra, secret_of(5), &err)) << err;
	uint64_t pn = 0, now = 0;
	for (int gen = 0; gen < 50; gen++) {
		for (int i = 0; i < 3; i++)
			ASSERT_EQ(deliver(seal(uint16_t(1 + i), pn++), now), Verdict::ok) << "gen " << gen;
		ASSERT_TRUE(tx.update(*ta, &err)) << err;
		now += 10 * kMs; // well inside the retention: the previous key is always held
	}
	EXPECT_EQ(rx.generation(), 49u);
	EXPECT_EQ(tx.generation(), 50u);
}

TEST_F(Link, ForgedPhaseBitDoesNotRotate)
{
	EXPECT_EQ(deliver(seal(1, 0), 0), Verdict::ok);
	Packet p = seal(1, 1);
	p.phase ^= 1;
	p.b[0] ^= wire::flag_key_phase; // header is authenticated: the flip alone breaks it
	EXPECT_EQ(deliver(p, 0), Verdict::auth_failed);
	p = seal(1, 2);
	p.phase ^= 1; // a phase that disagrees with the sealed header
	EXPECT_EQ(deliver(p, 0), Verdict::auth_failed);
	EXPECT_EQ(rx.generation(), 0u);
	EXPECT_EQ(rx.phase(), 0);
	EXPECT_EQ(deliver(seal(1, 3), 0), Verdict::ok);
}

// Two updates while stream 2 was quiet: its first packet carries the phase of the
// previous key but was sealed with the one after the current one.
TEST_F(Link, TwoUpdatesWhileAStreamWasQuiet)
{
	std::string err;
	EXPECT_EQ(deliver(seal(1, 0), 0), Verdict::ok);
	ASSERT_TRUE(tx.update(*ta, &err));
	EXPECT_EQ(deliver(seal(1, 1), 1 * kMs), Verdict::ok);
	EXPECT_EQ(rx.generation(), 1u);
	ASSERT_TRUE(tx.update(*ta, &err));
	EXPECT_EQ(tx.phase(), 0);
	EXPECT_EQ(deliver(seal(2, 0), 2 * kMs), Verdict::ok);
	EXPECT_EQ(rx.generation(), 2u);
	EXPECT_EQ(deliver(seal(1, 2), 3 * kMs), Verdict::ok);
}

TEST_F(Link, BurstOpenGroupsByKey)
{
	std::string err;
	std::vector<Packet> ps;
	for (uint64_t pn = 0; pn < 8; pn++)
		ps.push_back(seal(uint16_t(1 + pn % 2), pn));
	ps.push_back(ps[2]);   // 8: the same packet twice in one burst
	ps.push_back(seal(1, 100));
	ps.back().b[25] ^= 1; // 9: forged
	ASSERT_TRUE(tx.update(*ta, &err));
	ps.push_back(seal(1, 101)); // 10: first of the next phase
	ps.push_back(seal(2, 102)); // 11: next phase, now current
	ps.push_back(seal(2, 103)); // 12
	std::vector<AeadOp> ops;
	std::vector<uint8_t> phases;
	for (Packet &p : ps) {
		ops.push_back(p.op());
		phases.push_back(p.phase);
	}
	std::vector<Verdict> v(ps.size());
	rx.open_burst(*ra, ops.data(), phases.data(), v.data(), unsigned(ps.size()), 0);
	const Verdict want[] = {Verdict::ok, Verdict::ok, Verdict::ok, Verdict::ok, Verdict::ok,
				Verdict::ok, Verdict::ok, Verdict::ok, Verdict::duplicate, Verdict::auth_failed,
				Verdict::ok, Verdict::ok, Verdict::ok};
	for (size_t i = 0; i < ps.size(); i++) {
		EXPECT_EQ(v[i], want[i]) << i;
		EXPECT_EQ(ops[i].ok, want[i] == Verdict::ok) << i;
	}
	EXPECT_EQ(rx.generation(), 1u);
}

TEST_F(Link, InstallFailsCleanlyWithoutRoom)
{
	auto one = make_openssl_aead(1);
	RxProtection r;
	std::string err;
	EXPECT_FALSE(r.install(*one, secret_of(2), &err));
	EXPECT_FALSE(err.empty());
	// The key it had added is gone again: a Tx install fits.
	TxProtection t;
	EXPECT_TRUE(t.install(*one, secret_of(2), &err)) << err;
	EXPECT_FALSE(t.update(*one, &err)); // no room for the next key: nothing changes
	EXPECT_EQ(t.phase(), 0);
	EXPECT_GE(t.key(), 0);
	t.clear(*one);
	EXPECT_EQ(t.key(), -1);
	t.clear(*one); // twice is fine
	r.clear(*one);
}

// ---------------------------------------------------------------- RetryTokens

std::array<uint8_t, kRetryKeyLen> key_of(uint8_t seed)
{
	std::array<uint8_t, kRetryKeyLen> k;
	for (size_t i = 0; i < k.size(); i++)
		k[i] = uint8_t(seed + i);
	return k;
}

TEST(RetryTokens, AcceptsItsOwnToken)
{
	RetryTokens t(key_of(1));
	ASSERT_TRUE(t.ok());
	uint8_t tok[kTokenLen];
	ASSERT_EQ(t.mint(0x0a000001, 7470, 99, 5 * kSec, tok), kTokenLen);
	EXPECT_EQ(t.check(0x0a000001, 7470, 99, tok, 5 * kSec), RetryTokens::Check::ok);
	EXPECT_EQ(t.check(0x0a000001, 7470, 99, tok, 15 * kSec), RetryTokens::Check::ok);
	// Deterministic for the same inputs (the HMAC context restarts cleanly).
	uint8_t again[kTokenLen];
	t.mint(0x0a000001, 7470, 99, 5 * kSec, again);
	EXPECT_EQ(memcmp(tok, again, kTokenLen), 0);
}

TEST(RetryTokens, RefusesOtherAddressPortOrSession)
{
	RetryTokens t(key_of(1));
	uint8_t tok[kTokenLen];
	t.mint(0x0a000001, 7470, 99, 5 * kSec, tok);
	EXPECT_EQ(t.check(0x0a000002, 7470, 99, tok, 5 * kSec), RetryTokens::Check::forged);
	EXPECT_EQ(t.check(0x0a000001, 7471, 99, tok, 5 * kSec), RetryTokens::Check::forged);
	EXPECT_EQ(t.check(0x0a000001, 7470, 98, tok, 5 * kSec), RetryTokens::Check::forged);
	RetryTokens other(key_of(2));
	EXPECT_EQ(other.check(0x0a000001, 7470, 99, tok, 5 * kSec), RetryTokens::Check::forged);
	RetryTokens random1, random2;
	random1.mint(1, 2, 3, kSec, tok);
	EXPECT_EQ(random1.check(1, 2, 3, tok, kSec), RetryTokens::Check::ok);
	EXPECT_EQ(random2.check(1, 2, 3, tok, kSec), RetryTokens::Check::forged);
	// Every bit of the token matters, the issue time included.
	for (size_t byte = 0; byte < kTokenLen; byte++) {
		uint8_t bad[kTokenLen];
		t.mint(0x0a000001, 7470, 99, 5 * kSec, bad);
		bad[byte] ^= 0x01;
		EXPECT_EQ(t.check(0x0a000001, 7470, 99, bad, 5 * kSec), RetryTokens::Check::forged) << byte;
	}
}

TEST(RetryTokens, ExpiresAndRefusesTheFuture)
{
	RetryTokens t(key_of(3), 10 * kSec);
	uint8_t tok[kTokenLen];
	t.mint(1, 2, 3, 100 * kSec + 300 * kMs, tok);
	EXPECT_EQ(t.check(1, 2, 3, tok, 110 * kSec), RetryTokens::Check::ok);
	EXPECT_EQ(t.check(1, 2, 3, tok, 111 * kSec), RetryTokens::Check::expired);
	EXPECT_EQ(t.check(1, 2, 3, tok, 5000 * kSec), RetryTokens::Check::expired);
	EXPECT_EQ(t.check(1, 2, 3, tok, 99 * kSec), RetryTokens::Check::future);
	RetryTokens short_lived(key_of(3), 2 * kSec);
	EXPECT_EQ(short_lived.check(1, 2, 3, tok, 103 * kSec), RetryTokens::Check::expired);
}

TEST(RetryTokens, MalformedLengths)
{
	RetryTokens t(key_of(4));
	uint8_t tok[kTokenLen + 1] = {};
	t.mint(1, 2, 3, kSec, tok);
	EXPECT_EQ(t.check(1, 2, 3, std::span<const uint8_t>(tok, kTokenLen - 1), kSec), RetryTokens::Check::malformed);
	EXPECT_EQ(t.check(1, 2, 3, std::span<const uint8_t>(tok, kTokenLen + 1), kSec), RetryTokens::Check::malformed);
	EXPECT_EQ(t.check(1, 2, 3, std::span<const uint8_t>(), kSec), RetryTokens::Check::malformed);
}

// ---------------------------------------------------------------- SourceLimiter

uint64_t openssl_siphash(uint64_t k0, uint64_t k1, uint32_t v)
{
	uint8_t key[16], msg[4], out[8];
	for (int i = 0; i < 8; i++)
		key[i] = uint8_t(k0 >> (8 * i)), key[8 + i] = uint8_t(k1 >> (8 * i));
	for (int i = 0; i < 4; i++)
		msg[i] = uint8_t(v >> (8 * i));
	EVP_MAC *mac = EVP_MAC_fetch(nullptr, "SIPHASH", nullptr);
	EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(mac);
	size_t size = 8, len = 0;
	OSSL_PARAM params[] = {OSSL_PARAM_construct_size_t(OSSL_MAC_PARAM_SIZE, &size), OSSL_PARAM_construct_end()};
	EXPECT_EQ(EVP_MAC_init(ctx, key, sizeof(key), params), 1);
	EXPECT_EQ(EVP_MAC_update(ctx, msg, sizeof(msg)), 1);
	EXPECT_EQ(EVP_MAC_final(ctx, out, &len, sizeof(out)), 1);
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(mac);
	uint64_t r = 0;
	for (int i = 0; i < 8; i++)
		r |= uint64_t(out[i]) << (8 * i);
	return r;
}

TEST(SourceLimiter, SipHashMatchesOpenssl)
{
	std::mt19937_64 rng(3);
	EXPECT_EQ(siphash24_u32(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, 0x03020100u),
		  openssl_siphash(0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull, 0x03020100u));
	for (int i = 0; i < 100; i++) {
		uint64_t k0 = rng(), k1 = rng();
		uint32_t v = uint32_t(rng());
		ASSERT_EQ(siphash24_u32(k0, k1, v), openssl_siphash(k0, k1, v)) << i;
	}
}

TEST(SourceLimiter, BurstThenRefill)
{
	SourceLimiter l(10, 5, 64, 1, 2); // 10/s, burst 5
	uint64_t t = 1 * kSec;
	for (int i = 0; i < 5; i++)
		EXPECT_TRUE(l.allow(0x0a000001, t)) << i;
	EXPECT_FALSE(l.allow(0x0a000001, t));
	EXPECT_FALSE(l.allow(0x0a000001, t + 50 * kMs)); // half a token
	EXPECT_TRUE(l.allow(0x0a000001, t + 100 * kMs));
	EXPECT_FALSE(l.allow(0x0a000001, t + 100 * kMs));
	// A long pause refills to the burst, not beyond.
	t += 100 * kSec;
	for (int i = 0; i < 5; i++)
		EXPECT_TRUE(l.allow(0x0a000001, t)) << i;
	EXPECT_FALSE(l.allow(0x0a000001, t));
	// A clock step back refills nothing and breaks nothing.
	EXPECT_FALSE(l.allow(0x0a000001, t - kSec));
	EXPECT_EQ(l.nb_slots(), 64u);
	EXPECT_EQ(SourceLimiter(1, 1, 1000, 0, 0).nb_slots(), 1024u);
}

// 100k distinct sources: the table does not grow, the flood as a whole gets at most
// what the slots allow, and a steady source whose slot no flooder shares is not
// slowed; one whose slot is shared competes for that bucket only.
TEST(SourceLimiter, FloodFromManySourcesIsBounded)
{
	const double rate = 10, burst = 5;
	SourceLimiter l(rate, burst, 4096, 0x1234, 0x5678);
	const uint32_t steady = 0xc0a80001;
	size_t steady_slot = l.slot_of(steady);
	uint64_t t0 = 1 * kSec, t = t0;
	uint64_t admitted = 0, steady_ok = 0, steady_tries = 0;
	std::map<size_t, uint64_t> per_slot;
	uint32_t src = 0x0b000000;
	for (int round = 0; round < 20; round++) { // 2 s of flood, 100 ms rounds
		for (int i = 0; i < 100000; i++, src++) {
			if (l.slot_of(src) == steady_slot)
				continue;
			if (l.allow(src, t)) {
				admitted++;
				per_slot[l.slot_of(src)]++;
			}
		}
		steady_tries++;
		steady_ok += l.allow(steady, t);
		t += 100 * kMs;
	}
	EXPECT_EQ(l.nb_slots(), 4096u);
	double secs = double(t - t0) / kSec;
	EXPECT_LE(double(admitted), 4096 * (burst + rate * secs));
	for (auto &[slot, n] : per_slot)
		ASSERT_LE(double(n), burst + rate * secs) << slot;
	EXPECT_EQ(steady_ok, steady_tries); // 10 per second allowed, it sends 10 per second

	// Flooders on the steady source's own slot share its bucket.
	uint64_t shared_ok = 0;
	for (uint32_t s = 0x0c000000, found = 0; found < 1000; s++) {
		if (l.slot_of(s) != steady_slot)
			continue;
		found++;
		shared_ok += l.allow(s, t);
	}
	EXPECT_LE(shared_ok, uint64_t(burst) + 1);
	EXPECT_FALSE(l.allow(steady, t));
}

} // namespace
