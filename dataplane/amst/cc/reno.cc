// NewReno as RFC 9002 §7 and Appendix B describe it; slow start, recovery and
// persistent congestion live in loss_based.cc.
#include <memory>

#include "dataplane/amst/cc/cc_internal.h"
#include "dataplane/amst/cc/loss_based.h"

namespace dwcp::amst {

namespace {

// RFC 9002 kLossReductionFactor.
constexpr double kRenoBeta = 0.5;

class Reno final : public LossBasedController {
public:
	explicit Reno(const CcConfig &cfg) : LossBasedController(cfg) {}
	CcAlgo algo() const override { return CcAlgo::reno; }

private:
	void grow_in_congestion_avoidance(const AckEvent &ev) override
	{
		// One packet per window acknowledged, i.e. per round trip.
		cwnd_ += mss_ * double(ev.newly_acked) / cwnd_;
	}

	void reduce_on_congestion(uint64_t) override
	{
		ssthresh_ = cwnd_ * kRenoBeta;
		cwnd_ = ssthresh_;
	}
};

} // namespace

std::unique_ptr<CongestionController> make_reno(const CcConfig &cfg)
{
	return std::make_unique<Reno>(cfg);
}

} // namespace dwcp::amst
