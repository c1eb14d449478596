#include "control/baselines.h"

#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <unistd.h>

namespace dwcp::control {
namespace {

class Baselines : public ::testing::Test {
protected:
	void SetUp() override
	{
		char tmpl[] = "/tmp/dwcp-baselines.XXXXXX";
		ASSERT_NE(mkdtemp(tmpl), nullptr);
		root_ = tmpl;
		ASSERT_EQ(store_.open(root_ + "/store", true), "");
	}
	void TearDown() override { std::system(("rm -rf '" + root_ + "'").c_str()); }

	std::string write(const std::string &name, const std::string &data)
	{
		std::string p = root_ + "/" + name;
		std::ofstream(p, std::ios::binary) << data;
		return p;
	}
	Sha256 sha(const std::string &path)
	{
		Sha256 s{};
		EXPECT_EQ(sha256_file(path, &s), "");
		return s;
	}

	std::string root_;
	BaselineStore store_;
};

TEST_F(Baselines, AdoptedVersionsListNewestLastAndVerify)
{
	std::string v1 = write("v1", std::string(10000, 'a')), v2 = write("v2", std::string(20000, 'b'));
	Baseline b;
	ASSERT_EQ(store_.adopt("vm.img", 1, v1, sha(v1), &b), "");
	EXPECT_EQ(b.size, 10000u);
	ASSERT_EQ(store_.adopt("vm.img", 2, v2, sha(v2)), "");
	ASSERT_EQ(store_.adopt("other.img", 7, v1, sha(v1)), "");
	auto list = store_.list("vm.img");
	ASSERT_EQ(list.size(), 2u);
	EXPECT_EQ(list[0].version, 1u);
	EXPECT_EQ(list[1].version, 2u);
	EXPECT_EQ(list[1].sha256, sha(v2));
	Baseline latest;
	ASSERT_TRUE(store_.latest("vm.img", &latest));
	EXPECT_EQ(latest.version, 2u);
	EXPECT_EQ(store_.verify(latest), "");
	EXPECT_FALSE(store_.latest("nothing.img", &latest));
}

TEST_F(Baselines, TheBaselineIsACopyNotTheSource)
{
	std::string v1 = write("v1", "original bytes");
	Baseline b;
	ASSERT_EQ(store_.adopt("vm.img", 1, v1, sha(v1), &b), "");
	write("v1", "changed bytes!"); // same size, rewritten in place
	EXPECT_EQ(store_.verify(b), "");
}

TEST_F(Baselines, ACorruptedBaselineIsReportedNeverUsed)
{
	std::string v1 = write("v1", std::string(4096, 'x'));
	Baseline b;
	ASSERT_EQ(store_.adopt("vm.img", 3, v1, sha(v1), &b), "");
	{
		std::fstream f(b.path, std::ios::in | std::ios::out | std::ios::binary);
		f.seekp(100);
		f.put('y');
	}
	EXPECT_NE(store_.verify(b).find("sha256 mismatch"), std::string::npos) << store_.verify(b);
	// A file that changed size drops out of the list, with the reason.
	write("store/vm.img@3", "short");
	std::vector<std::string> problems;
	EXPECT_TRUE(store_.list("vm.img", &problems).empty());
	ASSERT_EQ(problems.size(), 1u);
	EXPECT_NE(problems[0].find("baseline vm.img@3"), std::string::npos) << problems[0];
}

TEST_F(Baselines, CheckRereadsOnlyAFileThatChanged)
{
	std::string v1 = write("v1", std::string(8192, 'x'));
	Baseline b;
	ASSERT_EQ(store_.adopt("vm.img", 1, v1, sha(v1), &b), "");
	// Adopt stamped it: checked without reading.  The stamp holds the digest it
	// was checked against, so another record is read and refused.
	EXPECT_EQ(store_.check(b), "");
	Baseline liar = b;
	liar.sha256[0] ^= 1;
	EXPECT_NE(store_.check(liar).find("sha256 mismatch"), std::string::npos);
	{
		std::fstream f(b.path, std::ios::in | std::ios::out | std::ios::binary);
		f.seekp(10);
		f.put('y');
	}
	EXPECT_NE(store_.check(b).find("sha256 mismatch"), std::string::npos) << store_.check(b);
	// Written back as it was: it passes again, and is stamped anew.
	{
		std::fstream f(b.path, std::ios::in | std::ios::out | std::ios::binary);
		f.seekp(10);
		f.put('x');
	}
	EXPECT_EQ(store_.check(b), "");
	EXPECT_NE(store_.check(liar).find("sha256 mismatch"), std::string::npos);
}

TEST_F(Baselines, RecordsThatDoNotParseOrLackTheirFileAreSkipped)
{
	write("store/vm.img@4.sha256", "not a digest 12\n");
	write("store/vm.img@5.sha256", std::string(64, 'a') + " 3\n"); // no data file
	write("store/vm.img@6", "abc");                                  // no record: an interrupted adopt
	std::vector<std::string> problems;
	EXPECT_TRUE(store_.list("vm.img", &problems).empty());
	ASSERT_EQ(problems.size(), 2u);
	std::string v = write("v", "abc");
	// The half-adopted version 6 can be adopted properly.
	EXPECT_EQ(store_.adopt("vm.img", 6, v, sha(v)), "");
	EXPECT_EQ(store_.list("vm.img").size(), 1u);
}

TEST_F(Baselines, VersionsAreNeverOverwrittenAndNamesAreChecked)
{
	std::string v = write("v", "data");
	ASSERT_EQ(store_.adopt("vm.img", 1, v, sha(v)), "");
	EXPECT_NE(store_.adopt("vm.img", 1, v, sha(v)).find("exists already"), std::string::npos);
	EXPECT_NE(store_.adopt("../x", 1, v, sha(v)), "");
	EXPECT_NE(store_.adopt("a@b", 1, v, sha(v)).find("'@'"), std::string::npos);
	EXPECT_NE(store_.adopt("vm.img", 2, root_ + "/missing", sha(v)).find("cannot adopt"), std::string::npos);
}

TEST_F(Baselines, PruneKeepsTheNewest)
{
	std::string v = write("v", "data");
	for (uint64_t i = 1; i <= 5; i++)
		ASSERT_EQ(store_.adopt("vm.img", i, v, sha(v)), "");
	ASSERT_EQ(store_.prune("vm.img", 2), "");
	auto list = store_.list("vm.img");
	ASSERT_EQ(list.size(), 2u);
	EXPECT_EQ(list[0].version, 4u);
	EXPECT_EQ(list[1].version, 5u);
	EXPECT_NE(access((root_ + "/store/vm.img@1").c_str(), F_OK), 0);
}

TEST_F(Baselines, OpenNamesWhatIsWrong)
{
	BaselineStore s;
	std::string f = write("plain", "x");
	EXPECT_NE(s.open(f, true).find("is not a directory"), std::string::npos);
	EXPECT_NE(s.open(root_ + "/absent", false).find("absent"), std::string::npos);
	EXPECT_EQ(s.open(root_ + "/made", true), "");
}

TEST(Sha256Hex, ParsesOnlyLowercaseHexOfTheRightLength)
{
	Sha256 s{};
	EXPECT_TRUE(parse_sha256_hex(std::string(62, '0') + "ff", &s));
	EXPECT_EQ(s[31], 0xff);
	EXPECT_FALSE(parse_sha256_hex(std::string(63, '0'), &s));
	EXPECT_FALSE(parse_sha256_hex(std::string(63, '0') + "g", &s));
}

} // namespace
} // namespace dwcp::control
