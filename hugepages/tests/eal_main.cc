// main() of the hugepages `eal` suite (tests/eal_main.h).  -m 64 keeps the heap
// small enough that an absurd pool fails quickly.
#include "tests/eal_main.h"

int main(int argc, char **argv)
{
	return dwcp::test::run_eal_suite(argc, argv, "64", {});
}
