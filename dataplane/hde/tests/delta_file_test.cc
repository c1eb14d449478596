#include "dataplane/hde/delta_file.h"
#include "dataplane/hde/tests/test_data.h"

#include <gtest/gtest.h>

namespace dwcp::hde {
namespace {

TEST(DeltaFile, RoundTripThreads)
{
	auto base = test::structured_image(3 << 20, 1);
	auto cur = base;
	test::dirty_pages(cur, 0.05, 2);
	cur.resize(cur.size() + 5000, 7);
	for (unsigned nt : {1u, 2u, 3u}) {
		FileEncodeOptions o;
		o.nb_threads = nt;
		std::vector<uint8_t> delta;
		std::string err;
		ASSERT_TRUE(encode_file(base, cur, o, delta, nullptr, nullptr, err)) << err;
		uint64_t size = 0;
		ASSERT_EQ(decoded_size(delta, size), DecodeError::ok);
		ASSERT_EQ(size, cur.size());
		std::vector<uint8_t> out(size);
		ASSERT_EQ(decode_file(base, delta, out, nt, nullptr, err), DecodeError::ok) << err;
		EXPECT_EQ(out, cur);
	}
}

TEST(DeltaFile, NoBaselineAndEmptyObject)
{
	std::vector<uint8_t> delta, out;
	std::string err;
	ASSERT_TRUE(encode_file({}, {}, {}, delta, nullptr, nullptr, err));
	EXPECT_EQ(delta.size(), kFileHeaderLen);
	EXPECT_EQ(decode_file({}, delta, out, 1, nullptr, err), DecodeError::ok);
	auto cur = test::structured_image(100000, 3);
	ASSERT_TRUE(encode_file({}, cur, {}, delta, nullptr, nullptr, err));
	out.resize(cur.size());
	EXPECT_EQ(decode_file({}, delta, out, 2, nullptr, err), DecodeError::ok);
	EXPECT_EQ(out, cur);
}

TEST(DeltaFile, RefusesWrongBaselineCorruptAndTruncated)
{
	auto base = test::structured_image(1 << 20, 4);
	auto cur = base;
	test::dirty_pages(cur, 0.1, 5);
	std::vector<uint8_t> delta;
	std::string err;
	ASSERT_TRUE(encode_file(base, cur, {}, delta, nullptr, nullptr, err));
	std::vector<uint8_t> out(cur.size());

	auto other = base;
	other[12345] ^= 1;
	EXPECT_EQ(decode_file(other, delta, out, 1, nullptr, err), DecodeError::wrong_baseline);
	EXPECT_NE(err.find("wrong baseline"), std::string::npos) << err;
	EXPECT_EQ(decode_file(std::span(base).first(base.size() - 1), delta, out, 1, nullptr, err),
		DecodeError::wrong_baseline);
	EXPECT_EQ(decode_file({}, delta, out, 1, nullptr, err), DecodeError::wrong_baseline);

	for (size_t cut : {size_t(0), size_t(50), kFileHeaderLen, kFileHeaderLen + 10, delta.size() - 1}) {
		std::vector<uint8_t> t(delta.begin(), delta.begin() + cut);
		EXPECT_NE(decode_file(base, t, out, 1, nullptr, err), DecodeError::ok) << cut;
	}
	for (size_t i = 0; i < delta.size(); i += 97) {
		auto t = delta;
		t[i] ^= 0x10;
		EXPECT_NE(decode_file(base, t, out, 2, nullptr, err), DecodeError::ok) << i;
	}
	auto t = delta;
	t.push_back(0);
	EXPECT_EQ(decode_file(base, t, out, 1, nullptr, err), DecodeError::trailing_bytes);
}

} // namespace
} // namespace dwcp::hde
