// main() of the drivers `eal` suite: the EAL without hugepages or PCI, with a file
// prefix per test binary and process, and two virtual ports: net_ring0 (16 queue
// pairs, each TX queue looped back to its RX queue, no RSS) and net_null0 (RSS).
//
// --in-memory is not used: DPDK 22.11 treats --no-huge as legacy memory, which it
// refuses to combine with --in-memory; --no-shconf gives the same isolation.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_eal.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	testing::InitGoogleTest(&argc, argv);
	std::string prog = argv[0];
	std::string prefix = "--file-prefix=dwcp_" + prog.substr(prog.find_last_of('/') + 1) + "_" +
			     std::to_string(getpid());
	std::vector<const char *> eal = {argv[0], "--no-huge", "--no-shconf", "--no-pci", "--no-telemetry",
					 "-m", "128", "--log-level=error", "-l", "0", prefix.c_str(),
					 "--vdev", "net_ring0", "--vdev", "net_null0"};
	if (rte_eal_init(int(eal.size()), const_cast<char **>(eal.data())) < 0) {
		fprintf(stderr, "%s: rte_eal_init failed\n", argv[0]);
		return 1;
	}
	int rc = RUN_ALL_TESTS();
	// --no-shconf still creates a runtime directory (for the multi-process socket).
	std::string runtime_dir = rte_eal_get_runtime_dir();
	rte_eal_cleanup();
	std::error_code ec;
	std::filesystem::remove_all(runtime_dir, ec);
	return rc;
}
