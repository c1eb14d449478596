#pragma once
// The key table both Aead backends keep (aead.cc, cryptodev.cc): a fixed number
// of slots, sized at construction, each holding a packet key and the engine's
// encrypt and decrypt state for it (Ctx: EVP contexts, cryptodev sessions).  A
// handle is a slot's index.  Nothing here allocates after construction.
#include <cstdint>
#include <vector>

#include <openssl/crypto.h>

#include "dataplane/crypto/aead.h"

namespace dwcp::crypto {

template <class Ctx>
class KeySlots {
public:
	struct Slot {
		Ctx enc{};
		Ctx dec{};
		PacketKey key{};
		uint32_t aad_len = 0;
		bool used = false;
	};

	explicit KeySlots(unsigned n) : slots_(n) {}

	// The slot of key h; nullptr when h names no key.
	Slot *get(int h)
	{
		if (h < 0 || size_t(h) >= slots_.size() || !slots_[size_t(h)].used)
			return nullptr;
		return &slots_[size_t(h)];
	}
	// A free slot's handle, or -1 when every slot holds a key.
	int free_slot() const
	{
		for (size_t i = 0; i < slots_.size(); i++)
			if (!slots_[i].used)
				return int(i);
		return -1;
	}
	// Any slot, used or not (set-up and tear-down of the engine state).
	Slot &at(int h) { return slots_[size_t(h)]; }
	// Slot h holds key k from now on (its enc/dec state already made for it).
	void take(int h, const PacketKey &k, uint32_t aad_len)
	{
		Slot &s = slots_[size_t(h)];
		s.key = k, s.aad_len = aad_len, s.used = true;
	}
	// Wipes the key of slot s and frees it (its enc/dec state is the caller's).
	static void release(Slot &s)
	{
		OPENSSL_cleanse(&s.key, sizeof(s.key));
		s.used = false;
	}
	size_t size() const { return slots_.size(); }
	auto begin() { return slots_.begin(); }
	auto end() { return slots_.end(); }

private:
	std::vector<Slot> slots_;
};

} // namespace dwcp::crypto
