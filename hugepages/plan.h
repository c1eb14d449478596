#pragma once
// Memory plan for one gateway: how many mbufs each worker's packet pool holds, how
// big each mbuf is, and how much memory the pools and chunk arenas take in all.
// Pure arithmetic: no EAL, no allocation, so it is unit-tested and the gateway can
// print it (and refuse to start) before it touches any memory.
//
// Every worker owns one packet pool (its RX queues fill from it, its TX mbufs come
// from it) and one chunk arena, both on the worker's NUMA socket.  Per worker:
//
//   cache_size = min(RTE_MEMPOOL_CACHE_MAX_SIZE, 8 * burst)                  (256 for a burst of 32)
//   nb_mbufs   = nb_queues * (nb_rxd + nb_txd)        descriptors: an RX ring is kept full of
//                                                     empty buffers, a TX ring holds sent mbufs
//                                                     until the NIC is done with them
//              + nb_queues * 2 * burst                one RX burst being processed and one TX
//                                                     batch being built, per queue
//              + inflight_pkts                        mbufs the sender keeps until acknowledged
//                                                     (bytes in flight / MSS; 0 if the transport
//                                                     rebuilds retransmissions from chunk buffers)
//              + nb_pool_users * ceil(1.5 * cache_size)
//                                                     each lcore's mempool cache may hold up to its
//                                                     flush threshold, 1.5 x cache_size
//              rounded up to a multiple of cache_size (rte_mempool_create's advice)
//   data_room  = RTE_PKTMBUF_HEADROOM + round_up(14 + 4 + mtu + 4, 1024)
//                                                     Ethernet header, one VLAN tag, the IP MTU and
//                                                     the FCS some PMDs DMA; rounded to 1 KiB
//                                                     because several NICs (ixgbe, igb) size RX
//                                                     buffers in 1 KiB units and would otherwise
//                                                     need scatter (MTU 1500 gives 2176, the DPDK
//                                                     default RTE_MBUF_DEFAULT_BUF_SIZE)
//   pool_bytes = nb_mbufs * rte_mempool_calc_obj_size(sizeof(rte_mbuf) + data_room)
//              + the pool's ring (next pow2 of nb_mbufs+1 pointers) + the pool header with
//                its RTE_MAX_LCORE per-lcore caches
//   chunk_buf_stride = round_up(chunk_buf_size, 64)
//   arena_bytes = nb_chunk_bufs * (chunk_buf_stride + 4 for the free stack)
//              + the cross-thread return ring (next pow2 of nb_chunk_bufs+1 pointers)
//
//   total_bytes = nb_workers * (round_up(pool_bytes, 2 MiB) + round_up(arena_bytes, 2 MiB))
//                 (each pool and arena is its own memzone, which occupies whole 2 MiB pages)
//   eal_mem_mib = ceil(total_bytes / MiB) + kEalOverheadMib     what -m needs under --no-huge
//   nb_hugepages_2m = eal_mem_mib / 2                              what to reserve otherwise
#include <cstdint>
#include <string>

namespace dwcp::hugepages {

// EAL and PMD memory beside ours: descriptor rings, ethdev queues, rte_rings of the
// control plane, telemetry, malloc heap fragmentation.  An allowance, not a
// measurement: the drivers eal tests open ports with 4 queues inside -m 128.
constexpr uint64_t kEalOverheadMib = 48;
constexpr uint64_t kHugepageBytes = 2u << 20;

struct PoolDemand {
	uint32_t nb_workers = 1;
	uint16_t nb_queues = 1;        // RX/TX queue pairs each worker polls (one per port it serves)
	uint16_t nb_rxd = 1024;        // after rte_eth_dev_adjust_nb_rx_tx_desc
	uint16_t nb_txd = 1024;
	uint16_t burst = 32;
	uint32_t inflight_pkts = 0;    // per worker; e.g. bdp_bytes / streams_per_worker / mss
	uint16_t mtu = 1500;           // IP MTU of the port
	uint16_t nb_pool_users = 2;    // lcores that get/put on one pool: its worker and the main lcore
	uint32_t nb_chunk_bufs = 0;    // per worker
	uint32_t chunk_buf_size = 256 * 1024 + 4096;
};

struct PoolPlan {
	uint32_t nb_mbufs = 0;         // per worker pool
	uint32_t cache_size = 0;       // per-lcore mempool cache
	uint16_t data_room = 0;        // rte_pktmbuf_pool_create's data_room_size
	uint32_t mbuf_obj_bytes = 0;   // what one mbuf takes in the pool, header and padding included
	uint64_t pool_bytes = 0;       // one worker's packet pool
	uint32_t nb_chunk_bufs = 0;    // per worker
	uint32_t chunk_buf_size = 0;   // usable bytes of one chunk buffer
	uint32_t chunk_buf_stride = 0; // distance between chunk buffers
	uint64_t arena_bytes = 0;      // one worker's chunk arena
	uint32_t nb_workers = 0;
	uint64_t total_bytes = 0;      // all workers, in whole 2 MiB pages
	uint64_t eal_mem_mib = 0;      // -m for --no-huge
	uint32_t nb_hugepages_2m = 0;  // 2 MiB pages to reserve
};

// Returns "" and fills *plan, or an error naming the field that is out of range.
[[nodiscard]] std::string plan_pools(const PoolDemand &d, PoolPlan *plan);

// One line for logs: "4 workers x (8448 mbufs x 2.4 KiB = 20.1 MiB + 64 chunks x 260 KiB = 16.3 MiB) = 80 MiB".
std::string plan_describe(const PoolPlan &p);

} // namespace dwcp::hugepages
