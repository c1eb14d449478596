#include "control/objects.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>

#include <rte_debug.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

namespace dwcp::control {

namespace {

std::string errno_text(int e) { return std::strerror(e); }

} // namespace

// ---------------------------------------------------------------- source

SourceFile::~SourceFile()
{
	stop_.store(true);
	if (hasher_.joinable())
		hasher_.join();
}

std::string SourceFile::open(const std::string &path, uint64_t hash_lead)
{
	path_ = path;
	hash_lead_ = hash_lead;
	if (std::string e = file_.open(path); !e.empty())
		return e;
	map_ = file_.bytes().data();
	size_ = file_.bytes().size();
	if (size_)
		madvise(const_cast<uint8_t *>(map_), size_, MADV_SEQUENTIAL);
	hasher_ = std::thread([this] { hash_thread(); });
	return "";
}

std::span<const uint8_t> SourceFile::chunk_payload(uint32_t chunk_id)
{
	uint64_t off = uint64_t(chunk_id) * chunk_size_;
	uint64_t len = std::min<uint64_t>(chunk_size_, size_ - off);
	note_claimed(off + len);
	return {map_ + off, size_t(len)};
}

void SourceFile::hash_thread()
{
	// Straight from the mapping the workers send from: no copy out of the page
	// cache (a pread here cost the sender a fifth of its CPU at memif rates).
	Sha256Stream md;
	const uint64_t step = 4 << 20;
	for (uint64_t off = 0; off < size_; off += step) {
		// No further than hash_lead_ past what the workers have claimed.
		while (off >= claimed_end_.load(std::memory_order_relaxed) + hash_lead_ &&
		       !stop_.load(std::memory_order_relaxed))
			usleep(1000);
		if (stop_.load(std::memory_order_relaxed)) {
			hash_error_ = "stopped before '" + path_ + "' was hashed";
			hash_state_.store(2, std::memory_order_release);
			return;
		}
		uint64_t n = std::min(step, size_ - off);
		madvise(const_cast<uint8_t *>(map_ + off), n, MADV_WILLNEED);
		md.update(map_ + off, n);
	}
	// A file changed while it was sent would not match the receiver's digest; one
	// that shrank would have faulted above.  Check the size once more for a clear
	// error instead of a mismatch.
	struct stat st;
	if (fstat(file_.fd(), &st) == 0 && uint64_t(st.st_size) != size_) {
		hash_error_ = "'" + path_ + "' changed size while being sent (" + std::to_string(size_) + " -> " +
			      std::to_string(st.st_size) + " bytes)";
		hash_state_.store(2, std::memory_order_release);
		return;
	}
	md.final(&digest_);
	hash_state_.store(1, std::memory_order_release);
}

// ---------------------------------------------------------------- baseline mapping

MappedFile::~MappedFile()
{
	if (map_)
		munmap(const_cast<uint8_t *>(map_), size_);
	if (fd_ >= 0)
		close(fd_);
}

std::string MappedFile::open(const std::string &path)
{
	fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd_ < 0)
		return "cannot open '" + path + "': " + errno_text(errno);
	struct stat st;
	if (fstat(fd_, &st) != 0)
		return "cannot stat '" + path + "': " + errno_text(errno);
	if (!S_ISREG(st.st_mode))
		return "'" + path + "' is not a regular file";
	size_ = uint64_t(st.st_size);
	if (size_) {
		void *m = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
		if (m == MAP_FAILED)
			return "cannot map '" + path + "': " + errno_text(errno);
		map_ = static_cast<const uint8_t *>(m);
	}
	return "";
}

// ---------------------------------------------------------------- encoded source

EncodedSource::~EncodedSource()
{
	// Chunks never acknowledged may hold buffers from the heap.
	for (uint8_t *b : buf_of_)
		if (b && !(b >= mem_ && b < mem_ + uint64_t(nb_bufs_) * slot_size_))
			rte_free(b);
	rte_ring_free(free_);
	rte_free(mem_);
}

std::string EncodedSource::start(const SourceFile *file, uint32_t chunk_size, uint32_t nb_chunks, uint32_t window,
				 const hde::BaselineIndex *base, hde::Tier tier, const std::vector<unsigned> &lcores)
{
	if (!hde::valid_chunk_size(chunk_size))
		return "HDE chunk size " + std::to_string(chunk_size) + " is not a multiple of 4 KiB up to 4 MiB";
	file_ = file;
	base_.store(base ? base : &none_, std::memory_order_release);
	chunk_size_ = chunk_size;
	nb_chunks_ = nb_chunks;
	set_tier(tier);
	buf_of_.assign(nb_chunks, nullptr);
	// The scheduler lets the workers claim at most `window` chunks past the oldest
	// unacknowledged one; a few more buffers cover chunks acknowledged but not yet
	// returned by a worker that is between bursts.
	uint32_t nb_bufs = nb_bufs_ = window + 64;
	slot_size_ = uint32_t(RTE_ALIGN_CEIL(hde::max_encoded_chunk_size(chunk_size), 64));
	uint64_t bytes = uint64_t(nb_bufs) * slot_size_;
	mem_ = static_cast<uint8_t *>(rte_malloc("dwcp_encoded", bytes, 64));
	if (!mem_)
		return "cannot allocate " + std::to_string(bytes >> 20) + " MiB for encoded chunks: give the EAL more memory (-m)";
	std::string tag = std::to_string(getpid()) + "_" + std::to_string(uintptr_t(this) & 0xffffff);
	free_ = rte_ring_create(("dwcp_ef" + tag).c_str(), rte_align32pow2(nb_bufs + 1), SOCKET_ID_ANY, 0);
	if (!free_)
		return std::string("cannot create the encoder's ring: ") + rte_strerror(rte_errno);
	for (uint32_t i = 0; i < nb_bufs; i++)
		rte_ring_enqueue(free_, mem_ + uint64_t(i) * slot_size_);
	// One encoder per worker lcore, made here: encode() allocates nothing.
	enc_of_lcore_.assign(RTE_MAX_LCORE, -1);
	for (unsigned lc : lcores) {
		if (lc >= RTE_MAX_LCORE)
			continue;
		enc_of_lcore_[lc] = int16_t(enc_.size());
		enc_.push_back(std::make_unique<hde::ChunkEncoder>(chunk_size));
	}
	return "";
}

std::span<const uint8_t> EncodedSource::chunk_payload(uint32_t chunk_id)
{
	unsigned lc = rte_lcore_id();
	int e = lc < RTE_MAX_LCORE ? enc_of_lcore_[lc] : -1;
	void *b = nullptr;
	// Only workers claim chunks: anything else would send a broken chunk, so stop
	// loudly instead.
	RTE_VERIFY(e >= 0 && chunk_id < nb_chunks_);
	// The receiver's window bounds the chunks held, but it may move on (chunks
	// complete there) before their acknowledgements reach this side and return
	// the buffers: then one more comes from the heap, freed on its ack.
	if (rte_ring_dequeue(free_, &b) != 0) {
		b = rte_malloc("dwcp_encoded_extra", slot_size_, 64);
		RTE_VERIFY(b != nullptr);
		extra_.fetch_add(1, std::memory_order_relaxed);
	}
	auto t0 = std::chrono::steady_clock::now();
	uint64_t off = uint64_t(chunk_id) * chunk_size_;
	std::span<const uint8_t> all = file_->bytes();
	std::span<const uint8_t> data = all.subspan(size_t(off), size_t(std::min<uint64_t>(chunk_size_, all.size() - off)));
	file_->note_claimed(off + data.size());
	size_t n = enc_[size_t(e)]->encode(chunk_id, chunk_size_, data, *base_.load(std::memory_order_acquire),
					   hde::DirtyMap{}, tier(),
					   {static_cast<uint8_t *>(b), slot_size_});
	RTE_VERIFY(n > 0);
	buf_of_[chunk_id] = static_cast<uint8_t *>(b);
	in_.fetch_add(data.size(), std::memory_order_relaxed);
	out_.fetch_add(n, std::memory_order_relaxed);
	ns_.fetch_add(uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0)
				       .count()),
		      std::memory_order_relaxed);
	return {static_cast<const uint8_t *>(b), n};
}

void EncodedSource::chunk_acked(uint32_t chunk_id)
{
	if (chunk_id >= nb_chunks_ || !buf_of_[chunk_id])
		return;
	uint8_t *b = buf_of_[chunk_id];
	buf_of_[chunk_id] = nullptr;
	if (b >= mem_ && b < mem_ + uint64_t(nb_bufs_) * slot_size_)
		rte_ring_enqueue(free_, b);
	else
		rte_free(b);
}

// ---------------------------------------------------------------- sink

SinkFile::~SinkFile()
{
	stop_writer();
	if (!committed_)
		abort();
	rte_ring_free(free_);
	rte_ring_free(complete_);
	rte_free(mem_);
}

void SinkFile::stop_writer()
{
	stop_.store(true);
	if (writer_.joinable())
		writer_.join();
	stop_flusher();
}

void SinkFile::stop_flusher()
{
	{
		std::lock_guard<std::mutex> g(flush_mu_);
		flush_stop_ = true;
	}
	flush_cv_.notify_one();
	if (flusher_.joinable())
		flusher_.join();
}

void SinkFile::flusher_thread()
{
	uint64_t flushed = 0;
	std::unique_lock<std::mutex> lk(flush_mu_);
	for (;;) {
		flush_cv_.wait(lk, [&] { return flush_stop_ || flush_want_ >= flushed + kFlushStep; });
		if (flush_stop_)
			return;
		uint64_t upto = flush_want_;
		lk.unlock();
		int rc = fdatasync(fd_);
		int err = errno;
		lk.lock();
		if (rc != 0) {
			// The writer fails with it at its next step; commit() reports it too.
			flush_error_ = "fsync '" + temp_path_ + "': " + errno_text(err);
			return;
		}
		flushed = upto;
		flushes_.fetch_add(1, std::memory_order_relaxed);
	}
}

std::string SinkFile::create(const std::string &dir, const std::string &name, uint64_t size, uint64_t session_id,
			     bool *no_space)
{
	*no_space = false;
	dir_ = dir;
	size_ = size;
	final_path_ = dir + "/" + name;
	char sid[20];
	snprintf(sid, sizeof(sid), "%016" PRIx64, session_id);
	temp_path_ = dir + "/." + name + "." + sid + ".dwcp-part";
	struct statvfs vfs;
	if (statvfs(dir.c_str(), &vfs) == 0) {
		uint64_t avail = uint64_t(vfs.f_bavail) * vfs.f_frsize;
		if (avail < size) {
			*no_space = true;
			return "no space for '" + name + "' in " + dir + ": it needs " + std::to_string(size) + " bytes, " +
			       std::to_string(avail) + " are free";
		}
	}
	fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd_ < 0) {
		std::string e = "cannot create '" + temp_path_ + "': " + errno_text(errno);
		temp_path_.clear();
		return e;
	}
	if (size) {
		int rc = posix_fallocate(fd_, 0, off_t(size));
		if (rc == ENOSPC) {
			*no_space = true;
			return "no space for '" + name + "' in " + dir + ": reserving " + std::to_string(size) +
			       " bytes failed";
		}
		// Filesystems without fallocate (EOPNOTSUPP is emulated by glibc) still work:
		// writes then find a full disk, which the writer reports.
		if (rc && rc != EOPNOTSUPP && rc != EINVAL)
			return "cannot reserve " + std::to_string(size) + " bytes for '" + temp_path_ + "': " + errno_text(rc);
	}
	return "";
}

std::string SinkFile::start(uint32_t chunk_size, uint32_t nb_chunks, uint32_t nb_bufs, int socket,
			    amst::ChunkAssembler *assembler)
{
	chunk_size_ = chunk_size;
	nb_chunks_ = nb_chunks;
	nb_bufs_ = std::max<uint32_t>(nb_bufs, 1);
	assembler_ = assembler;
	buf_of_.assign(nb_chunks, nullptr);
	len_of_.assign(encoded_ ? nb_chunks : 0, 0);
	// Encoded chunks land in the first part of a buffer and are decoded into the
	// second, which is what gets written and hashed.
	enc_cap_ = encoded_ ? uint32_t(RTE_ALIGN_CEIL(hde::max_encoded_chunk_size(chunk_size), 4096)) : 0;
	uint64_t slot = uint64_t(enc_cap_) + chunk_size;
	uint64_t bytes = uint64_t(nb_bufs_) * slot;
	mem_ = static_cast<uint8_t *>(rte_malloc_socket("dwcp_sink", bytes, 4096, socket));
	if (!mem_)
		return "cannot allocate " + std::to_string(bytes >> 20) + " MiB of chunk buffers on socket " +
		       std::to_string(socket) + ": give the EAL more memory (-m, or reserve hugepages)";
	uint32_t ring = rte_align32pow2(nb_bufs_ + 1);
	std::string tag = std::to_string(getpid()) + "_" + std::to_string(uintptr_t(this) & 0xffffff);
	free_ = rte_ring_create(("dwcp_sf" + tag).c_str(), ring, socket, 0);
	complete_ = rte_ring_create(("dwcp_sc" + tag).c_str(), rte_align32pow2(std::max(nb_chunks, nb_bufs_) + 1),
				    socket, RING_F_SC_DEQ);
	if (!free_ || !complete_)
		return std::string("cannot create the sink's rings: ") + rte_strerror(rte_errno);
	for (uint32_t i = 0; i < nb_bufs_; i++)
		rte_ring_enqueue(free_, mem_ + uint64_t(i) * slot);
	assembler_->set_flow_limit(nb_bufs_);
	writer_ = std::thread([this] { writer_thread(); });
	flusher_ = std::thread([this] { flusher_thread(); });
	return "";
}

uint8_t *SinkFile::chunk_buffer(uint32_t chunk_id, uint32_t chunk_len)
{
	// A raw chunk's length is fixed by its position; an encoded one is at most the
	// HDE bound for that length (the decoder checks the rest).
	if (chunk_id >= nb_chunks_)
		return nullptr;
	uint64_t off = uint64_t(chunk_id) * chunk_size_;
	uint64_t raw = std::min<uint64_t>(chunk_size_, size_ - off);
	if (encoded_ ? chunk_len < hde::kChunkHeaderLen + hde::kChunkTrailerLen ||
			       chunk_len > hde::max_encoded_chunk_size(size_t(raw))
		     : chunk_len != raw)
		return nullptr;
	void *b;
	if (rte_ring_dequeue(free_, &b) != 0)
		return nullptr; // the flow limit makes this unreachable
	buf_of_[chunk_id] = static_cast<uint8_t *>(b);
	if (encoded_)
		len_of_[chunk_id] = chunk_len;
	return static_cast<uint8_t *>(b);
}

void SinkFile::chunk_complete(uint32_t chunk_id, uint32_t chunk_len)
{
	received_.fetch_add(chunk_len, std::memory_order_relaxed);
	// Sized for every chunk id, so it never fills.
	rte_ring_enqueue(complete_, reinterpret_cast<void *>(uintptr_t(chunk_id) + 1));
}

void SinkFile::writer_thread()
{
	Sha256Stream md;
	std::vector<bool> written(nb_chunks_, false);
	uint32_t hashed = 0;
	uint64_t synced = 0;
	void *ids[64];
	std::unique_ptr<hde::ChunkDecoder> dec;
	if (encoded_)
		dec = std::make_unique<hde::ChunkDecoder>(chunk_size_);
	auto fail = [&](std::string why) {
		error_ = std::move(why);
		state_.store(2, std::memory_order_release);
	};
	while (hashed < nb_chunks_) {
		if (stop_.load(std::memory_order_relaxed))
			return fail("stopped before the object was complete");
		unsigned n = rte_ring_dequeue_burst(complete_, ids, 64, nullptr);
		if (!n) {
			usleep(200);
			continue;
		}
		for (unsigned i = 0; i < n; i++) {
			uint32_t id = uint32_t(uintptr_t(ids[i]) - 1);
			uint64_t off = uint64_t(id) * chunk_size_;
			size_t len = size_t(std::min<uint64_t>(chunk_size_, size_ - off));
			const uint8_t *p = buf_of_[id];
			if (encoded_) {
				uint8_t *raw = buf_of_[id] + enc_cap_;
				hde::DecodeError de = dec->decode({buf_of_[id], len_of_[id]}, id, chunk_size_, base_, base_tag_,
								  {raw, len});
				if (de != hde::DecodeError::ok)
					return fail("chunk " + std::to_string(id) + " does not decode: " +
						    hde::decode_error_name(de) +
						    (de == hde::DecodeError::wrong_baseline ? " (the sender used another baseline)" : ""));
				p = raw;
			}
			size_t done = 0;
			while (done < len) {
				ssize_t w = pwrite(fd_, p + done, len - done, off_t(off + done));
				if (w < 0 && errno == EINTR)
					continue;
				if (w <= 0)
					return fail("writing '" + temp_path_ + "' at byte " + std::to_string(off + done) + ": " +
						    (w == 0 ? std::string("no progress") : errno_text(errno)));
				done += size_t(w);
			}
			written[id] = true;
			written_.fetch_add(len, std::memory_order_relaxed);
		}
		// Hash in object order and give back the buffers of what is hashed.
		uint32_t before = hashed;
		while (hashed < nb_chunks_ && written[hashed]) {
			uint64_t off = uint64_t(hashed) * chunk_size_;
			md.update(buf_of_[hashed] + enc_cap_, size_t(std::min<uint64_t>(chunk_size_, size_ - off)));
			rte_ring_enqueue(free_, buf_of_[hashed]);
			buf_of_[hashed] = nullptr;
			hashed++;
		}
		if (hashed != before) {
			assembler_->set_flow_limit(hashed + nb_bufs_);
			// Start writeback of what is complete, 8 MiB at a time, and let the
			// flusher make it durable (kFlushStep).
			uint64_t upto = std::min<uint64_t>(uint64_t(hashed) * chunk_size_, size_);
			if (upto >= synced + (8u << 20) || hashed == nb_chunks_) {
				sync_file_range(fd_, off_t(synced), off_t(upto - synced), SYNC_FILE_RANGE_WRITE);
				synced = upto;
				std::string flush_error;
				{
					std::lock_guard<std::mutex> g(flush_mu_);
					flush_want_ = upto;
					flush_error = flush_error_;
				}
				// The disk refused a sync: stop here rather than receive the rest
				// of the object for nothing.
				if (!flush_error.empty())
					return fail(flush_error);
				flush_cv_.notify_one();
			}
		}
	}
	md.final(&digest_);
	state_.store(1, std::memory_order_release);
}

std::string SinkFile::commit(const Sha256 &expected)
{
	if (failed())
		return error_;
	if (digest_ != expected) {
		abort();
		return "sha256 mismatch: received " + std::to_string(size_) + " bytes that do not hash to the sender's digest";
	}
	// Waits for a pass in progress, which the last sync needs done anyway.
	stop_flusher();
	if (!flush_error_.empty()) {
		std::string e = flush_error_;
		abort();
		return e;
	}
	if (fdatasync(fd_) != 0) {
		std::string e = "fsync '" + temp_path_ + "': " + errno_text(errno);
		abort();
		return e;
	}
	close(fd_);
	fd_ = -1;
	if (rename(temp_path_.c_str(), final_path_.c_str()) != 0) {
		std::string e = "rename '" + temp_path_ + "' to '" + final_path_ + "': " + errno_text(errno);
		abort();
		return e;
	}
	int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	committed_ = true;
	return "";
}

void SinkFile::abort()
{
	stop_writer();
	if (fd_ >= 0) {
		close(fd_);
		fd_ = -1;
	}
	if (!temp_path_.empty() && !committed_) {
		unlink(temp_path_.c_str());
		temp_path_.clear();
	}
}

} // namespace dwcp::control
