#include "drivers/arp.h"

#include <cstdio>
#include <cstring>
#include <iterator>

#include <rte_arp.h>

namespace dwcp::drivers {

namespace {

constexpr const char *kArpCounterNames[] = {
	"arp.request_in", "arp.reply_out",   "arp.reply_in",    "arp.learned",    "arp.not_for_us",
	"arp.conflict",   "arp.request_out", "arp.unreachable", "arp.table_full",
};
static_assert(std::size(kArpCounterNames) == size_t(ArpCounter::count_));

constexpr uint16_t kArpFrameLen = RTE_ETHER_MIN_LEN - RTE_ETHER_CRC_LEN; // 60: padded Ethernet minimum

// Ethernet + ARP for an Ethernet/IPv4 request or reply, padded with zeros to 60 bytes.
void write_arp(uint8_t *p, const rte_ether_addr &eth_dst, const rte_ether_addr &eth_src, uint16_t op,
	       const rte_ether_addr &sha, rte_be32_t sip, const rte_ether_addr &tha, rte_be32_t tip)
{
	memset(p, 0, kArpFrameLen);
	auto *eth = reinterpret_cast<rte_ether_hdr *>(p);
	eth->dst_addr = eth_dst;
	eth->src_addr = eth_src;
	eth->ether_type = RTE_BE16(RTE_ETHER_TYPE_ARP);
	auto *arp = reinterpret_cast<rte_arp_hdr *>(p + RTE_ETHER_HDR_LEN);
	arp->arp_hardware = RTE_BE16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = RTE_BE16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	arp->arp_data.arp_sha = sha;
	arp->arp_data.arp_sip = sip;
	arp->arp_data.arp_tha = tha;
	arp->arp_data.arp_tip = tip;
}

bool build_request(rte_mbuf *m, const Iface &iface, rte_be32_t sip, rte_be32_t tip)
{
	rte_pktmbuf_reset(m);
	auto *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m, kArpFrameLen));
	if (p == nullptr)
		return false;
	rte_ether_addr bcast, zero{};
	memset(&bcast, 0xff, sizeof(bcast));
	write_arp(p, bcast, iface.mac, RTE_ARP_OP_REQUEST, iface.mac, sip, zero, tip);
	return true;
}

} // namespace

const char *arp_counter_name(ArpCounter c)
{
	return size_t(c) < size_t(ArpCounter::count_) ? kArpCounterNames[size_t(c)] : "arp.unknown";
}

void ArpTable::init(const Iface &iface, uint64_t ticks_per_sec, const ArpPolicy &policy)
{
	*this = ArpTable{};
	iface_ = iface;
	policy_ = policy;
	if (policy_.max_tries == 0)
		policy_.max_tries = 1;
	ticks_per_ms_ = ticks_per_sec / 1000 > 0 ? ticks_per_sec / 1000 : 1;
}

int ArpTable::find(rte_be32_t ip) const
{
	for (unsigned i = 0; i < kArpEntries; i++)
		if (ips_[i] == ip && entries_[i].state != State::free)
			return int(i);
	return -1;
}

// A free slot, else the failed entry or the reachable entry confirmed longest ago.
// Entries being resolved are never evicted.
int ArpTable::alloc(uint64_t now)
{
	int victim = -1;
	for (unsigned i = 0; i < kArpEntries; i++) {
		const Entry &e = entries_[i];
		if (e.state == State::free)
			return int(i);
		if (e.state == State::incomplete)
			continue;
		if (victim < 0)
			victim = int(i);
		const Entry &v = entries_[victim];
		bool better = e.state == State::failed ? v.state != State::failed || e.confirmed < v.confirmed
						      : v.state != State::failed && e.confirmed < v.confirmed;
		if (better)
			victim = int(i);
	}
	if (victim >= 0)
		entries_[victim] = Entry{};
	return victim;
}

uint64_t ArpTable::backoff(uint32_t tries) const
{
	uint64_t ms = policy_.first_retry_ms;
	for (uint32_t k = 1; k < tries && ms < policy_.max_retry_ms; k++)
		ms *= 2;
	if (ms > policy_.max_retry_ms)
		ms = policy_.max_retry_ms;
	return ms * ticks_per_ms_;
}

const rte_ether_addr *ArpTable::lookup(rte_be32_t ip) const
{
	int i = find(ip);
	if (i < 0 || entries_[i].state != State::reachable)
		return nullptr;
	return &entries_[i].mac;
}

ArpResolve ArpTable::resolve(rte_be32_t ip, uint64_t now, rte_ether_addr *mac)
{
	int i = find(ip);
	if (i < 0) {
		i = alloc(now);
		if (i < 0) {
			counters_[size_t(ArpCounter::table_full)]++;
			return ArpResolve::table_full;
		}
		ips_[i] = ip;
		entries_[i] = Entry{.mac = {}, .state = State::incomplete, .tries = 1, .confirmed = 0,
				    .next_try = now + backoff(1)};
		counters_[size_t(ArpCounter::request_out)]++;
		return ArpResolve::request;
	}
	Entry &e = entries_[i];
	switch (e.state) {
	case State::reachable:
		*mac = e.mac;
		if (now - e.confirmed < uint64_t(policy_.reachable_ms) * ticks_per_ms_)
			return ArpResolve::resolved;
		if (e.tries > 0 && now < e.next_try)
			return ArpResolve::resolved;
		break;
	case State::incomplete:
		if (now < e.next_try)
			return ArpResolve::pending;
		break;
	case State::failed:
	case State::free:
		return ArpResolve::unreachable;
	}
	// Time for another request, or to give up.
	if (e.tries >= policy_.max_tries) {
		e.state = State::failed;
		counters_[size_t(ArpCounter::unreachable)]++;
		return ArpResolve::unreachable;
	}
	e.tries++;
	e.next_try = now + backoff(e.tries);
	counters_[size_t(ArpCounter::request_out)]++;
	return e.state == State::reachable ? ArpResolve::refresh : ArpResolve::request;
}

void ArpTable::learn(rte_be32_t ip, const rte_ether_addr &mac, uint64_t now, bool create)
{
	if (ip == 0 || rte_is_multicast_ether_addr(&mac) || rte_is_zero_ether_addr(&mac))
		return;
	int i = find(ip);
	if (i < 0) {
		if (!create)
			return;
		i = alloc(now);
		if (i < 0) {
			counters_[size_t(ArpCounter::table_full)]++;
			return;
		}
		ips_[i] = ip;
	}
	Entry &e = entries_[i];
	if (e.state != State::reachable || !rte_is_same_ether_addr(&e.mac, &mac)) {
		generation_++;
		counters_[size_t(ArpCounter::learned)]++;
	}
	e.mac = mac;
	e.state = State::reachable;
	e.confirmed = now;
	e.tries = 0;
	e.next_try = 0;
}

ArpInput ArpTable::input(rte_mbuf *m, uint64_t now)
{
	// rx_classify checked the length (>= 42 bytes, one segment) and the ARP header.
	auto *p = rte_pktmbuf_mtod(m, uint8_t *);
	auto *eth = reinterpret_cast<rte_ether_hdr *>(p);
	auto *arp = reinterpret_cast<rte_arp_hdr *>(p + RTE_ETHER_HDR_LEN);
	rte_ether_addr sha = arp->arp_data.arp_sha;
	rte_be32_t sip = arp->arp_data.arp_sip;
	rte_be32_t tip = arp->arp_data.arp_tip;

	if (sip == iface_.ip && iface_.ip != 0 && !rte_is_same_ether_addr(&sha, &iface_.mac)) {
		counters_[size_t(ArpCounter::conflict)]++;
		return ArpInput::consumed;
	}
	if (arp->arp_opcode == RTE_BE16(RTE_ARP_OP_REPLY)) {
		counters_[size_t(ArpCounter::reply_in)]++;
		learn(sip, sha, now, tip == iface_.ip);
		return ArpInput::consumed;
	}
	if (tip != iface_.ip || sip == iface_.ip) {
		// For someone else, a gratuitous announcement, or our own echo.
		counters_[size_t(ArpCounter::not_for_us)]++;
		learn(sip, sha, now, false);
		return ArpInput::consumed;
	}
	counters_[size_t(ArpCounter::request_in)]++;
	learn(sip, sha, now, true); // a probe (sip 0) is answered but not learned
	if (m->buf_len < m->data_off + kArpFrameLen) // cannot happen with pools from plan_pools
		return ArpInput::consumed;
	rte_ether_addr eth_dst = eth->src_addr;
	write_arp(p, eth_dst, iface_.mac, RTE_ARP_OP_REPLY, iface_.mac, iface_.ip, sha, sip);
	m->data_len = m->pkt_len = kArpFrameLen;
	m->ol_flags = 0;
	m->packet_type = 0;
	counters_[size_t(ArpCounter::reply_out)]++;
	return ArpInput::reply;
}

uint32_t ArpTable::tries(rte_be32_t ip) const
{
	int i = find(ip);
	return i < 0 ? 0 : entries_[i].tries;
}

void ArpTable::forget(rte_be32_t ip)
{
	int i = find(ip);
	if (i >= 0)
		entries_[i] = Entry{}, ips_[i] = 0;
}

unsigned ArpTable::nb_used() const
{
	unsigned n = 0;
	for (auto &e : entries_)
		n += e.state != State::free;
	return n;
}

std::string ArpTable::unreachable_message(rte_be32_t ip, const std::string &port_name) const
{
	uint64_t ms = 0;
	uint32_t n = tries(ip);
	for (uint32_t k = 1; k <= n; k++)
		ms += backoff(k) / ticks_per_ms_;
	char ipbuf[16], buf[160];
	snprintf(buf, sizeof(buf), "peer %s unreachable: no ARP reply after %u request%s over %.1f s on port %s",
		 ipv4_to_str(ip, ipbuf, sizeof(ipbuf)), n, n == 1 ? "" : "s", ms / 1000.0, port_name.c_str());
	return buf;
}

bool arp_request(rte_mbuf *m, const Iface &iface, rte_be32_t target_ip)
{
	return build_request(m, iface, iface.ip, target_ip);
}

bool arp_gratuitous(rte_mbuf *m, const Iface &iface) { return build_request(m, iface, iface.ip, iface.ip); }

} // namespace dwcp::drivers
