// main() of the crypto `eal` suite: the EAL without hugepages or PCI, with a file
// prefix per test binary and process, and the intel-ipsec-mb AES-GCM cryptodev
// (crypto_aesni_gcm0) the EAL probes from its plugin directory.
//
// --in-memory is not used: DPDK 22.11 treats --no-huge as legacy memory, which it
// refuses to combine with --in-memory; --no-shconf gives the same isolation.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <rte_cryptodev.h>
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
					 "--vdev", "crypto_aesni_gcm0"};
	if (rte_eal_init(int(eal.size()), const_cast<char **>(eal.data())) < 0) {
		fprintf(stderr, "%s: rte_eal_init failed\n", argv[0]);
		return 1;
	}
	int rc = RUN_ALL_TESTS();
	// The tests leave their devices running; rte_eal_cleanup wants them stopped.
	for (unsigned d = 0; d < RTE_CRYPTO_MAX_DEVS; d++)
		if (rte_cryptodev_is_valid_dev(uint8_t(d)))
			rte_cryptodev_stop(uint8_t(d));
	// --no-shconf still creates a runtime directory (for the multi-process socket).
	std::string runtime_dir = rte_eal_get_runtime_dir();
	rte_eal_cleanup();
	std::error_code ec;
	std::filesystem::remove_all(runtime_dir, ec);
	return rc;
}
