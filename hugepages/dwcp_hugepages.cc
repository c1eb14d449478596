// dwcp-hugepages: reserve 2 MiB hugepages for the gateway and show what there is.
//
//   dwcp-hugepages reserve --pages N [--node K] [--mount DIR] [--no-mount]
//       sets nr_hugepages of node K (or machine-wide) to N, then mounts hugetlbfs
//       at DIR (default /dev/hugepages) when nothing is mounted there
//   dwcp-hugepages status
//       per node total/free pages and the hugetlbfs mounts
//
// Exit status 0 on success, 1 with one line on stderr otherwise.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <getopt.h>
#include <string>

#include "hugepages/sysfs.h"

using namespace dwcp::hugepages;

namespace {

// Library errors start with "hugepages: "; the tool says its own name instead.
void fail(const std::string &err)
{
	const char *msg = err.c_str();
	if (err.rfind("hugepages: ", 0) == 0)
		msg += strlen("hugepages: ");
	fprintf(stderr, "dwcp-hugepages: %s\n", msg);
}

void usage(FILE *f)
{
	fprintf(f, "usage: dwcp-hugepages reserve --pages N [--node K] [--mount DIR] [--no-mount]\n"
		   "       dwcp-hugepages status\n");
}

int status()
{
	HugepageStatus st;
	if (auto err = hugepage_status(&st); !err.empty()) {
		fail(err);
		return 1;
	}
	printf("%-8s %10s %10s   (%u kB pages)\n", "node", "total", "free", st.page_kb);
	for (auto &n : st.nodes)
		printf("%-8s %10u %10u\n", n.node < 0 ? "all" : std::to_string(n.node).c_str(), n.total, n.free);
	if (st.mounts.empty())
		printf("hugetlbfs: not mounted (the EAL then needs --in-memory or --no-huge)\n");
	for (auto &m : st.mounts)
		printf("hugetlbfs: %s\n", m.c_str());
	return 0;
}

bool parse_uint(const char *s, long max, long *v)
{
	char *end;
	errno = 0;
	long x = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || x < 0 || x > max)
		return false;
	*v = x;
	return true;
}

int reserve(int argc, char **argv)
{
	static const option opts[] = {
		{"pages", required_argument, nullptr, 'p'},
		{"node", required_argument, nullptr, 'n'},
		{"mount", required_argument, nullptr, 'm'},
		{"no-mount", no_argument, nullptr, 'M'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	long pages = -1, node = -1;
	std::string dir = "/dev/hugepages";
	bool do_mount = true;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, nullptr)) != -1) {
		switch (c) {
		case 'p':
			if (!parse_uint(optarg, 1 << 24, &pages)) {
				fprintf(stderr, "dwcp-hugepages: --pages %s is not a page count\n", optarg);
				return 1;
			}
			break;
		case 'n':
			if (!parse_uint(optarg, 1023, &node)) {
				fprintf(stderr, "dwcp-hugepages: --node %s is not a NUMA node number\n", optarg);
				return 1;
			}
			break;
		case 'm':
			dir = optarg;
			break;
		case 'M':
			do_mount = false;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (pages < 0 || optind != argc) {
		usage(stderr);
		return 1;
	}
	uint32_t got = 0;
	if (auto err = hugepage_reserve(uint32_t(pages), int(node), &got); !err.empty()) {
		fail(err);
		return 1;
	}
	printf("reserved %u pages of 2048 kB%s\n", got, node >= 0 ? (" on node " + std::to_string(node)).c_str() : "");
	if (do_mount) {
		bool mounted = false;
		if (auto err = hugetlbfs_mount(dir, &mounted); !err.empty()) {
			fail(err);
			return 1;
		}
		printf("hugetlbfs %s at %s\n", mounted ? "mounted" : "already mounted", dir.c_str());
	}
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	std::string cmd = argv[1];
	if (cmd == "status")
		return status();
	if (cmd == "reserve")
		return reserve(argc - 1, argv + 1);
	if (cmd == "-h" || cmd == "--help" || cmd == "help") {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "dwcp-hugepages: unknown command '%s'\n", cmd.c_str());
	usage(stderr);
	return 1;
}
