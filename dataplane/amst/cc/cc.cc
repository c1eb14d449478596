#include "dataplane/amst/cc/cc.h"

#include "dataplane/amst/cc/cc_internal.h"

namespace dwcp::amst {

const char *cc_algo_name(CcAlgo a)
{
	switch (a) {
	case CcAlgo::bbr:
		return "bbr";
	case CcAlgo::cubic:
		return "cubic";
	case CcAlgo::reno:
		return "reno";
	}
	return "unknown";
}

bool parse_cc_algo(std::string_view s, CcAlgo *out)
{
	// Exact, lower-case names only: the same spelling the stats print, so a
	// value copied from a progress line parses back.
	for (CcAlgo a : {CcAlgo::bbr, CcAlgo::cubic, CcAlgo::reno}) {
		if (s == cc_algo_name(a)) {
			*out = a;
			return true;
		}
	}
	return false;
}

std::unique_ptr<CongestionController> make_cc(CcAlgo algo, const CcConfig &cfg)
{
	switch (algo) {
	case CcAlgo::cubic:
		return make_cubic(cfg);
	case CcAlgo::reno:
		return make_reno(cfg);
	case CcAlgo::bbr:
		break;
	}
	return make_bbr(cfg);
}

} // namespace dwcp::amst
