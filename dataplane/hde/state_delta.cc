#include "dataplane/hde/state_delta.h"
#include "dataplane/hde/varint.h"

#include <isa-l/crc.h>
#include <openssl/evp.h>
#include <zstd.h>

#include <cmath>
#include <cstring>

namespace dwcp::hde {

namespace {

void put_varint(std::string &s, uint64_t v)
{
	while (v >= 0x80) {
		s += char(uint8_t(v) | 0x80);
		v >>= 7;
	}
	s += char(uint8_t(v));
}

bool quantisable(const StateDiffOptions &o, const std::string &key)
{
	if (!o.allow_quantise)
		return false;
	for (const auto &p : o.quantise_prefixes)
		if (key.compare(0, p.size(), p) == 0)
			return true;
	return false;
}

std::string floats_bytes(const std::vector<float> &f)
{
	return std::string(reinterpret_cast<const char *>(f.data()), f.size() * sizeof(float));
}

} // namespace

Digest state_checksum(const StateMap &m)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), nullptr);
	std::string buf;
	for (const auto &[k, v] : m) {
		buf.clear();
		put_varint(buf, k.size());
		buf += k;
		put_varint(buf, v.size());
		EVP_DigestUpdate(c, buf.data(), buf.size());
		EVP_DigestUpdate(c, v.data(), v.size());
	}
	Digest d;
	EVP_DigestFinal_ex(c, d.data(), nullptr);
	EVP_MD_CTX_free(c);
	return d;
}

double quantise_error_bound(float lo, float hi)
{
	return (double(hi) - double(lo)) / 131070.0 + std::ldexp(std::max(std::fabs(lo), std::fabs(hi)), -22);
}

bool quantise_f32(std::span<const float> in, std::string &out)
{
	if (in.empty())
		return false;
	float lo = in[0], hi = in[0];
	for (float x : in) {
		if (!std::isfinite(x))
			return false;
		lo = std::min(lo, x);
		hi = std::max(hi, x);
	}
	out.resize(8 + 2 * in.size());
	memcpy(out.data(), &lo, 4);
	memcpy(out.data() + 4, &hi, 4);
	double range = double(hi) - double(lo);
	for (size_t i = 0; i < in.size(); i++) {
		uint16_t q = range > 0 ? uint16_t(std::lround((double(in[i]) - lo) * 65535.0 / range)) : 0;
		memcpy(out.data() + 8 + 2 * i, &q, 2);
	}
	return true;
}

bool dequantise_f32(std::string_view q, std::vector<float> &out)
{
	if (q.size() < 10 || (q.size() - 8) % 2)
		return false;
	float lo, hi;
	memcpy(&lo, q.data(), 4);
	memcpy(&hi, q.data() + 4, 4);
	if (!std::isfinite(lo) || !std::isfinite(hi) || hi < lo)
		return false;
	size_t n = (q.size() - 8) / 2;
	out.resize(n);
	double step = (double(hi) - double(lo)) / 65535.0;
	for (size_t i = 0; i < n; i++) {
		uint16_t v;
		memcpy(&v, q.data() + 8 + 2 * i, 2);
		out[i] = float(double(lo) + v * step);
	}
	return true;
}

DeltaState diff_state(const StateMap &base, const StateMap &cur, uint64_t base_version, uint64_t new_version,
	const StateDiffOptions &opts, StateMap *rebuilt)
{
	DeltaState d;
	d.base_version = base_version;
	d.new_version = new_version;
	d.base_checksum = state_checksum(base);
	StateMap local;
	StateMap &rb = rebuilt ? *rebuilt : local;
	rb = cur;
	auto emit = [&](DeltaOpKind kind, const std::string &k, const std::string *v) {
		DeltaOp op{kind, k, v ? *v : std::string()};
		if (kind == DeltaOpKind::modify && quantisable(opts, k) && v->size() >= 16 && v->size() % 4 == 0) {
			std::vector<float> f(v->size() / 4);
			memcpy(f.data(), v->data(), v->size());
			std::string q;
			std::vector<float> back;
			if (quantise_f32(f, q) && dequantise_f32(q, back)) {
				op.kind = DeltaOpKind::modify_q16;
				op.value = std::move(q);
				rb[k] = floats_bytes(back);
			}
		}
		d.ops.push_back(std::move(op));
	};
	// One merge pass over both maps, in key order.
	auto b = base.begin();
	auto c = cur.begin();
	while (b != base.end() || c != cur.end()) {
		if (c == cur.end() || (b != base.end() && b->first < c->first)) {
			emit(DeltaOpKind::del, b->first, nullptr);
			++b;
		} else if (b == base.end() || c->first < b->first) {
			emit(DeltaOpKind::add, c->first, &c->second);
			++c;
		} else {
			if (b->second != c->second)
				emit(DeltaOpKind::modify, c->first, &c->second);
			++b;
			++c;
		}
	}
	d.checksum = state_checksum(rb);
	return d;
}

DecodeError apply_state(const StateMap &base, uint64_t base_version, const DeltaState &d, StateMap &out)
{
	out.clear();
	if (d.base_version != base_version || state_checksum(base) != d.base_checksum)
		return DecodeError::wrong_baseline;
	StateMap m = base;
	const std::string *prev = nullptr;
	for (const DeltaOp &op : d.ops) {
		if (prev && !(*prev < op.path))
			return DecodeError::bad_op; // ops come in strict key order
		prev = &op.path;
		auto it = m.find(op.path);
		switch (op.kind) {
		case DeltaOpKind::add:
			if (it != m.end())
				return DecodeError::bad_op;
			m.emplace(op.path, op.value);
			break;
		case DeltaOpKind::modify:
			if (it == m.end())
				return DecodeError::bad_op;
			it->second = op.value;
			break;
		case DeltaOpKind::modify_q16: {
			if (it == m.end())
				return DecodeError::bad_op;
			std::vector<float> f;
			if (!dequantise_f32(op.value, f))
				return DecodeError::bad_op;
			it->second = floats_bytes(f);
			break;
		}
		case DeltaOpKind::del:
			if (it == m.end())
				return DecodeError::bad_op;
			m.erase(it);
			break;
		default:
			return DecodeError::bad_op;
		}
	}
	if (state_checksum(m) != d.checksum)
		return DecodeError::object_mismatch;
	out = std::move(m);
	return DecodeError::ok;
}

std::vector<uint8_t> serialize_state_delta(const DeltaState &d, Tier tier)
{
	std::string ops;
	put_varint(ops, d.ops.size());
	const std::string empty;
	const std::string *prev = &empty;
	for (const DeltaOp &op : d.ops) {
		size_t shared = 0;
		while (shared < prev->size() && shared < op.path.size() && (*prev)[shared] == op.path[shared])
			shared++;
		ops += char(op.kind);
		put_varint(ops, shared);
		put_varint(ops, op.path.size() - shared);
		ops.append(op.path, shared);
		if (op.kind != DeltaOpKind::del) {
			put_varint(ops, op.value.size());
			ops += op.value;
		}
		prev = &op.path;
	}
	std::vector<uint8_t> out(kStateHeaderLen + ZSTD_compressBound(ops.size()) + 4);
	uint8_t *p = out.data();
	memcpy(p, "HDS\x01", 4);
	memcpy(p + 4, &d.base_version, 8);
	memcpy(p + 12, &d.new_version, 8);
	memcpy(p + 20, d.base_checksum.data(), 32);
	memcpy(p + 52, d.checksum.data(), 32);
	uint32_t raw = uint32_t(ops.size());
	memcpy(p + 85, &raw, 4);
	size_t payload = 0;
	uint8_t codec = 0;
	if (tier != Tier::none && ops.size() >= 64) {
		// Structured state is small next to images: even the fast tiers use zstd.
		int level = tier == Tier::zstd9 ? 9 : (tier == Tier::zstd3 ? 3 : 1);
		size_t r = ZSTD_compress(p + kStateHeaderLen, out.size() - kStateHeaderLen - 4, ops.data(), ops.size(), level);
		if (!ZSTD_isError(r) && r < ops.size()) {
			payload = r;
			codec = 1;
		}
	}
	if (!codec) {
		memcpy(p + kStateHeaderLen, ops.data(), ops.size());
		payload = ops.size();
	}
	p[84] = codec;
	uint32_t pl = uint32_t(payload);
	memcpy(p + 89, &pl, 4);
	uint32_t crc = crc32_iscsi(p, int(kStateHeaderLen + payload), 0);
	memcpy(p + kStateHeaderLen + payload, &crc, 4);
	out.resize(kStateHeaderLen + payload + 4);
	return out;
}

DecodeError parse_state_delta(std::span<const uint8_t> in, DeltaState &d)
{
	if (in.size() < kStateHeaderLen + 4)
		return DecodeError::truncated;
	const uint8_t *p = in.data();
	if (memcmp(p, "HDS\x01", 4) != 0)
		return DecodeError::bad_magic;
	uint32_t raw, pl, crc;
	memcpy(&raw, p + 85, 4);
	memcpy(&pl, p + 89, 4);
	if (in.size() < kStateHeaderLen + size_t(pl) + 4)
		return DecodeError::truncated;
	if (in.size() > kStateHeaderLen + size_t(pl) + 4)
		return DecodeError::trailing_bytes;
	memcpy(&crc, p + kStateHeaderLen + pl, 4);
	if (crc32_iscsi(const_cast<uint8_t *>(p), int(kStateHeaderLen + pl), 0) != crc)
		return DecodeError::bad_crc;
	if (p[84] > 1 || raw > kMaxStateOps)
		return DecodeError::bad_kind;
	memcpy(&d.base_version, p + 4, 8);
	memcpy(&d.new_version, p + 12, 8);
	memcpy(d.base_checksum.data(), p + 20, 32);
	memcpy(d.checksum.data(), p + 52, 32);
	std::vector<uint8_t> buf;
	const uint8_t *r = p + kStateHeaderLen;
	const uint8_t *end = r + pl;
	if (p[84] == 1) {
		unsigned long long fs = ZSTD_getFrameContentSize(r, pl);
		if (fs != raw)
			return DecodeError::decompress_failed;
		buf.resize(raw);
		size_t n = ZSTD_decompress(buf.data(), raw, r, pl);
		if (ZSTD_isError(n) || n != raw)
			return DecodeError::decompress_failed;
		r = buf.data();
		end = r + raw;
	} else if (pl != raw) {
		return DecodeError::bad_op;
	}
	uint64_t count;
	if (!get_varint(r, end, count) || count > size_t(end - r))
		return DecodeError::bad_op;
	d.ops.clear();
	d.ops.reserve(count);
	std::string prev;
	for (uint64_t i = 0; i < count; i++) {
		if (r == end)
			return DecodeError::bad_op;
		uint8_t kind = *r++;
		uint64_t shared, suffix, vlen = 0;
		if (kind < 1 || kind > 4 || !get_varint(r, end, shared) || shared > prev.size() ||
			!get_varint(r, end, suffix) || suffix > size_t(end - r))
			return DecodeError::bad_op;
		DeltaOp op;
		op.kind = DeltaOpKind(kind);
		op.path.assign(prev, 0, shared);
		op.path.append(reinterpret_cast<const char *>(r), suffix);
		r += suffix;
		if (op.kind != DeltaOpKind::del) {
			if (!get_varint(r, end, vlen) || vlen > size_t(end - r))
				return DecodeError::bad_op;
			op.value.assign(reinterpret_cast<const char *>(r), vlen);
			r += vlen;
		}
		prev = op.path;
		d.ops.push_back(std::move(op));
	}
	return r == end ? DecodeError::ok : DecodeError::trailing_bytes;
}

bool parse_kv_lines(std::span<const uint8_t> text, StateMap &out)
{
	out.clear();
	const char *p = reinterpret_cast<const char *>(text.data());
	const char *end = p + text.size();
	while (p < end) {
		const char *nl = static_cast<const char *>(memchr(p, '\n', size_t(end - p)));
		if (!nl)
			nl = end;
		const char *tab = static_cast<const char *>(memchr(p, '\t', size_t(nl - p)));
		if (!tab)
			return false;
		out.insert_or_assign(std::string(p, tab), std::string(tab + 1, nl));
		p = nl + 1;
	}
	return true;
}

} // namespace dwcp::hde
