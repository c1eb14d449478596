#pragma once
// SHA-256 as the control plane uses it: the whole-object digest a transfer is
// verified by, and the record a baseline is kept under.  OpenSSL's EVP does the
// hashing (SHA-NI where the CPU has it).
#include <array>
#include <cstdint>
#include <span>
#include <string>

struct evp_md_ctx_st;

namespace dwcp::control {

using Sha256 = std::array<uint8_t, 32>;

// An incremental digest: update() in object order, then final() once.
class Sha256Stream {
public:
	Sha256Stream();
	~Sha256Stream();
	Sha256Stream(const Sha256Stream &) = delete;
	Sha256Stream &operator=(const Sha256Stream &) = delete;
	void update(const void *p, size_t n);
	void final(Sha256 *out);

private:
	evp_md_ctx_st *ctx_;
};

// SHA-256 of a whole file: "" or one line naming the file.
[[nodiscard]] std::string sha256_file(const std::string &path, Sha256 *out, uint64_t *size = nullptr);
// Lowercase hex, and back (exactly 64 lowercase hex digits).
std::string to_hex(std::span<const uint8_t> b);
bool parse_sha256_hex(const std::string &hex, Sha256 *out);

} // namespace dwcp::control
