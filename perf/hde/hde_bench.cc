// hde_bench: HDE on one pair of files, in process, on one core, printing one JSON
// object.  perf/hde-bench runs it on the corpus next to zstd and xdelta3.
//
//   hde_bench --baseline A --new B [--dirty MAP] [--tier T] [--reps N] [--corpus NAME]
//   hde_bench --new B ...                  first round: no baseline
//   hde_bench --state --baseline A --new B  cluster state maps ("key\tvalue" lines)
//   --page-size 4k|thp|2m|auto              pages under the images (default auto: the best)
//
// Images are read into memory up front, on hugepages when there are (the gateway
// encodes from hugepage buffers; see --page-size below),
// the baseline index is built once (as at session set-up) and timed apart, then
// chunks are encoded and decoded on this thread only: the GB/s are per core.
// Reported: median of --reps runs with min and max, and cycles per byte at the
// nominal TSC rate when it can be read.
#include "dataplane/hde/delta_file.h"
#include "dataplane/hde/simd.h"
#include "dataplane/hde/state_delta.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

using namespace dwcp::hde;

namespace {

double now_s()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Images live in page-aligned mmap'd memory, as in the gateway (hugepage buffers,
// an mmap'd baseline).  A plain std::vector starts 16 bytes into a page, so every
// 4 KiB block straddles two pages: one more TLB miss and cache line per copy of
// each dirty block, which cost 15-20% of the encoder's speed with a map.
//
// --page-size picks the pages under the images, the dirty map and the decoder's
// output (default auto: the best available, in this order):
//   2m   2 MiB pages of the hugetlbfs pool (MAP_HUGETLB), when enough are free;
//   thp  transparent hugepages: 2 MiB-aligned anonymous memory, MADV_HUGEPAGE
//        (THP "enabled" must be [always] or [madvise]);
//   4k   ordinary pages (MADV_NOHUGEPAGE, so THP "always" does not creep in).
// The gateway's buffers and a migrated VM's guest RAM are hugepage-backed, so 2m
// (or thp) is the setup the design describes; 4k is the worst case (random dirty
// pages then take a page walk per copy per block).  What the images really got is
// read back from /proc/self/smaps (Private_Hugetlb, AnonHugePages) and reported as
// image_pages and image_hugepage_pct, never assumed.
enum class Pages { k4, thp, h2m };

// Writes every cache line of b back to memory and out of every cache level.
void flush_caches(std::span<const uint8_t> b)
{
#if defined(__x86_64__)
	for (size_t i = 0; i < b.size(); i += 64)
		_mm_clflush(b.data() + i);
	_mm_mfence();
#elif defined(__aarch64__)
	for (size_t i = 0; i < b.size(); i += 64)
		asm volatile("dc civac, %0" ::"r"(b.data() + i) : "memory");
	asm volatile("dsb ish" ::: "memory");
#else
#error "flush_caches: no cache-flush instruction for this architecture"
#endif
}

const char *pages_name(Pages p)
{
	return p == Pages::h2m ? "2m" : p == Pages::thp ? "thp" : "4k";
}

constexpr size_t kHugePage = size_t(2) << 20;

size_t round_up(size_t n, size_t a)
{
	return (n + a - 1) / a * a;
}

// A field of /proc/meminfo (its number), or 0.
size_t meminfo_value(const char *key)
{
	FILE *f = fopen("/proc/meminfo", "r");
	if (!f)
		return 0;
	char line[256];
	size_t v = 0, klen = strlen(key);
	while (fgets(line, sizeof line, f))
		if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
			v = strtoull(line + klen + 1, nullptr, 10);
			break;
		}
	fclose(f);
	return v;
}

// 2 MiB pages of the default hugetlb pool that a new mapping can still reserve.
size_t hugetlb_free_pages()
{
	if (meminfo_value("Hugepagesize") != 2048)
		return 0;
	size_t free_p = meminfo_value("HugePages_Free"), rsvd = meminfo_value("HugePages_Rsvd");
	return free_p > rsvd ? free_p - rsvd : 0;
}

bool thp_available()
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	if (!f)
		return false;
	char line[256] = {};
	bool ok = fgets(line, sizeof line, f) && (strstr(line, "[always]") || strstr(line, "[madvise]"));
	fclose(f);
	return ok;
}

// One mmap'd buffer of n bytes on pages of one kind.  Not a std::vector: nothing
// is copied or zeroed behind the benchmark's back, and the pages are known.
class Buffer {
public:
	Buffer() = default;
	Buffer(const Buffer &) = delete;
	Buffer &operator=(const Buffer &) = delete;
	~Buffer() { release(); }

	// Maps n bytes on pages of kind `want` (untouched: the caller faults them in
	// by writing).  False when that kind cannot be had; the buffer is then empty.
	bool allocate(size_t n, Pages want)
	{
		release();
		if (n == 0) {
			pages_ = want;
			return true;
		}
		void *m = MAP_FAILED;
		size_t len = 0;
		uint8_t *p = nullptr;
		if (want == Pages::h2m) {
			len = round_up(n, kHugePage);
			m = mmap(nullptr, len, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | (21 << MAP_HUGE_SHIFT), -1, 0);
			if (m == MAP_FAILED)
				return false;
			p = static_cast<uint8_t *>(m);
		} else if (want == Pages::thp) {
			// Over-map by one hugepage and trim both ends to 2 MiB boundaries, so
			// every 2 MiB of the buffer can be one hugepage.
			len = round_up(n, kHugePage);
			m = mmap(nullptr, len + kHugePage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				return false;
			uintptr_t a = reinterpret_cast<uintptr_t>(m), al = round_up(a, kHugePage);
			if (al > a)
				munmap(m, al - a);
			if (a + kHugePage > al)
				munmap(reinterpret_cast<void *>(al + len), a + kHugePage - al);
			m = reinterpret_cast<void *>(al);
			p = static_cast<uint8_t *>(m);
			if (madvise(m, len, MADV_HUGEPAGE) != 0) {
				munmap(m, len);
				return false;
			}
		} else {
			len = round_up(n, 4096);
			m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED)
				return false;
			p = static_cast<uint8_t *>(m);
			madvise(m, len, MADV_NOHUGEPAGE); // THP "always" would put hugepages here
		}
		p_ = p;
		n_ = n;
		map_len_ = len;
		pages_ = want;
		return true;
	}
	void release()
	{
		if (p_)
			munmap(p_, map_len_);
		p_ = nullptr;
		n_ = map_len_ = 0;
	}
	uint8_t *data() const { return p_; }
	size_t size() const { return n_; }
	bool empty() const { return n_ == 0; }
	uint8_t *begin() const { return p_; }
	uint8_t *end() const { return p_ + n_; }
	size_t mapped() const { return map_len_; }
	Pages pages() const { return pages_; }

private:
	uint8_t *p_ = nullptr;
	size_t n_ = 0, map_len_ = 0;
	Pages pages_ = Pages::k4;
};

// The kinds --page-size lets the benchmark try for `pages_needed` 2 MiB pages, best first.
std::vector<Pages> page_choices(const std::string &arg, size_t pages_needed, std::string &note)
{
	const bool have_thp = thp_available();
	const size_t free_2m = hugetlb_free_pages();
	if (arg == "4k")
		return {Pages::k4};
	if (arg == "2m") {
		if (free_2m < pages_needed)
			note += "only " + std::to_string(free_2m) + " free 2 MiB hugetlb pages, " +
				std::to_string(pages_needed) + " needed; ";
		return {Pages::h2m, Pages::k4};
	}
	if (arg == "thp") {
		if (!have_thp)
			note += "transparent hugepages disabled (/sys/kernel/mm/transparent_hugepage/enabled); ";
		return {Pages::thp, Pages::k4};
	}
	std::vector<Pages> v;
	if (free_2m >= pages_needed)
		v.push_back(Pages::h2m);
	if (have_thp)
		v.push_back(Pages::thp);
	if (v.empty())
		note += "no hugepages (" + std::to_string(free_2m) + " free 2 MiB hugetlb pages of " +
			std::to_string(pages_needed) + " needed, THP disabled); ";
	v.push_back(Pages::k4);
	return v;
}

// Maps n bytes on the first kind of `choices` that can be had.
bool allocate_buffer(Buffer &b, size_t n, const std::vector<Pages> &choices, std::string &note)
{
	for (Pages p : choices) {
		if (b.allocate(n, p))
			return true;
		note += std::string(pages_name(p)) + " mapping of " + std::to_string(n >> 20) + " MiB failed (" +
			strerror(errno) + "); ";
	}
	return false;
}

bool read_image(const std::string &path, Buffer &out, const std::vector<Pages> &choices, std::string &note)
{
	FILE *f = fopen(path.c_str(), "rb");
	if (!f)
		return false;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	// Reading the file in writes (faults in) every page.
	bool ok = n >= 0 && allocate_buffer(out, size_t(n), choices, note) &&
		(n == 0 || fread(out.data(), 1, size_t(n), f) == size_t(n));
	fclose(f);
	return ok;
}

// Bytes of the mappings that hold the given buffers that /proc/self/smaps shows on
// hugetlb pages and on transparent hugepages.  Adjacent mappings of one kind may
// be merged into one by the kernel: every mapping that overlaps a buffer is
// counted once, whole (only these buffers ask for hugepages).
struct HugeCheck {
	size_t hugetlb = 0, thp = 0;
	bool read = false;
};

HugeCheck check_hugepages(const std::vector<const Buffer *> &bufs)
{
	HugeCheck r;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		return r;
	r.read = true;
	char line[512];
	bool in = false;
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		char dash;
		if (sscanf(line, "%lx%c%lx ", &lo, &dash, &hi) == 3 && dash == '-') {
			in = false;
			for (const Buffer *b : bufs) {
				uintptr_t s = reinterpret_cast<uintptr_t>(b->data());
				if (b->mapped() && s < hi && s + b->mapped() > lo)
					in = true;
			}
			continue;
		}
		if (!in)
			continue;
		size_t kb = 0;
		if (sscanf(line, "AnonHugePages: %zu kB", &kb) == 1)
			r.thp += kb << 10;
		else if (sscanf(line, "Private_Hugetlb: %zu kB", &kb) == 1 || sscanf(line, "Shared_Hugetlb: %zu kB", &kb) == 1)
			r.hugetlb += kb << 10;
	}
	fclose(f);
	return r;
}

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
	std::string base_path, new_path, dirty_path, corpus = "pair", page_size = "auto";
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
		else if (a == "--page-size") {
			page_size = next();
			if (page_size != "4k" && page_size != "thp" && page_size != "2m" && page_size != "auto") {
				fprintf(stderr, "hde_bench: --page-size is 4k, thp, 2m or auto\n");
				return 1;
			}
		} else if (a == "--tier") {
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
		fprintf(stderr, "usage: hde_bench [--state] [--baseline A] --new B [--dirty MAP] [--tier T] [--reps N] "
				"[--page-size 4k|thp|2m|auto]\n");
		return 1;
	}
	if (state)
		return bench_state(corpus, base_path, new_path, tier, reps);

	// The baseline, the new image and the dirty map on pages of one kind (the
	// decoder's output takes the new image's pages once it is gone).
	std::vector<uint8_t> dirty_bytes;
	if (!dirty_path.empty() && !read_file(dirty_path, dirty_bytes)) {
		fprintf(stderr, "hde_bench: cannot read %s\n", dirty_path.c_str());
		return 2;
	}
	auto file_size = [](const std::string &path) -> size_t {
		FILE *f = path.empty() ? nullptr : fopen(path.c_str(), "rb");
		if (!f)
			return 0;
		fseek(f, 0, SEEK_END);
		long n = ftell(f);
		fclose(f);
		return n > 0 ? size_t(n) : 0;
	};
	const size_t pages_needed = (file_size(base_path) + kHugePage - 1) / kHugePage +
		(file_size(new_path) + kHugePage - 1) / kHugePage + (dirty_bytes.empty() ? 0 : 1);
	std::string page_note;
	const std::vector<Pages> choices = page_choices(page_size, pages_needed, page_note);
	Buffer base, cur, map_buf;
	if ((!base_path.empty() && !read_image(base_path, base, choices, page_note)) ||
		!read_image(new_path, cur, choices, page_note)) {
		fprintf(stderr, "hde_bench: cannot read %s or %s\n", base_path.c_str(), new_path.c_str());
		return 2;
	}
	const size_t map_words = (dirty_bytes.size() + 7) / 8;
	if (!allocate_buffer(map_buf, map_words * 8, choices, page_note)) {
		fprintf(stderr, "hde_bench: cannot allocate the dirty map\n");
		return 2;
	}
	uint64_t *words = reinterpret_cast<uint64_t *>(map_buf.data());
	if (map_words)
		memcpy(words, dirty_bytes.data(), dirty_bytes.size()); // (mmap'd: a short last word is zero-padded)
	// What the images and the map really are on, from the kernel's accounting.
	const size_t image_bytes = base.mapped() + cur.mapped() + map_buf.mapped();
	HugeCheck hc = check_hugepages({&base, &cur, &map_buf});
	double huge_pct = image_bytes ? 100.0 * double(std::min(image_bytes, hc.hugetlb + hc.thp)) / double(image_bytes) : 0;
	Pages image_pages = Pages::k4;
	if (hc.hugetlb * 100 >= image_bytes * 99)
		image_pages = Pages::h2m;
	else if (huge_pct >= 90)
		image_pages = Pages::thp;
	Pages asked = cur.pages();
	if (asked != Pages::k4 && image_pages == Pages::k4)
		page_note += std::string(pages_name(asked)) + " asked, only " + std::to_string(int(huge_pct)) +
			"% of the images on hugepages; ";
	if (page_size != "auto" && asked != (page_size == "2m" ? Pages::h2m : page_size == "thp" ? Pages::thp : Pages::k4))
		page_note += "--page-size " + page_size + " not available; ";
	fprintf(stderr,
		"hde_bench: images and dirty map (%.1f MiB mapped) on %s pages: /proc/self/smaps shows %.1f MiB "
		"Private_Hugetlb, %.1f MiB AnonHugePages (%.1f%% on hugepages)%s%s\n",
		double(image_bytes) / 1048576.0,
		image_pages == Pages::h2m ? "2 MiB hugetlbfs" : image_pages == Pages::thp ? "transparent huge" : "4 KiB",
		double(hc.hugetlb) / 1048576.0, double(hc.thp) / 1048576.0, huge_pct, hc.read ? "" : " (smaps unreadable)",
		page_note.empty() ? "" : ("; note: " + page_note.substr(0, page_note.size() - 2)).c_str());
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
	double dirty_gbps = 0, dirty_floor_gbps = 0;
	size_t nb_dirty = 0;
	if (!dirty_bytes.empty()) {
		for (size_t i = 0; i < map_words; i++)
			nb_dirty += size_t(__builtin_popcountll(words[i]));
		DirtyMap dm{words, dirty_bytes.size() * 8};
		std::vector<double> t;
		for (int r = 0; r < reps; r++) {
			// A round's dirty pages (and their baseline copies) are a few tens of
			// MiB: after one rep they would sit in the L3 for the next, and the
			// median would measure the cache.  Each rep starts from memory.
			flush_caches(base);
			flush_caches(cur);
			double s = now_s();
			encode_all(dm);
			t.push_back(now_s() - s);
		}
		dirty_gbps = double(nb_dirty * kBlockSize) / spread(t).median / 1e9;
		// The memory floor beside it, on the same pages from memory: a pass that
		// only reads both copies of every dirty page (whole pages prefetched four
		// ahead, one diff_mask each) and encodes nothing.  No encoder with the
		// map can beat it; dmap GB/s over it is how close the encoder comes.
		std::vector<uint32_t> dirty_pages;
		for (size_t b = 0; b < nb_chunks * (c / kBlockSize); b++)
			if (b / 64 < map_words && (words[b / 64] >> (b % 64) & 1) && (b + 1) * kBlockSize <= cur.size() &&
			    (b + 1) * kBlockSize <= base.size())
				dirty_pages.push_back(uint32_t(b));
		const Kernels &k = kernels();
		uint64_t mask[kBlockSize / 64];
		size_t sink = 0;
		t.clear();
		for (int r = 0; r < reps && !dirty_pages.empty(); r++) {
			flush_caches(base);
			flush_caches(cur);
			double s = now_s();
			for (size_t i = 0; i < dirty_pages.size(); i++) {
				if (i + 4 < dirty_pages.size()) {
					size_t ahead = size_t(dirty_pages[i + 4]) * kBlockSize;
					for (size_t l = 0; l < kBlockSize; l += 64) {
						__builtin_prefetch(cur.data() + ahead + l, 0, 3);
						__builtin_prefetch(base.data() + ahead + l, 0, 3);
					}
				}
				size_t off = size_t(dirty_pages[i]) * kBlockSize;
				sink += k.diff_mask(cur.data() + off, base.data() + off, kBlockSize, mask);
			}
			t.push_back(now_s() - s);
		}
		if (!t.empty())
			dirty_floor_gbps = double(dirty_pages.size() * kBlockSize) / spread(t).median / 1e9;
		if (sink == SIZE_MAX)
			fprintf(stderr, "hde_bench: impossible\n"); // keeps the pass from being optimised away
		encode_all({}); // the delta without the map is the one decoded below
	}
	// Hugetlb pages are not in ru_maxrss: they are added, as mapped here.
	auto hugetlb_mb = [](std::initializer_list<const Buffer *> bufs) {
		size_t n = 0;
		for (const Buffer *b : bufs)
			n += b->pages() == Pages::h2m ? b->mapped() : 0;
		return double(n) / 1048576.0;
	};
	double rss_encode = peak_rss_mb() + hugetlb_mb({&base, &cur, &map_buf});

	// Decode into a buffer of its own, prefaulted as hugepage buffers are, after
	// the new image is gone (the receiver holds the baseline and the output only).
	cur.release();
	Buffer out; // on the new image's pages
	uint64_t new_size = 0;
	for (size_t i = 0; i < nb_chunks; i++) {
		ChunkHeader h;
		parse_chunk_header(std::span(delta).subspan(offs[i]), h);
		new_size += h.len;
	}
	if (!allocate_buffer(out, new_size, {asked, Pages::k4}, page_note)) {
		fprintf(stderr, "hde_bench: cannot allocate the output\n");
		return 2;
	}
	memset(out.data(), 1, new_size);
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
	double rss_peak = std::max(rss_encode, peak_rss_mb() + hugetlb_mb({&base, &map_buf, &out}));
	Spread e = spread(enc_t), d = spread(dec_t);
	double in = double(new_size);
	double dirty_pct = nb_dirty ? 100.0 * double(nb_dirty) / double((new_size + kBlockSize - 1) / kBlockSize) : 0;
	printf("{\"corpus\": \"%s\", \"dirty_pct\": %.2f, \"ratio\": %.2f, \"encode_gbps_per_core\": %.3f, "
	       "\"decode_gbps_per_core\": %.3f, \"peak_rss_mb\": %.1f, \"images_mb\": %.1f, "
	       "\"rss_beyond_images_mb\": %.1f, \"encode_gbps_min\": %.3f, \"encode_gbps_max\": %.3f, "
	       "\"decode_gbps_min\": %.3f, \"decode_gbps_max\": %.3f, \"encode_dirtymap_gbps_of_dirty_bytes\": %.3f, "
	       "\"dirtymap_read_floor_gbps\": %.3f, "
	       "\"index_build_s\": %.3f, \"index_mb\": %.1f, \"sha256_gbps\": %.3f, \"bytes_in\": %.0f, \"bytes_wire\": %zu, "
	       "\"tier\": \"%s\", \"isa\": \"%s\", \"cores_used\": 1, \"reps\": %d, \"blocks\": {\"same\": %lu, \"zero\": %lu, "
	       "\"copy\": %lu, \"dup\": %lu, \"xor_inplace\": %lu, \"xor_shifted\": %lu, \"literal\": %lu}, "
	       "\"image_pages\": \"%s\", \"image_hugepage_pct\": %.1f}\n",
		corpus.c_str(), dirty_pct, in / double(wire), in / e.median / 1e9, in / d.median / 1e9, rss_peak, images_mb,
		std::max(rss_encode, rss_peak) - images_mb, in / e.max / 1e9, in / e.min / 1e9, in / d.max / 1e9,
		in / d.min / 1e9, dirty_gbps, dirty_floor_gbps, index_s, double(idx.memory_bytes()) / 1048576.0,
		double(base.size() + new_size) / sha_s / 1e9, in, wire, tier_name(tier), enc.kernels_used().name, reps,
		(unsigned long)st.same, (unsigned long)st.zero, (unsigned long)st.copy, (unsigned long)st.dup,
		(unsigned long)st.xor_inplace, (unsigned long)st.xor_shifted, (unsigned long)st.literal,
		pages_name(image_pages), huge_pct);
	return 0;
}
