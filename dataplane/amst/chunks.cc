#include "dataplane/amst/chunks.h"

#include <algorithm>
#include <cstring>

namespace dwcp::amst {

uint32_t chunk_size_for(uint64_t rtt_ns, uint64_t link_bytes_per_s, uint32_t mss)
{
	// RTT * bw * 0.5, in 128 bits: 10 Gbit/s for 500 ms overflows nothing, but a
	// hostile or mistyped rate must not either.
	unsigned __int128 half_bdp = (unsigned __int128)rtt_ns * link_bytes_per_s / 2'000'000'000u;
	uint64_t c = uint64_t(std::min<unsigned __int128>(half_bdp, kMaxChunkSize));
	c = std::max<uint64_t>(c, 16ull * mss);
	c = std::min<uint64_t>(c, kMaxChunkSize);
	return uint32_t(c / mss * mss);
}

uint32_t window_chunks_for(uint64_t rtt_ns, uint64_t link_bytes_per_s, uint32_t chunk_size)
{
	unsigned __int128 eight_bdp = (unsigned __int128)rtt_ns * link_bytes_per_s * 8 / 1'000'000'000u;
	unsigned __int128 n = eight_bdp / std::max<uint32_t>(chunk_size, 1) + 1;
	return uint32_t(std::clamp<unsigned __int128>(n, 512, 65536));
}

ChunkAssembler::ChunkAssembler(uint32_t nb_chunks, uint32_t window, uint32_t mss, ChunkSink *sink)
	: nb_chunks_(nb_chunks), window_(std::max<uint32_t>(window, 1)), mss_(mss),
	  // Encoded chunks may run a little past the raw chunk size (a literal block's
	  // header); 2x leaves room for any encoder that respects its own bound.
	  words_((2 * kMaxChunkSize / mss + 64) / 64), sink_(sink), slots_(new Slot[window_]),
	  bits_(size_t(window_) * words_, 0)
{
}

ChunkAssembler::Result ChunkAssembler::on_data(const wire::DataFrame &f, const uint8_t *payload, size_t len)
{
	uint32_t base = base_.load(std::memory_order_acquire);
	if (f.chunk_id >= nb_chunks_)
		return Result::bad_chunk;
	if (f.chunk_id < base)
		return Result::duplicate;
	if (f.chunk_id - base >= window_ || f.chunk_id >= flow_limit_.load(std::memory_order_acquire))
		return Result::out_of_window;
	// Every packet but a chunk's last is exactly one MSS and starts on a slot boundary.
	uint32_t slot_idx = f.chunk_off / mss_;
	if (f.chunk_off % mss_ || len != std::min<uint64_t>(mss_, f.chunk_len - f.chunk_off) ||
	    slot_idx >= words_ * 64)
		return Result::bad_chunk;

	Slot &s = slots_[f.chunk_id % window_];
	uint64_t *bits = &bits_[size_t(f.chunk_id % window_) * words_];
	if (s.chunk_id.load(std::memory_order_relaxed) != f.chunk_id) {
		// First packet of this chunk.  The slot's previous chunk is complete: the base
		// has passed it, or this chunk would be out of window.
		uint8_t *dest = sink_->chunk_buffer(f.chunk_id, f.chunk_len);
		if (!dest)
			return Result::bad_chunk;
		s.chunk_len = f.chunk_len;
		s.slots_left = (f.chunk_len + mss_ - 1) / mss_;
		s.dest = dest;
		memset(bits, 0, words_ * sizeof(uint64_t));
		s.complete.store(false, std::memory_order_relaxed);
		s.chunk_id.store(f.chunk_id, std::memory_order_release);
	} else if (s.complete.load(std::memory_order_relaxed)) {
		return Result::duplicate;
	}
	if (f.chunk_len != s.chunk_len)
		return Result::bad_chunk;
	uint64_t bit = 1ull << (slot_idx % 64);
	if (bits[slot_idx / 64] & bit)
		return Result::duplicate;
	bits[slot_idx / 64] |= bit;
	memcpy(s.dest + f.chunk_off, payload, len);
	if (--s.slots_left)
		return Result::placed;
	s.complete.store(true, std::memory_order_release);
	nb_complete_.fetch_add(1, std::memory_order_acq_rel);
	sink_->chunk_complete(f.chunk_id, f.chunk_len);
	advance_base();
	return Result::completed;
}

void ChunkAssembler::advance_base()
{
	// Any worker may move the base past complete chunks; a CAS keeps two workers
	// doing it at once from skipping or repeating a step.
	uint32_t base = base_.load(std::memory_order_acquire);
	while (base < nb_chunks_) {
		const Slot &s = slots_[base % window_];
		if (s.chunk_id.load(std::memory_order_acquire) != base || !s.complete.load(std::memory_order_acquire))
			return;
		if (base_.compare_exchange_weak(base, base + 1, std::memory_order_acq_rel))
			base++;
	}
}

} // namespace dwcp::amst
