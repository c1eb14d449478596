#pragma once
// Constructors of the three controllers, for make_cc.  Private to cc/.
#include <memory>

#include "dataplane/amst/cc/cc.h"

namespace dwcp::amst {

std::unique_ptr<CongestionController> make_bbr(const CcConfig &cfg);
std::unique_ptr<CongestionController> make_cubic(const CcConfig &cfg);
std::unique_ptr<CongestionController> make_reno(const CcConfig &cfg);

} // namespace dwcp::amst
