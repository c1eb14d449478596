#pragma once
// Published AES-256-GCM known answers with a 96-bit IV and a 128-bit tag, shared by
// the OpenSSL (unit) and cryptodev (eal) tests, and helpers to run them through an
// Aead.  A vector's IV is the key's iv and the packet is stream 0, packet number 0,
// so make_nonce gives the IV unchanged.
//
// Sources: McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases
// 13-16 (the AES-256 cases with a 96-bit IV); NIST CAVP gcmtestvectors.zip,
// gcmEncryptExtIV256.rsp and gcmDecrypt256.rsp (Count = 0 of the sections named).
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/crypto/aead.h"

namespace dwcp::crypto::test {

struct GcmVector {
	const char *name;
	const char *key, *iv, *aad, *pt, *ct, *tag;
};

inline const GcmVector kGcmVectors[] = {
	{"gcm-spec-13 (empty)", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "", "", "530f8afbc74536b9a963b4f1c4cb738b"},
	{"gcm-spec-14 (one zero block)", "0000000000000000000000000000000000000000000000000000000000000000",
	 "000000000000000000000000", "", "00000000000000000000000000000000", "cea7403d4d606b6e074ec5d3baf39d18",
	 "d0d1c8a799996bf0265b98b5d48ab919"},
	{"gcm-spec-15 (64 bytes, no AAD)", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad",
	 "b094dac5d93471bdec1a502270e3cc6c"},
	{"gcm-spec-16 (60 bytes, 20-byte AAD)", "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308",
	 "cafebabefacedbaddecaf888", "feedfacedeadbeeffeedfacedeadbeefabaddad2",
	 "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
	 "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
	 "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa"
	 "8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
	 "76fc6ece0f4e1768cddf8853bb2d551b"},
	{"nist-enc-256 PT=0 AAD=0", "b52c505a37d78eda5dd34f20c22540ea1b58963cf8e5bf8ffa85f9f2492505b4",
	 "516c33929df5a3284ff463d7", "", "", "", "bdc1ac884d332457a1d2664f168c76f0"},
	{"nist-enc-256 PT=0 AAD=160", "886cff5f3e6b8d0e1ad0a38fcdb26de97e8acbe79f6bed66959a598fa5047d65",
	 "3a8efa1cd74bbab5448f9945", "519fee519d25c7a304d6c6aa1897ee1eb8c59655", "", "",
	 "f6d47505ec96c98a42dc3ae719877b87"},
	{"nist-enc-256 PT=128 AAD=128", "92e11dcdaa866f5ce790fd24501f92509aacf4cb8b1339d50c9c1240935dd08b",
	 "ac93a1a6145299bde902f21a", "1e0889016f67601c8ebea4943bc23ad6", "2d71bcfa914e4ac045b2aa60955fad24",
	 "8995ae2e6df3dbf96fac7b7137bae67f", "eca5aa77d51d4a0a14d9c51e1da474ab"},
	{"nist-dec-256 PT=128 AAD=0", "4c8ebfe1444ec1b2d503c6986659af2c94fafe945f72c1e8486a5acfedb8a0f8",
	 "473360e0ad24889959858995", "", "7789b41cb3ee548814ca0b388c10b343", "d2c78110ac7e8f107c0df0570bd7c90c",
	 "c26a379b6d98ef2852ead8ce83a833a7"},
};

inline std::vector<uint8_t> unhex(std::string_view s)
{
	std::vector<uint8_t> out;
	auto nib = [](char c) { return uint8_t(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10); };
	for (size_t i = 0; i + 1 < s.size(); i += 2)
		out.push_back(uint8_t(nib(s[i]) << 4 | nib(s[i + 1])));
	return out;
}

inline std::string hex(const uint8_t *p, size_t n)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	for (size_t i = 0; i < n; i++) {
		s += d[p[i] >> 4];
		s += d[p[i] & 15];
	}
	return s;
}

inline PacketKey vector_key(const GcmVector &v)
{
	PacketKey k{};
	std::vector<uint8_t> key = unhex(v.key), iv = unhex(v.iv);
	memcpy(k.key, key.data(), sizeof(k.key));
	memcpy(k.iv, iv.data(), sizeof(k.iv));
	return k;
}

// A packet laid out as DWCP lays it out: aad, then data, then the tag, in buf
// (which may be an mbuf's data room).  aad_len/len come from the vector.
struct VectorPacket {
	uint8_t *aad, *data, *tag;
	uint32_t aad_len, len;
};

// Writes v's AAD and plaintext (seal = true) or ciphertext and tag (seal = false) to buf.
inline VectorPacket vector_packet(const GcmVector &v, uint8_t *buf, bool seal)
{
	std::vector<uint8_t> aad = unhex(v.aad), body = unhex(seal ? v.pt : v.ct), tag = unhex(v.tag);
	VectorPacket p{buf, buf + aad.size(), buf + aad.size() + body.size(), uint32_t(aad.size()),
		       uint32_t(body.size())};
	std::copy(aad.begin(), aad.end(), p.aad);
	std::copy(body.begin(), body.end(), p.data);
	if (seal)
		memset(p.tag, 0, kTagLen);
	else
		memcpy(p.tag, tag.data(), kTagLen);
	return p;
}

inline AeadOp vector_op(const VectorPacket &p, rte_mbuf *m = nullptr)
{
	return AeadOp{.aad = p.aad, .data = p.data, .len = p.len, .tag = p.tag, .stream = 0, .pn = 0, .m = m};
}

} // namespace dwcp::crypto::test
