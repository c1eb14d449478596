// main() of the drivers `eal` suite (tests/eal_main.h), with two virtual ports:
// net_ring0 (16 queue pairs, each TX queue looped back to its RX queue, no RSS)
// and net_null0 (RSS).
#include "tests/eal_main.h"

int main(int argc, char **argv)
{
	return dwcp::test::run_eal_suite(argc, argv, "128", {"--vdev", "net_ring0", "--vdev", "net_null0"});
}
