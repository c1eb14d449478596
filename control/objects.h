#pragma once
// The files a gateway moves: a source it sends from, a sink it receives into.
//
// Source: the file is mapped read-only and the workers copy chunk bytes straight
// from the page cache into mbufs; a hasher thread computes its SHA-256 from the
// same mapping meanwhile, so the digest is ready long before the last chunk is
// acknowledged.  Like any mapped sender, it must not be truncated while sent
// (SIGBUS); a size change is reported, a rewrite in place fails the digest.
//
// Sink: chunks arrive out of order into fixed chunk buffers (EAL memory, hugepages
// when the EAL has them) that the workers take from a lock-free pool.  A writer
// thread writes each completed chunk to a temporary file at its offset and feeds
// SHA-256 in object order, returning a buffer to the pool only once its chunk is
// hashed; it bounds what the sender may send by the buffers it has
// (ChunkAssembler::set_flow_limit), so a slow disk slows the sender down instead
// of losing data.  The temporary file ("DIR/.NAME.<session>.dwcp-part", space
// reserved up front with fallocate) is renamed to NAME only after the whole-file
// digest matches the sender's, and fsync'd first; anything else removes it.  An
// interrupted transfer therefore leaves either the old NAME or nothing, never a
// file that looks complete.
//
// Deltas (HDE, dataplane/hde/block_delta.h): with a baseline both sides hold, the
// sender's EncodedSource encodes each chunk on the worker that claims it, against
// the baseline, into a buffer it keeps until the chunk is acknowledged; the sink
// takes encoded chunks of any length up to the HDE bound and its writer decodes
// each (CRC, chunk index, baseline tag checked) before it writes and hashes the
// bytes.  A chunk that does not decode fails the transfer; the whole-object
// SHA-256 is still the last word.
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <rte_ring.h>

#include "control/sha256.h"
#include "dataplane/amst/chunks.h"
#include "dataplane/amst/session.h"
#include "dataplane/hde/block_delta.h"

namespace dwcp::control {

// A regular file mapped read-only: what a source sends from, and a baseline that
// dataplane/hde reads in place.
class MappedFile {
public:
	~MappedFile();
	// "" or one line naming the file.
	[[nodiscard]] std::string open(const std::string &path);
	std::span<const uint8_t> bytes() const { return {map_, size_t(size_)}; }
	int fd() const { return fd_; }

private:
	int fd_ = -1;
	const uint8_t *map_ = nullptr;
	uint64_t size_ = 0;
};

class SourceFile : public amst::ChunkProvider {
public:
	~SourceFile() override;
	// Opens and maps path, starts hashing it (at most hash_lead bytes past what the
	// workers have claimed, see note_claimed).  Returns "" or one line naming the file.
	static constexpr uint64_t kHashLead = 32ull << 20;
	[[nodiscard]] std::string open(const std::string &path, uint64_t hash_lead = kHashLead);
	uint64_t size() const { return size_; }
	const std::string &path() const { return path_; }
	void set_chunk_size(uint32_t chunk_size) { chunk_size_ = chunk_size; }

	std::span<const uint8_t> chunk_payload(uint32_t chunk_id) override;
	void chunk_acked(uint32_t chunk_id) override {}
	// The workers have claimed the object up to byte `end` (raw or encoded): the
	// hash may run hash_lead beyond it.  Hashing the whole file at once when it
	// opens would take a core from the workers, the emulator and the peer during
	// the handshake and the ramp (4 GiB is 2.7 s of SHA-256 here); held a little
	// ahead of the claims, it costs the send rate's share of a core, and it is
	// done a few milliseconds after the last chunk is claimed (32 MiB of SHA-256),
	// well before the receiver has the last bytes.
	void note_claimed(uint64_t end) const
	{
		uint64_t cur = claimed_end_.load(std::memory_order_relaxed);
		while (end > cur && !claimed_end_.compare_exchange_weak(cur, end, std::memory_order_relaxed))
			;
	}

	// The hash is done (digest() valid) or failed (hash_error() says why).
	bool hash_done() const { return hash_state_.load(std::memory_order_acquire) != 0; }
	const Sha256 &digest() const { return digest_; }
	const std::string &hash_error() const { return hash_error_; }
	// The whole mapping (empty for an empty file).
	std::span<const uint8_t> bytes() const { return {map_, size_t(size_)}; }

private:
	void hash_thread();

	std::string path_;
	MappedFile file_;
	const uint8_t *map_ = nullptr;
	uint64_t size_ = 0;
	uint32_t chunk_size_ = 0;
	std::thread hasher_;
	std::atomic<int> hash_state_{0}; // 0 running, 1 done, 2 failed
	std::atomic<bool> stop_{false};
	mutable std::atomic<uint64_t> claimed_end_{0};
	uint64_t hash_lead_ = kHashLead;
	Sha256 digest_{};
	std::string hash_error_;
};

// HDE-encoded chunks of a SourceFile, made on the workers that claim them.
class EncodedSource : public amst::ChunkProvider {
public:
	~EncodedSource() override;
	// file gives the bytes; base (may be null: every chunk encoded on its own) the
	// baseline index; at most `window` chunks are held at once (the receiver's
	// window bounds what the scheduler lets the workers claim).  `lcores` are the
	// worker lcores that will call chunk_payload: each gets its own encoder.
	[[nodiscard]] std::string start(const SourceFile *file, uint32_t chunk_size, uint32_t nb_chunks, uint32_t window,
					const hde::BaselineIndex *base, hde::Tier tier, const std::vector<unsigned> &lcores);

	std::span<const uint8_t> chunk_payload(uint32_t chunk_id) override;
	void chunk_acked(uint32_t chunk_id) override;

	// Chunks claimed from now on are encoded against `index` (same baseline bytes
	// and tag): a sender starts with a cheap index (in-place compares only) and
	// moves to the full one (moved and shifted blocks) once it is built.  The old
	// index must stay alive: a worker may be encoding with it.
	void set_index(const hde::BaselineIndex *index) { base_.store(index, std::memory_order_release); }

	// The compression tier for chunks claimed from now on (TierPolicy's choice).
	void set_tier(hde::Tier t) { tier_.store(uint8_t(t), std::memory_order_relaxed); }
	hde::Tier tier() const { return hde::Tier(tier_.load(std::memory_order_relaxed)); }
	// Totals so far: object bytes encoded, encoded bytes, time the encoders took.
	uint64_t bytes_in() const { return in_.load(std::memory_order_relaxed); }
	uint64_t bytes_out() const { return out_.load(std::memory_order_relaxed); }
	uint64_t encode_ns() const { return ns_.load(std::memory_order_relaxed); }

private:
	const SourceFile *file_ = nullptr;
	std::atomic<const hde::BaselineIndex *> base_{nullptr};
	hde::BaselineIndex none_;
	uint32_t chunk_size_ = 0, nb_chunks_ = 0, slot_size_ = 0, nb_bufs_ = 0;
	uint8_t *mem_ = nullptr;
	std::atomic<uint64_t> extra_{0};  // buffers taken from the heap past the pool
	rte_ring *free_ = nullptr;       // encoded-chunk buffers not in use (MP/MC)
	std::vector<uint8_t *> buf_of_;  // chunk id -> its buffer while held
	std::vector<int16_t> enc_of_lcore_;
	std::vector<std::unique_ptr<hde::ChunkEncoder>> enc_;
	std::atomic<uint8_t> tier_{0};
	std::atomic<uint64_t> in_{0}, out_{0}, ns_{0};
};

class SinkFile : public amst::ChunkSink {
public:
	~SinkFile() override;
	// Creates the temporary file in dir for an object of size bytes and reserves its
	// space.  Errors (no space, cannot create) are one line naming the directory.
	// `no_space` is set when the disk is too small.
	[[nodiscard]] std::string create(const std::string &dir, const std::string &name, uint64_t size,
					 uint64_t session_id, bool *no_space);
	// Allocates nb_bufs chunk buffers of chunk_size on socket and starts the writer
	// (after BEGIN: the chunk size is known).  nb_bufs also bounds the window.
	[[nodiscard]] std::string start(uint32_t chunk_size, uint32_t nb_chunks, uint32_t nb_bufs, int socket,
					amst::ChunkAssembler *assembler);
	// Before start(): chunks arrive HDE-encoded, against base (empty: none) whose
	// digest's tag is base_tag.  base must stay mapped until the writer is done.
	void expect_encoded(std::span<const uint8_t> base, uint32_t base_tag)
	{
		encoded_ = true, base_ = base, base_tag_ = base_tag;
	}
	// Encoded bytes received so far (equal to bytes_written() for raw chunks).
	uint64_t bytes_received() const { return received_.load(std::memory_order_relaxed); }

	uint8_t *chunk_buffer(uint32_t chunk_id, uint32_t chunk_len) override;
	void chunk_complete(uint32_t chunk_id, uint32_t chunk_len) override;

	// Every chunk written and hashed (digest() valid), or the writer failed.
	bool done() const { return state_.load(std::memory_order_acquire) != 0; }
	bool failed() const { return state_.load(std::memory_order_acquire) == 2; }
	const std::string &error() const { return error_; }
	const Sha256 &digest() const { return digest_; }
	uint64_t bytes_written() const { return written_.load(std::memory_order_relaxed); }
	// fdatasync passes the flusher has completed while the object was arriving.
	uint64_t flushes() const { return flushes_.load(std::memory_order_relaxed); }

	// After done(): fsyncs, renames the temporary file to its name when the digest is
	// `expected`, else removes it.  Returns "" or why not (digest mismatch, I/O).
	[[nodiscard]] std::string commit(const Sha256 &expected);
	// Removes the temporary file (interrupted, rejected, failed).
	void abort();
	const std::string &final_path() const { return final_path_; }
	const std::string &temp_path() const { return temp_path_; }

	// The flusher makes what the writer wrote durable while the object is still
	// arriving, one fdatasync whenever kFlushStep more bytes went to the disk, so
	// the fdatasync of commit(), which the transfer waits for, has only the last
	// few MiB left.  Left for that one sync, 4 GiB at 110 MB/s on this machine's
	// virtual disk took 0.2-0.46 s to sync at the end; in 16 MiB steps each pass
	// takes up to 22 ms and the last one about 10.
	static constexpr uint64_t kFlushStep = 16u << 20;

private:
	void writer_thread();
	void stop_writer();
	void flusher_thread();
	void stop_flusher();

	std::string dir_, final_path_, temp_path_;
	int fd_ = -1;
	uint64_t size_ = 0;
	uint32_t chunk_size_ = 0, nb_chunks_ = 0, nb_bufs_ = 0;
	uint8_t *mem_ = nullptr;
	rte_ring *free_ = nullptr;      // chunk buffers not in use (MP/MC)
	rte_ring *complete_ = nullptr;  // chunk ids the workers completed (MP/SC)
	std::vector<uint8_t *> buf_of_; // chunk id -> its buffer while held
	std::vector<uint32_t> len_of_;  // chunk id -> its payload length (encoded)
	amst::ChunkAssembler *assembler_ = nullptr;
	bool encoded_ = false;
	std::span<const uint8_t> base_;
	uint32_t base_tag_ = 0;
	uint32_t enc_cap_ = 0;          // encoded part of a buffer; the raw part follows it
	std::atomic<uint64_t> received_{0};
	std::thread writer_;
	std::atomic<bool> stop_{false};
	std::atomic<int> state_{0}; // 0 running, 1 done, 2 failed
	std::atomic<uint64_t> written_{0};
	std::string error_;
	std::thread flusher_;
	std::mutex flush_mu_;
	std::condition_variable flush_cv_;
	uint64_t flush_want_ = 0;  // bytes written whose writeback the writer started (flush_mu_)
	bool flush_stop_ = false;  // (flush_mu_)
	std::string flush_error_;  // the flusher's (flush_mu_; without it once the flusher is joined)
	std::atomic<uint64_t> flushes_{0};
	Sha256 digest_{};
	bool committed_ = false;
};

} // namespace dwcp::control
