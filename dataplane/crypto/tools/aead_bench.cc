// dwcp-aead-bench: AES-256-GCM seal and open throughput on one core, for the
// cryptodev backend (both of its paths) and the OpenSSL backend in the same run.
//
//   dwcp-aead-bench [EAL options] -- [--size BYTES] [--packets N] [--rounds R]
//                                     [--backend cryptodev|openssl|both]
//
// e.g.  dwcp-aead-bench --no-huge -m 256 --no-pci -l 0 -- --size 1400
//
// Bursts of 32 packets of --size body bytes (plus the 20-byte header as AAD and the
// 16-byte tag) are sealed and then opened in place, --packets per round, --rounds
// rounds.  Each burst's seal and open are timed apart with the TSC.  Prints a table
// (median and spread over the rounds, Gbit/s of body bytes and cycles per byte)
// and, last, one JSON line for the cryptodev's default path against OpenSSL.
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <getopt.h>
#include <random>
#include <string>
#include <vector>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#include "dataplane/crypto/aead.h"

using namespace dwcp::crypto;

namespace {

constexpr unsigned kBurst = 32;

struct Options {
	uint32_t size = 1400;
	uint64_t packets = 1'000'000;
	unsigned rounds = 5;
	std::string backend = "both";
};

struct Result {
	std::string backend, path;
	double seal_gbps = 0, open_gbps = 0;           // medians
	double seal_min = 0, seal_max = 0, open_min = 0, open_max = 0;
	double seal_cpb = 0, open_cpb = 0;             // cycles per body byte, medians
	bool ok = false;
};

double median(std::vector<double> v)
{
	std::sort(v.begin(), v.end());
	return v.empty() ? 0 : (v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2);
}

int usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [EAL options] -- [--size BYTES] [--packets N] [--rounds R] [--backend cryptodev|openssl|both]\n",
		prog);
	return 2;
}

// Seals and opens bursts of kBurst packets in mbufs, rounds times.
Result run(Aead &a, const std::string &backend, const std::string &path, rte_mempool *pool, const Options &o)
{
	Result r;
	r.backend = backend;
	r.path = path;
	std::string err;
	Secret s{};
	s[0] = 1;
	int h = a.add_key(derive_packet_key(s), &err);
	if (h < 0) {
		fprintf(stderr, "%s: %s\n", a.name(), err.c_str());
		return r;
	}
	rte_mbuf *m[kBurst];
	if (rte_pktmbuf_alloc_bulk(pool, m, kBurst) != 0) {
		fprintf(stderr, "cannot allocate %u mbufs\n", kBurst);
		return r;
	}
	std::mt19937_64 rng(1);
	AeadOp ops[kBurst];
	for (unsigned i = 0; i < kBurst; i++) {
		uint32_t len = uint32_t(kAadLen) + o.size + uint32_t(kTagLen);
		uint8_t *p = reinterpret_cast<uint8_t *>(rte_pktmbuf_append(m[i], uint16_t(len)));
		for (uint32_t j = 0; j < len; j++)
			p[j] = uint8_t(rng());
		ops[i] = AeadOp{.aad = p, .data = p + kAadLen, .len = o.size, .tag = p + kAadLen + o.size, .stream = 1,
				.m = m[i]};
	}
	uint64_t bursts = std::max<uint64_t>(1, o.packets / kBurst);
	double hz = double(rte_get_tsc_hz());
	double bytes = double(bursts) * kBurst * o.size;
	std::vector<double> seal_gbps, open_gbps, seal_cpb, open_cpb;
	uint64_t pn = 0, failed = 0;
	for (unsigned round = 0; round <= o.rounds; round++) { // round 0 warms up
		uint64_t seal_cycles = 0, open_cycles = 0;
		uint64_t n = round ? bursts : std::max<uint64_t>(1, bursts / 10);
		for (uint64_t b = 0; b < n; b++) {
			for (unsigned i = 0; i < kBurst; i++)
				ops[i].pn = pn++;
			uint64_t t0 = rte_rdtsc_precise();
			a.seal_burst(h, ops, kBurst);
			uint64_t t1 = rte_rdtsc_precise();
			a.open_burst(h, ops, kBurst);
			uint64_t t2 = rte_rdtsc_precise();
			seal_cycles += t1 - t0;
			open_cycles += t2 - t1;
			for (unsigned i = 0; i < kBurst; i++)
				failed += !ops[i].ok;
		}
		if (!round)
			continue;
		seal_gbps.push_back(bytes * 8 / (double(seal_cycles) / hz) / 1e9);
		open_gbps.push_back(bytes * 8 / (double(open_cycles) / hz) / 1e9);
		seal_cpb.push_back(double(seal_cycles) / bytes);
		open_cpb.push_back(double(open_cycles) / bytes);
	}
	rte_pktmbuf_free_bulk(m, kBurst);
	a.remove_key(h);
	if (failed) {
		fprintf(stderr, "%s: %" PRIu64 " packets did not open\n", a.name(), failed);
		return r;
	}
	r.seal_gbps = median(seal_gbps);
	r.open_gbps = median(open_gbps);
	r.seal_min = *std::min_element(seal_gbps.begin(), seal_gbps.end());
	r.seal_max = *std::max_element(seal_gbps.begin(), seal_gbps.end());
	r.open_min = *std::min_element(open_gbps.begin(), open_gbps.end());
	r.open_max = *std::max_element(open_gbps.begin(), open_gbps.end());
	r.seal_cpb = median(seal_cpb);
	r.open_cpb = median(open_cpb);
	r.ok = true;
	return r;
}

} // namespace

int main(int argc, char **argv)
{
	int n = rte_eal_init(argc, argv);
	if (n < 0) {
		fprintf(stderr, "%s: rte_eal_init failed: %s\n", argv[0], rte_strerror(rte_errno));
		return 1;
	}
	argc -= n;
	argv += n;
	Options o;
	static const option longopts[] = {
		{"size", required_argument, nullptr, 's'},    {"packets", required_argument, nullptr, 'n'},
		{"rounds", required_argument, nullptr, 'r'},  {"backend", required_argument, nullptr, 'b'},
		{"help", no_argument, nullptr, 'h'},          {nullptr, 0, nullptr, 0},
	};
	for (int c; (c = getopt_long(argc, argv, "", longopts, nullptr)) != -1;) {
		switch (c) {
		case 's':
			o.size = uint32_t(strtoul(optarg, nullptr, 10));
			break;
		case 'n':
			o.packets = strtoull(optarg, nullptr, 10);
			break;
		case 'r':
			o.rounds = unsigned(strtoul(optarg, nullptr, 10));
			break;
		case 'b':
			o.backend = optarg;
			break;
		default:
			return usage(argv[0]);
		}
	}
	if (o.size == 0 || o.size > 9000) {
		fprintf(stderr, "--size %u: give 1..9000 body bytes\n", o.size);
		return 2;
	}
	if (o.rounds == 0) {
		fprintf(stderr, "--rounds 0: give at least 1\n");
		return 2;
	}
	if (o.backend != "cryptodev" && o.backend != "openssl" && o.backend != "both") {
		fprintf(stderr, "--backend %s: give cryptodev, openssl or both\n", o.backend.c_str());
		return 2;
	}
	int socket = int(rte_socket_id());
	uint16_t room = uint16_t(RTE_PKTMBUF_HEADROOM + kAadLen + o.size + kTagLen);
	rte_mempool *pool = rte_pktmbuf_pool_create("bench_pool", 2 * kBurst - 1, 0, 0, room, socket);
	if (!pool) {
		fprintf(stderr, "cannot create the mbuf pool: %s\n", rte_strerror(rte_errno));
		return 1;
	}

	std::vector<Result> results;
	std::string default_path;
	int dev = -1;
	if (o.backend != "openssl") {
		std::string err;
		dev = setup_cryptodev(1, socket, &err);
		if (dev < 0) {
			fprintf(stderr, "%s\n", err.c_str());
			return 1;
		}
		for (bool force_ops : {false, true}) {
			CryptodevAeadOptions opt;
			opt.force_op_path = force_ops;
			auto a = make_cryptodev_aead(uint8_t(dev), 0, socket, &err, opt);
			if (!a) {
				fprintf(stderr, "%s\n", err.c_str());
				return 1;
			}
			std::string name = a->name();
			std::string path = name.substr(name.rfind(':') + 1);
			if (!force_ops)
				default_path = path;
			else if (path == default_path)
				break; // no CPU crypto: the default path was the op path already
			results.push_back(run(*a, name.substr(0, name.rfind(':')), path, pool, o));
		}
	}
	if (o.backend != "cryptodev") {
		auto a = make_openssl_aead();
		results.push_back(run(*a, "openssl", "evp", pool, o));
	}

	printf("AES-256-GCM, %u-byte bodies (+20 AAD, +16 tag), bursts of %u, %" PRIu64 " packets x %u rounds, 1 core "
	       "(lcore %u, TSC %.2f GHz)\n",
	       o.size, kBurst, o.packets, o.rounds, rte_lcore_id(), double(rte_get_tsc_hz()) / 1e9);
	printf("%-34s %-11s %22s %22s %9s %9s\n", "backend", "path", "seal Gbit/s (min-max)", "open Gbit/s (min-max)",
	       "seal c/B", "open c/B");
	for (const Result &r : results) {
		if (!r.ok) {
			printf("%-34s %-11s %22s\n", r.backend.c_str(), r.path.c_str(), "failed");
			continue;
		}
		char seal[64], open[64];
		snprintf(seal, sizeof(seal), "%.2f (%.2f-%.2f)", r.seal_gbps, r.seal_min, r.seal_max);
		snprintf(open, sizeof(open), "%.2f (%.2f-%.2f)", r.open_gbps, r.open_min, r.open_max);
		printf("%-34s %-11s %22s %22s %9.3f %9.3f\n", r.backend.c_str(), r.path.c_str(), seal, open, r.seal_cpb,
		       r.open_cpb);
	}

	const Result *dev_result = nullptr, *ossl = nullptr;
	for (const Result &r : results) {
		if (r.backend == "openssl")
			ossl = &r;
		else if (r.path == default_path && !dev_result)
			dev_result = &r;
	}
	bool failed = std::any_of(results.begin(), results.end(), [](const Result &r) { return !r.ok; });
	const Result *main_r = dev_result ? dev_result : ossl;
	if (main_r) {
		printf("{\"backend\":\"%s\",\"path\":\"%s\",\"packet_bytes\":%u,\"burst\":%u,\"cores\":1,\"rounds\":%u,"
		       "\"seal_gbps_per_core\":%.3f,\"open_gbps_per_core\":%.3f,\"aead_gbps_per_core\":%.3f,"
		       "\"seal_cycles_per_byte\":%.4f,\"open_cycles_per_byte\":%.4f",
		       dev_result ? "cryptodev" : "openssl", dev_result ? main_r->path.c_str() : "evp", o.size, kBurst, o.rounds,
		       main_r->seal_gbps, main_r->open_gbps, std::min(main_r->seal_gbps, main_r->open_gbps), main_r->seal_cpb,
		       main_r->open_cpb);
		if (dev_result)
			printf(",\"device\":\"%s\"", dev_result->backend.c_str());
		if (ossl)
			printf(",\"openssl_aead_gbps_per_core\":%.3f", std::min(ossl->seal_gbps, ossl->open_gbps));
		for (const Result &r : results)
			if (r.backend != "openssl" && r.path == "ops" && &r != dev_result)
				printf(",\"ops_path_aead_gbps_per_core\":%.3f", std::min(r.seal_gbps, r.open_gbps));
		printf("}\n");
	}
	rte_mempool_free(pool);
	stop_cryptodev(dev);
	// A benchmark leaves no runtime directory behind (the EAL keeps its own).
	std::string runtime_dir = rte_eal_get_runtime_dir();
	rte_eal_cleanup();
	std::error_code ec;
	std::filesystem::remove_all(runtime_dir, ec);
	return failed ? 1 : 0;
}
