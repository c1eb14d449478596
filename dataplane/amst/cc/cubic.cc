// CUBIC as RFC 9438 specifies it; slow start (with HyStart++), recovery and
// persistent congestion live in loss_based.cc.
//
// The RFC states W_cubic in segments and t in seconds; here windows are bytes,
// so C*(t-K)^3 is multiplied by mss, and K = cbrt((W_max - cwnd_epoch) / (C*mss)).
#include <algorithm>
#include <cmath>
#include <memory>

#include "dataplane/amst/cc/cc_internal.h"
#include "dataplane/amst/cc/loss_based.h"

namespace dwcp::amst {

namespace {

constexpr double kCubicC = 0.4;
constexpr double kCubicBeta = 0.7;
// RFC 9438 §4.3: the additive increase that makes AIMD(alpha, beta) as
// aggressive as Reno's AIMD(1, 0.5).
constexpr double kRenoFriendlyAlpha = 3.0 * (1.0 - kCubicBeta) / (1.0 + kCubicBeta);
// RFC 9438 §4.4: the target is never more than 1.5 cwnd, so the window at most
// grows by half in one round trip, even far into the convex region.
constexpr double kMaxTargetRatio = 1.5;

class Cubic final : public LossBasedController {
public:
	explicit Cubic(const CcConfig &cfg) : LossBasedController(cfg) {}
	CcAlgo algo() const override { return CcAlgo::cubic; }

private:
	double w_cubic(double t_s) const
	{
		const double dt = t_s - k_s_;
		return kCubicC * dt * dt * dt * mss_ + w_max_;
	}

	void begin_epoch(uint64_t now_ns)
	{
		epoch_started_ = true;
		epoch_start_ns_ = now_ns;
		w_est_ = cwnd_;
		if (cwnd_ >= w_max_) {
			// Left slow start without a loss (HyStart++), or the last
			// W_max was below where we are: the plateau is here.
			w_max_ = cwnd_;
			k_s_ = 0.0;
		} else {
			k_s_ = std::cbrt((w_max_ - cwnd_) / (kCubicC * mss_));
		}
	}

	void grow_in_congestion_avoidance(const AckEvent &ev) override
	{
		if (!epoch_started_)
			begin_epoch(ev.now_ns);
		const double t_s = double(ev.now_ns - epoch_start_ns_) * 1e-9;
		const double rtt_s = double(rtt_estimate_ns()) * 1e-9;
		const double acked = double(ev.newly_acked);

		// RFC 9438 §4.3: W_est follows Reno with the alpha above until it
		// reaches the window before the last reduction, then Reno's own 1.
		const double alpha = w_est_ >= cwnd_prior_ ? 1.0 : kRenoFriendlyAlpha;
		w_est_ += alpha * mss_ * acked / cwnd_;

		if (w_cubic(t_s) < w_est_) {
			// Reno-friendly region: short RTTs, where the cubic curve (a
			// function of time) grows slower than Reno would.
			cwnd_ = std::max(cwnd_, w_est_);
			return;
		}
		// Concave or convex region: close the gap to where the curve will
		// be one RTT from now over the next window of ACKs.
		const double target = std::clamp(w_cubic(t_s + rtt_s), cwnd_, kMaxTargetRatio * cwnd_);
		cwnd_ += (target - cwnd_) * acked / cwnd_;
	}

	void on_not_cwnd_limited(const AckEvent &ev) override
	{
		// RFC 9438 §5.8: an application-limited flow must not grow.  The
		// curve's clock is held too (as Linux does after idle), otherwise a
		// long quiet spell would put the flow far along the convex region
		// the moment it has data again.
		if (epoch_started_ && last_ack_ns_ != 0 && ev.now_ns > last_ack_ns_)
			epoch_start_ns_ += ev.now_ns - last_ack_ns_;
	}

	void reduce_on_congestion(uint64_t) override
	{
		epoch_started_ = false;
		cwnd_prior_ = cwnd_;
		// RFC 9438 §4.7 fast convergence: a flow whose plateau is falling
		// releases bandwidth for new flows by aiming lower than it was.
		if (cwnd_ < w_max_)
			w_max_ = cwnd_ * (1.0 + kCubicBeta) / 2.0;
		else
			w_max_ = cwnd_;
		ssthresh_ = cwnd_ * kCubicBeta;
		cwnd_ = ssthresh_;
	}

	void on_window_collapsed() override { epoch_started_ = false; }

	double w_max_ = 0.0;       // bytes; the window before the last reduction, 0 before any
	double cwnd_prior_ = 0.0;  // cwnd when the last reduction happened
	double w_est_ = 0.0;       // Reno-friendly estimate, bytes
	double k_s_ = 0.0;         // seconds from the epoch start to the plateau
	uint64_t epoch_start_ns_ = 0;
	bool epoch_started_ = false;
};

} // namespace

std::unique_ptr<CongestionController> make_cubic(const CcConfig &cfg)
{
	return std::make_unique<Cubic>(cfg);
}

} // namespace dwcp::amst
