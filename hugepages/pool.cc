#include "hugepages/pool.h"

#include <cinttypes>
#include <cstdio>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mbuf.h>
#include <rte_memzone.h>

#include "hugepages/sysfs.h"

namespace dwcp::hugepages {

namespace {

std::string mib(uint64_t bytes)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%.1f MiB", bytes / 1048576.0);
	return buf;
}

} // namespace

int lcore_socket(unsigned lcore_id)
{
	unsigned s = rte_lcore_to_socket_id(lcore_id);
	return s == unsigned(SOCKET_ID_ANY) ? 0 : int(s);
}

std::string memory_advice(uint64_t need_bytes, int socket_id)
{
	uint64_t need_mib = (need_bytes + (1u << 20) - 1) >> 20;
	if (!rte_eal_has_hugepages()) {
		rte_malloc_socket_stats st{};
		rte_malloc_get_socket_stats(socket_id, &st);
		uint64_t have = st.heap_totalsz_bytes >> 20;
		return "the EAL runs with --no-huge and has " + std::to_string(have) +
		       " MiB: give it a larger -m (at least " + std::to_string(have + need_mib + kEalOverheadMib) + ")";
	}
	uint32_t reserved = 0;
	HugepageStatus st;
	if (hugepage_status(&st).empty())
		for (auto &n : st.nodes)
			if (n.node == socket_id || n.node < 0)
				reserved = n.total;
	uint32_t pages = reserved + uint32_t((need_bytes + kHugepageBytes - 1) / kHugepageBytes) + 1;
	std::string node = numa_nodes({}) > 0 ? " --node " + std::to_string(socket_id) : "";
	return "reserve more hugepages (dwcp-hugepages reserve --pages " + std::to_string(pages) + node +
	       ") or run the EAL with --no-huge -m " + std::to_string(need_mib + kEalOverheadMib);
}

std::string pool_create(const PoolPlan &plan, const std::string &name, int socket_id, rte_mempool **out)
{
	if (name.size() >= RTE_MEMPOOL_NAMESIZE)
		return "hugepages: pool name '" + name + "' is longer than " + std::to_string(RTE_MEMPOOL_NAMESIZE - 1) +
		       " characters";
	rte_mempool *mp = rte_pktmbuf_pool_create(name.c_str(), plan.nb_mbufs, plan.cache_size, 0, plan.data_room,
						  socket_id);
	if (mp == nullptr) {
		int err = rte_errno;
		std::string what = "hugepages: cannot create mbuf pool '" + name + "' (" +
				   std::to_string(plan.nb_mbufs) + " mbufs of " + std::to_string(plan.data_room) +
				   " B, " + mib(plan.pool_bytes) + ") on socket " + std::to_string(socket_id) + ": " +
				   rte_strerror(err);
		if (err == ENOMEM || err == ENOSPC)
			return what + "; " + memory_advice(plan.pool_bytes, socket_id);
		if (err == EEXIST)
			return what + " (a pool of that name exists)";
		return what;
	}
	*out = mp;
	return "";
}

std::string pools_create(const PoolPlan &plan, std::span<const unsigned> worker_lcores, const std::string &prefix,
			 std::vector<rte_mempool *> *out)
{
	std::vector<rte_mempool *> pools;
	for (size_t i = 0; i < worker_lcores.size(); i++) {
		rte_mempool *mp = nullptr;
		auto err = pool_create(plan, prefix + std::to_string(i), lcore_socket(worker_lcores[i]), &mp);
		if (!err.empty()) {
			pools_free(&pools);
			return err + " (worker " + std::to_string(i) + ", lcore " + std::to_string(worker_lcores[i]) + ")";
		}
		pools.push_back(mp);
	}
	*out = std::move(pools);
	return "";
}

void pools_free(std::vector<rte_mempool *> *pools)
{
	for (rte_mempool *mp : *pools)
		rte_mempool_free(mp);
	pools->clear();
}

ChunkArena::~ChunkArena() { destroy(); }

void ChunkArena::destroy()
{
	if (ring_ != nullptr)
		rte_ring_free(ring_);
	if (free_ != nullptr)
		rte_free(free_);
	if (mz_ != nullptr)
		rte_memzone_free(mz_);
	ring_ = nullptr, free_ = nullptr, mz_ = nullptr, base_ = nullptr;
	nb_free_ = nb_bufs_ = 0;
}

std::string ChunkArena::init(const std::string &name, uint32_t nb_bufs, uint32_t buf_size, int socket_id)
{
	destroy();
	std::string what = "hugepages: chunk arena '" + name + "'";
	if (name.size() + 2 >= RTE_MEMZONE_NAMESIZE)
		return what + ": name longer than " + std::to_string(RTE_MEMZONE_NAMESIZE - 3) + " characters";
	if (nb_bufs == 0 || buf_size == 0)
		return what + ": " + std::to_string(nb_bufs) + " buffers of " + std::to_string(buf_size) +
		       " bytes is empty";
	if (nb_bufs > (1u << 24))
		return what + ": " + std::to_string(nb_bufs) + " buffers is more than 16M";
	stride_ = RTE_ALIGN_CEIL(buf_size, RTE_CACHE_LINE_SIZE);
	uint64_t bytes = uint64_t(nb_bufs) * stride_;
	auto fail = [&](const char *part, uint64_t need) {
		int err = rte_errno;
		std::string msg = what + ": cannot allocate its " + part + " (" + mib(need) + ") on socket " +
				  std::to_string(socket_id) + ": " + rte_strerror(err);
		if (err == ENOMEM || err == ENOSPC)
			msg += "; " + memory_advice(need, socket_id);
		destroy();
		return msg;
	};
	// Page-aligned so a buffer that is a multiple of 4 KiB never straddles more pages
	// than it must (zstd and the AEAD stream through whole buffers).
	mz_ = rte_memzone_reserve_aligned(name.c_str(), bytes, socket_id, 0, 4096);
	if (mz_ == nullptr)
		return fail("buffers", bytes);
	free_ = static_cast<uint32_t *>(rte_malloc_socket(nullptr, sizeof(uint32_t) * nb_bufs, 0, socket_id));
	if (free_ == nullptr)
		return fail("free stack", sizeof(uint32_t) * nb_bufs);
	std::string ring_name = name + "_r";
	ring_ = rte_ring_create(ring_name.c_str(), rte_align32pow2(nb_bufs + 1), socket_id, RING_F_SC_DEQ);
	if (ring_ == nullptr)
		return fail("return ring", uint64_t(rte_align32pow2(nb_bufs + 1)) * sizeof(void *));
	base_ = static_cast<uint8_t *>(mz_->addr);
	nb_bufs_ = nb_bufs;
	buf_size_ = buf_size;
	socket_id_ = socket_id;
	// Lowest index on top: the first buffers handed out are the first in memory.
	for (uint32_t i = 0; i < nb_bufs; i++)
		free_[i] = nb_bufs - 1 - i;
	nb_free_ = nb_bufs;
	return "";
}

uint32_t ChunkArena::reclaim()
{
	void *bufs[64];
	uint32_t total = 0, n;
	while ((n = rte_ring_sc_dequeue_burst(ring_, bufs, RTE_DIM(bufs), nullptr)) > 0) {
		for (uint32_t i = 0; i < n; i++)
			free_[nb_free_++] = index(static_cast<uint8_t *>(bufs[i]));
		total += n;
	}
	return total;
}

} // namespace dwcp::hugepages
