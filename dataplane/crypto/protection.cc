#include "dataplane/crypto/protection.h"

#include <cstring>

#include <openssl/crypto.h>

namespace dwcp::crypto {

namespace {

// Adds the packet key of secret s to a: its handle, or -1 with *err.  The derived
// key is wiped before this returns.
int add_packet_key(Aead &a, const Secret &s, std::string *err)
{
	PacketKey k = derive_packet_key(s);
	int h = a.add_key(k, err);
	OPENSSL_cleanse(&k, sizeof(k));
	return h;
}

} // namespace

// ---------------------------------------------------------------- ReplayWindow

ReplayWindow::Verdict ReplayWindow::check(uint64_t pn) const
{
	if (!any_ || pn > highest_)
		return Verdict::fresh;
	if (highest_ - pn >= kReplayWindow)
		return Verdict::too_old;
	return test(pn) ? Verdict::duplicate : Verdict::fresh;
}

void ReplayWindow::clear_range(uint64_t from, uint64_t to)
{
	// Counted rather than compared, so a range ending at 2^64 - 1 terminates.
	uint64_t left = to - from + 1;
	while (left) {
		if (from % 64 == 0 && left >= 64) {
			bits_[(from / 64) % kWords] = 0;
			from += 64;
			left -= 64;
		} else {
			bits_[(from / 64) % kWords] &= ~(uint64_t(1) << (from % 64));
			from++;
			left--;
		}
	}
}

void ReplayWindow::commit(uint64_t pn)
{
	if (!any_) {
		bits_.fill(0);
		any_ = true;
		highest_ = pn;
		set(pn);
		return;
	}
	if (pn > highest_) {
		// The numbers between the old and the new highest enter the window unseen.
		if (pn - highest_ >= kReplayWindow)
			bits_.fill(0);
		else
			clear_range(highest_ + 1, pn);
		highest_ = pn;
		set(pn);
		return;
	}
	if (highest_ - pn >= kReplayWindow)
		return;
	set(pn);
}

// ---------------------------------------------------------------- TxProtection

TxProtection::~TxProtection()
{
	OPENSSL_cleanse(secret_.data(), secret_.size());
}

bool TxProtection::install(Aead &a, const Secret &s, std::string *err)
{
	clear(a);
	int h = add_packet_key(a, s, err);
	if (h < 0)
		return false;
	secret_ = s;
	key_ = h;
	phase_ = 0;
	generation_ = 0;
	return true;
}

bool TxProtection::update(Aead &a, std::string *err)
{
	if (key_ < 0) {
		*err = "no TX key to update";
		return false;
	}
	Secret n = next_secret(secret_);
	int h = add_packet_key(a, n, err);
	if (h < 0) {
		OPENSSL_cleanse(n.data(), n.size());
		return false;
	}
	a.remove_key(key_);
	key_ = h;
	secret_ = n;
	OPENSSL_cleanse(n.data(), n.size());
	phase_ ^= 1;
	generation_++;
	return true;
}

void TxProtection::clear(Aead &a)
{
	if (key_ >= 0)
		a.remove_key(key_);
	key_ = -1;
	OPENSSL_cleanse(secret_.data(), secret_.size());
}

// ---------------------------------------------------------------- RxProtection

RxProtection::~RxProtection()
{
	OPENSSL_cleanse(next_secret_.data(), next_secret_.size());
}

bool RxProtection::install(Aead &a, const Secret &s, std::string *err)
{
	clear(a);
	int cur = add_packet_key(a, s, err);
	Secret n = next_secret(s);
	int next = cur >= 0 ? add_packet_key(a, n, err) : -1;
	if (next < 0) {
		if (cur >= 0)
			a.remove_key(cur);
		OPENSSL_cleanse(n.data(), n.size());
		return false;
	}
	cur_ = cur;
	next_ = next;
	next_secret_ = n;
	OPENSSL_cleanse(n.data(), n.size());
	cur_phase_ = 0;
	generation_ = 0;
	cur_first_pn_.fill(kNone);
	windows_.fill(ReplayWindow{});
	return true;
}

void RxProtection::clear(Aead &a)
{
	for (int *h : {&prev_, &cur_, &next_}) {
		if (*h >= 0)
			a.remove_key(*h);
		*h = -1;
	}
	OPENSSL_cleanse(next_secret_.data(), next_secret_.size());
}

void RxProtection::expire(Aead &a, uint64_t now_ns)
{
	if (prev_ >= 0 && now_ns >= prev_expiry_ns_) {
		a.remove_key(prev_);
		prev_ = -1;
	}
}

void RxProtection::rotate(Aead &a, uint64_t now_ns, uint16_t stream, uint64_t pn)
{
	if (prev_ >= 0)
		a.remove_key(prev_);
	prev_ = cur_;
	prev_expiry_ns_ = now_ns + retain_ns_;
	cur_ = next_;
	cur_phase_ ^= 1;
	generation_++;
	cur_first_pn_.fill(kNone);
	cur_first_pn_[stream] = pn;
	// The key after this one, ready before its first packet arrives.  Two HKDF
	// expansions and a session: microseconds, once per key update.  Without room in
	// the Aead, packets of the next phase get no_key until a key is freed.
	next_secret_ = next_secret(next_secret_);
	std::string err;
	next_ = add_packet_key(a, next_secret_, &err);
}

bool RxProtection::try_open(Aead &a, int h, AeadOp &op)
{
	a.open_burst(h, &op, 1);
	return op.ok;
}

void RxProtection::accept(AeadOp &op)
{
	windows_[op.stream].commit(op.pn);
	if (op.pn < cur_first_pn_[op.stream])
		cur_first_pn_[op.stream] = op.pn;
}

RxProtection::Verdict RxProtection::open(Aead &a, AeadOp &op, uint8_t phase, uint64_t now_ns)
{
	op.ok = false;
	if (cur_ < 0 || op.stream >= kNbStreams)
		return Verdict::no_key;
	expire(a, now_ns);
	ReplayWindow &w = windows_[op.stream];
	switch (w.check(op.pn)) {
	case ReplayWindow::Verdict::duplicate:
		return Verdict::duplicate;
	case ReplayWindow::Verdict::too_old:
		return Verdict::too_old;
	case ReplayWindow::Verdict::fresh:
		break;
	}
	if ((phase & 1) == cur_phase_) {
		if (!try_open(a, cur_, op))
			return Verdict::auth_failed;
		accept(op);
		return Verdict::ok;
	}

	// The other phase: late (previous key) or the first of the next phase.
	uint64_t first = cur_first_pn_[op.stream];
	if (op.pn < first) {
		if (prev_ >= 0) {
			// With no current-phase packet on this stream yet it may also be of the
			// phase after the current one (two updates while the stream was quiet):
			// keep the ciphertext so the next key can be tried after the previous.
			bool either = first == kNone && next_ >= 0 && op.len <= kScratch;
			if (either && op.len)
				memcpy(scratch_.data(), op.data, op.len);
			if (try_open(a, prev_, op)) {
				w.commit(op.pn);
				return Verdict::ok;
			}
			if (!either)
				return Verdict::auth_failed;
			if (op.len)
				memcpy(op.data, scratch_.data(), op.len);
		} else if (first != kNone) {
			return Verdict::no_key; // sealed before the last update, and that key has expired
		}
	}
	if (next_ < 0)
		return Verdict::no_key;
	if (!try_open(a, next_, op))
		return Verdict::auth_failed;
	rotate(a, now_ns, op.stream, op.pn);
	w.commit(op.pn);
	return Verdict::ok;
}

void RxProtection::open_burst(Aead &a, AeadOp *ops, const uint8_t *phases, Verdict *verdicts, unsigned n,
			      uint64_t now_ns)
{
	expire(a, now_ns);
	auto fast = [&](const AeadOp &op, uint8_t phase) {
		return cur_ >= 0 && op.stream < kNbStreams && (phase & 1) == cur_phase_ &&
		       windows_[op.stream].check(op.pn) == ReplayWindow::Verdict::fresh;
	};
	unsigned i = 0;
	while (i < n) {
		unsigned j = i;
		while (j < n && fast(ops[j], phases[j]))
			j++;
		if (j == i) {
			verdicts[i] = open(a, ops[i], phases[i], now_ns);
			i++;
			continue;
		}
		a.open_burst(cur_, ops + i, j - i);
		for (unsigned k = i; k < j; k++) {
			if (!ops[k].ok) {
				verdicts[k] = Verdict::auth_failed;
				continue;
			}
			// Checked again: the same packet number may appear twice in one burst.
			switch (windows_[ops[k].stream].check(ops[k].pn)) {
			case ReplayWindow::Verdict::fresh:
				accept(ops[k]);
				verdicts[k] = Verdict::ok;
				break;
			case ReplayWindow::Verdict::duplicate:
				ops[k].ok = false;
				verdicts[k] = Verdict::duplicate;
				break;
			case ReplayWindow::Verdict::too_old:
				ops[k].ok = false;
				verdicts[k] = Verdict::too_old;
				break;
			}
		}
		i = j;
	}
}

} // namespace dwcp::crypto
