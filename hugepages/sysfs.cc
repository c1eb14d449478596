#include "hugepages/sysfs.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <numa.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

namespace dwcp::hugepages {

namespace {

std::string pages_dir(const SysPaths &paths, int node, uint32_t page_kb)
{
	std::string kb = "hugepages-" + std::to_string(page_kb) + "kB";
	if (node < 0)
		return paths.sys + "/kernel/mm/hugepages/" + kb;
	return paths.sys + "/devices/system/node/node" + std::to_string(node) + "/hugepages/" + kb;
}

// Reads one unsigned integer from a sysfs/procfs file.
std::string read_u32(const std::string &file, uint32_t *v)
{
	std::ifstream f(file);
	if (!f)
		return "cannot read " + file + ": " + strerror(errno);
	unsigned long x;
	if (!(f >> x) || x > UINT32_MAX)
		return "cannot parse a page count in " + file;
	*v = uint32_t(x);
	return "";
}

std::string write_u32(const std::string &file, uint32_t v)
{
	FILE *f = fopen(file.c_str(), "w");
	if (f == nullptr)
		return "cannot open " + file + " for writing: " + strerror(errno);
	int rc = fprintf(f, "%u\n", v);
	int err = errno;
	if (fclose(f) != 0 && rc >= 0)
		rc = -1, err = errno;
	if (rc < 0)
		return "cannot write " + std::to_string(v) + " to " + file + ": " + strerror(err);
	return "";
}

bool has_arg(std::span<char *const> args, const char *name)
{
	for (char *a : args)
		if (a != nullptr && strcmp(a, name) == 0)
			return true;
	return false;
}

} // namespace

uint32_t HugepageStatus::total() const
{
	uint32_t n = 0;
	for (auto &x : nodes)
		n += x.total;
	return n;
}

uint32_t HugepageStatus::free() const
{
	uint32_t n = 0;
	for (auto &x : nodes)
		n += x.free;
	return n;
}

int numa_nodes(const SysPaths &paths)
{
	if (paths.nb_nodes >= 0)
		return paths.nb_nodes;
	if (numa_available() < 0)
		return 0;
	return numa_num_configured_nodes();
}

std::string hugepage_status(HugepageStatus *out, uint32_t page_kb, const SysPaths &paths)
{
	HugepageStatus st;
	st.page_kb = page_kb;
	int nb_nodes = numa_nodes(paths);
	std::vector<int> nodes;
	if (nb_nodes == 0)
		nodes.push_back(-1);
	for (int node = 0; node < nb_nodes; node++)
		nodes.push_back(node);
	for (int node : nodes) {
		NodePages np;
		np.node = node;
		std::string dir = pages_dir(paths, node, page_kb);
		if (auto err = read_u32(dir + "/nr_hugepages", &np.total); !err.empty())
			return "hugepages: " + err;
		if (auto err = read_u32(dir + "/free_hugepages", &np.free); !err.empty())
			return "hugepages: " + err;
		st.nodes.push_back(np);
	}
	std::ifstream mounts(paths.proc + "/mounts");
	std::string line;
	while (std::getline(mounts, line)) {
		std::istringstream ls(line);
		std::string dev, dir, type, opts;
		if (ls >> dev >> dir >> type >> opts && type == "hugetlbfs")
			st.mounts.push_back(dir + " (" + opts + ")");
	}
	*out = std::move(st);
	return "";
}

std::string hugepage_reserve(uint32_t nr_pages, int node, uint32_t *got, uint32_t page_kb, const SysPaths &paths)
{
	int nb_nodes = numa_nodes(paths);
	if (nb_nodes == 0)
		node = -1;
	else if (node >= nb_nodes)
		return "hugepages: node " + std::to_string(node) + " does not exist (this machine has " +
		       std::to_string(nb_nodes) + " NUMA node" + (nb_nodes > 1 ? "s)" : ")");
	// Without NUMA the kernel's global knob; with NUMA and no node given, the global
	// sysfs file (the kernel spreads the pages over the nodes); else the node's own.
	std::string file;
	if (nb_nodes == 0)
		file = paths.proc + "/sys/vm/nr_hugepages";
	else
		file = pages_dir(paths, node, page_kb) + "/nr_hugepages";
	if (paths.sys == "/sys" && geteuid() != 0)
		return "hugepages: reserving pages needs root (it writes " + file + ")";
	if (auto err = write_u32(file, nr_pages); !err.empty())
		return "hugepages: " + err;
	if (auto err = read_u32(file, got); !err.empty())
		return "hugepages: " + err;
	if (*got < nr_pages) {
		std::string where = node >= 0 ? " on node " + std::to_string(node) : "";
		return "hugepages: asked for " + std::to_string(nr_pages) + " pages of " + std::to_string(page_kb) +
		       " kB" + where + " but the kernel gave " + std::to_string(*got) +
		       " (memory is short or fragmented: free some, or reserve at boot with hugepages= on the kernel command line)";
	}
	return "";
}

std::string hugetlbfs_mount(const std::string &dir, bool *mounted, uint32_t page_kb, const SysPaths &paths)
{
	*mounted = false;
	std::ifstream mounts(paths.proc + "/mounts");
	std::string line;
	while (std::getline(mounts, line)) {
		std::istringstream ls(line);
		std::string dev, mdir, type;
		if (ls >> dev >> mdir >> type && mdir == dir) {
			if (type == "hugetlbfs")
				return "";
			return "hugepages: " + dir + " is already a " + type + " mount, not hugetlbfs";
		}
	}
	if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
		return "hugepages: cannot create " + dir + ": " + strerror(errno);
	std::string opts = "pagesize=" + std::to_string(page_kb) + "K";
	if (mount("nodev", dir.c_str(), "hugetlbfs", 0, opts.c_str()) != 0)
		return "hugepages: cannot mount hugetlbfs (" + opts + ") at " + dir + ": " + strerror(errno) +
		       (errno == EPERM ? " (needs root / CAP_SYS_ADMIN)" : "");
	*mounted = true;
	return "";
}

std::string eal_memory_check(std::span<char *const> eal_args, uint64_t need_mib, const SysPaths &paths)
{
	if (has_arg(eal_args, "--no-huge"))
		return "";
	HugepageStatus st;
	if (auto err = hugepage_status(&st, 2048, paths); !err.empty())
		return err + " (pass --no-huge -m " + std::to_string(need_mib) + " to the EAL to run without hugepages)";
	uint32_t need_pages = uint32_t((need_mib + 1) / 2);
	std::string fix = "run `dwcp-hugepages reserve --pages " + std::to_string(st.total() - st.free() + need_pages) +
			  "` or pass --no-huge -m " + std::to_string(need_mib) + " to the EAL";
	if (st.free() < need_pages)
		return "hugepages: " + std::to_string(st.free()) + " of " + std::to_string(st.total()) +
		       " 2048 kB pages free (need " + std::to_string(need_pages) + " for " + std::to_string(need_mib) +
		       " MiB) and the EAL was not given --no-huge: " + fix;
	if (st.mounts.empty() && !has_arg(eal_args, "--in-memory"))
		return "hugepages: " + std::to_string(st.free()) +
		       " pages are free but no hugetlbfs is mounted and the EAL was given neither --in-memory nor --no-huge: "
		       "run `dwcp-hugepages reserve --pages " + std::to_string(st.total()) +
		       "` (it mounts /dev/hugepages) or pass --in-memory to the EAL";
	return "";
}

} // namespace dwcp::hugepages
