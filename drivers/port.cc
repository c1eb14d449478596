#include "drivers/port.h"

#include <cstdio>
#include <cstring>

#include <rte_errno.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_thash.h>

RTE_LOG_REGISTER(dwcp_drivers_logtype, dwcp.drivers, INFO);
#define PORT_LOG(level, ...) rte_log(RTE_LOG_##level, dwcp_drivers_logtype, "dwcp.drivers: " __VA_ARGS__)

namespace dwcp::drivers {

const uint8_t kRssKey[kRssKeyLen] = {
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d,
	0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
	0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d,
	0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a, 0x6d, 0x5a,
};

namespace {

// Hash types we ask for: UDP ports so streams spread, plain IPv4 so anything else
// (fragments, ICMP) still lands somewhere predictable.
constexpr uint64_t kRssHf = RTE_ETH_RSS_NONFRAG_IPV4_UDP | RTE_ETH_RSS_IPV4;

std::string port_names()
{
	std::string s;
	uint16_t id;
	RTE_ETH_FOREACH_DEV(id)
	{
		char name[RTE_ETH_NAME_MAX_LEN];
		if (rte_eth_dev_get_name_by_port(id, name) == 0)
			s += (s.empty() ? "" : ", ") + std::string(name);
	}
	return s;
}

std::string err_text(int rc) { return rte_strerror(rc < 0 ? -rc : rc); }

std::string find_port(const std::string &name, uint16_t *port_id)
{
	if (name.empty()) {
		uint16_t n = rte_eth_dev_count_avail();
		if (n == 0)
			return "no DPDK port: give the EAL a device (-a 0000:01:00.0, or --vdev net_af_packet0,iface=veth0)";
		if (n > 1)
			return "port name not given and there are " + std::to_string(n) + " ports (" + port_names() +
			       "): name one";
		uint16_t id;
		RTE_ETH_FOREACH_DEV(id)
		{
			*port_id = id;
			break;
		}
		return "";
	}
	if (rte_eth_dev_get_port_by_name(name.c_str(), port_id) != 0) {
		std::string have = port_names();
		return "port '" + name + "' does not exist (ports: " +
		       (have.empty() ? "none; give the EAL -a <pci> or --vdev <device>" : have) + ")";
	}
	return "";
}

} // namespace

std::string PortInfo::label() const
{
	return "port " + std::to_string(port_id) + " (" + name + ", " + driver + ")";
}

std::string port_validate(const PortConfig &cfg, PortInfo *out)
{
	PortInfo info;
	if (auto err = find_port(cfg.name, &info.port_id); !err.empty())
		return err;
	char name[RTE_ETH_NAME_MAX_LEN] = "";
	rte_eth_dev_get_name_by_port(info.port_id, name);
	info.name = name;
	rte_eth_dev_info dev;
	if (int rc = rte_eth_dev_info_get(info.port_id, &dev); rc != 0)
		return "port " + info.name + ": cannot read device info: " + err_text(rc);
	info.driver = dev.driver_name != nullptr ? dev.driver_name : "?";
	const std::string who = info.label();

	info.max_rx_queues = dev.max_rx_queues;
	info.max_tx_queues = dev.max_tx_queues;
	info.rx_offload_capa = dev.rx_offload_capa;
	info.tx_offload_capa = dev.tx_offload_capa;
	if (cfg.nb_queues == 0)
		return who + ": 0 queues requested";
	if (cfg.nb_queues > dev.max_rx_queues || cfg.nb_queues > dev.max_tx_queues)
		return who + ": " + std::to_string(cfg.nb_queues) + " queues requested but the device has at most " +
		       std::to_string(dev.max_rx_queues) + " RX and " + std::to_string(dev.max_tx_queues) + " TX queues";
	info.nb_queues = cfg.nb_queues;
	if (cfg.rx_pools.size() != cfg.nb_queues)
		return who + ": " + std::to_string(cfg.nb_queues) + " queues but " + std::to_string(cfg.rx_pools.size()) +
		       " RX pools (one per queue)";

	// MTU: the device's range, and every RX buffer must hold a whole frame (no scatter).
	if (cfg.mtu < dev.min_mtu || cfg.mtu > dev.max_mtu)
		return who + ": MTU " + std::to_string(cfg.mtu) + " is outside the device's " + std::to_string(dev.min_mtu) +
		       ".." + std::to_string(dev.max_mtu);
	uint32_t frame = cfg.mtu + RTE_ETHER_HDR_LEN + RTE_ETHER_CRC_LEN;
	if (frame > dev.max_rx_pktlen)
		return who + ": MTU " + std::to_string(cfg.mtu) + " makes " + std::to_string(frame) +
		       "-byte frames, more than the device's max_rx_pktlen " + std::to_string(dev.max_rx_pktlen);
	info.mtu = cfg.mtu;
	for (uint16_t q = 0; q < cfg.nb_queues; q++) {
		rte_mempool *mp = cfg.rx_pools[q];
		if (mp == nullptr)
			return who + " queue " + std::to_string(q) + ": RX pool is null";
		uint32_t room = rte_pktmbuf_data_room_size(mp);
		uint32_t usable = room > RTE_PKTMBUF_HEADROOM ? room - RTE_PKTMBUF_HEADROOM : 0;
		if (usable < uint32_t(cfg.mtu) + RTE_ETHER_HDR_LEN)
			return who + " queue " + std::to_string(q) + ": pool '" + mp->name + "' holds " +
			       std::to_string(usable) + "-byte frames but MTU " + std::to_string(cfg.mtu) + " needs " +
			       std::to_string(cfg.mtu + RTE_ETHER_HDR_LEN) + " (size the pool with plan_pools for this MTU)";
	}

	info.nb_rxd = cfg.nb_rxd;
	info.nb_txd = cfg.nb_txd;
	if (int rc = rte_eth_dev_adjust_nb_rx_tx_desc(info.port_id, &info.nb_rxd, &info.nb_txd); rc != 0)
		return who + ": cannot adjust " + std::to_string(cfg.nb_rxd) + "/" + std::to_string(cfg.nb_txd) +
		       " RX/TX descriptors: " + err_text(rc);
	if (info.nb_rxd != cfg.nb_rxd || info.nb_txd != cfg.nb_txd)
		PORT_LOG(NOTICE, "%s: descriptors %u/%u adjusted to %u/%u RX/TX\n", who.c_str(), cfg.nb_rxd, cfg.nb_txd,
			 info.nb_rxd, info.nb_txd);

	// RSS.
	info.reta_size = dev.reta_size;
	if (cfg.nb_queues > 1) {
		bool has_udp_rss = (dev.flow_type_rss_offloads & RTE_ETH_RSS_NONFRAG_IPV4_UDP) != 0;
		if (has_udp_rss) {
			info.rss_hf = dev.flow_type_rss_offloads & kRssHf;
			info.rss_key_len = dev.hash_key_size != 0 ? dev.hash_key_size : 40;
			if (info.rss_key_len > kRssKeyLen)
				return who + ": the device wants a " + std::to_string(dev.hash_key_size) +
				       "-byte RSS key, more than the " + std::to_string(kRssKeyLen) + " dwcp has";
		} else if (cfg.require_rss) {
			return who + ": " + std::to_string(cfg.nb_queues) +
			       " queues need RSS on IPv4/UDP to spread streams over workers, and the device does not offer it "
			       "(use 1 queue, or require_rss=false if the device spreads packets itself, as af_packet fanout does)";
		}
	}

	// Offloads: checksums when asked and offered; the rest only on request.
	uint64_t rx_want = 0, tx_want = 0;
	if (cfg.hw_cksum) {
		rx_want |= RTE_ETH_RX_OFFLOAD_IPV4_CKSUM | RTE_ETH_RX_OFFLOAD_UDP_CKSUM;
		tx_want |= RTE_ETH_TX_OFFLOAD_IPV4_CKSUM | RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	}
	if (cfg.tx_multi_seg)
		tx_want |= RTE_ETH_TX_OFFLOAD_MULTI_SEGS;
	if (cfg.tx_fast_free)
		tx_want |= RTE_ETH_TX_OFFLOAD_MBUF_FAST_FREE;
	info.rx_offloads = rx_want & dev.rx_offload_capa;
	info.tx_offloads = tx_want & dev.tx_offload_capa;
	if (cfg.tx_multi_seg && !(dev.tx_offload_capa & RTE_ETH_TX_OFFLOAD_MULTI_SEGS))
		return who + ": tx_multi_seg asked for but the device cannot send chained mbufs";
	info.tx.ip_cksum = info.tx_offloads & RTE_ETH_TX_OFFLOAD_IPV4_CKSUM;
	info.tx.udp_cksum = info.tx_offloads & RTE_ETH_TX_OFFLOAD_UDP_CKSUM;
	info.tx.multi_seg = info.tx_offloads & RTE_ETH_TX_OFFLOAD_MULTI_SEGS;

	// NUMA: queues go on the device's socket; a virtual device has none, so its
	// queues follow the first worker's pool.
	int dev_socket = rte_eth_dev_socket_id(info.port_id);
	info.socket_id = dev_socket >= 0 ? dev_socket : cfg.rx_pools[0]->socket_id;
	if (info.socket_id < 0)
		info.socket_id = 0;
	for (uint16_t q = 0; q < cfg.nb_queues; q++)
		if (dev_socket >= 0 && cfg.rx_pools[q]->socket_id >= 0 && cfg.rx_pools[q]->socket_id != dev_socket)
			PORT_LOG(WARNING, "%s queue %u: pool '%s' is on socket %d, the device on %d (cross-socket DMA)\n",
				 who.c_str(), q, cfg.rx_pools[q]->name, cfg.rx_pools[q]->socket_id, dev_socket);

	*out = std::move(info);
	return "";
}

std::string port_open(const PortConfig &cfg, PortInfo *out)
{
	PortInfo info;
	if (auto err = port_validate(cfg, &info); !err.empty())
		return err;
	const std::string who = info.label();
	uint16_t port = info.port_id;

	rte_eth_conf conf{};
	conf.rxmode.mtu = info.mtu;
	conf.rxmode.offloads = info.rx_offloads;
	conf.txmode.offloads = info.tx_offloads;
	uint8_t key[kRssKeyLen];
	if (info.rss_hf != 0) {
		memcpy(key, kRssKey, sizeof(key));
		conf.rxmode.mq_mode = RTE_ETH_MQ_RX_RSS;
		conf.rx_adv_conf.rss_conf.rss_key = key;
		conf.rx_adv_conf.rss_conf.rss_key_len = info.rss_key_len;
		conf.rx_adv_conf.rss_conf.rss_hf = info.rss_hf;
	}
	if (int rc = rte_eth_dev_configure(port, info.nb_queues, info.nb_queues, &conf); rc != 0)
		return who + ": configure with " + std::to_string(info.nb_queues) + " queues, MTU " +
		       std::to_string(info.mtu) + (info.rss_hf ? ", RSS" : "") + " failed: " + err_text(rc) +
		       (rc == -EBUSY ? " (is the port already started?)" : "");

	rte_eth_dev_info dev;
	rte_eth_dev_info_get(port, &dev);
	for (uint16_t q = 0; q < info.nb_queues; q++) {
		rte_eth_rxconf rxconf = dev.default_rxconf;
		rxconf.offloads = info.rx_offloads;
		if (int rc = rte_eth_rx_queue_setup(port, q, info.nb_rxd, info.socket_id, &rxconf, cfg.rx_pools[q]);
		    rc != 0)
			return who + " RX queue " + std::to_string(q) + ": setup with " + std::to_string(info.nb_rxd) +
			       " descriptors on socket " + std::to_string(info.socket_id) + " failed: " + err_text(rc);
		rte_eth_txconf txconf = dev.default_txconf;
		txconf.offloads = info.tx_offloads;
		if (int rc = rte_eth_tx_queue_setup(port, q, info.nb_txd, info.socket_id, &txconf); rc != 0)
			return who + " TX queue " + std::to_string(q) + ": setup with " + std::to_string(info.nb_txd) +
			       " descriptors on socket " + std::to_string(info.socket_id) + " failed: " + err_text(rc);
	}
	if (int rc = rte_eth_dev_start(port); rc != 0)
		return who + ": start failed: " + err_text(rc);

	// RETA entry i -> queue i % nb_queues, which is what rss_queue() predicts.  Most
	// PMDs default to that already; one that cannot be told keeps its default.
	if (info.rss_hf != 0 && info.reta_size > 0) {
		std::vector<rte_eth_rss_reta_entry64> reta((info.reta_size + RTE_ETH_RETA_GROUP_SIZE - 1) /
							   RTE_ETH_RETA_GROUP_SIZE);
		for (uint16_t i = 0; i < info.reta_size; i++) {
			reta[i / RTE_ETH_RETA_GROUP_SIZE].mask |= 1ull << (i % RTE_ETH_RETA_GROUP_SIZE);
			reta[i / RTE_ETH_RETA_GROUP_SIZE].reta[i % RTE_ETH_RETA_GROUP_SIZE] = i % info.nb_queues;
		}
		int rc = rte_eth_dev_rss_reta_update(port, reta.data(), info.reta_size);
		if (rc == -ENOTSUP)
			PORT_LOG(NOTICE, "%s: RETA cannot be set, the device's default stays\n", who.c_str());
		else if (rc != 0) {
			rte_eth_dev_stop(port);
			return who + ": setting the RSS redirection table (" + std::to_string(info.reta_size) +
			       " entries) failed: " + err_text(rc);
		}
	}
	if (cfg.promiscuous) {
		if (int rc = rte_eth_promiscuous_enable(port); rc != 0 && rc != -ENOTSUP) {
			rte_eth_dev_stop(port);
			return who + ": promiscuous mode failed: " + err_text(rc);
		}
	}
	if (int rc = rte_eth_macaddr_get(port, &info.mac); rc != 0) {
		rte_eth_dev_stop(port);
		return who + ": cannot read the MAC address: " + err_text(rc);
	}
	*out = std::move(info);
	return "";
}

std::string port_stop(uint16_t port_id)
{
	if (!rte_eth_dev_is_valid_port(port_id))
		return "port " + std::to_string(port_id) + " does not exist";
	if (int rc = rte_eth_dev_stop(port_id); rc != 0)
		return "port " + std::to_string(port_id) + ": stop failed: " + err_text(rc);
	return "";
}

std::string port_close(uint16_t port_id)
{
	if (!rte_eth_dev_is_valid_port(port_id))
		return "port " + std::to_string(port_id) + " does not exist";
	rte_eth_dev_stop(port_id); // -EBUSY/-EPERM when not started is fine before close
	if (int rc = rte_eth_dev_close(port_id); rc != 0)
		return "port " + std::to_string(port_id) + ": close failed: " + err_text(rc);
	return "";
}

std::string port_link(uint16_t port_id, rte_eth_link *link, std::string *text)
{
	if (int rc = rte_eth_link_get_nowait(port_id, link); rc != 0)
		return "port " + std::to_string(port_id) + ": cannot read link state: " + err_text(rc);
	if (text != nullptr) {
		// rte_eth_link_to_str is still experimental in 22.11.
		if (link->link_status == RTE_ETH_LINK_DOWN)
			*text = "link down";
		else
			*text = "link up at " +
				(link->link_speed == RTE_ETH_SPEED_NUM_UNKNOWN ? std::string("unknown speed")
									      : std::to_string(link->link_speed) + " Mbps") +
				(link->link_duplex == RTE_ETH_LINK_FULL_DUPLEX ? " full duplex" : " half duplex");
	}
	return "";
}

std::string port_stats(uint16_t port_id, rte_eth_stats *stats)
{
	if (int rc = rte_eth_stats_get(port_id, stats); rc != 0)
		return "port " + std::to_string(port_id) + ": cannot read stats: " + err_text(rc);
	return "";
}

std::string port_xstats_all(uint16_t port_id, std::vector<std::pair<std::string, uint64_t>> *out)
{
	int n = rte_eth_xstats_get_names(port_id, nullptr, 0);
	if (n < 0)
		return "port " + std::to_string(port_id) + ": cannot list xstats: " + err_text(n);
	std::vector<rte_eth_xstat_name> names(n);
	std::vector<rte_eth_xstat> values(n);
	if (rte_eth_xstats_get_names(port_id, names.data(), n) != n || rte_eth_xstats_get(port_id, values.data(), n) != n)
		return "port " + std::to_string(port_id) + ": xstats changed while reading them";
	out->clear();
	for (int i = 0; i < n; i++)
		out->emplace_back(names[values[i].id].name, values[i].value);
	return "";
}

std::string PortXstats::init(uint16_t port_id, std::span<const std::string> names)
{
	port_id_ = port_id;
	names_.assign(names.begin(), names.end());
	ids_.clear();
	for (auto &name : names_) {
		uint64_t id;
		if (rte_eth_xstats_get_id_by_name(port_id, name.c_str(), &id) != 0)
			return "port " + std::to_string(port_id) + " has no xstat '" + name + "'";
		ids_.push_back(id);
	}
	return "";
}

std::string PortXstats::read(std::span<uint64_t> values) const
{
	if (values.size() != ids_.size())
		return "port " + std::to_string(port_id_) + ": " + std::to_string(values.size()) + " values for " +
		       std::to_string(ids_.size()) + " xstats";
	int rc = rte_eth_xstats_get_by_id(port_id_, ids_.data(), values.data(), unsigned(ids_.size()));
	if (rc != int(ids_.size()))
		return "port " + std::to_string(port_id_) + ": cannot read xstats: " + err_text(rc < 0 ? rc : -EIO);
	return "";
}

uint32_t rss_hash(rte_be32_t src_ip, rte_be32_t dst_ip, rte_be16_t src_port, rte_be16_t dst_port)
{
	rte_ipv4_tuple t{};
	t.src_addr = rte_be_to_cpu_32(src_ip);
	t.dst_addr = rte_be_to_cpu_32(dst_ip);
	t.sport = rte_be_to_cpu_16(src_port);
	t.dport = rte_be_to_cpu_16(dst_port);
	return rte_softrss(reinterpret_cast<uint32_t *>(&t), RTE_THASH_V4_L4_LEN, kRssKey);
}

uint16_t rss_queue(uint32_t hash, uint16_t reta_size, uint16_t nb_queues)
{
	if (nb_queues <= 1)
		return 0;
	uint32_t idx = reta_size > 0 ? hash % reta_size : hash;
	return uint16_t(idx % nb_queues);
}

} // namespace dwcp::drivers
