#include "dataplane/hde/state_delta.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace dwcp::hde {
namespace {

StateMap cluster(size_t nb_vms, uint64_t seed)
{
	std::mt19937_64 rng(seed);
	StateMap m;
	for (size_t i = 0; i < nb_vms; i++) {
		std::string vm = "vm/" + std::to_string(100000 + i);
		m[vm + "/meta/host"] = "host-" + std::to_string(rng() % 50);
		m[vm + "/meta/state"] = "running";
		m[vm + "/metrics/cpu_pct"] = std::to_string(rng() % 100);
		m[vm + "/metrics/mem_mb"] = std::to_string(rng() % 65536);
	}
	return m;
}

TEST(StateDelta, AddModifyDeleteRoundTrip)
{
	StateMap base = cluster(2000, 1);
	StateMap cur = base;
	std::mt19937_64 rng(2);
	for (auto &[k, v] : cur)
		if (rng() % 100 < 3)
			v = std::to_string(rng());
	cur.erase("vm/100005/meta/state");
	cur["vm/100005/meta/migrating_to"] = "site-b";
	cur["vm/999999/meta/host"] = "host-1";
	DeltaState d = diff_state(base, cur, 7, 8, {});
	auto wire = serialize_state_delta(d, Tier::zstd3);
	DeltaState got;
	ASSERT_EQ(parse_state_delta(wire, got), DecodeError::ok);
	StateMap out;
	ASSERT_EQ(apply_state(base, 7, got, out), DecodeError::ok);
	EXPECT_EQ(out, cur);
	size_t full = 0;
	for (auto &[k, v] : cur)
		full += k.size() + v.size() + 2;
	EXPECT_GT(double(full) / double(wire.size()), 3.0) << wire.size();
}

TEST(StateDelta, RejectsWrongBaselineAndCorruption)
{
	StateMap base = cluster(100, 3), cur = base;
	cur["vm/100001/metrics/cpu_pct"] = "99";
	DeltaState d = diff_state(base, cur, 1, 2, {});
	StateMap out;
	EXPECT_EQ(apply_state(base, 2, d, out), DecodeError::wrong_baseline);
	StateMap other = base;
	other["vm/100002/meta/state"] = "paused";
	EXPECT_EQ(apply_state(other, 1, d, out), DecodeError::wrong_baseline);
	EXPECT_TRUE(out.empty());
	auto wire = serialize_state_delta(d, Tier::none);
	for (size_t i = 0; i < wire.size(); i++) {
		auto t = wire;
		t[i] ^= 4;
		DeltaState g;
		EXPECT_NE(parse_state_delta(t, g), DecodeError::ok) << i;
	}
	for (size_t n = 0; n < wire.size(); n++) {
		DeltaState g;
		EXPECT_NE(parse_state_delta(std::span(wire).first(n), g), DecodeError::ok) << n;
	}
	// A DeltaState whose ops lie about the result fails the end checksum.
	d.ops[0].value = "98";
	EXPECT_EQ(apply_state(base, 1, d, out), DecodeError::object_mismatch);
}

TEST(StateDelta, QuantisationErrorBound)
{
	std::mt19937_64 rng(4);
	for (int iter = 0; iter < 200; iter++) {
		std::vector<float> f(1 + rng() % 500);
		double scale = std::ldexp(1.0, int(rng() % 40) - 20);
		for (auto &x : f)
			x = float((double(rng() % 2000001) / 1e6 - 1.0) * scale + (iter % 3) * scale);
		std::string q;
		ASSERT_TRUE(quantise_f32(f, q));
		EXPECT_EQ(q.size(), 8 + 2 * f.size());
		std::vector<float> back;
		ASSERT_TRUE(dequantise_f32(q, back));
		float lo = *std::min_element(f.begin(), f.end()), hi = *std::max_element(f.begin(), f.end());
		double bound = quantise_error_bound(lo, hi);
		for (size_t i = 0; i < f.size(); i++)
			ASSERT_LE(std::fabs(double(back[i]) - double(f[i])), bound) << iter << " " << i;
	}
	std::vector<float> bad = {1.0f, NAN};
	std::string q;
	EXPECT_FALSE(quantise_f32(bad, q));
	bad[1] = INFINITY;
	EXPECT_FALSE(quantise_f32(bad, q));
}

TEST(StateDelta, QuantiseOnlyOptedInKeysOnWan)
{
	std::vector<float> series(256);
	for (size_t i = 0; i < series.size(); i++)
		series[i] = float(std::sin(double(i) / 10.0) * 100.0);
	auto bytes = [](const std::vector<float> &f) { return std::string((const char *)f.data(), f.size() * 4); };
	StateMap base{{"vm/1/series/cpu", bytes(series)}, {"vm/1/blob", bytes(series)}};
	StateMap cur = base;
	for (auto &x : series)
		x += 1.5f;
	cur["vm/1/series/cpu"] = bytes(series);
	cur["vm/1/blob"] = bytes(series);
	StateDiffOptions o;
	o.quantise_prefixes = {"vm/1/series/"};
	o.allow_quantise = true;
	StateMap rebuilt;
	DeltaState d = diff_state(base, cur, 1, 2, o, &rebuilt);
	ASSERT_EQ(d.ops.size(), 2u);
	EXPECT_EQ(d.ops[0].kind, DeltaOpKind::modify);     // vm/1/blob: exact
	EXPECT_EQ(d.ops[1].kind, DeltaOpKind::modify_q16); // opted in
	DeltaState got;
	ASSERT_EQ(parse_state_delta(serialize_state_delta(d, Tier::zstd9), got), DecodeError::ok);
	StateMap out;
	ASSERT_EQ(apply_state(base, 1, got, out), DecodeError::ok);
	EXPECT_EQ(out, rebuilt);
	EXPECT_EQ(out["vm/1/blob"], cur["vm/1/blob"]);
	// Without the WAN tier nothing is quantised.
	o.allow_quantise = false;
	DeltaState exact = diff_state(base, cur, 1, 2, o);
	EXPECT_EQ(exact.ops[1].kind, DeltaOpKind::modify);
}

} // namespace
} // namespace dwcp::hde
