// The sender's source file: its whole-file SHA-256 runs a bounded lead ahead of
// what the workers have claimed, and is exact when the last chunk is claimed.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "control/objects.h"

namespace dwcp::control {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A file of seeded random bytes in the temporary directory, removed at the end
// of the test whatever its outcome.
class SourceFileTest : public ::testing::Test {
protected:
	void make(size_t n)
	{
		path_ = fs::temp_directory_path() / ("dwcp-objects-test-" + std::to_string(getpid()));
		bytes_.resize(n);
		std::mt19937_64 rng(7);
		for (auto &b : bytes_)
			b = uint8_t(rng());
		std::ofstream(path_, std::ios::binary)
			.write(reinterpret_cast<const char *>(bytes_.data()), std::streamsize(n));
	}
	void TearDown() override
	{
		if (!path_.empty())
			fs::remove(path_);
	}
	fs::path path_;
	std::vector<uint8_t> bytes_;
};

Sha256 digest_of(const std::vector<uint8_t> &bytes)
{
	Sha256 d;
	Sha256Stream md;
	md.update(bytes.data(), bytes.size());
	md.final(&d);
	return d;
}

bool wait_done(const SourceFile &f, std::chrono::milliseconds limit)
{
	auto until = std::chrono::steady_clock::now() + limit;
	while (!f.hash_done() && std::chrono::steady_clock::now() < until)
		std::this_thread::sleep_for(1ms);
	return f.hash_done();
}

TEST_F(SourceFileTest, HashWaitsForClaimsAndMatchesTheFile)
{
	make(24u << 20); // six of the hash's 4 MiB steps
	SourceFile f;
	ASSERT_EQ(f.open(path_.string(), 1u << 20), "");
	f.set_chunk_size(256u << 10);
	// Nothing claimed: the hash stops after its first step, within the lead.
	EXPECT_FALSE(wait_done(f, 300ms));
	// Claims up to the middle: still not done.
	for (uint32_t c = 0; c < 48; c++)
		ASSERT_EQ(f.chunk_payload(c).size(), 256u << 10);
	EXPECT_FALSE(wait_done(f, 300ms));
	// The last chunk claimed: the digest is the file's.
	for (uint32_t c = 48; c < 96; c++)
		ASSERT_EQ(f.chunk_payload(c).data(), f.bytes().data() + uint64_t(c) * (256u << 10));
	ASSERT_TRUE(wait_done(f, 10s));
	EXPECT_EQ(f.hash_error(), "");
	EXPECT_EQ(f.digest(), digest_of(bytes_));
}

TEST_F(SourceFileTest, ClaimsOutOfOrderCountTheFurthest)
{
	make(12u << 20);
	SourceFile f;
	ASSERT_EQ(f.open(path_.string(), 1u << 20), "");
	f.note_claimed(12u << 20); // the last chunk, claimed first by another worker
	f.note_claimed(1u << 20);  // an earlier one after it does not move the mark back
	ASSERT_TRUE(wait_done(f, 10s));
	EXPECT_EQ(f.digest(), digest_of(bytes_));
}

TEST_F(SourceFileTest, StoppingAHeldHashEndsIt)
{
	make(16u << 20);
	SourceFile f;
	ASSERT_EQ(f.open(path_.string(), 1u << 20), "");
	EXPECT_FALSE(wait_done(f, 100ms));
	// Leaving the test destroys f, which must stop the waiting hasher and join it.
}

} // namespace
} // namespace dwcp::control
