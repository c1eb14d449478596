#pragma once
// The main() of every component's `eal` test suite (drivers, hugepages,
// dataplane/crypto): starts the EAL without hugepages or PCI, with a file prefix
// per test binary and process so the suites run in parallel, runs the tests,
// then cleans the EAL up and removes its runtime directory (--no-shconf still
// creates one, for the multi-process socket).
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

namespace dwcp::test {

// memory_mb: the EAL's -m; extra: the suite's own EAL arguments (its --vdev
// devices); before_cleanup: what must happen between the tests and
// rte_eal_cleanup (e.g. stopping devices the tests left running), or nullptr.
inline int run_eal_suite(int argc, char **argv, const char *memory_mb, const std::vector<const char *> &extra,
			 void (*before_cleanup)() = nullptr)
{
	testing::InitGoogleTest(&argc, argv);
	std::string prog = argv[0];
	std::string prefix = "--file-prefix=dwcp_" + prog.substr(prog.find_last_of('/') + 1) + "_" +
			     std::to_string(getpid());
	std::vector<const char *> eal = {argv[0], "--no-huge", "--no-shconf", "--no-pci", "--no-telemetry",
					 "-m", memory_mb, "--log-level=error", "-l", "0", prefix.c_str()};
	eal.insert(eal.end(), extra.begin(), extra.end());
	if (rte_eal_init(int(eal.size()), const_cast<char **>(eal.data())) < 0) {
		fprintf(stderr, "%s: rte_eal_init failed\n", argv[0]);
		return 1;
	}
	int rc = RUN_ALL_TESTS();
	if (before_cleanup)
		before_cleanup();
	std::string runtime_dir = rte_eal_get_runtime_dir();
	rte_eal_cleanup();
	std::error_code ec;
	std::filesystem::remove_all(runtime_dir, ec);
	return rc;
}

} // namespace dwcp::test
