// dwcp-gateway: see control/gateway.h.
#include <cstdio>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_errno.h>

#include "control/gateway.h"

int main(int argc, char **argv)
{
	// Progress goes to logs and pipes as often as to terminals: a line at a time.
	setvbuf(stdout, nullptr, _IOLBF, 0);
	// Our options come after `--`; check them before the EAL starts, so a typo costs
	// no hugepage mapping and no device probe.
	int sep = 0;
	for (int i = 1; i < argc; i++)
		if (std::string(argv[i]) == "--") {
			sep = i;
			break;
		}
	std::vector<std::string> ours;
	for (int i = sep ? sep + 1 : argc; i < argc; i++)
		ours.emplace_back(argv[i]);
	if (!sep) {
		for (int i = 1; i < argc; i++)
			if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
				fputs(dwcp::control::usage(), stdout);
				return 0;
			}
	}
	dwcp::control::GatewayOptions o;
	bool help = false;
	std::string err = dwcp::control::parse_options(ours, &o, &help);
	if (help) {
		fputs(dwcp::control::usage(), stdout);
		return 0;
	}
	if (!err.empty()) {
		fprintf(stderr, "dwcp-gateway: %s\n", err.c_str());
		return 2;
	}
	int n = sep ? sep : argc;
	if (rte_eal_init(n, argv) < 0) {
		fprintf(stderr, "dwcp-gateway: EAL options rejected: %s (see the lines above)\n", rte_strerror(rte_errno));
		return 2;
	}
	int rc = dwcp::control::gateway_run(o);
	rte_eal_cleanup();
	return rc;
}
