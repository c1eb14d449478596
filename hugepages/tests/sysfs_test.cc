// The kernel-facing helpers against a fake /sys and /proc in a temporary directory.
#include "hugepages/sysfs.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <unistd.h>

using namespace dwcp::hugepages;
namespace fs = std::filesystem;

namespace {

class FakeSys : public testing::Test {
protected:
	void SetUp() override
	{
		root_ = fs::temp_directory_path() / ("dwcp_sysfs_" + std::to_string(getpid()) + "_" +
						     testing::UnitTest::GetInstance()->current_test_info()->name());
		fs::remove_all(root_);
		paths_.sys = (root_ / "sys").string();
		paths_.proc = (root_ / "proc").string();
		fs::create_directories(root_ / "proc/sys/vm");
		write("proc/mounts", "proc /proc proc rw 0 0\n");
	}
	void TearDown() override { fs::remove_all(root_); }

	void write(const std::string &rel, const std::string &text)
	{
		fs::create_directories((root_ / rel).parent_path());
		std::ofstream(root_ / rel) << text;
	}
	std::string read(const std::string &rel)
	{
		std::ifstream f(root_ / rel);
		std::string s;
		f >> s;
		return s;
	}
	void node(int k, int total, int free)
	{
		std::string d = "sys/devices/system/node/node" + std::to_string(k) + "/hugepages/hugepages-2048kB/";
		write(d + "nr_hugepages", std::to_string(total) + "\n");
		write(d + "free_hugepages", std::to_string(free) + "\n");
	}

	fs::path root_;
	SysPaths paths_;
};

} // namespace

TEST_F(FakeSys, StatusPerNodeAndMounts)
{
	paths_.nb_nodes = 2;
	node(0, 512, 500);
	node(1, 256, 0);
	write("proc/mounts", "proc /proc proc rw 0 0\nhugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0\n");
	HugepageStatus st;
	ASSERT_EQ(hugepage_status(&st, 2048, paths_), "");
	ASSERT_EQ(st.nodes.size(), 2u);
	EXPECT_EQ(st.nodes[0].total, 512u);
	EXPECT_EQ(st.nodes[0].free, 500u);
	EXPECT_EQ(st.nodes[1].node, 1);
	EXPECT_EQ(st.total(), 768u);
	EXPECT_EQ(st.free(), 500u);
	ASSERT_EQ(st.mounts.size(), 1u);
	EXPECT_EQ(st.mounts[0].rfind("/dev/hugepages", 0), 0u);
}

TEST_F(FakeSys, StatusWithoutNumaUsesGlobalCounters)
{
	paths_.nb_nodes = 0;
	write("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "64\n");
	write("sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages", "60\n");
	HugepageStatus st;
	ASSERT_EQ(hugepage_status(&st, 2048, paths_), "");
	ASSERT_EQ(st.nodes.size(), 1u);
	EXPECT_EQ(st.nodes[0].node, -1);
	EXPECT_EQ(st.free(), 60u);
}

TEST_F(FakeSys, MissingFileIsNamed)
{
	paths_.nb_nodes = 1;
	HugepageStatus st;
	auto err = hugepage_status(&st, 2048, paths_);
	EXPECT_NE(err.find("node0/hugepages/hugepages-2048kB/nr_hugepages"), std::string::npos) << err;
}

TEST_F(FakeSys, ReserveWritesTheNodeFile)
{
	paths_.nb_nodes = 2;
	node(0, 0, 0);
	node(1, 0, 0);
	uint32_t got = 0;
	ASSERT_EQ(hugepage_reserve(128, 1, &got, 2048, paths_), "");
	EXPECT_EQ(got, 128u);
	EXPECT_EQ(read("sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages"), "128");
	EXPECT_EQ(read("sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages"), "0");
}

TEST_F(FakeSys, ReserveWithoutNumaWritesProc)
{
	paths_.nb_nodes = 0;
	write("proc/sys/vm/nr_hugepages", "0\n");
	uint32_t got = 0;
	ASSERT_EQ(hugepage_reserve(32, 3, &got, 2048, paths_), "");
	EXPECT_EQ(read("proc/sys/vm/nr_hugepages"), "32");
}

TEST_F(FakeSys, ReserveOnMissingNodeSaysHowManyThereAre)
{
	paths_.nb_nodes = 1;
	node(0, 0, 0);
	uint32_t got = 0;
	auto err = hugepage_reserve(8, 3, &got, 2048, paths_);
	EXPECT_NE(err.find("node 3 does not exist (this machine has 1 NUMA node)"), std::string::npos) << err;
}

TEST_F(FakeSys, ReserveUnwritableFileIsNamed)
{
	paths_.nb_nodes = 1; // no node directory: the write fails
	uint32_t got = 0;
	auto err = hugepage_reserve(8, 0, &got, 2048, paths_);
	EXPECT_NE(err.find("cannot open"), std::string::npos) << err;
	EXPECT_NE(err.find("node0"), std::string::npos) << err;
}

TEST_F(FakeSys, EalCheckAcceptsNoHuge)
{
	paths_.nb_nodes = 1;
	node(0, 0, 0);
	const char *args[] = {"gw", "--no-huge", "-m", "256"};
	EXPECT_EQ(eal_memory_check({const_cast<char **>(args), 4}, 256, paths_), "");
}

TEST_F(FakeSys, EalCheckWithoutPagesSaysHowToFix)
{
	paths_.nb_nodes = 1;
	node(0, 0, 0);
	const char *args[] = {"gw", "-l", "0-1"};
	auto err = eal_memory_check({const_cast<char **>(args), 3}, 160, paths_);
	EXPECT_EQ(err, "hugepages: 0 of 0 2048 kB pages free (need 80 for 160 MiB) and the EAL was not given --no-huge: "
		       "run `dwcp-hugepages reserve --pages 80` or pass --no-huge -m 160 to the EAL");
	EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST_F(FakeSys, EalCheckWantsAMountUnlessInMemory)
{
	paths_.nb_nodes = 1;
	node(0, 512, 512);
	const char *args[] = {"gw", "-l", "0-1", "--in-memory"};
	EXPECT_NE(eal_memory_check({const_cast<char **>(args), 3}, 160, paths_).find("no hugetlbfs is mounted"),
		  std::string::npos);
	EXPECT_EQ(eal_memory_check({const_cast<char **>(args), 4}, 160, paths_), "");
	write("proc/mounts", "nodev /dev/hugepages hugetlbfs rw 0 0\n");
	EXPECT_EQ(eal_memory_check({const_cast<char **>(args), 3}, 160, paths_), "");
}

TEST_F(FakeSys, MountRefusesAnotherFilesystem)
{
	write("proc/mounts", "tmpfs /mnt/x tmpfs rw 0 0\nnodev /dev/hugepages hugetlbfs rw 0 0\n");
	bool mounted = true;
	EXPECT_EQ(hugetlbfs_mount("/dev/hugepages", &mounted, 2048, paths_), "");
	EXPECT_FALSE(mounted);
	EXPECT_NE(hugetlbfs_mount("/mnt/x", &mounted, 2048, paths_).find("/mnt/x is already a tmpfs mount"),
		  std::string::npos);
}
