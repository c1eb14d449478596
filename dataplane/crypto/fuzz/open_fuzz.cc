// Fuzz target: RxProtection::open and open_burst (OpenSSL Aead) on a sequence of
// arbitrary packets, some sealed by a TxProtection with the same secret so the
// fuzzer reaches past authentication: key updates, reordering, replays, tampering.
//
// Input: a sequence of records, each
//   u8 ctl     bit 0  seal: the payload is a header and body; the target sets the
//                     PROTECTED and KEY_PHASE flags, seals it and appends the tag
//              bit 1  after sealing, flip one bit (chosen by the payload's last byte)
//              bit 2  key update on the sender before this record
//              bit 3  open through open_burst instead of open
//              bit 4  deliver the record twice
//              bits 5-7  advance the clock by that many 40 ms steps (the receiver
//                     keeps the previous key 100 ms)
//   u16 len (big-endian), then len payload bytes.
// Without bit 0 the payload is delivered as it is: a raw packet, tag included.
//
// Checks: a verdict is one of the five and op.ok agrees with it; a packet that
// opened has the plaintext that was sealed and is a duplicate when delivered again;
// and a packet the target sealed and did not tamper with opens whenever the sender
// behaved as a real one does: its packet number is the highest yet on its stream,
// and it is at most one key update ahead of the receiver.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "dataplane/amst/wire.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/protection.h"

using namespace dwcp;
using namespace dwcp::crypto;
using Verdict = RxProtection::Verdict;

namespace {

Verdict deliver(Aead &a, RxProtection &rx, std::vector<uint8_t> &pkt, bool burst, uint64_t now)
{
	AeadOp op = packet_op(pkt.data(), pkt.size());
	uint8_t phase = (pkt[0] & wire::flag_key_phase) ? 1 : 0;
	Verdict v;
	if (burst)
		rx.open_burst(a, &op, &phase, &v, 1, now);
	else
		v = rx.open(a, op, phase, now);
	if (uint8_t(v) > uint8_t(Verdict::auth_failed) || op.ok != (v == Verdict::ok))
		abort();
	return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static std::unique_ptr<Aead> a = make_openssl_aead();
	Secret s{};
	for (size_t i = 0; i < s.size(); i++)
		s[i] = uint8_t(0xa5 ^ i);
	TxProtection tx;
	auto rx = std::make_unique<RxProtection>(100'000'000);
	std::string err;
	if (!tx.install(*a, s, &err) || !rx->install(*a, s, &err))
		abort();
	uint64_t now = 1'000'000'000;
	std::map<uint16_t, uint64_t> highest_pn; // per stream, of the packets the target sealed
	size_t at = 0;
	while (at + 3 <= size) {
		uint8_t ctl = data[at];
		size_t len = size_t(data[at + 1]) << 8 | data[at + 2];
		at += 3;
		if (len > size - at)
			len = size - at;
		const uint8_t *payload = data + at;
		at += len;
		now += uint64_t(ctl >> 5) * 40'000'000;
		if (ctl & 0x04)
			tx.update(*a, &err);

		std::vector<uint8_t> pkt;
		std::vector<uint8_t> plain;
		bool sealed = false, tampered = false, expect_ok = false;
		if (ctl & 0x01) {
			if (len < wire::kHeaderLen)
				continue;
			pkt.assign(payload, payload + len);
			pkt.resize(len + kTagLen);
			pkt[0] = uint8_t((pkt[0] & ~(wire::flag_protected | wire::flag_key_phase)) | wire::flag_protected |
					 (tx.phase() ? wire::flag_key_phase : 0));
			plain.assign(pkt.begin() + wire::kHeaderLen, pkt.end() - kTagLen);
			AeadOp op = packet_op(pkt.data(), pkt.size());
			tx.seal_burst(*a, &op, 1);
			if (!op.ok)
				abort();
			sealed = true;
			auto it = highest_pn.find(op.stream);
			// Jumbo frames at most: bodies up to 9000 bytes.
			expect_ok = (it == highest_pn.end() || op.pn > it->second) && op.stream <= wire::kMaxStreams &&
				    tx.generation() <= rx->generation() + 1 && rx->generation() <= tx.generation() &&
				    op.len <= 9000;
			if (ctl & 0x02) {
				uint8_t pick = payload[len - 1];
				pkt[pick % pkt.size()] ^= uint8_t(1 << (pick % 8));
				tampered = true;
			}
		} else {
			if (len < wire::kHeaderLen + kTagLen)
				continue;
			pkt.assign(payload, payload + len);
		}
		std::vector<uint8_t> copy = pkt;
		Verdict v = deliver(*a, *rx, pkt, ctl & 0x08, now);
		if (expect_ok && !tampered && v != Verdict::ok)
			abort(); // the receiver holds every key such a sender can have used
		if (v == Verdict::ok && sealed && !tampered &&
		    !std::equal(plain.begin(), plain.end(), pkt.begin() + wire::kHeaderLen))
			abort();
		if (v == Verdict::ok) {
			uint16_t stream = wire::get_u16(copy.data() + 2);
			uint64_t pn = wire::get_u64(copy.data() + 12);
			if (!highest_pn.count(stream) || pn > highest_pn[stream])
				highest_pn[stream] = pn;
			if (deliver(*a, *rx, copy, false, now) != Verdict::duplicate)
				abort();
		}
		if (ctl & 0x10) {
			std::vector<uint8_t> again = copy;
			deliver(*a, *rx, again, ctl & 0x08, now);
		}
	}
	rx->clear(*a);
	tx.clear(*a);
	return 0;
}
