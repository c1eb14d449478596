#pragma once
// Per-packet AEAD for DWCP: AES-256-GCM over every packet once the TLS handshake
// has handed each direction its 32-byte traffic secret.
//
// Key schedule (TLS 1.3 / RFC 9001 §5.1 and §6.1, SHA-256):
//
//   key    = HKDF-Expand-Label(secret, "dwcp key", "", 32)
//   iv     = HKDF-Expand-Label(secret, "dwcp iv",  "", 12)
//   secret' = HKDF-Expand-Label(secret, "dwcp ku", "", 32)     (key update)
//
// Nonce of a packet: iv XOR (00 00 | stream id u16 BE | packet number u64 BE).  A
// (stream, packet number) pair is sent at most once per direction, so no nonce
// repeats under one key.  The AAD is the 20-byte DWCP header (dataplane/amst/wire.h),
// which carries the PROTECTED and KEY_PHASE flags, the stream id and the packet
// number; the 16-byte tag trails the body.
//
// Two backends implement Aead:
//   make_openssl_aead()    EVP aes-256-gcm: the reference, and what simulations use
//   make_cryptodev_aead()  a DPDK cryptodev queue pair: crypto_aesni_gcm /
//                          crypto_aesni_mb (intel-ipsec-mb in software), or any
//                          hardware device that does AES-256-GCM.  It runs the whole
//                          burst synchronously with rte_cryptodev_sym_cpu_crypto_process
//                          when the device offers RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO,
//                          and through rte_crypto_op enqueue/dequeue otherwise.
// Both are bit-compatible: a packet sealed by one opens with the other.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

struct rte_mbuf;

namespace dwcp::crypto {

constexpr size_t kKeyLen = 32;    // AES-256
constexpr size_t kIvLen = 12;     // GCM nonce
constexpr size_t kTagLen = 16;    // GCM tag, always full length
constexpr size_t kSecretLen = 32; // one TLS 1.3 traffic secret (SHA-256)
constexpr size_t kAadLen = 20;    // the DWCP common header
// Keys one Aead holds at once unless told otherwise: per session a worker holds one
// TX key (two for an instant during a TX key update) and up to three RX keys.
constexpr unsigned kDefaultMaxKeys = 64;

// One direction's traffic secret, as the TLS handshake exports it.
using Secret = std::array<uint8_t, kSecretLen>;

// The AES key and the IV that packet nonces are made from.
struct PacketKey {
	uint8_t key[kKeyLen];
	uint8_t iv[kIvLen];
};

// HKDF-Expand-Label of TLS 1.3 (RFC 8446 §7.1) with SHA-256 and an empty context:
// out_len bytes from secret under "tls13 " + label.  False (and out untouched) when
// OpenSSL refuses, which happens only for out_len > 255 * 32 or a label over 249
// bytes.  Exposed so tests can check it against RFC 9001's published vectors.
bool hkdf_expand_label(const uint8_t *secret, size_t secret_len, std::string_view label, uint8_t *out,
		       size_t out_len);

// The packet key and IV of a traffic secret ("dwcp key", "dwcp iv").
PacketKey derive_packet_key(const Secret &s);
// The secret after a key update ("dwcp ku").  One way: the old secret cannot be
// recovered from the new one.
Secret next_secret(const Secret &s);
// The 12-byte nonce of packet pn on stream: iv XOR (0 0 | stream BE | pn BE).
void make_nonce(const PacketKey &k, uint16_t stream, uint64_t pn, uint8_t out[kIvLen]);

// One packet for seal_burst/open_burst.  aad (the key's aad_len bytes, the 20-byte
// header for DWCP), data (len bytes, encrypted or decrypted in place) and tag
// (16 bytes, written by seal, checked by open).
//
// With the cryptodev backend on the rte_crypto_op path (devices without CPU
// crypto), m must be the mbuf whose first segment holds aad, data and tag: the
// device is given their IOVAs.  The OpenSSL backend and the CPU-crypto path ignore m.
//
// When open fails, data has been overwritten with garbage (GCM decrypts before it
// can verify): the packet must be dropped, not retried with another key from the
// same buffer.
struct AeadOp {
	const uint8_t *aad = nullptr;
	uint8_t *data = nullptr;
	uint32_t len = 0;
	uint8_t *tag = nullptr;
	uint16_t stream = 0; // nonce input
	uint64_t pn = 0;     // nonce input
	rte_mbuf *m = nullptr;
	bool ok = false; // result: sealed, or opened and authentic
};

// A set of packet keys and the engine that applies them to bursts.  One per worker:
// not thread-safe.  add_key and remove_key allocate nothing (the key table is sized
// at construction), so key updates may run on the worker.
class Aead {
public:
	virtual ~Aead() = default;
	// Installs a key; returns its handle (>= 0), or -1 with *err one line (the table
	// is full, or the device refused the session).  aad_len is the associated data
	// length of every packet under this key: kAadLen for DWCP, other values only in
	// tests of published vectors.
	virtual int add_key(const PacketKey &k, std::string *err, uint32_t aad_len = kAadLen) = 0;
	// Forgets a key and wipes its material.  Unknown handles are ignored.
	virtual void remove_key(int h) = 0;
	// Seals ops[0..n) under key h: encrypts data in place, writes tag, sets ok.
	virtual void seal_burst(int h, AeadOp *ops, unsigned n) = 0;
	// Opens ops[0..n) under key h: decrypts in place; ok = false means the packet is
	// not authentic (or h is unknown) and must be dropped.
	virtual void open_burst(int h, AeadOp *ops, unsigned n) = 0;
	// "openssl", "cryptodev:<driver>:cpu_crypto" or "cryptodev:<driver>:ops".
	virtual const char *name() const = 0;
};

// EVP aes-256-gcm with max_keys preallocated contexts.
std::unique_ptr<Aead> make_openssl_aead(unsigned max_keys = kDefaultMaxKeys);

// How setup_cryptodev picks and sizes the device.
struct CryptodevConfig {
	uint16_t nb_qps = 1;  // queue pairs, one per worker
	int socket_id = -1;   // NUMA node of the session and op pools; -1 (SOCKET_ID_ANY) for any
	unsigned max_keys_per_qp = kDefaultMaxKeys;
	// "" picks the first device the EAL probed that does AES-256-GCM with a 16-byte
	// tag, 12-byte IV and 20-byte AAD and has nb_qps queue pairs, and creates
	// crypto_aesni_gcm0 when there is none.  A name picks that device, creating it
	// with rte_vdev_init when it is a virtual device the EAL was not given.
	std::string device;
};

// Configures and starts a cryptodev for per-packet AES-256-GCM: nb_qps queue pairs
// and a session pool of nb_qps * max_keys_per_qp * 2 sessions (a key is an encrypt
// and a decrypt session).  Returns the device id, or -1 with *err one line.
// Calling it again for a device it already set up with enough queue pairs returns
// that device.  Control path: run it after rte_eal_init, before the workers start.
int setup_cryptodev(const CryptodevConfig &cfg, std::string *err);
int setup_cryptodev(uint16_t nb_qps, int socket_id, std::string *err);
// Stops a device setup_cryptodev started, once every Aead on it is destroyed and
// before rte_eal_cleanup (which otherwise complains that it is still running).
void stop_cryptodev(int dev_id);

// Options of one cryptodev Aead.
struct CryptodevAeadOptions {
	unsigned max_keys = kDefaultMaxKeys;
	// Use rte_crypto_op enqueue/dequeue even when the device offers CPU crypto
	// (tests and benchmarks of the path hardware devices take).
	bool force_op_path = false;
};

// An Aead on queue pair qp of a device setup_cryptodev started; its op pool (the
// rte_crypto_op path) lives on socket_id.  nullptr with *err one line on failure.
std::unique_ptr<Aead> make_cryptodev_aead(uint8_t dev_id, uint16_t qp, int socket_id, std::string *err,
					  const CryptodevAeadOptions &opt = {});

} // namespace dwcp::crypto
