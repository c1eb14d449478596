#pragma once
// The baseline store: the versions of each object a gateway holds, so that the
// next transfer of that object can be a delta against one both sides have.
//
// A store is a directory.  Version V of object O is the file "O@V" (V a decimal
// number) with its record "O@V.sha256": the SHA-256 in hex, a space, the size in
// bytes.  Both are written to temporary names and renamed into place, record
// last, so a baseline without its record (an interrupted adopt) does not exist
// for the store, and one whose record does not match its file is reported as
// corrupt, never used.
//
// At session set-up the receiver offers what list() returns for the object; the
// sender encodes against a version only when its own copy has the same digest
// (HDE's per-chunk CRC and the whole-object SHA-256 still guard the result).
// After a verified transfer both sides adopt() the new version, and prune()
// keeps the newest few.
#include <cstdint>
#include <string>
#include <vector>

#include "control/sha256.h"

namespace dwcp::control {

struct Baseline {
	std::string object;
	uint64_t version = 0;
	uint64_t size = 0;
	Sha256 sha256{};
	std::string path; // the data file
};

class BaselineStore {
public:
	// Opens (and with create, makes) the store directory.  "" or one line naming it.
	[[nodiscard]] std::string open(const std::string &dir, bool create);
	const std::string &dir() const { return dir_; }

	// Every recorded version of `object`, oldest first.  Records that do not parse
	// or whose file is missing or has another size are skipped and named in
	// *problems (one line each), if given.
	std::vector<Baseline> list(const std::string &object, std::vector<std::string> *problems = nullptr) const;
	// The newest recorded version; false when there is none.
	bool latest(const std::string &object, Baseline *out) const;

	// Re-reads the file and checks it against its record: "" or what is wrong
	// ("baseline vm.img@3: sha256 mismatch (file changed since it was recorded)").
	[[nodiscard]] std::string verify(const Baseline &b) const;

	// verify(), but only when the file changed since it last passed: a stamp
	// "O@V.checked" keeps the digest it matched and the inode, size, mtime and
	// ctime the file had then, and while they match the baseline counts as checked
	// without reading it (a 4 GiB baseline costs seconds to hash).  Anything written to the file through the
	// filesystem moves its ctime; what the stamp cannot see (bits rotting in place)
	// the receiver's whole-object SHA-256 still refuses.
	[[nodiscard]] std::string check(const Baseline &b) const;

	// Makes a copy of `src` (whose digest the caller verified) version `version`
	// of `object`: a copy-on-write clone where the filesystem can, else a copy, so
	// later changes to src never reach the baseline.  An existing version is never
	// overwritten.
	[[nodiscard]] std::string adopt(const std::string &object, uint64_t version, const std::string &src,
					const Sha256 &sha256, Baseline *out = nullptr);

	// Removes all but the newest `keep` versions of `object`.
	[[nodiscard]] std::string prune(const std::string &object, unsigned keep);

private:
	std::string data_path(const std::string &object, uint64_t version) const;
	std::string dir_;
};

} // namespace dwcp::control
