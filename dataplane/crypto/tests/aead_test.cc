// The key schedule and the OpenSSL Aead against published vectors.
#include "dataplane/crypto/aead.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

#include "dataplane/crypto/tests/gcm_vectors.h"

using namespace dwcp::crypto;
using namespace dwcp::crypto::test;

namespace {

std::string label_hex(const std::vector<uint8_t> &secret, const char *label, size_t len)
{
	std::vector<uint8_t> out(len);
	EXPECT_TRUE(hkdf_expand_label(secret.data(), secret.size(), label, out.data(), len));
	return hex(out.data(), len);
}

} // namespace

// RFC 9001 Appendix A.1: the client Initial secrets and keys use HKDF-Expand-Label
// with SHA-256, as DWCP's labels do.
TEST(KeySchedule, ExpandLabelMatchesRfc9001Initial)
{
	std::vector<uint8_t> initial = unhex("7db5df06e7a69e432496adedb00851923595221596ae2ae9fb8115c1e9ed0a44");
	EXPECT_EQ(label_hex(initial, "client in", 32), "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea");
	EXPECT_EQ(label_hex(initial, "server in", 32), "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b");
	std::vector<uint8_t> client = unhex("c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea");
	EXPECT_EQ(label_hex(client, "quic key", 16), "1f369613dd76d5467730efcbe3b1a22d");
	EXPECT_EQ(label_hex(client, "quic iv", 12), "fa044b2f42a3fd3b46fb255c");
	EXPECT_EQ(label_hex(client, "quic hp", 16), "9f50449e04a0e810283a1e9933adedd2");
}

// RFC 9001 Appendix A.5: a 32-byte key and the key-update secret ("quic ku").
TEST(KeySchedule, ExpandLabelMatchesRfc9001KeyUpdate)
{
	std::vector<uint8_t> s = unhex("9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b");
	EXPECT_EQ(label_hex(s, "quic key", 32), "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8");
	EXPECT_EQ(label_hex(s, "quic iv", 12), "e0459b3474bdd0e44a41c144");
	EXPECT_EQ(label_hex(s, "quic ku", 32), "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9");
}

TEST(KeySchedule, ExpandLabelRefusesOverlongLabels)
{
	uint8_t s[32] = {}, out[16];
	EXPECT_FALSE(hkdf_expand_label(s, sizeof(s), std::string(250, 'x'), out, sizeof(out)));
	EXPECT_TRUE(hkdf_expand_label(s, sizeof(s), std::string(249, 'x'), out, sizeof(out)));
}

TEST(KeySchedule, DerivationIsDeterministicAndSeparated)
{
	Secret a{}, b{};
	for (size_t i = 0; i < a.size(); i++)
		a[i] = uint8_t(i), b[i] = uint8_t(i);
	b[31] ^= 1;
	PacketKey ka = derive_packet_key(a), ka2 = derive_packet_key(a), kb = derive_packet_key(b);
	EXPECT_EQ(hex(ka.key, 32), hex(ka2.key, 32));
	EXPECT_EQ(hex(ka.iv, 12), hex(ka2.iv, 12));
	EXPECT_NE(hex(ka.key, 32), hex(kb.key, 32));
	EXPECT_NE(hex(ka.iv, 12), hex(kb.iv, 12));
	// The labels separate key, IV and the next secret.
	EXPECT_NE(hex(ka.key, 12), hex(ka.iv, 12));
	Secret n = next_secret(a);
	EXPECT_EQ(n, next_secret(a));
	EXPECT_NE(n, a);
	EXPECT_NE(hex(n.data(), 32), hex(ka.key, 32));
	// A chain of updates never comes back to an earlier secret.
	std::set<Secret> seen{a};
	Secret s = a;
	for (int i = 0; i < 1000; i++) {
		s = next_secret(s);
		EXPECT_TRUE(seen.insert(s).second) << "update " << i;
	}
}

TEST(KeySchedule, NonceXorsStreamAndPacketNumber)
{
	PacketKey k{};
	for (int i = 0; i < 12; i++)
		k.iv[i] = uint8_t(0x10 + i);
	uint8_t n[kIvLen];
	make_nonce(k, 0, 0, n);
	EXPECT_EQ(hex(n, 12), hex(k.iv, 12));
	make_nonce(k, 0x0102, 0x0a0b0c0d0e0f1011ull, n);
	EXPECT_EQ(hex(n, 12), "1011" "1311" "1e1e1a1a16160a0a");
	// Distinct (stream, pn) give distinct nonces.
	uint8_t m[kIvLen];
	make_nonce(k, 1, 0, n);
	make_nonce(k, 0, 1, m);
	EXPECT_NE(hex(n, 12), hex(m, 12));
}

class OpensslAeadTest : public ::testing::Test {
protected:
	std::unique_ptr<Aead> a = make_openssl_aead();
};

TEST_F(OpensslAeadTest, PublishedVectorsSeal)
{
	for (const GcmVector &v : kGcmVectors) {
		SCOPED_TRACE(v.name);
		std::string err;
		uint8_t buf[256];
		VectorPacket p = vector_packet(v, buf, true);
		int h = a->add_key(vector_key(v), &err, p.aad_len);
		ASSERT_GE(h, 0) << err;
		AeadOp op = vector_op(p);
		a->seal_burst(h, &op, 1);
		EXPECT_TRUE(op.ok);
		EXPECT_EQ(hex(p.data, p.len), v.ct);
		EXPECT_EQ(hex(p.tag, kTagLen), v.tag);
		a->remove_key(h);
	}
}

TEST_F(OpensslAeadTest, PublishedVectorsOpen)
{
	for (const GcmVector &v : kGcmVectors) {
		SCOPED_TRACE(v.name);
		std::string err;
		uint8_t buf[256];
		VectorPacket p = vector_packet(v, buf, false);
		int h = a->add_key(vector_key(v), &err, p.aad_len);
		ASSERT_GE(h, 0) << err;
		AeadOp op = vector_op(p);
		a->open_burst(h, &op, 1);
		EXPECT_TRUE(op.ok);
		EXPECT_EQ(hex(p.data, p.len), v.pt);
		a->remove_key(h);
	}
}

// Any flipped bit in the header (AAD), body or tag, or the wrong packet number,
// fails authentication.
TEST_F(OpensslAeadTest, TamperingFails)
{
	const GcmVector &v = kGcmVectors[3]; // 20-byte AAD, 60-byte body
	std::string err;
	int h = a->add_key(vector_key(v), &err);
	ASSERT_GE(h, 0) << err;
	uint8_t buf[256];
	VectorPacket p0 = vector_packet(v, buf, false);
	size_t total = p0.aad_len + p0.len + kTagLen;
	for (size_t byte = 0; byte < total; byte++) {
		for (int bit : {0, 7}) {
			VectorPacket p = vector_packet(v, buf, false);
			buf[byte] ^= uint8_t(1 << bit);
			AeadOp op = vector_op(p);
			a->open_burst(h, &op, 1);
			EXPECT_FALSE(op.ok) << "byte " << byte << " bit " << bit;
		}
	}
	VectorPacket p = vector_packet(v, buf, false);
	AeadOp op = vector_op(p);
	op.pn = 1;
	a->open_burst(h, &op, 1);
	EXPECT_FALSE(op.ok);
	p = vector_packet(v, buf, false);
	op = vector_op(p);
	op.stream = 1;
	a->open_burst(h, &op, 1);
	EXPECT_FALSE(op.ok);
	p = vector_packet(v, buf, false);
	op = vector_op(p);
	a->open_burst(h, &op, 1);
	EXPECT_TRUE(op.ok);
}

TEST_F(OpensslAeadTest, BurstRoundTripWithOneForgery)
{
	std::mt19937_64 rng(7);
	Secret s{};
	for (auto &b : s)
		b = uint8_t(rng());
	std::string err;
	int h = a->add_key(derive_packet_key(s), &err);
	ASSERT_GE(h, 0) << err;
	constexpr unsigned n = 32;
	std::vector<std::vector<uint8_t>> pkts(n), orig(n);
	AeadOp ops[n];
	for (unsigned i = 0; i < n; i++) {
		size_t body = 1 + rng() % 1400;
		pkts[i].resize(kAadLen + body + kTagLen);
		for (auto &b : pkts[i])
			b = uint8_t(rng());
		orig[i] = pkts[i];
		ops[i] = AeadOp{.aad = pkts[i].data(), .data = pkts[i].data() + kAadLen, .len = uint32_t(body),
				.tag = pkts[i].data() + kAadLen + body, .stream = uint16_t(i % 3), .pn = i};
	}
	a->seal_burst(h, ops, n);
	for (unsigned i = 0; i < n; i++) {
		EXPECT_TRUE(ops[i].ok);
		EXPECT_NE(pkts[i], orig[i]);
	}
	pkts[17][kAadLen + 3] ^= 0x40;
	a->open_burst(h, ops, n);
	for (unsigned i = 0; i < n; i++) {
		EXPECT_EQ(ops[i].ok, i != 17) << i;
		if (i != 17) {
			size_t clear = kAadLen + ops[i].len; // header and body; the tag is new
			EXPECT_TRUE(std::equal(pkts[i].begin(), pkts[i].begin() + ptrdiff_t(clear), orig[i].begin())) << i;
		}
	}
}

TEST_F(OpensslAeadTest, KeyTableIsBoundedAndReused)
{
	auto small = make_openssl_aead(3);
	PacketKey k{};
	std::string err;
	int h0 = small->add_key(k, &err), h1 = small->add_key(k, &err), h2 = small->add_key(k, &err);
	EXPECT_GE(h0, 0);
	EXPECT_GE(h1, 0);
	EXPECT_GE(h2, 0);
	EXPECT_EQ(small->add_key(k, &err), -1);
	EXPECT_NE(err.find("key slots"), std::string::npos) << err;
	small->remove_key(h1);
	EXPECT_EQ(small->add_key(k, &err), h1);
	// Unknown or removed handles fail every op.
	uint8_t buf[kAadLen + 8 + kTagLen] = {};
	AeadOp op{.aad = buf, .data = buf + kAadLen, .len = 8, .tag = buf + kAadLen + 8};
	small->seal_burst(99, &op, 1);
	EXPECT_FALSE(op.ok);
	small->remove_key(h2);
	small->seal_burst(h2, &op, 1);
	EXPECT_FALSE(op.ok);
	small->remove_key(-1); // ignored
	EXPECT_STREQ(small->name(), "openssl");
}
