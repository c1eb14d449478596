#include "control/sha256.h"

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <openssl/evp.h>

namespace dwcp::control {

Sha256Stream::Sha256Stream() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
Sha256Stream::~Sha256Stream() { EVP_MD_CTX_free(ctx_); }
void Sha256Stream::update(const void *p, size_t n) { EVP_DigestUpdate(ctx_, p, n); }
void Sha256Stream::final(Sha256 *out) { EVP_DigestFinal_ex(ctx_, out->data(), nullptr); }

std::string sha256_file(const std::string &path, Sha256 *out, uint64_t *size)
{
	int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return "cannot open '" + path + "': " + std::strerror(errno);
	Sha256Stream md;
	std::vector<uint8_t> buf(4 << 20);
	uint64_t total = 0;
	std::string err;
	for (;;) {
		ssize_t n = read(fd, buf.data(), buf.size());
		if (n == 0)
			break;
		if (n < 0) {
			err = "reading '" + path + "': " + std::strerror(errno);
			break;
		}
		md.update(buf.data(), size_t(n));
		total += uint64_t(n);
	}
	md.final(out);
	close(fd);
	if (size)
		*size = total;
	return err;
}

std::string to_hex(std::span<const uint8_t> b)
{
	static const char d[] = "0123456789abcdef";
	std::string s;
	s.reserve(b.size() * 2);
	for (uint8_t c : b)
		s += d[c >> 4], s += d[c & 15];
	return s;
}

bool parse_sha256_hex(const std::string &hex, Sha256 *out)
{
	if (hex.size() != 64)
		return false;
	for (size_t i = 0; i < 32; i++) {
		unsigned v = 0;
		for (size_t j = 0; j < 2; j++) {
			char c = hex[2 * i + j];
			unsigned d = c >= '0' && c <= '9' ? unsigned(c - '0') : c >= 'a' && c <= 'f' ? unsigned(c - 'a' + 10) : 16;
			if (d == 16)
				return false;
			v = v * 16 + d;
		}
		(*out)[i] = uint8_t(v);
	}
	return true;
}

} // namespace dwcp::control
