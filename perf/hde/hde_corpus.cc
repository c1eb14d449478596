// hde-corpus: the seeded corpus perf/hde-bench runs HDE and its peers on.
//
//   hde-corpus mem   --size BYTES --seed N OUT_DIR   VM memory image and rounds
//   hde-corpus disk  --size BYTES --seed N OUT_DIR   disk image before/after a rewrite
//   hde-corpus state --vms N --rounds R --seed N OUT_DIR   cluster state maps
//
// mem: mem_base.img holds 4 KiB pages in runs of one type (zero, code-like,
// text-like, heap-like, random).  mem_1.img, mem_5.img and mem_20.img are that
// image after a pre-copy round that dirtied 1, 5 and 20% of the pages: most with
// a few small in-page writes (counters, pointers, a line of text), one in ten
// remapped (the page now holds what another page held).  mem_N.dirty is the
// hypervisor's dirty bitmap for the round (bit b = page b written).
// disk: disk_base.img is a file system image (files of the same content types,
// 4 KiB aligned, with free space); disk_new.img is the same after one file was
// rewritten with an insertion (the rest of that file shifted by a few KiB plus
// some bytes, an unaligned shift), three files were copied into free space, and
// a few blocks of metadata changed.
// state: state_0.kv .. state_R.kv, one "key\tvalue" line per field of a cluster
// state map (thousands of VMs with metrics and metadata), a few % of the fields
// changing each round.
// The same seed always gives the same bytes.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct Rng {
	uint64_t s;
	explicit Rng(uint64_t seed) : s(seed * 0x9e3779b97f4a7c15ull + 1) {}
	uint64_t next()
	{
		uint64_t z = (s += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		return z ^ (z >> 31);
	}
	uint64_t below(uint64_t n) { return next() % n; }
	double unit() { return double(next() >> 11) / double(1ull << 53); }
};

constexpr size_t kPage = 4096;

const char *const kWords[] = {"the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "with", "was",
	"on", "be", "at", "by", "this", "had", "not", "are", "but", "from", "or", "have", "an", "they", "which",
	"one", "you", "were", "her", "all", "she", "there", "would", "their", "we", "him", "been", "has", "when",
	"who", "will", "more", "no", "if", "out", "so", "said", "what", "up", "its", "about", "into", "than",
	"them", "can", "only", "other", "new", "some", "could", "time", "these", "two", "may", "then", "do",
	"first", "any", "my", "now", "such", "like", "our", "over", "man", "me", "even", "most", "made",
	"after", "also", "did", "many", "before", "must", "through", "back", "years", "where", "much", "your",
	"way", "well", "down", "should", "because", "each", "just", "those", "people", "memory", "page",
	"kernel", "process", "socket", "buffer", "request", "response", "error", "config", "server"};
constexpr size_t kNbWords = sizeof(kWords) / sizeof(kWords[0]);

// Instruction-like byte strings: common opcodes with small immediates and
// displacements, as in a code page.
void fill_code(uint8_t *p, size_t n, Rng &r)
{
	static const uint8_t ops[][4] = {{0x48, 0x89, 0xc7, 0}, {0x48, 0x8b, 0x45, 0}, {0xe8, 0, 0, 0},
		{0x55, 0x48, 0x89, 0xe5}, {0x0f, 0x1f, 0x44, 0}, {0x48, 0x83, 0xec, 0}, {0xc3, 0x90, 0x90, 0},
		{0x31, 0xc0, 0, 0}, {0x74, 0, 0, 0}, {0x41, 0x57, 0x41, 0x56}, {0x48, 0x8d, 0x3d, 0}, {0x89, 0x45, 0xfc, 0}};
	size_t i = 0;
	while (i < n) {
		const uint8_t *op = ops[r.below(12)];
		for (int k = 0; k < 4 && i < n; k++)
			p[i++] = op[k] ? op[k] : uint8_t(r.below(4) == 0 ? r.next() : r.below(16) * 8);
		if (r.below(3) == 0)
			for (int k = 0; k < 4 && i < n; k++)
				p[i++] = uint8_t(k == 0 ? r.next() : (k == 1 ? r.below(8) : 0));
	}
}

void fill_text(uint8_t *p, size_t n, Rng &r)
{
	size_t i = 0;
	while (i < n) {
		const char *w = kWords[size_t(r.unit() * r.unit() * kNbWords)];
		for (; *w && i < n; w++)
			p[i++] = uint8_t(*w);
		if (i < n)
			p[i++] = r.below(12) == 0 ? '\n' : ' ';
	}
}

// Heap objects: 64-byte structs of pointers into a few regions, small integers,
// doubles, flags and zero padding.
void fill_heap(uint8_t *p, size_t n, Rng &r)
{
	uint64_t region = 0x00007f0000000000ull + (r.below(16) << 32);
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v;
		switch ((i / 8) % 8) {
		case 0: case 1: v = region + (r.below(1 << 20) << 4); break;
		case 2: v = r.below(1000); break;
		case 3: { double d = double(r.below(100000)) / 100.0; memcpy(&v, &d, 8); break; }
		case 4: v = r.below(4) == 0 ? r.next() : 0; break;
		case 5: v = 0x0000000100000001ull * r.below(3); break;
		default: v = 0; break;
		}
		memcpy(p + i, &v, 8);
	}
}

void fill_random(uint8_t *p, size_t n, Rng &r)
{
	for (size_t i = 0; i + 8 <= n; i += 8) {
		uint64_t v = r.next();
		memcpy(p + i, &v, 8);
	}
}

enum PageType { zero_page, code_page, text_page, heap_page, random_page };

void fill_page(uint8_t *p, size_t n, PageType t, Rng &r)
{
	switch (t) {
	case zero_page: memset(p, 0, n); break;
	case code_page: fill_code(p, n, r); break;
	case text_page: fill_text(p, n, r); break;
	case heap_page: fill_heap(p, n, r); break;
	case random_page: fill_random(p, n, r); break;
	}
}

PageType pick_type(Rng &r)
{
	double u = r.unit();
	if (u < 0.35) return zero_page;
	if (u < 0.50) return code_page;
	if (u < 0.65) return text_page;
	if (u < 0.90) return heap_page;
	return random_page;
}

// Fills n bytes with runs of pages of one type; types[] gets each page's type.
void fill_image(uint8_t *img, size_t n, Rng &r, std::vector<uint8_t> &types)
{
	size_t pages = n / kPage;
	types.assign(pages, zero_page);
	for (size_t pg = 0; pg < pages;) {
		PageType t = pick_type(r);
		size_t run = 1 + r.below(r.below(4) == 0 ? 256 : 32);
		for (size_t k = 0; k < run && pg < pages; k++, pg++) {
			fill_page(img + pg * kPage, kPage, t, r);
			types[pg] = uint8_t(t);
		}
	}
}

// A few small writes into one page, as a running guest makes between two rounds.
void small_writes(uint8_t *p, PageType t, Rng &r)
{
	int nb = 1 + int(r.below(4));
	for (int k = 0; k < nb; k++) {
		size_t off = r.below(kPage / 8) * 8;
		size_t len = 8 * (1 + r.below(4));
		if (off + len > kPage)
			len = kPage - off;
		if (t == text_page) {
			fill_text(p + off, len, r);
		} else if (t == heap_page || t == zero_page) {
			for (size_t i = 0; i + 8 <= len; i += 8) {
				uint64_t v;
				memcpy(&v, p + off + i, 8);
				v = r.below(2) ? v + 1 + r.below(100) : 0x00007f0000000000ull + (r.below(1 << 24) << 4);
				memcpy(p + off + i, &v, 8);
			}
		} else {
			fill_random(p + off, len, r);
		}
	}
}

bool write_file(const std::string &path, const void *p, size_t n)
{
	FILE *f = fopen(path.c_str(), "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "hde-corpus: %s: cannot write\n", path.c_str());
		return false;
	}
	return true;
}

int gen_mem(size_t size, uint64_t seed, const std::string &dir)
{
	size = size / kPage * kPage;
	Rng r(seed);
	std::vector<uint8_t> base(size), cur;
	std::vector<uint8_t> types;
	fill_image(base.data(), size, r, types);
	if (!write_file(dir + "/mem_base.img", base.data(), size))
		return 1;
	size_t pages = size / kPage;
	for (int pct : {1, 5, 20}) {
		Rng rr(seed * 1000 + uint64_t(pct));
		cur = base;
		std::vector<uint64_t> dirty((pages + 63) / 64, 0);
		size_t nb = pages * size_t(pct) / 100, done = 0;
		while (done < nb) {
			size_t pg = rr.below(pages);
			if (dirty[pg / 64] >> (pg % 64) & 1)
				continue;
			dirty[pg / 64] |= 1ull << (pg % 64);
			done++;
			uint8_t *p = cur.data() + pg * kPage;
			if (rr.below(10) == 0) {
				size_t from = rr.below(pages); // guest page remapping
				memcpy(p, base.data() + from * kPage, kPage);
			} else {
				small_writes(p, PageType(types[pg]), rr);
			}
		}
		std::string name = dir + "/mem_" + std::to_string(pct);
		if (!write_file(name + ".img", cur.data(), size) ||
			!write_file(name + ".dirty", dirty.data(), dirty.size() * 8))
			return 1;
	}
	return 0;
}

int gen_disk(size_t size, uint64_t seed, const std::string &dir)
{
	size = size / kPage * kPage;
	Rng r(seed + 77);
	std::vector<uint8_t> base(size, 0);
	struct File {
		size_t off, len;
	};
	std::vector<File> files;
	// Metadata in the first 1 MiB, then files of 64 KiB - 8 MiB with gaps, until 85% full.
	fill_heap(base.data(), std::min(size, size_t(1) << 20), r);
	size_t off = size_t(1) << 20;
	while (off < size * 85 / 100) {
		size_t len = (16 + r.below(r.below(4) == 0 ? 2048 : 256)) * kPage;
		if (off + len > size * 85 / 100)
			break;
		PageType t = PageType(1 + r.below(4));
		if (t == random_page && r.below(2))
			t = text_page; // fewer compressed files than in memory
		for (size_t p = 0; p < len; p += kPage)
			fill_page(base.data() + off + p, kPage, t, r);
		files.push_back({off, len});
		off += len + r.below(8) * kPage;
	}
	std::vector<uint8_t> cur = base;
	// A file rewritten with an insertion: the rest of it moves by a few KiB plus an
	// odd number of bytes, and grows into the free space after it.
	const File &f = files[files.size() / 2];
	size_t at = f.off + f.len / 3 + 123;
	size_t shift = 3 * 1024 + 517;
	size_t end = std::min(size, f.off + f.len + shift);
	memmove(cur.data() + at + shift, base.data() + at, end - at - shift);
	fill_text(cur.data() + at, shift, r);
	// Three files copied into the free space at the end.
	size_t dst = size * 86 / 100;
	for (int k = 0; k < 3; k++) {
		const File &src = files[r.below(files.size())];
		size_t len = std::min(src.len, size - dst);
		memcpy(cur.data() + dst, base.data() + src.off, len);
		dst = (dst + len + kPage) / kPage * kPage;
		if (dst >= size)
			break;
	}
	// Metadata updates.
	for (int k = 0; k < 64; k++)
		small_writes(cur.data() + r.below(256) * kPage, heap_page, r);
	if (!write_file(dir + "/disk_base.img", base.data(), size) ||
		!write_file(dir + "/disk_new.img", cur.data(), size))
		return 1;
	return 0;
}

int gen_state(size_t nb_vms, int rounds, uint64_t seed, const std::string &dir)
{
	Rng r(seed + 99);
	static const char *const metrics[] = {"cpu_pct", "mem_used_mb", "mem_dirty_rate", "disk_read_bps",
		"disk_write_bps", "net_rx_bps", "net_tx_bps", "iops", "latency_us", "steal_pct"};
	static const char *const states[] = {"running", "migrating", "paused", "stopped"};
	struct Vm {
		std::string meta[6];
		uint64_t m[10];
	};
	std::vector<Vm> vms(nb_vms);
	for (size_t i = 0; i < nb_vms; i++) {
		Vm &v = vms[i];
		v.meta[0] = "host-" + std::to_string(r.below(nb_vms / 16 + 1));
		v.meta[1] = states[r.below(4)];
		v.meta[2] = "image-" + std::to_string(r.below(40)) + ".qcow2";
		v.meta[3] = std::to_string(1 + r.below(64));
		v.meta[4] = "tenant-" + std::to_string(r.below(300));
		v.meta[5] = std::to_string(1700000000 + r.below(10000000));
		for (auto &m : v.m)
			m = r.below(100000);
	}
	static const char *const meta_names[] = {"host", "state", "image", "vcpus", "tenant", "created"};
	for (int round = 0; round <= rounds; round++) {
		if (round > 0) {
			size_t fields = nb_vms * 16;
			size_t nb = fields * 3 / 100; // 3% of the fields change per round
			for (size_t k = 0; k < nb; k++) {
				Vm &v = vms[r.below(nb_vms)];
				size_t fld = r.below(16);
				if (fld < 10)
					v.m[fld] = v.m[fld] + r.below(200) - 100;
				else if (fld == 11)
					v.meta[1] = states[r.below(4)];
				else if (fld == 10)
					v.meta[0] = "host-" + std::to_string(r.below(nb_vms / 16 + 1));
				else
					v.m[r.below(10)] = r.below(100000);
			}
		}
		std::string out;
		char key[128];
		for (size_t i = 0; i < nb_vms; i++) {
			for (int k = 0; k < 6; k++) {
				snprintf(key, sizeof(key), "vm/%06zu/meta/%s\t", i, meta_names[k]);
				out += key;
				out += vms[i].meta[k];
				out += '\n';
			}
			for (int k = 0; k < 10; k++) {
				snprintf(key, sizeof(key), "vm/%06zu/metrics/%s\t%" PRIu64 "\n", i, metrics[k], vms[i].m[k]);
				out += key;
			}
		}
		if (!write_file(dir + "/state_" + std::to_string(round) + ".kv", out.data(), out.size()))
			return 1;
	}
	return 0;
}

size_t parse_size(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	switch (*end) {
	case 'G': case 'g': v *= 1024; [[fallthrough]];
	case 'M': case 'm': v *= 1024; [[fallthrough]];
	case 'K': case 'k': v *= 1024; break;
	default: break;
	}
	return size_t(v);
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: hde-corpus mem|disk|state [--size BYTES] [--vms N] [--rounds R] [--seed N] OUT_DIR\n");
		return 1;
	}
	std::string kind = argv[1];
	size_t size = size_t(256) << 20, vms = 5000;
	int rounds = 3;
	uint64_t seed = 1;
	std::string dir;
	for (int i = 2; i < argc; i++) {
		std::string a = argv[i];
		if (a == "--size" && i + 1 < argc)
			size = parse_size(argv[++i]);
		else if (a == "--vms" && i + 1 < argc)
			vms = size_t(atol(argv[++i]));
		else if (a == "--rounds" && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (a == "--seed" && i + 1 < argc)
			seed = strtoull(argv[++i], nullptr, 10);
		else
			dir = a;
	}
	if (dir.empty() || size < (size_t(4) << 20) || vms < 16) {
		fprintf(stderr, "hde-corpus: need OUT_DIR, --size >= 4M and --vms >= 16\n");
		return 1;
	}
	if (kind == "mem")
		return gen_mem(size, seed, dir);
	if (kind == "disk")
		return gen_disk(size, seed, dir);
	if (kind == "state")
		return gen_state(vms, rounds, seed, dir);
	fprintf(stderr, "hde-corpus: unknown corpus '%s'\n", kind.c_str());
	return 1;
}
