// Writes the committed seed corpora of the HDE fuzz targets (run once by hand:
// the seeds are in fuzz/corpus/, this records how they were made).
//   make_seeds DIR   writes DIR/decode/*, DIR/file/*, DIR/state/*
#include "dataplane/hde/delta_file.h"
#include "dataplane/hde/state_delta.h"

#include <cstdio>
#include <string>
#include <vector>

using namespace dwcp::hde;

static void put(const std::string &path, const std::vector<uint8_t> &v)
{
	FILE *f = fopen(path.c_str(), "wb");
	if (f) {
		fwrite(v.data(), 1, v.size(), f);
		fclose(f);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 1;
	std::string dir = argv[1];
	std::vector<uint8_t> base(3 * 65536);
	for (size_t i = 0; i < base.size(); i++)
		base[i] = uint8_t(i * 7 + (i >> 12));
	std::vector<uint8_t> cur = base;
	for (size_t i = 0; i < cur.size(); i += 5000)
		cur[i] ^= 0x55;
	for (size_t i = 70000; i < 74096; i++)
		cur[i] = 0;
	for (size_t i = 100000; i < 110000; i++)
		cur[i] = base[i - 1111];
	BaselineIndex idx(base, 0x5eed);
	ChunkEncoder enc(65536);
	int n = 0;
	for (Tier t : {Tier::none, Tier::igzip, Tier::zstd3}) {
		for (uint32_t i = 0; i < 2; i++) {
			std::vector<uint8_t> out(max_encoded_chunk_size(65536));
			size_t len = enc.encode(i, 65536, std::span(cur).subspan(i * 65536, 65536), idx, {}, t, out);
			out.resize(len);
			put(dir + "/decode/chunk" + std::to_string(n++), out);
		}
	}
	std::vector<uint8_t> small(base.begin(), base.begin() + 20000);
	std::vector<uint8_t> small_new = small;
	small_new[100] ^= 1;
	std::vector<uint8_t> delta;
	std::string err;
	FileEncodeOptions o;
	o.chunk_size = 8192;
	encode_file({}, small_new, o, delta, nullptr, nullptr, err);
	put(dir + "/file/nobase", delta);
	std::vector<uint8_t> b5(20000, 0x5a), n5 = b5;
	n5[7000] = 1;
	encode_file(b5, n5, o, delta, nullptr, nullptr, err);
	put(dir + "/file/withbase", delta);
	StateMap sb = {{"vm/1/meta/host", "host-1"}, {"vm/1/metrics/cpu", "12"}, {"vm/2/meta/host", "host-2"}};
	StateMap sc = sb;
	sc["vm/1/metrics/cpu"] = "13";
	sc.erase("vm/2/meta/host");
	sc["vm/3/meta/host"] = "host-3";
	put(dir + "/state/plain", serialize_state_delta(diff_state(sb, sc, 1, 2, {}), Tier::none));
	put(dir + "/state/zstd", serialize_state_delta(diff_state(sb, sc, 1, 2, {}), Tier::zstd9));
	return 0;
}
