#pragma once
// Chunks: the unit in which an object crosses the WAN.
//
// An object of S bytes is cut into chunks of C bytes (the last one shorter):
// chunk i holds bytes [i*C, min((i+1)*C, S)).  C = min(256 KiB, RTT * bw * 0.5)
// (chunk_size_for), agreed at session set-up.  A chunk is sent whole on one stream,
// in packets that start at multiples of the session's MSS, so every packet of a
// chunk has a fixed slot and a retransmission lands in the same slot: the receiver
// places bytes out of order, drops duplicates by slot, and knows the chunk is whole
// when every slot has arrived.  What a chunk carries on the wire is its payload:
// the raw bytes, or their delta-encoded form (then its length differs from C).
//
// Streams claim chunks from one ChunkScheduler shared by every worker of a session
// (an atomic counter, no lock), bounded by the receiver's window: the receiver
// tracks at most `window` chunks at once and the sender may claim chunk i only while
// i < lowest incomplete chunk + window.  The ChunkAssembler is written by the one
// worker that owns a chunk's stream and read by all, through atomics.
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "dataplane/amst/wire.h"

namespace dwcp::amst {

constexpr uint32_t kMaxChunkSize = 256 * 1024;

// chunk = min(256 KiB, RTT * bw * 0.5), rounded down to whole packets, and at least
// 16 packets so that the per-chunk cost stays small on short fast links.
uint32_t chunk_size_for(uint64_t rtt_ns, uint64_t link_bytes_per_s, uint32_t mss);

// The receiver's window in chunks when the operator sets none: eight round trips
// of the link, at least 512 and at most 65536.  A chunk whose packet is lost k
// times in a row holds the window's base for k more round trips while the rest
// of the window fills.  At 2% loss a packet is lost three times in a row once in
// 125,000 (dozens of times in 4 GiB), and 512 chunks at 300 ms and 1 Gbit/s (3.6
// round trips) blocked the sender for most of a round trip each time.
uint32_t window_chunks_for(uint64_t rtt_ns, uint64_t link_bytes_per_s, uint32_t chunk_size);

inline uint32_t nb_chunks_for(uint64_t object_size, uint32_t chunk_size)
{
	return uint32_t((object_size + chunk_size - 1) / chunk_size);
}

class ChunkScheduler {
public:
	ChunkScheduler(uint32_t nb_chunks, uint32_t initial_window)
		: nb_chunks_(nb_chunks), limit_(std::min(nb_chunks, initial_window)) {}

	// Claims the next chunk for a stream.  False when every chunk is claimed or the
	// receiver's window is full (window_blocked() tells which).
	bool claim(uint32_t *chunk_id)
	{
		uint32_t next = next_.load(std::memory_order_relaxed);
		do {
			if (next >= limit_.load(std::memory_order_acquire))
				return false;
		} while (!next_.compare_exchange_weak(next, next + 1, std::memory_order_acq_rel));
		*chunk_id = next;
		return true;
	}
	// The receiver accepts chunk ids below `limit` (it only ever grows).
	void raise_window(uint32_t limit)
	{
		limit = std::min(limit, nb_chunks_);
		uint32_t cur = limit_.load(std::memory_order_relaxed);
		while (limit > cur && !limit_.compare_exchange_weak(cur, limit, std::memory_order_acq_rel)) {
		}
	}
	bool all_claimed() const { return next_.load(std::memory_order_acquire) >= nb_chunks_; }
	bool window_blocked() const { return !all_claimed() && next_.load() >= limit_.load(); }
	uint32_t nb_chunks() const { return nb_chunks_; }
	uint32_t claimed() const { return std::min(next_.load(std::memory_order_acquire), nb_chunks_); }

private:
	const uint32_t nb_chunks_;
	std::atomic<uint32_t> next_{0};
	std::atomic<uint32_t> limit_;
};

// Where the receiver puts chunk bytes, and who hears that a chunk is whole.
class ChunkSink {
public:
	virtual ~ChunkSink() = default;
	// Memory for chunk `chunk_id` whose payload is `chunk_len` bytes; nullptr refuses
	// the chunk (a length that cannot be right for that chunk).  Called once per
	// chunk, on the first packet that arrives for it.
	virtual uint8_t *chunk_buffer(uint32_t chunk_id, uint32_t chunk_len) = 0;
	// Every byte of the chunk is in its buffer.
	virtual void chunk_complete(uint32_t chunk_id, uint32_t chunk_len) = 0;
};

class ChunkAssembler {
public:
	enum class Result : uint8_t {
		placed,        // new bytes stored
		completed,     // new bytes stored and the chunk is now whole
		duplicate,     // bytes already held (or the chunk is long complete)
		out_of_window, // beyond what the receiver advertised: not stored, not acknowledged
		bad_chunk,     // inconsistent with the chunk as first seen, or refused by the sink
	};

	ChunkAssembler(uint32_t nb_chunks, uint32_t window, uint32_t mss, ChunkSink *sink);

	// Stores one DATA packet's bytes.
	Result on_data(const wire::DataFrame &f, const uint8_t *payload, size_t len);

	// What the sender may claim: chunk ids below this.
	uint32_t window_limit() const
	{
		uint64_t lim = std::min<uint64_t>(uint64_t(base_.load(std::memory_order_acquire)) + window_, nb_chunks_);
		return uint32_t(std::min<uint64_t>(lim, flow_limit_.load(std::memory_order_acquire)));
	}
	// Back-pressure from whoever drains completed chunks (a disk writer that owns a
	// fixed number of chunk buffers): no chunk id at or above `limit` is accepted or
	// advertised.  May move either way; starts unlimited.
	void set_flow_limit(uint32_t limit) { flow_limit_.store(limit, std::memory_order_release); }
	uint32_t nb_complete() const { return nb_complete_.load(std::memory_order_acquire); }
	bool all_complete() const { return nb_complete() == nb_chunks_; }
	uint32_t nb_chunks() const { return nb_chunks_; }
	uint32_t window() const { return window_; }

private:
	struct Slot {
		std::atomic<uint32_t> chunk_id{UINT32_MAX}; // UINT32_MAX: never used
		std::atomic<bool> complete{false};
		uint32_t chunk_len = 0;
		uint32_t slots_left = 0; // packet slots still missing
		uint8_t *dest = nullptr;
	};

	void advance_base();

	const uint32_t nb_chunks_;
	const uint32_t window_;
	const uint32_t mss_;
	const uint32_t words_; // bitmap words per slot
	ChunkSink *sink_;
	std::unique_ptr<Slot[]> slots_;
	std::vector<uint64_t> bits_; // words_ per slot: packet slots received
	std::atomic<uint32_t> base_{0};
	std::atomic<uint32_t> nb_complete_{0};
	std::atomic<uint32_t> flow_limit_{UINT32_MAX};
};

} // namespace dwcp::amst
