// The receiver's file: chunks written out of order into a temporary file, made
// durable while they arrive (the flusher), renamed only when the whole-file
// SHA-256 matches.  Its chunk buffers come from the DPDK heap, hence the EAL.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include <rte_memory.h>

#include "control/objects.h"
#include "tests/eal_main.h"

namespace dwcp::control {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint32_t kChunk = 256u << 10;
constexpr uint32_t kBufs = 16;

class SinkFileTest : public ::testing::Test {
protected:
	void SetUp() override
	{
		dir_ = fs::temp_directory_path() / ("dwcp-sink-test-" + std::to_string(getpid()));
		fs::create_directories(dir_);
	}
	void TearDown() override { fs::remove_all(dir_); }

	// Seeded bytes of an object of n bytes and their digest.
	void make(size_t n)
	{
		bytes_.resize(n);
		std::mt19937_64 rng(11);
		for (auto &b : bytes_)
			b = uint8_t(rng());
		Sha256Stream md;
		md.update(bytes_.data(), bytes_.size());
		md.final(&sha_);
	}

	// The object's bytes, and a sink started for them in dir_.
	void open(size_t n, uint64_t session_id)
	{
		make(n);
		sink_ = std::make_unique<SinkFile>();
		bool no_space = false;
		ASSERT_EQ(sink_->create(dir_.string(), "image", bytes_.size(), session_id, &no_space), "");
		uint32_t nb = uint32_t((bytes_.size() + kChunk - 1) / kChunk);
		as_ = std::make_unique<amst::ChunkAssembler>(nb, 512, 1424, sink_.get());
		ASSERT_EQ(sink_->start(kChunk, nb, kBufs, SOCKET_ID_ANY, as_.get()), "");
	}

	// Delivers every chunk as the workers would: within the flow limit, in an
	// order shuffled inside each window of kBufs chunks.
	void deliver(SinkFile &sink, amst::ChunkAssembler &as)
	{
		uint32_t nb = as.nb_chunks();
		std::mt19937 rng(3);
		for (uint32_t lo = 0; lo < nb; lo += kBufs) {
			std::vector<uint32_t> ids;
			for (uint32_t c = lo; c < std::min(nb, lo + kBufs); c++)
				ids.push_back(c);
			std::shuffle(ids.begin(), ids.end(), rng);
			auto until = std::chrono::steady_clock::now() + 10s;
			while (as.window_limit() < ids.size() + lo && std::chrono::steady_clock::now() < until)
				std::this_thread::sleep_for(1ms); // the writer gives buffers back in order
			for (uint32_t c : ids) {
				uint64_t off = uint64_t(c) * kChunk;
				uint32_t len = uint32_t(std::min<uint64_t>(kChunk, bytes_.size() - off));
				uint8_t *b = sink.chunk_buffer(c, len);
				ASSERT_NE(b, nullptr) << "chunk " << c;
				memcpy(b, bytes_.data() + off, len);
				sink.chunk_complete(c, len);
			}
		}
	}

	static bool wait_for(const std::function<bool()> &cond, std::chrono::milliseconds limit)
	{
		auto until = std::chrono::steady_clock::now() + limit;
		while (!cond() && std::chrono::steady_clock::now() < until)
			std::this_thread::sleep_for(1ms);
		return cond();
	}

	std::vector<uint8_t> read(const fs::path &p)
	{
		std::ifstream in(p, std::ios::binary);
		return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
	}

	fs::path dir_;
	std::vector<uint8_t> bytes_;
	Sha256 sha_{};
	std::unique_ptr<amst::ChunkAssembler> as_; // outlives the sink, whose writer uses it
	std::unique_ptr<SinkFile> sink_;
};

TEST_F(SinkFileTest, FlushesWhileArrivingAndRenamesOnlyWhenVerified)
{
	ASSERT_NO_FATAL_FAILURE(open(40u << 20 | 12345, 0x1234)); // a short last chunk, and 2.5 flush steps
	SinkFile &sink = *sink_;
	// Only the temporary file exists while the object arrives.
	EXPECT_FALSE(fs::exists(sink.final_path()));
	EXPECT_TRUE(fs::exists(sink.temp_path()));
	deliver(sink, *as_);
	ASSERT_TRUE(wait_for([&] { return sink.done(); }, 30s));
	ASSERT_FALSE(sink.failed()) << sink.error();
	EXPECT_EQ(sink.digest(), sha_);
	EXPECT_EQ(sink.bytes_written(), bytes_.size());
	// The flusher made the first steps durable before the commit was asked for.
	EXPECT_TRUE(wait_for([&] { return sink.flushes() >= 1; }, 30s));
	std::string temp = sink.temp_path();
	ASSERT_EQ(sink.commit(sha_), "");
	EXPECT_FALSE(fs::exists(temp));
	EXPECT_EQ(read(sink.final_path()), bytes_);
}

TEST_F(SinkFileTest, AWrongDigestLeavesNoFile)
{
	ASSERT_NO_FATAL_FAILURE(open(3u << 20, 0x5678));
	deliver(*sink_, *as_);
	ASSERT_TRUE(wait_for([&] { return sink_->done(); }, 30s));
	Sha256 wrong = sha_;
	wrong[0] ^= 1;
	std::string e = sink_->commit(wrong);
	EXPECT_NE(e.find("sha256 mismatch"), std::string::npos) << e;
	EXPECT_TRUE(fs::is_empty(dir_)) << "left " << fs::directory_iterator(dir_)->path();
}

TEST_F(SinkFileTest, AbortBeforeTheEndRemovesTheTemporaryFile)
{
	ASSERT_NO_FATAL_FAILURE(open(20u << 20, 0x9abc));
	for (uint32_t c = 0; c < kBufs; c++) {
		uint8_t *b = sink_->chunk_buffer(c, kChunk);
		ASSERT_NE(b, nullptr);
		memcpy(b, bytes_.data() + uint64_t(c) * kChunk, kChunk);
		sink_->chunk_complete(c, kChunk);
	}
	sink_->abort();
	EXPECT_TRUE(sink_->done() && sink_->failed());
	EXPECT_TRUE(fs::is_empty(dir_));
}

} // namespace
} // namespace dwcp::control

int main(int argc, char **argv)
{
	return dwcp::test::run_eal_suite(argc, argv, "256", {});
}
