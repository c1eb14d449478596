#include "hugepages/plan.h"

#include <cinttypes>
#include <cstdio>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

namespace dwcp::hugepages {

namespace {

uint64_t round_up(uint64_t v, uint64_t to) { return (v + to - 1) / to * to; }

// Bytes of an rte_ring holding up to n objects (rte_ring_create rounds n+1 up to a power of two).
uint64_t ring_bytes(uint32_t n)
{
	uint32_t count = rte_align32pow2(n + 1);
	return sizeof(struct rte_ring) + uint64_t(count) * sizeof(void *);
}

} // namespace

std::string plan_pools(const PoolDemand &d, PoolPlan *plan)
{
	if (d.nb_workers == 0)
		return "pool plan: nb_workers is 0";
	if (d.nb_queues == 0)
		return "pool plan: nb_queues per worker is 0";
	if (d.nb_rxd == 0 || d.nb_txd == 0)
		return "pool plan: nb_rxd " + std::to_string(d.nb_rxd) + " / nb_txd " + std::to_string(d.nb_txd) +
		       ": descriptor counts must be > 0";
	if (d.burst == 0 || d.burst > 512)
		return "pool plan: burst " + std::to_string(d.burst) + " is outside 1..512";
	if (d.mtu < 68 || d.mtu > 9600)
		return "pool plan: mtu " + std::to_string(d.mtu) + " is outside 68..9600";
	if (d.nb_pool_users == 0)
		return "pool plan: nb_pool_users is 0";
	if (d.nb_chunk_bufs > 0 && d.chunk_buf_size == 0)
		return "pool plan: chunk_buf_size is 0";

	PoolPlan p;
	p.nb_workers = d.nb_workers;
	p.cache_size = RTE_MIN(uint32_t(RTE_MEMPOOL_CACHE_MAX_SIZE), 8u * d.burst);

	uint64_t n = uint64_t(d.nb_queues) * (d.nb_rxd + d.nb_txd) + uint64_t(d.nb_queues) * 2 * d.burst +
		     d.inflight_pkts + uint64_t(d.nb_pool_users) * ((p.cache_size * 3 + 1) / 2);
	n = round_up(n, p.cache_size);
	if (n > UINT32_MAX / 2)
		return "pool plan: " + std::to_string(n) + " mbufs per worker is absurd (inflight_pkts " +
		       std::to_string(d.inflight_pkts) + "?)";
	p.nb_mbufs = uint32_t(n);

	p.data_room = uint16_t(RTE_PKTMBUF_HEADROOM + round_up(RTE_ETHER_HDR_LEN + 4 + d.mtu + RTE_ETHER_CRC_LEN, 1024));

	struct rte_mempool_objsz sz;
	p.mbuf_obj_bytes = rte_mempool_calc_obj_size(sizeof(struct rte_mbuf) + p.data_room, 0, &sz);
	uint64_t header = sizeof(struct rte_mempool) + sizeof(struct rte_mempool_cache) * RTE_MAX_LCORE +
			  sizeof(struct rte_pktmbuf_pool_private);
	p.pool_bytes = uint64_t(p.nb_mbufs) * p.mbuf_obj_bytes + ring_bytes(p.nb_mbufs) + header;

	p.nb_chunk_bufs = d.nb_chunk_bufs;
	p.chunk_buf_size = d.chunk_buf_size;
	p.chunk_buf_stride = uint32_t(round_up(d.chunk_buf_size, RTE_CACHE_LINE_SIZE));
	if (d.nb_chunk_bufs > 0)
		p.arena_bytes = uint64_t(d.nb_chunk_bufs) * (p.chunk_buf_stride + sizeof(uint32_t)) +
				ring_bytes(d.nb_chunk_bufs);

	p.total_bytes = uint64_t(d.nb_workers) *
			(round_up(p.pool_bytes, kHugepageBytes) + round_up(p.arena_bytes, kHugepageBytes));
	p.eal_mem_mib = round_up(p.total_bytes, 1u << 20) / (1u << 20) + kEalOverheadMib;
	p.nb_hugepages_2m = uint32_t((p.eal_mem_mib + 1) / 2);
	*plan = p;
	return "";
}

std::string plan_describe(const PoolPlan &p)
{
	char buf[256];
	snprintf(buf, sizeof(buf),
		 "%u workers x (%u mbufs x %u B = %.1f MiB + %u chunk buffers x %.0f KiB = %.1f MiB) = %.0f MiB"
		 " (EAL -m %" PRIu64 " or %u hugepages of 2 MiB)",
		 p.nb_workers, p.nb_mbufs, p.mbuf_obj_bytes, p.pool_bytes / 1048576.0, p.nb_chunk_bufs,
		 p.chunk_buf_stride / 1024.0, p.arena_bytes / 1048576.0, p.total_bytes / 1048576.0, p.eal_mem_mib,
		 p.nb_hugepages_2m);
	return buf;
}

} // namespace dwcp::hugepages
