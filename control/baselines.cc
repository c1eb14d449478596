#include "control/baselines.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "control/messages.h"

namespace dwcp::control {

namespace {

std::string errno_text() { return std::strerror(errno); }

std::string label(const std::string &object, uint64_t version)
{
	return "baseline " + object + "@" + std::to_string(version);
}

// Writes data to path through a temporary file and a rename.
std::string write_atomic(const std::string &path, const std::string &data)
{
	std::string tmp = path + ".tmp";
	int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return "cannot create '" + tmp + "': " + errno_text();
	bool ok = ::write(fd, data.data(), data.size()) == ssize_t(data.size()) && fsync(fd) == 0;
	std::string err = ok ? "" : "cannot write '" + tmp + "': " + errno_text();
	close(fd);
	if (ok && rename(tmp.c_str(), path.c_str()) != 0)
		err = "cannot rename '" + tmp + "': " + errno_text();
	if (!err.empty())
		unlink(tmp.c_str());
	return err;
}

std::string copy_file(const std::string &src, const std::string &dst)
{
	int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return "cannot open '" + src + "': " + errno_text();
	int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (out < 0) {
		std::string e = "cannot create '" + dst + "': " + errno_text();
		close(in);
		return e;
	}
	std::string err;
	// A copy-on-write clone where the filesystem has them (btrfs, XFS): instant,
	// and still a separate file if the original is later changed in place.
	if (ioctl(out, FICLONE, in) == 0) {
		close(in);
		close(out);
		return "";
	}
	std::vector<uint8_t> buf(4 << 20);
	for (;;) {
		ssize_t n = read(in, buf.data(), buf.size());
		if (n == 0)
			break;
		if (n < 0 || ::write(out, buf.data(), size_t(n)) != n) {
			err = "copying '" + src + "' to '" + dst + "': " + errno_text();
			break;
		}
	}
	if (err.empty() && fsync(out) != 0)
		err = "fsync '" + dst + "': " + errno_text();
	close(in);
	close(out);
	if (!err.empty())
		unlink(dst.c_str());
	return err;
}

} // namespace

std::string BaselineStore::open(const std::string &dir, bool create)
{
	dir_ = dir;
	struct stat st;
	if (stat(dir.c_str(), &st) != 0) {
		if (!create || errno != ENOENT)
			return "baseline store '" + dir + "': " + errno_text();
		if (mkdir(dir.c_str(), 0755) != 0)
			return "cannot create the baseline store '" + dir + "': " + errno_text();
	} else if (!S_ISDIR(st.st_mode)) {
		return "baseline store '" + dir + "' is not a directory";
	}
	return "";
}

std::string BaselineStore::data_path(const std::string &object, uint64_t version) const
{
	return dir_ + "/" + object + "@" + std::to_string(version);
}

std::vector<Baseline> BaselineStore::list(const std::string &object, std::vector<std::string> *problems) const
{
	std::vector<Baseline> out;
	DIR *d = opendir(dir_.c_str());
	if (!d)
		return out;
	const std::string prefix = object + "@", suffix = ".sha256";
	while (dirent *e = readdir(d)) {
		std::string n = e->d_name;
		if (n.size() <= prefix.size() + suffix.size() || n.compare(0, prefix.size(), prefix) != 0 ||
		    n.compare(n.size() - suffix.size(), suffix.size(), suffix) != 0)
			continue;
		std::string v = n.substr(prefix.size(), n.size() - prefix.size() - suffix.size());
		if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos)
			continue;
		Baseline b;
		b.object = object;
		b.version = strtoull(v.c_str(), nullptr, 10);
		b.path = data_path(object, b.version);
		auto problem = [&](const std::string &why) {
			if (problems)
				problems->push_back(label(object, b.version) + ": " + why);
		};
		FILE *f = fopen((dir_ + "/" + n).c_str(), "r");
		char hex[80] = {};
		unsigned long long size = 0;
		bool parsed = f && fscanf(f, "%70s %llu", hex, &size) == 2 && parse_sha256_hex(hex, &b.sha256);
		if (f)
			fclose(f);
		if (!parsed) {
			problem("its record does not parse");
			continue;
		}
		b.size = size;
		struct stat st;
		if (stat(b.path.c_str(), &st) != 0) {
			problem("its data file is missing");
			continue;
		}
		if (uint64_t(st.st_size) != b.size) {
			problem("its file has " + std::to_string(st.st_size) + " bytes, the record says " +
				std::to_string(b.size));
			continue;
		}
		out.push_back(b);
	}
	closedir(d);
	std::sort(out.begin(), out.end(), [](const Baseline &a, const Baseline &b) { return a.version < b.version; });
	return out;
}

bool BaselineStore::latest(const std::string &object, Baseline *out) const
{
	std::vector<Baseline> v = list(object);
	if (v.empty())
		return false;
	*out = v.back();
	return true;
}

std::string BaselineStore::verify(const Baseline &b) const
{
	Sha256 sha;
	uint64_t size = 0;
	if (std::string e = sha256_file(b.path, &sha, &size); !e.empty())
		return label(b.object, b.version) + ": " + e;
	if (size != b.size)
		return label(b.object, b.version) + ": " + std::to_string(size) + " bytes, the record says " +
		       std::to_string(b.size);
	if (sha != b.sha256)
		return label(b.object, b.version) + ": sha256 mismatch (file changed since it was recorded)";
	return "";
}

namespace {

// The file's identity and times, and the digest it was checked against.
std::string stamp_of(const struct stat &st, const Sha256 &sha)
{
	char b[256];
	snprintf(b, sizeof(b), "%s %" PRIu64 " %" PRIu64 " %" PRId64 ".%09ld %" PRId64 ".%09ld\n", to_hex(sha).c_str(),
		 uint64_t(st.st_ino), uint64_t(st.st_size), int64_t(st.st_mtim.tv_sec), st.st_mtim.tv_nsec,
		 int64_t(st.st_ctim.tv_sec), st.st_ctim.tv_nsec);
	return b;
}

} // namespace

std::string BaselineStore::check(const Baseline &b) const
{
	struct stat st;
	if (stat(b.path.c_str(), &st) != 0)
		return label(b.object, b.version) + ": " + errno_text();
	std::string now = stamp_of(st, b.sha256), stamp_path = b.path + ".checked";
	if (FILE *f = fopen(stamp_path.c_str(), "r")) {
		char line[256] = {};
		bool same = fgets(line, sizeof(line), f) && now == line;
		fclose(f);
		if (same)
			return "";
	}
	if (std::string e = verify(b); !e.empty())
		return e;
	// A stamp that cannot be written only costs the next check a re-read.
	(void)write_atomic(stamp_path, now);
	return "";
}

std::string BaselineStore::adopt(const std::string &object, uint64_t version, const std::string &src,
				 const Sha256 &sha256, Baseline *out)
{
	if (std::string why = check_object_name(object); !why.empty())
		return "baseline name '" + object + "': " + why;
	if (object.find('@') != std::string::npos)
		return "baseline name '" + object + "': contains '@'";
	std::string path = data_path(object, version);
	std::string record = path + ".sha256";
	if (access(record.c_str(), F_OK) == 0)
		return label(object, version) + " exists already";
	struct stat st;
	if (stat(src.c_str(), &st) != 0)
		return "cannot adopt '" + src + "': " + errno_text();
	unlink(path.c_str()); // a data file without its record is an interrupted adopt
	if (std::string e = copy_file(src, path); !e.empty())
		return e;
	char line[128];
	snprintf(line, sizeof(line), "%s %" PRIu64 "\n", to_hex(sha256).c_str(), uint64_t(st.st_size));
	if (std::string e = write_atomic(record, line); !e.empty()) {
		unlink(path.c_str());
		return e;
	}
	// The copy was made from a file whose digest the caller verified: stamp it.
	struct stat cst;
	if (stat(path.c_str(), &cst) == 0)
		(void)write_atomic(path + ".checked", stamp_of(cst, sha256));
	if (out)
		*out = Baseline{.object = object, .version = version, .size = uint64_t(st.st_size), .sha256 = sha256, .path = path};
	return "";
}

std::string BaselineStore::prune(const std::string &object, unsigned keep)
{
	std::vector<Baseline> v = list(object);
	for (size_t i = 0; i + keep < v.size(); i++) {
		// Record first: without it the version no longer exists for the store.
		if (unlink((v[i].path + ".sha256").c_str()) != 0 || unlink(v[i].path.c_str()) != 0)
			return "cannot remove " + label(object, v[i].version) + ": " + errno_text();
		unlink((v[i].path + ".checked").c_str());
	}
	return "";
}

} // namespace dwcp::control
