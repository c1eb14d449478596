#include "dataplane/hde/delta_file.h"

#include <isa-l/crc.h>
#include <openssl/sha.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

namespace dwcp::hde {

namespace {

// Runs work(0..nt-1), work(0) on the calling thread, and waits for all.
template <class F>
void run_on_threads(unsigned nt, F &work)
{
	std::vector<std::thread> threads;
	for (unsigned t = 1; t < nt; t++)
		threads.emplace_back(std::ref(work), t);
	work(0);
	for (auto &th : threads)
		th.join();
}

double now_s()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
uint32_t get_u32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
uint64_t get_u64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

std::string hex(const Digest &d)
{
	static const char x[] = "0123456789abcdef";
	std::string s;
	for (uint8_t b : d) {
		s += x[b >> 4];
		s += x[b & 15];
	}
	return s;
}

} // namespace

Digest sha256(std::span<const uint8_t> data)
{
	Digest d;
	SHA256(data.data(), data.size(), d.data());
	return d;
}

void serialize_file_header(const FileHeader &h, uint8_t *out)
{
	memset(out, 0, kFileHeaderLen);
	memcpy(out, kFileMagic, 8);
	put_u32(out + 8, 1);
	put_u32(out + 12, h.chunk_size);
	put_u64(out + 16, h.base_size);
	memcpy(out + 24, h.base_sha.data(), 32);
	put_u64(out + 56, h.new_size);
	memcpy(out + 64, h.new_sha.data(), 32);
	put_u32(out + 96, h.nb_chunks);
	out[100] = uint8_t(h.tier);
	put_u32(out + 108, crc32_iscsi(out, 108, 0));
}

DecodeError parse_file_header(std::span<const uint8_t> in, FileHeader &h)
{
	if (in.size() < kFileHeaderLen)
		return DecodeError::truncated;
	const uint8_t *p = in.data();
	if (memcmp(p, kFileMagic, 8) != 0)
		return DecodeError::bad_magic;
	if (get_u32(p + 8) != 1)
		return DecodeError::bad_version;
	if (crc32_iscsi(const_cast<uint8_t *>(p), 108, 0) != get_u32(p + 108))
		return DecodeError::bad_crc;
	h.chunk_size = get_u32(p + 12);
	h.base_size = get_u64(p + 16);
	memcpy(h.base_sha.data(), p + 24, 32);
	h.new_size = get_u64(p + 56);
	memcpy(h.new_sha.data(), p + 64, 32);
	h.nb_chunks = get_u32(p + 96);
	h.tier = Tier(p[100] & 3);
	if (!valid_chunk_size(h.chunk_size))
		return DecodeError::bad_header;
	uint64_t want = (h.new_size + h.chunk_size - 1) / h.chunk_size;
	if (want != h.nb_chunks || want > UINT32_MAX)
		return DecodeError::bad_header;
	return DecodeError::ok;
}

bool encode_file(std::span<const uint8_t> base, std::span<const uint8_t> new_data, const FileEncodeOptions &opts,
	std::vector<uint8_t> &out, EncodeStats *stats, FileTimings *timings, std::string &err)
{
	double t0 = now_s();
	if (!valid_chunk_size(opts.chunk_size)) {
		err = "chunk size " + std::to_string(opts.chunk_size) + " is not a multiple of 4096 in [4096, 4 MiB]";
		return false;
	}
	const size_t c = opts.chunk_size;
	uint64_t nb_chunks = (new_data.size() + c - 1) / c;
	if (nb_chunks > UINT32_MAX) {
		err = "new object too large for this chunk size";
		return false;
	}
	unsigned nt = std::max(1u, opts.nb_threads);

	// The SHA-256 of both objects runs beside the encoder, on a thread of its own.
	FileHeader h;
	h.chunk_size = uint32_t(c);
	h.base_size = base.size();
	h.new_size = new_data.size();
	h.nb_chunks = uint32_t(nb_chunks);
	h.tier = opts.tier;
	double sha_s = 0;
	std::thread sha_thread([&]() {
		double s0 = now_s();
		if (opts.base_sha)
			h.base_sha = *opts.base_sha;
		else if (!base.empty())
			h.base_sha = sha256(base);
		h.new_sha = sha256(new_data);
		sha_s = now_s() - s0;
	});

	// The baseline tag only needs the digest, which the index does not: the chunks
	// are tagged once the SHA thread is done.
	double i0 = now_s();
	BaselineIndex::Options io;
	io.nb_threads = nt;
	BaselineIndex index(base, 0, io);
	double index_s = now_s() - i0;

	std::vector<std::vector<uint8_t>> encoded(nb_chunks);
	std::atomic<uint64_t> next{0};
	std::vector<EncodeStats> per_thread(nt);
	double c0 = now_s();
	auto work = [&](unsigned t) {
		ChunkEncoder enc(c);
		std::vector<uint8_t> buf(max_encoded_chunk_size(c));
		for (;;) {
			uint64_t i = next.fetch_add(1);
			if (i >= nb_chunks)
				break;
			size_t len = std::min<uint64_t>(c, new_data.size() - i * c);
			size_t n = enc.encode(uint32_t(i), c, new_data.subspan(i * c, len), index, opts.dirty, opts.tier, buf);
			encoded[i].assign(buf.begin(), buf.begin() + n);
		}
		per_thread[t] = enc.stats();
	};
	run_on_threads(nt, work);
	double code_s = now_s() - c0;
	sha_thread.join();

	// Tag every chunk with the baseline digest and refresh its CRC.
	uint32_t tag = base.empty() ? 0 : baseline_tag(h.base_sha);
	size_t total = kFileHeaderLen;
	for (auto &e : encoded)
		total += e.size();
	out.resize(total);
	serialize_file_header(h, out.data());
	size_t o = kFileHeaderLen;
	for (auto &e : encoded) {
		memcpy(e.data() + 16, &tag, 4);
		size_t body = e.size() - kChunkTrailerLen;
		put_u32(e.data() + body, crc32_iscsi(e.data(), int(body), 0));
		memcpy(out.data() + o, e.data(), e.size());
		o += e.size();
	}
	if (stats) {
		*stats = {};
		for (auto &s : per_thread)
			stats->add(s);
		stats->bytes_out = total;
	}
	if (timings) {
		timings->index_s = index_s;
		timings->sha_s = sha_s;
		timings->code_s = code_s;
		timings->total_s = now_s() - t0;
	}
	return true;
}

DecodeError decoded_size(std::span<const uint8_t> delta, uint64_t &size)
{
	FileHeader h;
	DecodeError e = parse_file_header(delta, h);
	if (e == DecodeError::ok)
		size = h.new_size;
	return e;
}

DecodeError decode_file(std::span<const uint8_t> base, std::span<const uint8_t> delta, std::span<uint8_t> out,
	unsigned nb_threads, FileTimings *timings, std::string &err)
{
	double t0 = now_s();
	FileHeader h;
	DecodeError e = parse_file_header(delta, h);
	if (e != DecodeError::ok) {
		err = std::string("delta header: ") + decode_error_name(e);
		return e;
	}
	if (out.size() != h.new_size) {
		err = "output size differs from the delta's";
		return DecodeError::bad_header;
	}
	if (h.base_size != base.size()) {
		err = "wrong baseline: the delta was made against " + std::to_string(h.base_size) +
			" bytes, this baseline has " + std::to_string(base.size());
		return DecodeError::wrong_baseline;
	}
	double s0 = now_s();
	Digest base_sha{};
	if (!base.empty())
		base_sha = sha256(base);
	double sha_s = now_s() - s0;
	if (base_sha != h.base_sha) {
		err = "wrong baseline: SHA-256 " + hex(base_sha) + ", the delta wants " + hex(h.base_sha);
		return DecodeError::wrong_baseline;
	}
	// Frame every chunk first (headers only), so a truncated file fails before any
	// decoding and the chunks can then be decoded in any order.
	std::vector<std::span<const uint8_t>> chunks(h.nb_chunks);
	size_t o = kFileHeaderLen;
	for (uint32_t i = 0; i < h.nb_chunks; i++) {
		ChunkHeader ch;
		e = parse_chunk_header(delta.subspan(o), ch);
		if (e == DecodeError::ok && delta.size() - o < ch.total_len())
			e = DecodeError::truncated;
		if (e != DecodeError::ok) {
			err = "chunk " + std::to_string(i) + ": " + decode_error_name(e);
			return e;
		}
		chunks[i] = delta.subspan(o, ch.total_len());
		o += ch.total_len();
	}
	if (o != delta.size()) {
		err = "bytes after the last chunk";
		return DecodeError::trailing_bytes;
	}
	uint32_t tag = base.empty() ? 0 : baseline_tag(base_sha);
	unsigned nt = std::max(1u, nb_threads);
	std::atomic<uint64_t> next{0};
	std::atomic<bool> failed{false};
	std::vector<DecodeError> errs(nt, DecodeError::ok);
	std::vector<uint32_t> err_chunk(nt, 0);
	double c0 = now_s();
	const size_t c = h.chunk_size;
	auto work = [&](unsigned t) {
		ChunkDecoder dec(c);
		for (;;) {
			uint64_t i = next.fetch_add(1);
			if (i >= h.nb_chunks || failed.load(std::memory_order_relaxed))
				break;
			size_t len = std::min<uint64_t>(c, h.new_size - i * c);
			DecodeError r = dec.decode(chunks[i], uint32_t(i), c, base, tag, out.subspan(i * c, len));
			if (r != DecodeError::ok) {
				errs[t] = r;
				err_chunk[t] = uint32_t(i);
				failed = true;
				break;
			}
		}
	};
	run_on_threads(nt, work);
	double code_s = now_s() - c0;
	for (unsigned t = 0; t < nt; t++)
		if (errs[t] != DecodeError::ok) {
			err = "chunk " + std::to_string(err_chunk[t]) + ": " + decode_error_name(errs[t]);
			return errs[t];
		}
	s0 = now_s();
	Digest got = sha256(out);
	sha_s += now_s() - s0;
	if (got != h.new_sha) {
		err = "result SHA-256 " + hex(got) + " differs from the delta's " + hex(h.new_sha);
		return DecodeError::object_mismatch;
	}
	if (timings) {
		timings->sha_s = sha_s;
		timings->code_s = code_s;
		timings->total_s = now_s() - t0;
	}
	return DecodeError::ok;
}

} // namespace dwcp::hde
