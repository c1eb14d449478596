#pragma once
// ARP for one port, owned by one worker: answer requests for our IP, learn peers'
// MACs, and resolve a peer with a retry/backoff policy that ends in a clear verdict
// ("peer 10.99.0.12 did not answer ARP after 6 tries").
//
// The table is a fixed array of kArpEntries searched linearly (64 x 4-byte keys are
// four cache lines): no allocation, no locks.  It is NOT thread-safe: one worker
// owns it.  It holds no pointers, so the owner may copy it whole and publish the
// copy to other threads (RCU-style pointer flip) if they need lookups.
//
// Time is whatever clock the caller passes as `now` (TSC cycles in the workers, a
// manual counter in tests), given its rate at init; the table reads no clock.
#include <cstdint>
#include <string>

#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_mbuf.h>

#include "drivers/net.h"

namespace dwcp::drivers {

constexpr unsigned kArpEntries = 64;

struct ArpPolicy {
	uint32_t max_tries = 6;         // requests sent before a peer is unreachable
	uint32_t first_retry_ms = 100;  // wait after the first request, doubled after each one...
	uint32_t max_retry_ms = 1000;   // ...up to this: 6 tries give up after 0.1+0.2+0.4+0.8+1+1 = 3.5 s
	uint32_t reachable_ms = 60000;  // a learned MAC is used this long without question; after that it
	                                // is still used while a refresh request goes out, and dropped
	                                // (unreachable) if max_tries refreshes go unanswered
};

// What resolve() tells the caller to do.
enum class ArpResolve : uint8_t {
	resolved,    // *mac is the peer's MAC
	refresh,     // *mac is still good to use, and send an ARP request for the peer now
	request,     // no MAC yet: send an ARP request for the peer now
	pending,     // no MAC yet, a request is out: hold packets or try later
	unreachable, // max_tries requests went unanswered (see tries()); resolve again after forget()
	table_full,  // every entry is being resolved; nothing was sent
};

// What input() did with an ARP packet.
enum class ArpInput : uint8_t {
	reply,    // the mbuf now holds our reply: transmit it on the queue it came from
	consumed, // learned from (or ignored and counted): free the mbuf
};

enum class ArpCounter : uint8_t {
	request_in,  // arp.request_in: requests for our IP
	reply_out,   // arp.reply_out: replies built
	reply_in,    // arp.reply_in: replies received
	learned,     // arp.learned: new entries and MAC changes (each bumps generation())
	not_for_us,  // arp.not_for_us: requests for other IPs (only existing entries are updated)
	conflict,    // arp.conflict: someone else claims our IP
	request_out, // arp.request_out: requests resolve() asked for
	unreachable, // arp.unreachable: peers given up on
	table_full,  // arp.table_full: entries that could not be created
	count_,
};
const char *arp_counter_name(ArpCounter c);

class ArpTable {
public:
	// ticks_per_sec is the rate of the `now` values passed later (rte_get_tsc_hz()).
	void init(const Iface &iface, uint64_t ticks_per_sec, const ArpPolicy &policy = {});

	// The MAC of ip if it is known (reachable or being refreshed); nullptr otherwise.
	const rte_ether_addr *lookup(rte_be32_t ip) const;

	// Call whenever packets wait for ip (or once per loop while they do).  Sends are
	// the caller's: on request/refresh, build one with arp_request() and transmit it.
	ArpResolve resolve(rte_be32_t ip, uint64_t now, rte_ether_addr *mac);

	// m was classified RxClass::arp.  Learns the sender (RFC 826: always updates an
	// entry it has; creates one when the packet is a request for us or a reply), and
	// turns a request for our IP into the reply, in place.
	ArpInput input(rte_mbuf *m, uint64_t now);

	// Requests sent for ip so far in the current resolution; 0 when not resolving.
	uint32_t tries(rte_be32_t ip) const;
	// Forgets ip (e.g. after reporting it unreachable, to start over).
	void forget(rte_be32_t ip);
	// Bumped whenever a MAC is learned or changes: rebuild TxTemplates when it moves.
	uint32_t generation() const { return generation_; }
	uint64_t counter(ArpCounter c) const { return counters_[size_t(c)]; }
	unsigned nb_used() const;

	// "peer 10.99.0.12 unreachable: no ARP reply after 6 requests over 3.5 s on port net_af_packet0"
	std::string unreachable_message(rte_be32_t ip, const std::string &port_name) const;

private:
	enum class State : uint8_t { free, incomplete, reachable, failed };
	struct Entry {
		rte_ether_addr mac;
		State state;
		uint8_t tries;        // requests sent in this resolution or refresh
		uint64_t confirmed;   // when the MAC was last learned
		uint64_t next_try;    // when resolve() asks for the next request
	};
	int find(rte_be32_t ip) const;
	int alloc(uint64_t now);
	void learn(rte_be32_t ip, const rte_ether_addr &mac, uint64_t now, bool create);
	uint64_t backoff(uint32_t tries) const;

	Iface iface_{};
	ArpPolicy policy_{};
	uint64_t ticks_per_ms_ = 1;
	uint32_t generation_ = 0;
	rte_be32_t ips_[kArpEntries] = {};
	Entry entries_[kArpEntries] = {};
	uint64_t counters_[size_t(ArpCounter::count_)] = {};
};

// Builds a broadcast ARP request for target_ip from iface into m (reset first).
// Returns false if m cannot hold 60 bytes.
bool arp_request(rte_mbuf *m, const Iface &iface, rte_be32_t target_ip);
// Builds a gratuitous ARP (a broadcast request with sender = target = our IP,
// RFC 5227 announcement) so switches and peers learn our MAC at start.
bool arp_gratuitous(rte_mbuf *m, const Iface &iface);

} // namespace dwcp::drivers
