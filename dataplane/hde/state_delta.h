#pragma once
// Structured state deltas: the spec's DeltaState / DeltaOp for key-value state maps
// (cluster state: thousands of VMs with metrics and metadata under key paths such
// as "vm/000123/metrics/cpu_pct"), and opt-in 16-bit quantisation of float arrays.
//
// Wire form of a DeltaState (integers little-endian):
//   0   4   magic "HDS\x01"
//   4   u64 baseline version
//   12  u64 new version
//   20  32  SHA-256 of the baseline state (state_checksum)
//   52  32  SHA-256 of the new state as the receiver rebuilds it
//   84  u8  codec of the op stream: 0 stored, 1 zstd
//   85  u32 op stream length before compression (at most kMaxStateOps bytes)
//   89  u32 payload length P
//   93  P   op stream (compressed as the codec says)
//   93+P u32 CRC32C of bytes [0, 93+P)
// Op stream: varint count, then per op, in key order:
//   u8 kind (1 ADD, 2 MODIFY, 3 DELETE, 4 MODIFY_Q16), varint bytes shared with the
//   previous op's key, varint suffix length, suffix, and for every kind but DELETE
//   varint value length and the value.  A MODIFY_Q16 value is a quantised float array
//   (below); the receiver stores its dequantised floats.
//
// Quantisation is opt-in per key prefix and only on the WAN tier: a float32 array
// becomes min, max (f32) and one u16 per element, x' = min + q * (max - min) / 65535,
// q = round((x - min) * 65535 / (max - min)).  Error bound, tested:
//   |x - x'| <= (max - min) / 131070 + 2^-22 * max(|min|, |max|)
// (half a step plus float32 rounding).  Arrays with NaN or infinities are sent exact.
// The new-state checksum covers the state as rebuilt, so quantised values are
// checked end to end too, and diff_state hands the sender that same rebuilt map to
// keep as the next baseline.
#include "dataplane/hde/block_delta.h"

#include <map>
#include <span>
#include <string>
#include <vector>

namespace dwcp::hde {

using StateMap = std::map<std::string, std::string>;

enum class DeltaOpKind : uint8_t {
	add = 1,
	modify = 2,
	del = 3,
	modify_q16 = 4,
};

struct DeltaOp {
	DeltaOpKind kind = DeltaOpKind::add;
	std::string path;
	std::string value; // for modify_q16: the quantised form
};

struct DeltaState {
	uint64_t base_version = 0;
	uint64_t new_version = 0;
	Digest base_checksum{};
	Digest checksum{};
	std::vector<DeltaOp> ops;
};

constexpr size_t kStateHeaderLen = 93;
constexpr size_t kMaxStateOps = size_t(1) << 30;

struct StateDiffOptions {
	// Keys starting with one of these hold float32 arrays that may be quantised.
	std::vector<std::string> quantise_prefixes;
	bool allow_quantise = false; // the tier allows it (WAN)
};

// SHA-256 over the canonical form: for each key in order, varint key length, key,
// varint value length, value.
Digest state_checksum(const StateMap &m);

// The ops that turn base into cur.  `rebuilt` receives cur as the receiver will
// rebuild it (differs from cur only where floats were quantised).
DeltaState diff_state(const StateMap &base, const StateMap &cur, uint64_t base_version, uint64_t new_version,
	const StateDiffOptions &opts, StateMap *rebuilt = nullptr);

// Applies d to base into out.  Checks the baseline's version and checksum first
// and the result's checksum last; on error out is left empty and base untouched.
DecodeError apply_state(const StateMap &base, uint64_t base_version, const DeltaState &d, StateMap &out);

std::vector<uint8_t> serialize_state_delta(const DeltaState &d, Tier tier);
DecodeError parse_state_delta(std::span<const uint8_t> in, DeltaState &d);

// Quantisation of float32 arrays.  quantise() returns false (and leaves out
// alone) for arrays with NaN or infinities or fewer than one element.
bool quantise_f32(std::span<const float> in, std::string &out);
bool dequantise_f32(std::string_view q, std::vector<float> &out);
double quantise_error_bound(float lo, float hi);

// "key\tvalue\n" lines, as hde-corpus writes cluster state, into a map.
bool parse_kv_lines(std::span<const uint8_t> text, StateMap &out);

} // namespace dwcp::hde
