// hde_bench: HDE on one pair of files, in process, on one core, printing one JSON
// object.  perf/hde-bench runs it on the corpus next to zstd and xdelta3.
//
//   hde_bench --baseline A --new B [--dirty MAP] [--tier T] [--reps N] [--corpus NAME]
//   hde_bench --new B ...                  first round: no baseline
//   hde_bench --state --baseline A --new B  cluster state maps ("key\tvalue" lines)
//
// Images are read into memory up front (the gateway encodes from hugepage buffers),
// the baseline index is built once (as at session set-up) and timed apart, then
// chunks are encoded and decoded on this thread only: the GB/s are per core.
// Reported: median of --reps runs with min and max, and cycles per byte at the
// nominal TSC rate when it can be read.
#include "dataplane/hde/delta_file.h"
#include "dataplane/hde/state_delta.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <string>
#include <vector>

using namespace dwcp::hde;

namespace {

double now_s()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Images live in page-aligned memory, as in the gateway (hugepage buffers, an
// mmap'd baseline).  A plain std::vector starts 16 bytes into a page, so every
// 4 KiB block straddles two pages: one more TLB miss and cache line per copy
// of each dirty block, which cost 15-20% of the encoder's speed with a map.
template <typename T>
struct PageAllocator {
	using value_type = T;
	PageAllocator() = default;
	template <typename U>
	PageAllocator(const PageAllocator<U> &) {}
	T *allocate(size_t n)
	{
		size_t bytes = (n * sizeof(T) + 4095) / 4096 * 4096;
		void *p = aligned_alloc(4096, bytes ? bytes : 4096);
		if (!p)
			throw std::bad_alloc();
		return static_cast<T *>(p);
	}
	void deallocate(T *p, size_t) { free(p); }
	bool operator==(const PageAllocator &) const { return true; }
};
using Image = std::vector<uint8_t, PageAllocator<uint8_t>>;

template <typename Buf>
bool read_file(const std::string &path, Buf &out)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (!f)
		return false;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	out.resize(size_t(n));
	bool ok = n == 0 || fread(out.data(), 1, size_t(n), f) == size_t(n);
	fclose(f);
	return ok;
}

double peak_rss_mb()
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return double(ru.ru_maxrss) / 1024.0;
}

struct Spread {
	double median, min, max;
};

Spread spread(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return {v[v.size() / 2], v.front(), v.back()};
}

int bench_state(const std::string &corpus, const std::string &base_path, const std::string &new_path, Tier tier, int reps)
{
	std::vector<uint8_t> bt, nt;
	if (!read_file(base_path, bt) || !read_file(new_path, nt)) {
		fprintf(stderr, "hde_bench: cannot read %s or %s\n", base_path.c_str(), new_path.c_str());
		return 2;
	}
	StateMap base, cur;
	if (!parse_kv_lines(bt, base) || !parse_kv_lines(nt, cur)) {
		fprintf(stderr, "hde_bench: not key\\tvalue lines\n");
		return 2;
	}
	std::vector<double> enc_t, dec_t;
	std::vector<uint8_t> wire;
	StateMap out;
	for (int r = 0; r < reps; r++) {
		double t0 = now_s();
		DeltaState d = diff_state(base, cur, 1, 2, {});
		wire = serialize_state_delta(d, tier);
		enc_t.push_back(now_s() - t0);
		t0 = now_s();
		DeltaState got;
		if (parse_state_delta(wire, got) != DecodeError::ok || apply_state(base, 1, got, out) != DecodeError::ok) {
			fprintf(stderr, "hde_bench: state round trip failed\n");
			return 2;
		}
		dec_t.push_back(now_s() - t0);
	}
	if (out != cur) {
		fprintf(stderr, "hde_bench: state round trip differs\n");
		return 2;
	}
	size_t changed = 0;
	{
		DeltaState d = diff_state(base, cur, 1, 2, {});
		changed = d.ops.size();
	}
	Spread e = spread(enc_t), d = spread(dec_t);
	double in = double(nt.size());
	printf("{\"corpus\": \"%s\", \"dirty_pct\": %.2f, \"ratio\": %.2f, \"encode_gbps_per_core\": %.4f, "
	       "\"decode_gbps_per_core\": %.4f, \"peak_rss_mb\": %.1f, \"bytes_in\": %zu, \"bytes_wire\": %zu, "
	       "\"fields\": %zu, \"fields_changed\": %zu, \"tier\": \"%s\", \"cores_used\": 1}\n",
		corpus.c_str(), 100.0 * double(changed) / double(cur.size()), in / double(wire.size()), in / e.median / 1e9,
		in / d.median / 1e9, peak_rss_mb(), nt.size(), wire.size(), cur.size(), changed, tier_name(tier));
	return 0;
}

} // namespace

int main(int argc, char **argv)
{
	std::string base_path, new_path, dirty_path, corpus = "pair";
	Tier tier = Tier::zstd3;
	int reps = 3;
	bool state = false;
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto next = [&]() -> std::string {
			if (i + 1 >= argc) {
				fprintf(stderr, "hde_bench: %s needs a value\n", a.c_str());
				exit(1);
			}
			return argv[++i];
		};
		if (a == "--baseline")
			base_path = next();
		else if (a == "--new")
			new_path = next();
		else if (a == "--dirty")
			dirty_path = next();
		else if (a == "--corpus")
			corpus = next();
		else if (a == "--reps")
			reps = std::max(1, atoi(next().c_str()));
		else if (a == "--state")
			state = true;
		else if (a == "--tier") {
			if (!parse_tier(next(), tier)) {
				fprintf(stderr, "hde_bench: unknown tier\n");
				return 1;
			}
		} else {
			fprintf(stderr, "hde_bench: unknown argument %s\n", a.c_str());
			return 1;
		}
	}
	if (new_path.empty()) {
		fprintf(stderr, "usage: hde_bench [--state] [--baseline A] --new B [--dirty MAP] [--tier T] [--reps N]\n");
		return 1;
	}
	if (state)
		return bench_state(corpus, base_path, new_path, tier, reps);

	Image base, cur;
	std::vector<uint8_t> dirty_bytes;
	if ((!base_path.empty() && !read_file(base_path, base)) || !read_file(new_path, cur) ||
		(!dirty_path.empty() && !read_file(dirty_path, dirty_bytes))) {
		fprintf(stderr, "hde_bench: cannot read an input file\n");
		return 2;
	}
	double images_mb = double(base.size() + cur.size()) / 1048576.0;
	const size_t c = kDefaultChunkSize;
	const size_t nb_chunks = (cur.size() + c - 1) / c;

	double t0 = now_s();
	Digest base_sha = sha256(base);
	Digest new_sha = sha256(cur);
	double sha_s = now_s() - t0;
	t0 = now_s();
	BaselineIndex idx(base, base.empty() ? 0 : baseline_tag(base_sha));
	double index_s = now_s() - t0;

	ChunkEncoder enc(c);
	std::vector<uint8_t> buf(max_encoded_chunk_size(c));
	std::vector<uint8_t> delta;
	delta.reserve(cur.size() / 8 + 4096);
	std::vector<size_t> offs(nb_chunks + 1);
	auto encode_all = [&](const DirtyMap &dm) {
		delta.clear();
		for (size_t i = 0; i < nb_chunks; i++) {
			size_t len = std::min(c, cur.size() - i * c);
			size_t n = enc.encode(uint32_t(i), c, std::span(cur).subspan(i * c, len), idx, dm, tier, buf);
			offs[i] = delta.size();
			delta.insert(delta.end(), buf.begin(), buf.begin() + n);
		}
		offs[nb_chunks] = delta.size();
	};
	std::vector<double> enc_t;
	for (int r = 0; r < reps; r++) {
		enc.reset_stats();
		double s = now_s();
		encode_all({});
		enc_t.push_back(now_s() - s);
	}
	EncodeStats st = enc.stats();
	size_t wire = delta.size() + kFileHeaderLen;

	// With the hypervisor's dirty map: GB/s of dirty bytes.
	double dirty_gbps = 0;
	size_t nb_dirty = 0;
	std::vector<uint64_t> words((dirty_bytes.size() + 7) / 8);
	if (!dirty_bytes.empty()) {
		memcpy(words.data(), dirty_bytes.data(), dirty_bytes.size());
		for (uint64_t w : words)
			nb_dirty += size_t(__builtin_popcountll(w));
		DirtyMap dm{words.data(), dirty_bytes.size() * 8};
		std::vector<double> t;
		for (int r = 0; r < reps; r++) {
			double s = now_s();
			encode_all(dm);
			t.push_back(now_s() - s);
		}
		dirty_gbps = double(nb_dirty * kBlockSize) / spread(t).median / 1e9;
		encode_all({}); // the delta without the map is the one decoded below
	}
	double rss_encode = peak_rss_mb();

	// Decode into a buffer of its own, prefaulted as hugepage buffers are, after
	// the new image is gone (the receiver holds the baseline and the output only).
	Image().swap(cur);
	Image out;
	uint64_t new_size = 0;
	for (size_t i = 0; i < nb_chunks; i++) {
		ChunkHeader h;
		parse_chunk_header(std::span(delta).subspan(offs[i]), h);
		new_size += h.len;
	}
	out.assign(new_size, 1);
	ChunkDecoder dec(c);
	std::vector<double> dec_t;
	for (int r = 0; r < reps; r++) {
		double s = now_s();
		for (size_t i = 0; i < nb_chunks; i++) {
			size_t len = std::min<size_t>(c, new_size - i * c);
			DecodeError e = dec.decode(std::span(delta).subspan(offs[i], offs[i + 1] - offs[i]), uint32_t(i), c, base,
				idx.tag(), std::span(out).subspan(i * c, len));
			if (e != DecodeError::ok) {
				fprintf(stderr, "hde_bench: chunk %zu: %s\n", i, decode_error_name(e));
				return 2;
			}
		}
		dec_t.push_back(now_s() - s);
	}
	if (sha256(out) != new_sha) {
		fprintf(stderr, "hde_bench: decoded image differs\n");
		return 2;
	}
	double rss_peak = peak_rss_mb();
	Spread e = spread(enc_t), d = spread(dec_t);
	double in = double(new_size);
	double dirty_pct = nb_dirty ? 100.0 * double(nb_dirty) / double((new_size + kBlockSize - 1) / kBlockSize) : 0;
	printf("{\"corpus\": \"%s\", \"dirty_pct\": %.2f, \"ratio\": %.2f, \"encode_gbps_per_core\": %.3f, "
	       "\"decode_gbps_per_core\": %.3f, \"peak_rss_mb\": %.1f, \"images_mb\": %.1f, "
	       "\"rss_beyond_images_mb\": %.1f, \"encode_gbps_min\": %.3f, \"encode_gbps_max\": %.3f, "
	       "\"decode_gbps_min\": %.3f, \"decode_gbps_max\": %.3f, \"encode_dirtymap_gbps_of_dirty_bytes\": %.3f, "
	       "\"index_build_s\": %.3f, \"index_mb\": %.1f, \"sha256_gbps\": %.3f, \"bytes_in\": %.0f, \"bytes_wire\": %zu, "
	       "\"tier\": \"%s\", \"isa\": \"%s\", \"cores_used\": 1, \"reps\": %d, \"blocks\": {\"same\": %lu, \"zero\": %lu, "
	       "\"copy\": %lu, \"dup\": %lu, \"xor_inplace\": %lu, \"xor_shifted\": %lu, \"literal\": %lu}}\n",
		corpus.c_str(), dirty_pct, in / double(wire), in / e.median / 1e9, in / d.median / 1e9, rss_peak, images_mb,
		std::max(rss_encode, rss_peak) - images_mb, in / e.max / 1e9, in / e.min / 1e9, in / d.max / 1e9,
		in / d.min / 1e9, dirty_gbps, index_s, double(idx.memory_bytes()) / 1048576.0,
		double(base.size() + new_size) / sha_s / 1e9, in, wire, tier_name(tier), enc.kernels_used().name, reps,
		(unsigned long)st.same, (unsigned long)st.zero, (unsigned long)st.copy, (unsigned long)st.dup,
		(unsigned long)st.xor_inplace, (unsigned long)st.xor_shifted, (unsigned long)st.literal);
	return 0;
}
