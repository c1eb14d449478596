#pragma once
// The kernel side of hugepages: how many are reserved and free on each NUMA node,
// where hugetlbfs is mounted, reserving more, and the start-up check that tells the
// operator in one line why the EAL would fail and what to run.
//
// Everything reads and writes through SysPaths so tests point it at a fake tree.
// These are cold-path helpers for the gateway's start-up and for dwcp-hugepages;
// they do syscalls and allocate freely.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace dwcp::hugepages {

struct SysPaths {
	std::string sys = "/sys";     // .../devices/system/node/node<K>/hugepages/hugepages-<kB>kB/
	std::string proc = "/proc";   // .../sys/vm/nr_hugepages, .../mounts, .../meminfo
	int nb_nodes = -1;            // NUMA nodes; -1 asks libnuma (0 when libnuma says NUMA is unavailable)
};

struct NodePages {
	int node = -1;                // -1: the machine has no NUMA information (global counters)
	uint32_t total = 0;           // nr_hugepages
	uint32_t free = 0;            // free_hugepages
};

struct HugepageStatus {
	uint32_t page_kb = 2048;
	std::vector<NodePages> nodes;        // one per NUMA node, or one entry with node -1
	std::vector<std::string> mounts;     // hugetlbfs mount points, with their options
	uint32_t total() const;
	uint32_t free() const;
};

// Number of NUMA nodes as paths.nb_nodes or libnuma says (0 = no NUMA).
int numa_nodes(const SysPaths &paths);

// Reads per-node counts of page_kb pages and the hugetlbfs mounts.
[[nodiscard]] std::string hugepage_status(HugepageStatus *out, uint32_t page_kb = 2048,
					  const SysPaths &paths = {});

// Sets the number of page_kb hugepages on `node` (or machine-wide when node is -1 or
// the machine has no NUMA) to nr_pages, and reads back what the kernel gave.  Fails
// when not root, when the file cannot be written, and when the kernel gave fewer
// pages than asked (saying how many); *got holds the count in every case it could read.
[[nodiscard]] std::string hugepage_reserve(uint32_t nr_pages, int node, uint32_t *got, uint32_t page_kb = 2048,
					   const SysPaths &paths = {});

// Mounts hugetlbfs at dir (creating it) unless a hugetlbfs is already mounted there.
// *mounted is true when this call mounted it.
[[nodiscard]] std::string hugetlbfs_mount(const std::string &dir, bool *mounted, uint32_t page_kb = 2048,
					  const SysPaths &paths = {});

// Called by the gateway before rte_eal_init with the EAL's arguments and the bytes the
// pool plan needs (PoolPlan::eal_mem_mib).  Returns "" when the EAL can get its memory:
// --no-huge was given, or enough 2 MiB pages are free and hugetlbfs is mounted (or
// --in-memory lets the EAL map them without a mount).  Otherwise one line saying what
// is missing and the two ways out, e.g.
//   "hugepages: 0 of 0 2048 kB pages free (need 80 for 160 MiB) and the EAL was not given
//    --no-huge: run `dwcp-hugepages reserve --pages 80` or pass --no-huge -m 160 to the EAL"
[[nodiscard]] std::string eal_memory_check(std::span<char *const> eal_args, uint64_t need_mib,
					   const SysPaths &paths = {});

} // namespace dwcp::hugepages
