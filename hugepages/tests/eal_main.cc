// main() of the hugepages `eal` suite: starts the EAL without hugepages, in memory,
// with a file prefix of its own so tests run in parallel, then runs the tests.
// -m 64 keeps the heap small enough that an absurd pool fails quickly.
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
	std::string prefix = "dwcp_" + prog.substr(prog.find_last_of('/') + 1) + "_" + std::to_string(getpid());
	std::string file_prefix = "--file-prefix=" + prefix;
	std::vector<const char *> eal = {argv[0], "--no-huge", "--no-shconf", "--no-pci", "--no-telemetry",
					 "-m", "64", "--log-level=error", "-l", "0", file_prefix.c_str()};
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
