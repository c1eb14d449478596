// dwcp-delta: the HDE encoder without a network, shaped like xdelta3.
//
//   dwcp-delta encode [-s BASELINE] [options] NEW DELTA
//   dwcp-delta decode [-s BASELINE] [options] DELTA OUT
//
// `-` reads stdin or writes stdout.  Output goes to a temporary file in the same
// directory, renamed over OUT only once everything (for decode: the SHA-256 of the
// result) checked out, so an error never leaves an output file behind.  Exit
// status: 0 success, 1 usage, 2 any other error.  One summary line on stderr.
#include "dataplane/hde/delta_file.h"

#include <fcntl.h>
#include <getopt.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace dwcp::hde;

namespace {

const char *g_prog = "dwcp-delta";

void usage(FILE *f)
{
	fprintf(f,
		"usage: %s encode [-s BASELINE] [options] NEW DELTA\n"
		"       %s decode [-s BASELINE] [options] DELTA OUT\n"
		"  -s, --source FILE     baseline the delta is made against (omit for none)\n"
		"  -l, --level TIER      none|igzip|zstd3|zstd9 or 0-3 (default zstd3); also -0 .. -3\n"
		"  -T, --threads N       worker threads (default 1)\n"
		"  -c, --chunk-size N    bytes per chunk, multiple of 4096 (default 262144)\n"
		"  -d, --dirty FILE      dirty-block bitmap (bit b = 4 KiB block b changed), encode only\n"
		"  -q, --quiet           no summary line\n"
		"  FILE may be - for stdin/stdout.\n",
		g_prog, g_prog);
}

// An input file: mmap'd when it is a regular file, read into memory otherwise.
struct Input {
	const uint8_t *data = nullptr;
	size_t size = 0;
	void *map = nullptr;
	std::vector<uint8_t> buf;

	bool open(const std::string &path, std::string &err)
	{
		int fd = path == "-" ? dup(0) : ::open(path.c_str(), O_RDONLY);
		if (fd < 0) {
			err = path + ": " + strerror(errno);
			return false;
		}
		struct stat st;
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
			size = size_t(st.st_size);
			if (size) {
				map = mmap(nullptr, size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
				if (map == MAP_FAILED) {
					map = nullptr;
					err = path + ": mmap: " + strerror(errno);
					::close(fd);
					return false;
				}
				data = static_cast<const uint8_t *>(map);
			}
			::close(fd);
			return true;
		}
		uint8_t tmp[1 << 16];
		for (;;) {
			ssize_t n = read(fd, tmp, sizeof(tmp));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				err = path + ": read: " + strerror(errno);
				::close(fd);
				return false;
			}
			if (n == 0)
				break;
			buf.insert(buf.end(), tmp, tmp + n);
		}
		::close(fd);
		data = buf.data();
		size = buf.size();
		return true;
	}
	std::span<const uint8_t> span() const { return {data, size}; }
	~Input()
	{
		if (map)
			munmap(map, size);
	}
};

// Output: a temporary file beside OUT, renamed on commit(), removed otherwise.
struct Output {
	std::string path, tmp;
	int fd = -1;
	bool to_stdout = false;
	uint8_t *map = nullptr;
	size_t map_size = 0;

	bool open(const std::string &p, std::string &err)
	{
		path = p;
		if (p == "-") {
			to_stdout = true;
			return true;
		}
		size_t slash = p.rfind('/');
		std::string dir = slash == std::string::npos ? "." : p.substr(0, slash);
		std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
		tmp = dir + "/." + base + ".dwcp-delta.XXXXXX";
		fd = mkstemp(tmp.data());
		if (fd < 0) {
			err = tmp + ": " + strerror(errno);
			tmp.clear();
			return false;
		}
		return true;
	}
	// A writable mapping of exactly n bytes (memory when writing to stdout).
	uint8_t *map_bytes(size_t n, std::vector<uint8_t> &mem, std::string &err)
	{
		if (to_stdout || n == 0) {
			mem.resize(n);
			return mem.data();
		}
		if (ftruncate(fd, off_t(n)) != 0) {
			err = tmp + ": " + strerror(errno);
			return nullptr;
		}
		// Populated up front: faulting 4 KiB pages in one by one during the decode costs
		// more than the decode itself.
		void *m = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
		if (m == MAP_FAILED) {
			err = tmp + ": mmap: " + strerror(errno);
			return nullptr;
		}
		map = static_cast<uint8_t *>(m);
		map_size = n;
		return map;
	}
	bool write_all(const uint8_t *p, size_t n, std::string &err)
	{
		int wfd = to_stdout ? 1 : fd;
		while (n) {
			ssize_t w = write(wfd, p, n);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				err = (to_stdout ? std::string("stdout") : tmp) + ": " + strerror(errno);
				return false;
			}
			p += w;
			n -= size_t(w);
		}
		return true;
	}
	bool commit(std::string &err)
	{
		if (to_stdout)
			return true;
		if (map) {
			munmap(map, map_size);
			map = nullptr;
		}
		if (close(fd) != 0) {
			fd = -1;
			err = tmp + ": " + strerror(errno);
			return false;
		}
		fd = -1;
		if (rename(tmp.c_str(), path.c_str()) != 0) {
			err = path + ": " + strerror(errno);
			return false;
		}
		tmp.clear();
		return true;
	}
	~Output()
	{
		if (map)
			munmap(map, map_size);
		if (fd >= 0)
			close(fd);
		if (!tmp.empty())
			unlink(tmp.c_str());
	}
};

double now_s()
{
	return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int fail(const std::string &msg)
{
	fprintf(stderr, "%s: %s\n", g_prog, msg.c_str());
	return 2;
}

} // namespace

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 1;
	}
	std::string cmd = argv[1];
	if (cmd == "-h" || cmd == "--help") {
		usage(stdout);
		return 0;
	}
	if (cmd != "encode" && cmd != "decode") {
		fprintf(stderr, "%s: unknown command '%s'\n", g_prog, cmd.c_str());
		usage(stderr);
		return 1;
	}
	std::string source, dirty_path;
	Tier tier = Tier::zstd3;
	unsigned threads = 1;
	size_t chunk_size = kDefaultChunkSize;
	bool quiet = false;
	static const option longopts[] = {
		{"source", required_argument, nullptr, 's'},
		{"level", required_argument, nullptr, 'l'},
		{"tier", required_argument, nullptr, 'l'},
		{"threads", required_argument, nullptr, 'T'},
		{"chunk-size", required_argument, nullptr, 'c'},
		{"dirty", required_argument, nullptr, 'd'},
		{"quiet", no_argument, nullptr, 'q'},
		{"help", no_argument, nullptr, 'h'},
		{nullptr, 0, nullptr, 0},
	};
	optind = 2;
	int c;
	while ((c = getopt_long(argc, argv, "s:l:T:c:d:qh0123", longopts, nullptr)) != -1) {
		switch (c) {
		case 's': source = optarg; break;
		case 'l':
			if (!parse_tier(optarg, tier)) {
				fprintf(stderr, "%s: unknown level '%s' (none|igzip|zstd3|zstd9|0-3)\n", g_prog, optarg);
				return 1;
			}
			break;
		case '0': case '1': case '2': case '3': tier = Tier(c - '0'); break;
		case 'T': {
			char *end;
			long v = strtol(optarg, &end, 10);
			if (*end || v < 1 || v > 256) {
				fprintf(stderr, "%s: --threads '%s' is not in 1..256\n", g_prog, optarg);
				return 1;
			}
			threads = unsigned(v);
			break;
		}
		case 'c': {
			char *end;
			unsigned long long v = strtoull(optarg, &end, 10);
			if (*end || !valid_chunk_size(v)) {
				fprintf(stderr, "%s: --chunk-size '%s' is not a multiple of 4096 in [4096, 4194304]\n",
					g_prog, optarg);
				return 1;
			}
			chunk_size = size_t(v);
			break;
		}
		case 'd': dirty_path = optarg; break;
		case 'q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 1;
		}
	}
	if (argc - optind != 2) {
		usage(stderr);
		return 1;
	}
	std::string in_path = argv[optind], out_path = argv[optind + 1];
	std::string err;
	Input base, in, dirty;
	if (!source.empty() && !base.open(source, err))
		return fail(err);
	if (!in.open(in_path, err))
		return fail(err);
	if (!dirty_path.empty() && !dirty.open(dirty_path, err))
		return fail(err);

	Output out;
	if (!out.open(out_path, err))
		return fail(err);
	double t0 = now_s();
	FileTimings tm;
	if (cmd == "encode") {
		FileEncodeOptions o;
		o.tier = tier;
		o.chunk_size = chunk_size;
		o.nb_threads = threads;
		std::vector<uint64_t> words;
		if (!dirty_path.empty()) {
			words.resize((dirty.size + 7) / 8);
			memcpy(words.data(), dirty.data, dirty.size);
			o.dirty.words = words.data();
			o.dirty.nb_blocks = dirty.size * 8;
		}
		std::vector<uint8_t> delta;
		EncodeStats st;
		if (!encode_file(base.span(), in.span(), o, delta, &st, &tm, err))
			return fail(err);
		if (!out.write_all(delta.data(), delta.size(), err) || !out.commit(err))
			return fail(err);
		double dt = now_s() - t0;
		if (!quiet)
			fprintf(stderr,
				"dwcp-delta: encode %zu -> %zu bytes, ratio %.1fx, %.2f GB/s (chunks %.3f s = %.2f GB/s, "
				"index %.3f s, sha256 %.3f s beside), %u thread(s), tier %s, isa %s; blocks same %lu zero %lu "
				"copy %lu dup %lu xor %lu shifted %lu literal %lu\n",
				in.size, delta.size(), delta.empty() ? 0.0 : double(in.size) / double(delta.size()),
				double(in.size) / dt / 1e9, tm.code_s, double(in.size) / tm.code_s / 1e9, tm.index_s, tm.sha_s,
				threads, tier_name(tier), kernels().name, (unsigned long)st.same, (unsigned long)st.zero,
				(unsigned long)st.copy, (unsigned long)st.dup, (unsigned long)st.xor_inplace,
				(unsigned long)st.xor_shifted, (unsigned long)st.literal);
		return 0;
	}

	uint64_t size = 0;
	DecodeError e = decoded_size(in.span(), size);
	if (e != DecodeError::ok)
		return fail(in_path + ": not a usable delta (" + decode_error_name(e) + ")");
	std::vector<uint8_t> mem;
	uint8_t *dst = out.map_bytes(size, mem, err);
	if (!dst && size)
		return fail(err);
	e = decode_file(base.span(), in.span(), {dst, size}, threads, &tm, err);
	if (e != DecodeError::ok)
		return fail(in_path + ": " + err);
	if (out.to_stdout && !out.write_all(dst, size, err))
		return fail(err);
	if (!out.commit(err))
		return fail(err);
	double dt = now_s() - t0;
	if (!quiet)
		fprintf(stderr,
			"dwcp-delta: decode %zu -> %lu bytes, ratio %.1fx, %.2f GB/s (chunks %.3f s = %.2f GB/s, sha256 %.3f s), "
			"%u thread(s), isa %s\n",
			in.size, (unsigned long)size, in.size ? double(size) / double(in.size) : 0.0, double(size) / dt / 1e9,
			tm.code_s, tm.code_s > 0 ? double(size) / tm.code_s / 1e9 : 0.0, tm.sha_s, threads, kernels().name);
	return 0;
}
