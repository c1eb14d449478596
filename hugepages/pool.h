#pragma once
// Packet pools and chunk-buffer arenas, created at init on the NUMA socket of the
// worker that owns them, sized by plan_pools() (hugepages/plan.h).
//
// Nothing here runs on the hot path except ChunkArena::get/put/put_remote, which
// touch only the owner's free stack (and the return ring).
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <rte_mempool.h>
#include <rte_ring.h>

#include "hugepages/plan.h"

namespace dwcp::hugepages {

// NUMA socket of an lcore, for placing what that lcore's worker owns.  An lcore
// whose socket the EAL does not know (SOCKET_ID_ANY) maps to socket 0.
int lcore_socket(unsigned lcore_id);

// Creates one packet pool of plan.nb_mbufs mbufs with plan.data_room bytes each and a
// plan.cache_size per-lcore cache on socket_id.  On failure the error names the pool,
// the MiB it needed, the socket, and what to do about it, in one line.
[[nodiscard]] std::string pool_create(const PoolPlan &plan, const std::string &name, int socket_id,
				      rte_mempool **out);

// One pool per worker lcore, named "<prefix><i>", each on its lcore's socket.
// On failure the pools created so far are freed and *out is left empty.
[[nodiscard]] std::string pools_create(const PoolPlan &plan, std::span<const unsigned> worker_lcores,
				       const std::string &prefix, std::vector<rte_mempool *> *out);
void pools_free(std::vector<rte_mempool *> *pools);

// The advice appended to every out-of-memory error: "reserve more hugepages with
// `dwcp-hugepages reserve --pages N --node K`" or "give the EAL a larger -m" when
// it runs with --no-huge.  need_bytes is what the failed allocation wanted.
std::string memory_advice(uint64_t need_bytes, int socket_id);

// Fixed-size chunk buffers carved from one memzone on the owner's socket.
//
// One lcore owns an arena: get() and put() pop and push its free stack without
// atomics.  Any other thread hands a buffer back with put_remote(), which enqueues
// it on a multi-producer ring that the owner drains into its stack when the stack
// runs dry (or when it calls reclaim()).  The ring holds every buffer, so
// put_remote() never fails.
class ChunkArena {
public:
	ChunkArena() = default;
	~ChunkArena();
	ChunkArena(const ChunkArena &) = delete;
	ChunkArena &operator=(const ChunkArena &) = delete;

	// Reserves nb_bufs buffers of buf_size usable bytes (each 64-byte aligned) on
	// socket_id.  name is the memzone name (at most 26 characters; "_r" is appended for
	// the return ring).  Errors name the arena, MiB, socket and the fix.
	[[nodiscard]] std::string init(const std::string &name, uint32_t nb_bufs, uint32_t buf_size, int socket_id);
	void destroy();

	// Owner only.  nullptr when every buffer is out.
	uint8_t *get()
	{
		if (nb_free_ == 0 && reclaim() == 0)
			return nullptr;
		return base_ + uint64_t(free_[--nb_free_]) * stride_;
	}
	// Owner only; buf must come from this arena and be out.
	void put(uint8_t *buf) { free_[nb_free_++] = index(buf); }
	// Any thread.
	void put_remote(uint8_t *buf) { rte_ring_mp_enqueue(ring_, buf); }
	// Owner only: moves buffers handed back by other threads onto the free stack.
	uint32_t reclaim();

	uint32_t index(const uint8_t *buf) const { return uint32_t(uint64_t(buf - base_) / stride_); }
	uint8_t *buf(uint32_t index) const { return base_ + uint64_t(index) * stride_; }
	bool owns(const uint8_t *buf) const
	{
		return buf >= base_ && buf < base_ + uint64_t(nb_bufs_) * stride_ && uint64_t(buf - base_) % stride_ == 0;
	}
	uint32_t nb_free() const { return nb_free_; } // on the stack; the ring is not counted
	uint32_t nb_bufs() const { return nb_bufs_; }
	uint32_t buf_size() const { return buf_size_; }
	uint32_t stride() const { return stride_; }
	int socket_id() const { return socket_id_; }

private:
	uint8_t *base_ = nullptr;
	uint32_t *free_ = nullptr;
	uint32_t nb_free_ = 0;
	uint32_t nb_bufs_ = 0;
	uint32_t buf_size_ = 0;
	uint32_t stride_ = 0;
	int socket_id_ = -1;
	rte_ring *ring_ = nullptr;
	const struct rte_memzone *mz_ = nullptr;
};

} // namespace dwcp::hugepages
