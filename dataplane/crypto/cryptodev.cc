// The DPDK cryptodev backend of Aead, and the device set-up it runs on.
//
// DPDK 22.11 has two ways to run a symmetric session:
//   - rte_cryptodev_sym_cpu_crypto_process(): synchronous, on the calling core, a
//     whole burst per call, for devices with RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO.  The
//     software PMDs built on intel-ipsec-mb (crypto_aesni_gcm, crypto_aesni_mb)
//     offer it; it is the fast path here and costs no op or mbuf bookkeeping.
//   - rte_crypto_op enqueue/dequeue: what hardware (QAT, mlx5, cnxk, ...) offers.
//     Each packet becomes an op from a per-queue-pair pool with its IV in the op's
//     private area, AAD and digest pointing into the mbuf (virtual address and
//     IOVA).  The burst is enqueued and dequeue is polled until every op is back,
//     so callers see the same synchronous contract as the CPU path.
// crypto_aesni_gcm runs its op path in dequeue (enqueue only rings the op), so
// there the op path costs the ring round trip on top of the same GCM code.
#include <rte_bus_vdev.h>
#include <rte_crypto.h>
#include <rte_cryptodev.h>
#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include <atomic>
#include <cstring>
#include <vector>

#include <openssl/crypto.h>

#include "dataplane/crypto/aead.h"
#include "dataplane/crypto/key_slots.h"

namespace dwcp::crypto {

namespace {

constexpr unsigned kBurst = 32;          // ops per device call; longer bursts are split
constexpr uint32_t kQpDescriptors = 2048; // per queue pair, as DPDK's ipsec-secgw sizes them
// The rte_crypto_op path keeps at most kBurst ops in flight per Aead; the rest of
// the pool covers ops a timed-out burst leaves in the device (see run_ops).
constexpr unsigned kOpPoolSize = 4 * kBurst - 1;
constexpr uint64_t kOpTimeoutMs = 1000;

// Where the nonce sits in each op: its private area, right after the sym op.
constexpr uint16_t kIvOffset = sizeof(rte_crypto_op) + sizeof(rte_crypto_sym_op);
struct OpPriv {
	uint8_t iv[16];
	uint64_t burst_seq; // which burst the op belongs to
	uint32_t idx;       // which AeadOp of that burst
};

std::string session_pool_name(uint8_t dev_id) { return "dwcp_cs_" + std::to_string(dev_id); }

std::string dev_label(uint8_t dev_id)
{
	const char *n = rte_cryptodev_name_get(dev_id);
	return "cryptodev " + std::to_string(dev_id) + " (" + (n ? n : "?") + ")";
}

// Empty when dev_id can do DWCP's AES-256-GCM with nb_qps queue pairs, else why not.
std::string check_device(uint8_t dev_id, uint16_t nb_qps)
{
	rte_cryptodev_info info{};
	rte_cryptodev_info_get(dev_id, &info);
	if (!(info.feature_flags & RTE_CRYPTODEV_FF_SYMMETRIC_CRYPTO))
		return dev_label(dev_id) + " does no symmetric crypto";
	rte_cryptodev_sym_capability_idx idx{};
	idx.type = RTE_CRYPTO_SYM_XFORM_AEAD;
	idx.algo.aead = RTE_CRYPTO_AEAD_AES_GCM;
	const rte_cryptodev_symmetric_capability *cap = rte_cryptodev_sym_capability_get(dev_id, &idx);
	if (!cap)
		return dev_label(dev_id) + " has no AES-GCM";
	if (rte_cryptodev_sym_capability_check_aead(cap, kKeyLen, kTagLen, kAadLen, kIvLen) != 0)
		return dev_label(dev_id) + " has no AES-256-GCM with a 16-byte tag, 12-byte IV and 20-byte AAD";
	if (info.max_nb_queue_pairs < nb_qps)
		return dev_label(dev_id) + " has " + std::to_string(info.max_nb_queue_pairs) + " queue pairs, " +
		       std::to_string(nb_qps) + " needed (one per worker)";
	return "";
}

bool is_vdev_name(const std::string &name)
{
	return name.rfind("crypto_", 0) == 0;
}

// Creates the virtual device name, sized for nb_qps.  The common cryptodev vdev
// arguments are understood by every software PMD (ipsec_mb, openssl, null, ...).
int create_vdev(const std::string &name, uint16_t nb_qps, int socket_id, std::string *err)
{
	std::string args = "max_nb_queue_pairs=" + std::to_string(nb_qps < 8 ? 8 : nb_qps);
	if (socket_id >= 0)
		args += ",socket_id=" + std::to_string(socket_id);
	if (rte_vdev_init(name.c_str(), args.c_str()) != 0) {
		*err = "cannot create cryptodev " + name + " (" + args +
		       "): is DPDK's crypto_ipsec_mb PMD installed (librte-crypto-ipsec-mb23)?";
		return -1;
	}
	int id = rte_cryptodev_get_dev_id(name.c_str());
	if (id < 0)
		*err = "cryptodev " + name + " was created but has no device id";
	return id;
}

} // namespace

int setup_cryptodev(const CryptodevConfig &cfg, std::string *err)
{
	if (cfg.nb_qps == 0) {
		*err = "setup_cryptodev: nb_qps is 0";
		return -1;
	}
	int dev = -1;
	std::string why;
	if (!cfg.device.empty()) {
		dev = rte_cryptodev_get_dev_id(cfg.device.c_str());
		if (dev < 0) {
			if (!is_vdev_name(cfg.device)) {
				*err = "no cryptodev " + cfg.device + ": give the EAL the device (-a PCI address)";
				return -1;
			}
			if ((dev = create_vdev(cfg.device, cfg.nb_qps, cfg.socket_id, err)) < 0)
				return -1;
		}
		if (std::string e = check_device(uint8_t(dev), cfg.nb_qps); !e.empty()) {
			*err = e;
			return -1;
		}
	} else {
		for (unsigned d = 0; d < RTE_CRYPTO_MAX_DEVS && dev < 0; d++) {
			if (!rte_cryptodev_is_valid_dev(uint8_t(d)))
				continue;
			std::string e = check_device(uint8_t(d), cfg.nb_qps);
			if (e.empty())
				dev = int(d);
			else if (why.empty())
				why = e;
		}
		if (dev < 0) {
			const std::string name = "crypto_aesni_gcm0";
			if (rte_cryptodev_get_dev_id(name.c_str()) >= 0) {
				*err = why.empty() ? name + " exists but cannot be used" : why;
				return -1;
			}
			if ((dev = create_vdev(name, cfg.nb_qps, cfg.socket_id, err)) < 0)
				return -1;
			if (std::string e = check_device(uint8_t(dev), cfg.nb_qps); !e.empty()) {
				*err = e;
				return -1;
			}
		}
	}
	uint8_t id = uint8_t(dev);

	// Already set up by an earlier call: its session pool is the mark.
	std::string pool_name = session_pool_name(id);
	if (rte_mempool_lookup(pool_name.c_str())) {
		uint16_t have = rte_cryptodev_queue_pair_count(id);
		if (have < cfg.nb_qps) {
			*err = dev_label(id) + " is already running with " + std::to_string(have) + " queue pairs, " +
			       std::to_string(cfg.nb_qps) + " asked";
			return -1;
		}
		return dev;
	}

	int socket = cfg.socket_id >= 0 ? cfg.socket_id : rte_cryptodev_socket_id(id);
	if (socket < 0)
		socket = SOCKET_ID_ANY;
	rte_cryptodev_config conf{};
	conf.socket_id = socket;
	conf.nb_queue_pairs = cfg.nb_qps;
	conf.ff_disable = RTE_CRYPTODEV_FF_ASYMMETRIC_CRYPTO | RTE_CRYPTODEV_FF_SECURITY;
	if (int rc = rte_cryptodev_configure(id, &conf); rc < 0) {
		*err = dev_label(id) + ": configure with " + std::to_string(cfg.nb_qps) +
		       " queue pairs failed: " + rte_strerror(-rc);
		return -1;
	}
	// Sessions: each key a worker holds is an encrypt and a decrypt session.
	// Created and freed on the control path and at key updates; no per-lcore cache,
	// so none are stranded in a cache of a core that never creates any.
	uint32_t nb_sessions = uint32_t(cfg.nb_qps) * cfg.max_keys_per_qp * 2;
	rte_mempool *sess_pool = rte_cryptodev_sym_session_pool_create(
		pool_name.c_str(), nb_sessions, rte_cryptodev_sym_get_private_session_size(id), 0, 0, socket);
	if (!sess_pool) {
		*err = dev_label(id) + ": cannot create a pool of " + std::to_string(nb_sessions) +
		       " sessions: " + rte_strerror(rte_errno);
		return -1;
	}
	rte_cryptodev_qp_conf qp_conf{};
	qp_conf.nb_descriptors = kQpDescriptors;
	qp_conf.mp_session = sess_pool;
	for (uint16_t q = 0; q < cfg.nb_qps; q++) {
		if (int rc = rte_cryptodev_queue_pair_setup(id, q, &qp_conf, socket); rc < 0) {
			*err = dev_label(id) + ": queue pair " + std::to_string(q) + " setup failed: " + rte_strerror(-rc);
			rte_mempool_free(sess_pool);
			return -1;
		}
	}
	if (int rc = rte_cryptodev_start(id); rc < 0) {
		*err = dev_label(id) + ": start failed: " + rte_strerror(-rc);
		rte_mempool_free(sess_pool);
		return -1;
	}
	return dev;
}

int setup_cryptodev(uint16_t nb_qps, int socket_id, std::string *err)
{
	CryptodevConfig cfg;
	cfg.nb_qps = nb_qps;
	cfg.socket_id = socket_id;
	return setup_cryptodev(cfg, err);
}

void stop_cryptodev(int dev_id)
{
	if (dev_id < 0 || !rte_cryptodev_is_valid_dev(uint8_t(dev_id)))
		return;
	rte_cryptodev_stop(uint8_t(dev_id));
}

namespace {

class CryptodevAead final : public Aead {
public:
	CryptodevAead(uint8_t dev_id, uint16_t qp, unsigned max_keys) : dev_(dev_id), qp_(qp), slots_(max_keys) {}

	~CryptodevAead() override
	{
		for (size_t i = 0; i < slots_.size(); i++)
			remove_key(int(i));
		if (op_pool_)
			rte_mempool_free(op_pool_);
	}

	std::string init(int socket_id, bool force_op_path)
	{
		if (!rte_cryptodev_is_valid_dev(dev_))
			return "no cryptodev " + std::to_string(dev_);
		sess_pool_ = rte_mempool_lookup(session_pool_name(dev_).c_str());
		if (!sess_pool_)
			return dev_label(dev_) + " was not set up by setup_cryptodev";
		if (qp_ >= rte_cryptodev_queue_pair_count(dev_))
			return dev_label(dev_) + " has no queue pair " + std::to_string(qp_) + " (it has " +
			       std::to_string(rte_cryptodev_queue_pair_count(dev_)) + ")";
		rte_cryptodev_info info{};
		rte_cryptodev_info_get(dev_, &info);
		cpu_ = (info.feature_flags & RTE_CRYPTODEV_FF_SYM_CPU_CRYPTO) && !force_op_path;
		name_ = std::string("cryptodev:") + (info.driver_name ? info.driver_name : "?") +
			(cpu_ ? ":cpu_crypto" : ":ops");
		if (!cpu_) {
			static std::atomic<unsigned> seq{0};
			std::string pool = "dwcp_cop_" + std::to_string(dev_) + "_" + std::to_string(qp_) + "_" +
					   std::to_string(seq.fetch_add(1));
			op_pool_ = rte_crypto_op_pool_create(pool.c_str(), RTE_CRYPTO_OP_TYPE_SYMMETRIC, kOpPoolSize, 0,
							     sizeof(OpPriv), socket_id < 0 ? SOCKET_ID_ANY : socket_id);
			if (!op_pool_)
				return dev_label(dev_) + " queue pair " + std::to_string(qp_) +
				       ": cannot create its op pool: " + rte_strerror(rte_errno);
		}
		return "";
	}

	int add_key(const PacketKey &k, std::string *err, uint32_t aad_len) override
	{
		int h = slots_.free_slot();
		if (h < 0) {
			*err = dev_label(dev_) + " queue pair " + std::to_string(qp_) + ": all " +
			       std::to_string(slots_.size()) + " key slots are in use";
			return -1;
		}
		Slot &s = slots_.at(h);
		s.enc = make_session(k, RTE_CRYPTO_AEAD_OP_ENCRYPT, aad_len);
		s.dec = s.enc ? make_session(k, RTE_CRYPTO_AEAD_OP_DECRYPT, aad_len) : nullptr;
		if (!s.dec) {
			*err = dev_label(dev_) + ": cannot create an AES-256-GCM session: " + rte_strerror(rte_errno);
			if (s.enc)
				rte_cryptodev_sym_session_free(dev_, s.enc);
			s.enc = nullptr;
			return -1;
		}
		slots_.take(h, k, aad_len);
		return h;
	}

	void remove_key(int h) override
	{
		Slot *s = slots_.get(h);
		if (!s)
			return;
		// Freeing a session clears its private data (the expanded key) in the PMD.
		rte_cryptodev_sym_session_free(dev_, s->enc);
		rte_cryptodev_sym_session_free(dev_, s->dec);
		s->enc = s->dec = nullptr;
		Slots::release(*s);
	}

	void seal_burst(int h, AeadOp *ops, unsigned n) override { run(h, ops, n, true); }
	void open_burst(int h, AeadOp *ops, unsigned n) override { run(h, ops, n, false); }
	const char *name() const override { return name_.c_str(); }

private:
	using Slots = KeySlots<void *>;
	using Slot = Slots::Slot;

	void *make_session(const PacketKey &k, rte_crypto_aead_operation op, uint32_t aad_len)
	{
		rte_crypto_sym_xform x{};
		x.type = RTE_CRYPTO_SYM_XFORM_AEAD;
		x.aead.op = op;
		x.aead.algo = RTE_CRYPTO_AEAD_AES_GCM;
		x.aead.key.data = k.key;
		x.aead.key.length = kKeyLen;
		x.aead.iv.offset = kIvOffset;
		x.aead.iv.length = kIvLen;
		x.aead.digest_length = kTagLen;
		x.aead.aad_length = uint16_t(aad_len);
		return rte_cryptodev_sym_session_create(dev_, &x, sess_pool_);
	}

	void run(int h, AeadOp *ops, unsigned n, bool seal)
	{
		Slot *s = slots_.get(h);
		if (!s) {
			for (unsigned i = 0; i < n; i++)
				ops[i].ok = false;
			return;
		}
		void *sess = seal ? s->enc : s->dec;
		for (unsigned off = 0; off < n; off += kBurst) {
			unsigned cnt = n - off < kBurst ? n - off : kBurst;
			if (cpu_)
				run_cpu(*s, sess, ops + off, cnt);
			else
				run_ops(*s, sess, ops + off, cnt);
		}
	}

	// The whole burst in one synchronous call on this core.  Measured with
	// tools/aead_bench.cc on the development machine (crypto_aesni_gcm, intel-ipsec-mb
	// 1.3 with VAES/AVX-512): ~105 Gbit/s sealing and ~110 opening per core at
	// 1400-byte bodies (0.19-0.20 cycles/byte), 13-15 Gbit/s at 64 bytes.  The op path
	// costs ~5% more at 1400 bytes and ~15% more at 64.
	void run_cpu(const Slot &s, void *sess, AeadOp *ops, unsigned n)
	{
		rte_crypto_vec vec[kBurst];
		rte_crypto_sgl sgl[kBurst];
		rte_crypto_va_iova_ptr iv[kBurst], digest[kBurst], aad[kBurst];
		int32_t status[kBurst];
		uint8_t nonce[kBurst][16];
		for (unsigned i = 0; i < n; i++) {
			const AeadOp &o = ops[i];
			make_nonce(s.key, o.stream, o.pn, nonce[i]);
			vec[i].base = o.data;
			vec[i].iova = o.m ? iova_of(o.m, o.data) : 0;
			vec[i].len = o.len;
			vec[i].tot_len = o.len;
			sgl[i].vec = &vec[i];
			sgl[i].num = 1;
			iv[i].va = nonce[i];
			iv[i].iova = 0;
			digest[i].va = o.tag;
			digest[i].iova = o.m ? iova_of(o.m, o.tag) : 0;
			aad[i].va = const_cast<uint8_t *>(o.aad);
			aad[i].iova = o.m ? iova_of(o.m, o.aad) : 0;
			status[i] = -1;
		}
		rte_crypto_sym_vec v{};
		v.num = n;
		v.src_sgl = sgl;
		v.iv = iv;
		v.digest = digest;
		v.aad = aad;
		v.status = status;
		rte_crypto_sym_ofs ofs;
		ofs.raw = 0;
		rte_cryptodev_sym_cpu_crypto_process(dev_, sess, ofs, &v);
		for (unsigned i = 0; i < n; i++)
			ops[i].ok = status[i] == 0;
	}

	static rte_iova_t iova_of(const rte_mbuf *m, const void *p)
	{
		return rte_pktmbuf_iova(m) + uint64_t(static_cast<const uint8_t *>(p) - rte_pktmbuf_mtod(m, const uint8_t *));
	}

	// Whether [p, p + len) lies in m's first segment, as a device needs it.
	static bool in_segment(const rte_mbuf *m, const uint8_t *p, size_t len)
	{
		const uint8_t *base = rte_pktmbuf_mtod(m, const uint8_t *);
		return p >= base && p + len <= base + m->data_len;
	}

	// The mbuf an op works on (m_src), read through the op's symmetric part.
	static rte_mbuf *mbuf_of(rte_crypto_op *op)
	{
		rte_crypto_sym_op *sym = reinterpret_cast<rte_crypto_sym_op *>(reinterpret_cast<uint8_t *>(op) +
									      offsetof(rte_crypto_op, sym));
		return sym->m_src;
	}

	void run_ops(const Slot &s, void *sess, AeadOp *ops, unsigned n)
	{
		rte_crypto_op *cops[kBurst];
		uint32_t idx[kBurst];
		unsigned nv = 0;
		for (unsigned i = 0; i < n; i++) {
			const AeadOp &o = ops[i];
			ops[i].ok = false;
			if (o.m && in_segment(o.m, o.aad, s.aad_len) && in_segment(o.m, o.data, o.len) &&
			    in_segment(o.m, o.tag, kTagLen))
				idx[nv++] = i;
		}
		if (!nv)
			return;
		if (rte_crypto_op_bulk_alloc(op_pool_, RTE_CRYPTO_OP_TYPE_SYMMETRIC, cops, uint16_t(nv)) != nv)
			return; // every op fails: the pool is exhausted by ops a device never returned
		uint64_t seq = ++burst_seq_;
		for (unsigned j = 0; j < nv; j++) {
			AeadOp &o = ops[idx[j]];
			rte_crypto_op *c = cops[j];
			OpPriv *p = rte_crypto_op_ctod_offset(c, OpPriv *, kIvOffset);
			make_nonce(s.key, o.stream, o.pn, p->iv);
			p->burst_seq = seq;
			p->idx = idx[j];
			rte_crypto_op_attach_sym_session(c, sess);
			rte_crypto_sym_op *sym = c->sym;
			sym->m_src = o.m;
			sym->aead.data.offset = uint32_t(o.data - rte_pktmbuf_mtod(o.m, uint8_t *));
			sym->aead.data.length = o.len;
			sym->aead.digest.data = o.tag;
			sym->aead.digest.phys_addr = iova_of(o.m, o.tag);
			sym->aead.aad.data = const_cast<uint8_t *>(o.aad);
			sym->aead.aad.phys_addr = iova_of(o.m, o.aad);
		}
		// Poll until every op is back.  A device that keeps ops longer than
		// kOpTimeoutMs fails them; a late one is recognised by its burst_seq later
		// and returned to the pool unread.  Its mbuf gets an extra reference until
		// then: the caller frees or sends the packet, and the device may still
		// write into it.
		unsigned sent = 0, done = 0;
		uint64_t deadline = 0;
		bool back[kBurst] = {};
		while (done < nv) {
			if (sent < nv)
				sent += rte_cryptodev_enqueue_burst(dev_, qp_, cops + sent, uint16_t(nv - sent));
			rte_crypto_op *deq[kBurst];
			uint16_t got = rte_cryptodev_dequeue_burst(dev_, qp_, deq, kBurst);
			for (uint16_t j = 0; j < got; j++) {
				OpPriv *p = rte_crypto_op_ctod_offset(deq[j], OpPriv *, kIvOffset);
				if (p->burst_seq == seq) {
					ops[p->idx].ok = deq[j]->status == RTE_CRYPTO_OP_STATUS_SUCCESS;
					back[p->idx] = true;
					done++;
				} else if (rte_mbuf *m = mbuf_of(deq[j])) {
					rte_pktmbuf_free(m); // the reference a timed-out burst kept
				}
			}
			if (got) {
				rte_mempool_put_bulk(op_pool_, reinterpret_cast<void **>(deq), got);
				continue;
			}
			uint64_t now = rte_get_tsc_cycles();
			if (!deadline)
				deadline = now + rte_get_tsc_hz() * kOpTimeoutMs / 1000;
			else if (now > deadline)
				break;
		}
		if (done < nv)
			for (unsigned i = 0; i < sent; i++) {
				OpPriv *p = rte_crypto_op_ctod_offset(cops[i], OpPriv *, kIvOffset);
				if (!back[p->idx] && mbuf_of(cops[i]))
					rte_mbuf_refcnt_update(mbuf_of(cops[i]), 1);
			}
		if (sent < nv) // never reached the device
			rte_mempool_put_bulk(op_pool_, reinterpret_cast<void **>(cops + sent), nv - sent);
	}

	uint8_t dev_;
	uint16_t qp_;
	Slots slots_;
	rte_mempool *sess_pool_ = nullptr;
	rte_mempool *op_pool_ = nullptr;
	bool cpu_ = false;
	uint64_t burst_seq_ = 0;
	std::string name_;
};

} // namespace

std::unique_ptr<Aead> make_cryptodev_aead(uint8_t dev_id, uint16_t qp, int socket_id, std::string *err,
					  const CryptodevAeadOptions &opt)
{
	auto a = std::make_unique<CryptodevAead>(dev_id, qp, opt.max_keys);
	if (std::string e = a->init(socket_id, opt.force_op_path); !e.empty()) {
		*err = e;
		return nullptr;
	}
	return a;
}

} // namespace dwcp::crypto
