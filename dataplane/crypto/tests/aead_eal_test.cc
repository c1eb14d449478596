// The cryptodev Aead on DPDK's intel-ipsec-mb PMDs (crypto_aesni_gcm, crypto_aesni_mb)
// through both of its paths (CPU crypto and rte_crypto_op), against the published
// vectors and against the OpenSSL Aead.
#include "dataplane/crypto/aead.h"

#include <gtest/gtest.h>

#include <random>

#include <rte_cryptodev.h>
#include <rte_mbuf.h>

#include "dataplane/crypto/protection.h"
#include "dataplane/crypto/tests/gcm_vectors.h"

using namespace dwcp;
using namespace dwcp::crypto;
using namespace dwcp::crypto::test;

namespace {

constexpr uint16_t kQps = 2; // 0: CPU-crypto Aeads, 1: op-path Aeads

rte_mempool *mbuf_pool()
{
	static rte_mempool *p = rte_pktmbuf_pool_create("crypto_test", 511, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
	return p;
}

// The device the EAL probed (crypto_aesni_gcm0), or the one created by name.
int device(const std::string &name)
{
	CryptodevConfig c;
	c.nb_qps = kQps;
	c.device = name;
	std::string err;
	int id = setup_cryptodev(c, &err);
	EXPECT_GE(id, 0) << err;
	return id;
}

TEST(CryptodevSetup, UsesTheProbedDeviceAndIsIdempotent)
{
	std::string err;
	int id = setup_cryptodev(kQps, SOCKET_ID_ANY, &err);
	ASSERT_GE(id, 0) << err;
	EXPECT_STREQ(rte_cryptodev_name_get(uint8_t(id)), "crypto_aesni_gcm0");
	EXPECT_EQ(setup_cryptodev(1, SOCKET_ID_ANY, &err), id);
	EXPECT_EQ(setup_cryptodev(100, SOCKET_ID_ANY, &err), -1);
	EXPECT_NE(err.find("queue pairs"), std::string::npos) << err;
	EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST(CryptodevSetup, CreatesANamedVirtualDevice)
{
	int id = device("crypto_aesni_mb0");
	ASSERT_GE(id, 0);
	EXPECT_EQ(rte_cryptodev_get_dev_id("crypto_aesni_mb0"), id);
	EXPECT_EQ(device("crypto_aesni_mb0"), id);
	std::string err;
	CryptodevConfig c;
	c.device = "0000:99:00.0";
	EXPECT_EQ(setup_cryptodev(c, &err), -1);
	EXPECT_NE(err.find("0000:99:00.0"), std::string::npos) << err;
}

TEST(CryptodevSetup, AeadErrorsNameTheProblem)
{
	std::string err;
	int id = device("");
	ASSERT_GE(id, 0);
	EXPECT_EQ(make_cryptodev_aead(uint8_t(id), 9, SOCKET_ID_ANY, &err), nullptr);
	EXPECT_NE(err.find("queue pair 9"), std::string::npos) << err;
	EXPECT_EQ(make_cryptodev_aead(60, 0, SOCKET_ID_ANY, &err), nullptr);
	EXPECT_NE(err.find("no cryptodev 60"), std::string::npos) << err;
}

struct Backend {
	const char *device;
	bool ops;
};

std::string backend_name(const testing::TestParamInfo<Backend> &i)
{
	return std::string(i.param.device + 7) + (i.param.ops ? "_ops" : "_cpu");
}

class CryptodevAeadTest : public testing::TestWithParam<Backend> {
protected:
	void SetUp() override
	{
		ASSERT_NE(mbuf_pool(), nullptr);
		int id = device(GetParam().device);
		ASSERT_GE(id, 0);
		std::string err;
		CryptodevAeadOptions opt;
		opt.force_op_path = GetParam().ops;
		a = make_cryptodev_aead(uint8_t(id), GetParam().ops ? 1 : 0, SOCKET_ID_ANY, &err, opt);
		ASSERT_NE(a, nullptr) << err;
		ASSERT_NE(strstr(a->name(), GetParam().ops ? ":ops" : ":cpu_crypto"), nullptr) << a->name();
	}

	void TearDown() override
	{
		for (rte_mbuf *m : mbufs)
			rte_pktmbuf_free(m);
	}

	// A zeroed packet buffer of len bytes in a fresh mbuf.
	rte_mbuf *packet(size_t len)
	{
		rte_mbuf *m = rte_pktmbuf_alloc(mbuf_pool());
		EXPECT_NE(m, nullptr);
		uint8_t *p = m ? reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(len))) : nullptr;
		EXPECT_NE(p, nullptr);
		if (p)
			memset(p, 0, len);
		mbufs.push_back(m);
		return m;
	}

	std::unique_ptr<Aead> a;
	std::vector<rte_mbuf *> mbufs;
};

TEST_P(CryptodevAeadTest, PublishedVectors)
{
	for (const GcmVector &v : kGcmVectors) {
		SCOPED_TRACE(v.name);
		std::string err;
		rte_mbuf *m = packet(200);
		uint8_t *buf = rte_pktmbuf_mtod(m, uint8_t *);
		VectorPacket p = vector_packet(v, buf, true);
		int h = a->add_key(vector_key(v), &err, p.aad_len);
		ASSERT_GE(h, 0) << err;
		AeadOp op = vector_op(p, m);
		a->seal_burst(h, &op, 1);
		EXPECT_TRUE(op.ok);
		EXPECT_EQ(hex(p.data, p.len), v.ct);
		EXPECT_EQ(hex(p.tag, kTagLen), v.tag);

		p = vector_packet(v, buf, false);
		op = vector_op(p, m);
		a->open_burst(h, &op, 1);
		EXPECT_TRUE(op.ok);
		EXPECT_EQ(hex(p.data, p.len), v.pt);

		// A flipped bit in each part fails.
		for (uint8_t *where : {p.aad, p.data, p.tag}) {
			if (where == p.aad && !p.aad_len)
				continue;
			if (where == p.data && !p.len)
				continue;
			p = vector_packet(v, buf, false);
			where[0] ^= 0x80;
			op = vector_op(p, m);
			a->open_burst(h, &op, 1);
			EXPECT_FALSE(op.ok);
			where[0] ^= 0x80;
		}
		a->remove_key(h);
	}
}

// 32 random full-size packets each way between this backend and OpenSSL.
TEST_P(CryptodevAeadTest, InteroperatesWithOpenssl)
{
	auto ref = make_openssl_aead();
	std::mt19937_64 rng(GetParam().ops ? 5 : 6);
	Secret s;
	for (auto &b : s)
		b = uint8_t(rng());
	PacketKey k = derive_packet_key(s);
	std::string err;
	int h = a->add_key(k, &err), r = ref->add_key(k, &err);
	ASSERT_GE(h, 0) << err;
	ASSERT_GE(r, 0) << err;
	constexpr unsigned n = 32;
	for (bool device_seals : {true, false}) {
		SCOPED_TRACE(device_seals ? "device seals, OpenSSL opens" : "OpenSSL seals, device opens");
		AeadOp ops[n];
		std::vector<std::vector<uint8_t>> plain(n);
		for (unsigned i = 0; i < n; i++) {
			uint32_t body = 1400 - uint32_t(rng() % 64);
			rte_mbuf *m = packet(kAadLen + body + kTagLen);
			uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
			for (size_t j = 0; j < kAadLen + body; j++)
				p[j] = uint8_t(rng());
			plain[i].assign(p + kAadLen, p + kAadLen + body);
			ops[i] = AeadOp{.aad = p, .data = p + kAadLen, .len = body, .tag = p + kAadLen + body,
					.stream = uint16_t(rng() % 257), .pn = rng(), .m = m};
		}
		(device_seals ? *a : *ref).seal_burst(device_seals ? h : r, ops, n);
		for (unsigned i = 0; i < n; i++)
			ASSERT_TRUE(ops[i].ok) << i;
		ops[9].tag[15] ^= 1;
		(device_seals ? *ref : *a).open_burst(device_seals ? r : h, ops, n);
		for (unsigned i = 0; i < n; i++) {
			EXPECT_EQ(ops[i].ok, i != 9) << i;
			if (i != 9) {
				EXPECT_EQ(memcmp(ops[i].data, plain[i].data(), ops[i].len), 0) << i;
			}
		}
	}
}

// Bursts longer than the device burst are split; every op gets its own result.
TEST_P(CryptodevAeadTest, LongBurstIsSplit)
{
	std::string err;
	PacketKey k = derive_packet_key(Secret{});
	int h = a->add_key(k, &err);
	ASSERT_GE(h, 0) << err;
	constexpr unsigned n = 100;
	std::vector<AeadOp> ops(n);
	for (unsigned i = 0; i < n; i++) {
		rte_mbuf *m = packet(kAadLen + 64 + kTagLen);
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
		ops[i] = AeadOp{.aad = p, .data = p + kAadLen, .len = 64, .tag = p + kAadLen + 64, .stream = 1, .pn = i,
				.m = m};
	}
	a->seal_burst(h, ops.data(), n);
	for (unsigned i = 0; i < n; i++)
		ASSERT_TRUE(ops[i].ok) << i;
	ops[70].data[0] ^= 1;
	a->open_burst(h, ops.data(), n);
	for (unsigned i = 0; i < n; i++)
		EXPECT_EQ(ops[i].ok, i != 70) << i;
	// Unknown keys fail every op.
	a->open_burst(h + 1, ops.data(), 3);
	EXPECT_FALSE(ops[0].ok);
}

// The op path needs the mbuf (the device takes IOVAs); without one the op fails
// rather than handing the device a bad address.  The CPU path does not need it.
TEST_P(CryptodevAeadTest, MbufRequirement)
{
	std::string err;
	int h = a->add_key(derive_packet_key(Secret{}), &err);
	ASSERT_GE(h, 0) << err;
	uint8_t buf[kAadLen + 32 + kTagLen] = {};
	AeadOp op{.aad = buf, .data = buf + kAadLen, .len = 32, .tag = buf + kAadLen + 32};
	a->seal_burst(h, &op, 1);
	EXPECT_EQ(op.ok, !GetParam().ops);
	// Pointers outside the mbuf's data are refused too.
	rte_mbuf *m = packet(kAadLen + 8 + kTagLen);
	op.m = m;
	a->seal_burst(h, &op, 1);
	EXPECT_EQ(op.ok, !GetParam().ops);
}

// A session's receive side on the device, its send side on OpenSSL, across a key update.
TEST_P(CryptodevAeadTest, RxProtectionAcrossAKeyUpdate)
{
	auto ref = make_openssl_aead();
	TxProtection tx;
	RxProtection rx;
	Secret s{};
	s[0] = 9;
	std::string err;
	ASSERT_TRUE(tx.install(*ref, s, &err)) << err;
	ASSERT_TRUE(rx.install(*a, s, &err)) << err;
	uint64_t pn = 0;
	for (int gen = 0; gen < 3; gen++) {
		for (int i = 0; i < 4; i++, pn++) {
			rte_mbuf *m = packet(wire::kHeaderLen + 1000 + kTagLen);
			uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *);
			wire::encode_header({.flags = uint8_t(wire::flag_protected | (tx.phase() ? wire::flag_key_phase : 0)),
					     .type = wire::PacketType::data,
					     .stream_id = 5,
					     .session_id = 1,
					     .pn = pn},
					    p);
			AeadOp op{.aad = p, .data = p + wire::kHeaderLen, .len = 1000, .tag = p + wire::kHeaderLen + 1000,
				  .stream = 5, .pn = pn, .m = m};
			tx.seal_burst(*ref, &op, 1);
			ASSERT_TRUE(op.ok);
			EXPECT_EQ(rx.open(*a, op, tx.phase(), pn * 1000), RxProtection::Verdict::ok) << pn;
			EXPECT_EQ(rx.open(*a, op, tx.phase(), pn * 1000), RxProtection::Verdict::duplicate) << pn;
		}
		ASSERT_TRUE(tx.update(*ref, &err)) << err;
	}
	EXPECT_EQ(rx.generation(), 2u);
	rx.clear(*a);
	tx.clear(*ref);
}

INSTANTIATE_TEST_SUITE_P(Ipsecmb, CryptodevAeadTest,
			 testing::Values(Backend{"crypto_aesni_gcm0", false}, Backend{"crypto_aesni_gcm0", true},
					 Backend{"crypto_aesni_mb0", false}, Backend{"crypto_aesni_mb0", true}),
			 backend_name);

} // namespace
