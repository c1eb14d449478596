#pragma once
// One DPDK ethdev port, opened for the workers: N RX/TX queue pairs (one per
// worker), RSS over IPv4/UDP with a fixed key so a peer can predict which queue,
// hence which worker, gets a stream; the checksum offloads the device has.
//
// Works the same on a NIC given to the EAL by PCI address (-a 0000:01:00.0) and on
// the virtual devices (--vdev net_af_packet0,iface=veth0 / net_af_xdp / net_memif /
// net_ring / net_null).  port_validate() checks everything without touching the
// port, so the gateway validates every port before it starts any (l3fwd's
// check_port_config habit); port_open() validates again, then configures, sets up
// queues on the port's NUMA socket and starts it.  All of this is init-path code:
// it allocates and returns errors as one line that names the port.
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "drivers/net.h"

namespace dwcp::drivers {

// The RSS key: 0x6d5a repeated (Woo and Park, "Scalable TCP Session Monitoring with
// Symmetric Receive-side Scaling", 2012).  Two reasons for it: it is periodic, so
// every key length a device wants (40 bytes for most, 52 for i40e/ice) is the same
// key and a peer computes the same hash with the 40-byte rte_softrss; and it is
// symmetric (swapping source and destination gives the same hash).
constexpr size_t kRssKeyLen = 52;
extern const uint8_t kRssKey[kRssKeyLen];

struct PortConfig {
	// DPDK device name as rte_eth_dev_get_port_by_name takes it ("net_af_packet0",
	// "0000:01:00.0"); empty = the only port there is (an error if 0 or more than 1).
	std::string name;
	uint16_t nb_queues = 1;          // RX/TX queue pairs; queue q belongs to worker q
	uint16_t nb_rxd = 1024;          // adjusted to the device's limits (PortInfo has the result)
	uint16_t nb_txd = 1024;
	uint16_t mtu = 1500;             // IP MTU
	std::vector<rte_mempool *> rx_pools; // one per queue, on the worker's socket (hugepages/pool.h)
	// nb_queues > 1 needs IPv4/UDP RSS.  false accepts a device that spreads packets
	// by itself (net_af_packet's PACKET_FANOUT, net_af_xdp on a multi-queue NIC):
	// the port is then configured without RSS and PortInfo::rss_hf is 0.
	bool require_rss = true;
	bool hw_cksum = true;            // use the IPv4/UDP checksum offloads the device has (RX and TX)
	bool tx_multi_seg = false;       // chained mbufs on TX (may cost the PMD its vector TX path)
	// RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE: only when every mbuf sent on a queue comes
	// from one pool and has refcnt 1 (no clones, no external chunk buffers).
	bool tx_fast_free = false;
	bool promiscuous = false;
};

struct PortInfo {
	uint16_t port_id = 0;
	std::string name;                // device name
	std::string driver;              // "net_null", "net_ice", ...
	rte_ether_addr mac{};
	int socket_id = 0;               // NUMA socket of the device; a virtual device's is its first pool's
	uint16_t nb_queues = 0;
	uint16_t nb_rxd = 0, nb_txd = 0; // after rte_eth_dev_adjust_nb_rx_tx_desc
	uint16_t mtu = 0;
	uint16_t max_rx_queues = 0, max_tx_queues = 0;
	uint16_t reta_size = 0;          // 0 when the device has no redirection table
	uint64_t rss_hf = 0;             // RSS hash types configured; 0 = RSS off
	uint8_t rss_key_len = 0;
	uint64_t rx_offloads = 0;        // RTE_ETH_RX_OFFLOAD_* enabled
	uint64_t tx_offloads = 0;        // RTE_ETH_TX_OFFLOAD_* enabled
	uint64_t rx_offload_capa = 0;    // what the device could do
	uint64_t tx_offload_capa = 0;
	TxOffloads tx;                   // what tx_template_init should use
	std::string label() const;       // "port 0 (net_null0, net_null)"
};

// Checks cfg against the device without changing it and fills *info with what
// port_open would configure.  Returns "" or the first problem, naming the port.
[[nodiscard]] std::string port_validate(const PortConfig &cfg, PortInfo *info);
// Validates, configures, sets up the queues and starts the port.
[[nodiscard]] std::string port_open(const PortConfig &cfg, PortInfo *info);
[[nodiscard]] std::string port_stop(uint16_t port_id);
// Stops (if started) and closes the port; its port id is invalid afterwards.
[[nodiscard]] std::string port_close(uint16_t port_id);

// Link state without waiting ("Link up at 10 Gbps FDX Autoneg" in *text if given).
[[nodiscard]] std::string port_link(uint16_t port_id, rte_eth_link *link, std::string *text = nullptr);
[[nodiscard]] std::string port_stats(uint16_t port_id, rte_eth_stats *stats);
// Every extended statistic as (name, value), for a dump.
[[nodiscard]] std::string port_xstats_all(uint16_t port_id, std::vector<std::pair<std::string, uint64_t>> *out);

// A few extended statistics read by name for a progress line: the names are
// resolved to ids once, then read() costs one ethdev call.
class PortXstats {
public:
	[[nodiscard]] std::string init(uint16_t port_id, std::span<const std::string> names);
	// values.size() must be names().size().
	[[nodiscard]] std::string read(std::span<uint64_t> values) const;
	const std::vector<std::string> &names() const { return names_; }

private:
	uint16_t port_id_ = 0;
	std::vector<std::string> names_;
	std::vector<uint64_t> ids_;
};

// The Toeplitz hash a receiver configured by port_open computes for an IPv4/UDP
// packet (all arguments in network byte order, as on the wire).
uint32_t rss_hash(rte_be32_t src_ip, rte_be32_t dst_ip, rte_be16_t src_port, rte_be16_t dst_port);
// The receiver's queue for that packet: port_open programs RETA entry i to queue
// i % nb_queues, so the queue is (hash % reta_size) % nb_queues.  A sender uses it
// to pick UDP source ports that land each stream on the worker it wants.
uint16_t rss_queue(uint32_t hash, uint16_t reta_size, uint16_t nb_queues);

} // namespace dwcp::drivers
