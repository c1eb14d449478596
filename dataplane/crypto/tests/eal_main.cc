// main() of the crypto `eal` suite (tests/eal_main.h), with the intel-ipsec-mb
// AES-GCM cryptodev (crypto_aesni_gcm0) the EAL probes from its plugin directory.
#include <rte_cryptodev.h>

#include "tests/eal_main.h"

int main(int argc, char **argv)
{
	// The tests leave their devices running; rte_eal_cleanup wants them stopped.
	return dwcp::test::run_eal_suite(argc, argv, "128", {"--vdev", "crypto_aesni_gcm0"}, [] {
		for (unsigned d = 0; d < RTE_CRYPTO_MAX_DEVS; d++)
			if (rte_cryptodev_is_valid_dev(uint8_t(d)))
				rte_cryptodev_stop(uint8_t(d));
	});
}
