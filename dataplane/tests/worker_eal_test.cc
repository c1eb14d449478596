// The worker's hold of DATA that follows a hello (Worker::kHeldMax):
//   - sealed packets of a receiving session that has no assembler yet are opened
//     on arrival and only authentic, fresh ones are held; once the assembler is
//     attached, release_held delivers them, and nothing is lost or leaked;
//   - a worker never keeps more than kHeldMax packets, and the mbufs of one pool
//     held over all workers never exceed the kHeldMax reserve that pool was sized
//     with, however the packets were spread over the queues (hand-off).  Every held
//     mbuf goes back to its own pool.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

#include <rte_cryptodev.h>

#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "dataplane/amst/chunks.h"
#include "dataplane/amst/session.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/protection.h"
#include "dataplane/worker.h"
#include "drivers/net.h"
#include "tests/eal_main.h"

namespace dwcp::dataplane {

struct WorkerTestAccess {
	static bool hold(Worker &w, rte_mbuf *m)
	{
		wire::Header h{};
		h.type = wire::PacketType::data;
		return w.hold(h, rte_pktmbuf_mtod(m, const uint8_t *), 0, m);
	}
	static size_t held(const Worker &w) { return w.held_.size(); }
	static uint32_t out(const Worker &w) { return w.held_out_.load(); }
	static void drop(Worker &w) { w.drop_held(); }
	static uint64_t dropped(const Worker &w) { return w.local_.rx_held_dropped; }
	static const WorkerSnapshot &counters(const Worker &w) { return w.local_; }
	static void rx(Worker &w, rte_mbuf **pkts, uint16_t n) { w.handle_rx(pkts, n, w.now_ns(), false); }
};

namespace {

constexpr unsigned kHeld = Worker::kHeldMax;
constexpr unsigned kPoolSize = 2 * kHeld + 255;

class WorkerHoldTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		static int run = 0;
		std::string tag = std::to_string(run++);
		events_ = rte_ring_create(("wt_ev" + tag).c_str(), 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
		ASSERT_NE(events_, nullptr);
		for (int i = 0; i < 3; i++) {
			pools_[i] = rte_pktmbuf_pool_create(("wt_pool" + tag + "_" + std::to_string(i)).c_str(), kPoolSize, 0, 0,
							    RTE_MBUF_DEFAULT_BUF_SIZE, SOCKET_ID_ANY);
			ASSERT_NE(pools_[i], nullptr) << rte_strerror(rte_errno);
		}
		peers_ = {&w_[0], &w_[1]};
		for (uint16_t i = 0; i < 2; i++) {
			WorkerConfig c;
			c.lcore = rte_lcore_id();
			c.index = i;
			c.nb_workers = 2;
			c.pool = pools_[i];
			c.ring_size = 1024;
			ASSERT_EQ(w_[i].init(c, events_, &peers_), "");
		}
	}
	void TearDown() override
	{
		WorkerTestAccess::drop(w_[0]);
		WorkerTestAccess::drop(w_[1]);
		for (rte_mempool *p : pools_) {
			EXPECT_EQ(rte_mempool_avail_count(p), kPoolSize) << "an mbuf was not given back to " << p->name;
			rte_mempool_free(p);
		}
		rte_ring_free(events_);
	}
	// Holds n mbufs of pool on w; returns how many it took (the rest are freed).
	unsigned hold(Worker &w, rte_mempool *pool, unsigned n)
	{
		unsigned took = 0;
		for (unsigned i = 0; i < n; i++) {
			rte_mbuf *m = rte_pktmbuf_alloc(pool);
			EXPECT_NE(m, nullptr);
			if (!m)
				break;
			if (WorkerTestAccess::hold(w, m))
				took++;
			else
				rte_pktmbuf_free(m);
		}
		return took;
	}

	rte_ring *events_ = nullptr;
	rte_mempool *pools_[3] = {};
	Worker w_[2];
	std::vector<Worker *> peers_;
};

TEST_F(WorkerHoldTest, HandedOffPacketsCountAgainstTheirOwnPool)
{
	// Worker 1 got 1500 of worker 0's packets over the hand-off ring.
	EXPECT_EQ(hold(w_[1], pools_[0], 1500), 1500u);
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), 1500u);
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 0u);
	// Worker 0 may hold only what is left of its own pool's reserve.
	EXPECT_EQ(hold(w_[0], pools_[0], 1000), kHeld - 1500);
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), kHeld);
	// ... but worker 1's packets, handed to it, up to its own limit.
	EXPECT_EQ(hold(w_[0], pools_[1], kHeld), 1500u);
	EXPECT_EQ(WorkerTestAccess::held(w_[0]), size_t(kHeld));
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 1500u);
	EXPECT_EQ(hold(w_[0], pools_[1], 1), 0u) << "a worker holds at most kHeldMax";
	// Worker 1 is full of pool 0 but has room for its own pool's: 548 of them.
	EXPECT_EQ(hold(w_[1], pools_[1], kHeld), kHeld - 1500);
	EXPECT_EQ(rte_mempool_avail_count(pools_[0]), kPoolSize - kHeld);
	EXPECT_EQ(rte_mempool_avail_count(pools_[1]), kPoolSize - kHeld);

	// Dropping worker 1's gives pool 0 its share back, and the mbufs.
	WorkerTestAccess::drop(w_[1]);
	EXPECT_EQ(WorkerTestAccess::dropped(w_[1]), uint64_t(kHeld));
	EXPECT_EQ(WorkerTestAccess::out(w_[0]), kHeld - 1500);
	EXPECT_EQ(WorkerTestAccess::out(w_[1]), 1500u);
	EXPECT_EQ(rte_mempool_avail_count(pools_[0]), kPoolSize - (kHeld - 1500));
	EXPECT_EQ(hold(w_[1], pools_[0], 100), 100u);
}

TEST_F(WorkerHoldTest, AnMbufOfNoWorkersPoolIsNotHeld)
{
	EXPECT_EQ(hold(w_[0], pools_[2], 10), 0u);
	EXPECT_EQ(WorkerTestAccess::held(w_[0]), 0u);
	EXPECT_EQ(rte_mempool_avail_count(pools_[2]), kPoolSize);
}

// ---- early data through a worker with security on ----

constexpr uint64_t kSession = 0x5e55;
constexpr uint32_t kMss = 1000;
constexpr uint32_t kChunk = 2 * kMss; // two packets a chunk
constexpr uint32_t kChunks = 4;

class ChunkBytes : public amst::ChunkSink {
public:
	ChunkBytes() : bufs(kChunks, std::vector<uint8_t>(kChunk)), done(kChunks, false) {}
	uint8_t *chunk_buffer(uint32_t id, uint32_t len) override
	{
		return id < kChunks && len == kChunk ? bufs[id].data() : nullptr;
	}
	void chunk_complete(uint32_t id, uint32_t) override { done[id] = true; }
	std::vector<std::vector<uint8_t>> bufs;
	std::vector<bool> done;
};

class EarlyDataTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		static int run = 0;
		std::string tag = std::to_string(run++);
		std::string err;
		int dev = crypto::setup_cryptodev(1, SOCKET_ID_ANY, &err);
		ASSERT_GE(dev, 0) << err;
		events_ = rte_ring_create(("ed_ev" + tag).c_str(), 1024, SOCKET_ID_ANY, RING_F_SC_DEQ);
		ASSERT_NE(events_, nullptr);
		pool_ = rte_pktmbuf_pool_create(("ed_pool" + tag).c_str(), kRxPoolSize, 0, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
						SOCKET_ID_ANY);
		ASSERT_TRUE(pool_) << rte_strerror(rte_errno);
		rte_ether_addr mac = {{0x02, 0, 0, 0, 0, 0x12}}, peer_mac = {{0x02, 0, 0, 0, 0, 0x11}};
		iface_.mac = mac;
		iface_.ip = RTE_BE32(0x0a63000c);
		peers_ = {&w_};
		WorkerConfig c;
		c.lcore = rte_lcore_id();
		c.pool = pool_;
		c.iface = iface_;
		c.protect = true;
		c.crypto_dev = dev;
		c.ring_size = 1024;
		ASSERT_EQ(w_.init(c, events_, &peers_), "");
		amst::SessionConfig sc;
		sc.session_id = kSession;
		sc.mss = kMss;
		sc.nb_streams = 4;
		sc.tag_len = uint32_t(crypto::kTagLen);
		session_ = std::make_shared<amst::Session>(sc, nullptr, nullptr, nullptr, nullptr);
		auto path = std::make_shared<PeerPath>();
		w_.attach(session_, path);
		for (size_t i = 0; i < rx_secret_.size(); i++)
			rx_secret_[i] = uint8_t(i * 7 + 1), tx_secret_[i] = uint8_t(i * 5 + 3);
		ASSERT_EQ(w_.install_keys(tx_secret_, rx_secret_), "");
		// The peer seals with the secret this side opens with.
		peer_aead_ = crypto::make_openssl_aead();
		ASSERT_TRUE(peer_tx_.install(*peer_aead_, rx_secret_, &err)) << err;
		drivers::Iface peer;
		peer.mac = peer_mac;
		peer.ip = RTE_BE32(0x0a63000b);
		drivers::tx_template_init(&tpl_, peer, mac, iface_.ip, iface_.udp_port, drivers::TxOffloads{});
		for (uint32_t c2 = 0; c2 < kChunks; c2++)
			for (uint32_t i = 0; i < kChunk; i++)
				object_[c2 * kChunk + i] = uint8_t(c2 * 31 + i * 13);
	}
	void TearDown() override
	{
		w_.detach();
		peer_tx_.clear(*peer_aead_);
		EXPECT_EQ(rte_mempool_avail_count(pool_), kRxPoolSize) << "a held or dropped packet was not freed";
		rte_mempool_free(pool_);
		rte_ring_free(events_);
	}
	// Packet `pn` of stream 1 as the peer sends it: DATA for chunk pn/2, sealed,
	// in an Ethernet/IPv4/UDP frame to this worker's address.
	rte_mbuf *data_packet(uint64_t pn)
	{
		uint32_t chunk = uint32_t(pn / 2) % kChunks, off = uint32_t(pn % 2) * kMss;
		rte_mbuf *m = rte_pktmbuf_alloc(pool_); // the worker's RX queue fills from its pool
		EXPECT_NE(m, nullptr);
		size_t len = wire::kHeaderLen + wire::kDataFrameLen + kMss + crypto::kTagLen;
		auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, uint16_t(len)));
		if (!p) {
			ADD_FAILURE() << "no room for a " << len << "-byte packet";
			return m;
		}
		wire::encode_header({.flags = wire::flag_protected, .type = wire::PacketType::data, .stream_id = 1,
				     .session_id = kSession, .pn = pn},
				    p);
		wire::encode_data_frame({.chunk_id = chunk, .chunk_off = off, .chunk_len = kChunk}, p + wire::kHeaderLen);
		memcpy(p + wire::kHeaderLen + wire::kDataFrameLen, object_ + chunk * kChunk + off, kMss);
		crypto::AeadOp op = crypto::packet_op(p, len, m);
		peer_tx_.seal_burst(*peer_aead_, &op, 1);
		EXPECT_TRUE(op.ok);
		EXPECT_TRUE(drivers::tx_encap(m, tpl_, 40000, uint16_t(pn)));
		return m;
	}
	const WorkerSnapshot &counters() const { return WorkerTestAccess::counters(w_); }

	static constexpr unsigned kRxPoolSize = kHeld + 1023;
	rte_ring *events_ = nullptr;
	rte_mempool *pool_ = nullptr;
	drivers::Iface iface_;
	drivers::TxTemplate tpl_{};
	Worker w_;
	std::vector<Worker *> peers_;
	std::shared_ptr<amst::Session> session_;
	crypto::Secret rx_secret_{}, tx_secret_{};
	std::unique_ptr<crypto::Aead> peer_aead_;
	crypto::TxProtection peer_tx_;
	uint8_t object_[kChunks * kChunk];
};

TEST_F(EarlyDataTest, HeldOnArrivalOpenedAndDeliveredOnceTheReceiverIsReady)
{
	std::vector<rte_mbuf *> burst;
	for (uint64_t pn = 0; pn < 2 * kChunks; pn++)
		burst.push_back(data_packet(pn));
	// A forgery (one flipped bit in the sealed body) and a replay of packet 3.
	rte_mbuf *forged = data_packet(2 * kChunks);
	rte_pktmbuf_mtod_offset(forged, uint8_t *, rte_pktmbuf_data_len(forged) - 40)[0] ^= 1;
	burst.push_back(forged);
	burst.push_back(data_packet(3));
	WorkerTestAccess::rx(w_, burst.data(), uint16_t(burst.size()));
	EXPECT_EQ(counters().rx_held, 2 * kChunks);
	EXPECT_EQ(counters().rx_auth_failed, 1u) << "a forgery must not take a slot";
	EXPECT_EQ(counters().rx_replay, 1u) << "a replay must not be held twice";
	EXPECT_EQ(WorkerTestAccess::held(w_), size_t(2 * kChunks));
	EXPECT_EQ(session_->counters().rx_packets, 0u) << "held packets reached the session early";

	ChunkBytes sink;
	amst::ChunkAssembler as(kChunks, kChunks, kMss, &sink);
	session_->attach_receiver(&as);
	w_.release_held(w_.now_ns());
	EXPECT_EQ(WorkerTestAccess::held(w_), 0u);
	EXPECT_EQ(WorkerTestAccess::dropped(w_), 0u);
	for (uint32_t c = 0; c < kChunks; c++) {
		EXPECT_TRUE(sink.done[c]) << "chunk " << c;
		EXPECT_EQ(memcmp(sink.bufs[c].data(), object_ + c * kChunk, kChunk), 0) << "chunk " << c;
	}
	EXPECT_TRUE(as.all_complete());
}

TEST_F(EarlyDataTest, BeyondTheLimitPacketsAreDroppedAndTheRestFreedWithTheSession)
{
	const unsigned extra = 10;
	for (uint64_t pn = 0; pn < kHeld + extra; pn += 32) {
		rte_mbuf *b[32];
		uint16_t n = 0;
		for (; n < 32 && pn + n < kHeld + extra; n++)
			b[n] = data_packet(pn + n);
		WorkerTestAccess::rx(w_, b, n);
	}
	EXPECT_EQ(counters().rx_held, uint64_t(kHeld));
	EXPECT_EQ(counters().rx_held_over, uint64_t(extra));
	EXPECT_EQ(rte_mempool_avail_count(pool_), kRxPoolSize - kHeld);
	// The session goes before its receiver was ready: every held packet is freed.
	w_.detach();
	EXPECT_EQ(WorkerTestAccess::dropped(w_), uint64_t(kHeld));
	EXPECT_EQ(WorkerTestAccess::held(w_), 0u);
}

} // namespace
} // namespace dwcp::dataplane

int main(int argc, char **argv)
{
	// The tests leave the cryptodev running; rte_eal_cleanup wants it stopped.
	return dwcp::test::run_eal_suite(argc, argv, "256", {"--vdev", "crypto_aesni_gcm0"}, [] {
		for (unsigned d = 0; d < RTE_CRYPTO_MAX_DEVS; d++)
			if (rte_cryptodev_is_valid_dev(uint8_t(d)))
				rte_cryptodev_stop(uint8_t(d));
	});
}
