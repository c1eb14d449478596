// A stand-in for libFuzzer's main when the project is built with gcc: it runs a fuzz
// target over its corpus, then over a bounded number of seeded mutations of it, so
// every parser's fuzz target runs in the ordinary test suite on any compiler.  A
// crash, sanitizer report or failed check in the target fails the test; the input
// that did it is written to ./fuzz-crash-<target> for replay.
//
//   fuzz_target [--runs N] [--seed S] [--max-len L] FILE_OR_DIR...
//
// Built with -Dfuzz=true and clang, the same targets link libFuzzer instead and take
// libFuzzer's own options for long runs.
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

namespace {

std::string g_target = "target";
std::vector<uint8_t> g_current;

void save_current()
{
	std::string path = "fuzz-crash-" + g_target;
	if (FILE *f = fopen(path.c_str(), "wb")) {
		fwrite(g_current.data(), 1, g_current.size(), f);
		fclose(f);
	}
}

void run_one(const std::vector<uint8_t> &in)
{
	g_current = in;
	LLVMFuzzerTestOneInput(in.data(), in.size());
}

std::vector<uint8_t> mutate(const std::vector<uint8_t> &seed, std::mt19937_64 &rng, size_t max_len)
{
	std::vector<uint8_t> v = seed;
	int edits = 1 + int(rng() % 8);
	for (int e = 0; e < edits; e++) {
		switch (rng() % 6) {
		case 0: // flip a bit
			if (!v.empty())
				v[rng() % v.size()] ^= uint8_t(1u << (rng() % 8));
			break;
		case 1: // set a byte to an interesting value
			if (!v.empty()) {
				static const uint8_t vals[] = {0, 1, 0x7f, 0x80, 0xff, 0xfe};
				v[rng() % v.size()] = vals[rng() % sizeof(vals)];
			}
			break;
		case 2: // truncate
			if (!v.empty())
				v.resize(rng() % v.size());
			break;
		case 3: // insert random bytes
			if (v.size() < max_len) {
				size_t at = v.empty() ? 0 : rng() % (v.size() + 1);
				size_t n = 1 + rng() % 16;
				for (size_t i = 0; i < n && v.size() < max_len; i++)
					v.insert(v.begin() + ptrdiff_t(at), uint8_t(rng()));
			}
			break;
		case 4: // overwrite a 4-byte field with a large or small number
			if (v.size() >= 4) {
				uint32_t x = (rng() & 1) ? uint32_t(rng()) : uint32_t(0xffffffffu - rng() % 4);
				memcpy(&v[rng() % (v.size() - 3)], &x, 4);
			}
			break;
		case 5: // duplicate a slice
			if (!v.empty() && v.size() < max_len) {
				size_t a = rng() % v.size(), n = 1 + rng() % (v.size() - a);
				std::vector<uint8_t> s(v.begin() + ptrdiff_t(a), v.begin() + ptrdiff_t(a + n));
				v.insert(v.begin() + ptrdiff_t(rng() % (v.size() + 1)), s.begin(), s.end());
				if (v.size() > max_len)
					v.resize(max_len);
			}
			break;
		}
	}
	return v;
}

} // namespace

int main(int argc, char **argv)
{
	long runs = 10000;
	uint64_t seed = 1;
	size_t max_len = 1 << 16;
	std::vector<std::vector<uint8_t>> corpus;
	g_target = std::filesystem::path(argv[0]).filename().string();
	for (int i = 1; i < argc; i++) {
		std::string a = argv[i];
		auto value = [&](const char *name) {
			if (i + 1 >= argc) {
				fprintf(stderr, "%s: %s needs a value\n", g_target.c_str(), name);
				exit(2);
			}
			return std::string(argv[++i]);
		};
		if (a == "--runs")
			runs = std::stol(value("--runs"));
		else if (a == "--seed")
			seed = std::stoull(value("--seed"));
		else if (a == "--max-len")
			max_len = std::stoul(value("--max-len"));
		else {
			std::error_code ec;
			std::vector<std::filesystem::path> files;
			if (std::filesystem::is_directory(a, ec)) {
				for (auto &e : std::filesystem::directory_iterator(a))
					if (e.is_regular_file())
						files.push_back(e.path());
			} else if (std::filesystem::is_regular_file(a, ec)) {
				files.push_back(a);
			} else {
				fprintf(stderr, "%s: no corpus file or directory '%s'\n", g_target.c_str(), a.c_str());
				return 2;
			}
			std::sort(files.begin(), files.end());
			for (auto &p : files) {
				std::ifstream f(p, std::ios::binary);
				corpus.emplace_back(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
			}
		}
	}
	if (corpus.empty())
		corpus.emplace_back();
	std::atexit(save_current); // reached only if the target calls exit(); crashes are caught below
	std::signal(SIGSEGV, [](int) { save_current(); std::_Exit(1); });
	std::signal(SIGABRT, [](int) { save_current(); std::_Exit(1); });
	for (auto &c : corpus)
		run_one(c);
	std::mt19937_64 rng(seed);
	for (long r = 0; r < runs; r++)
		run_one(mutate(corpus[rng() % corpus.size()], rng, max_len));
	g_current.clear();
	printf("%s: %zu corpus inputs and %ld mutations ran clean\n", g_target.c_str(), corpus.size(), runs);
	fflush(stdout); // quick_exit flushes nothing, and meson reads this line from a pipe
	std::quick_exit(0);
}
