#include "control/gateway.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <thread>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_ring.h>

#include "control/autotune.h"
#include "control/baselines.h"
#include "control/initial_channel.h"
#include "control/messages.h"
#include "control/objects.h"
#include "dataplane/amst/chunks.h"
#include "dataplane/amst/session.h"
#include "dataplane/amst/wire.h"
#include "dataplane/crypto/aead.h"
#include "dataplane/hde/tier.h"
#include "dataplane/worker.h"
#include "drivers/port.h"
#include "hugepages/plan.h"
#include "hugepages/pool.h"

namespace dwcp::control {

using dataplane::Event;
using dataplane::PeerPath;
using dataplane::Worker;
using dataplane::WorkerSnapshot;

namespace {

// The RTT the sender's first window is sized for, before it has measured one:
// the middle of the WAN range DWCP is built for (100-500 ms).
constexpr uint64_t kStartRttNs = 250'000'000;

// Wire bytes of a DATA packet besides its chunk bytes: Ethernet/IPv4/UDP, the
// DWCP header and the data frame, and the AEAD tag when packets are sealed.
constexpr uint32_t kPacketOverhead = uint32_t(wire::kEncapLen + wire::kHeaderLen + wire::kDataFrameLen);
constexpr uint32_t packet_overhead(bool crypto) { return kPacketOverhead + (crypto ? uint32_t(wire::kTagLen) : 0); }

// Two key updates of one direction are at least this far apart, and four smoothed
// RTTs: the receiver must have seen the new phase (and rotated) before the next
// update flips the bit back, or it could not tell the two apart (RFC 9001 6.1).
// The receiver keeps the previous key 2 s for late packets (dataplane/crypto).
constexpr uint64_t kMinKeyUpdateGapNs = 1'000'000'000;

// A handshake gets at most this long, whatever --timeout-s says: a listener serves
// one session at a time, and a client that proved its address and then went
// quiet must not hold it for the whole silence timeout.
constexpr double kHandshakeLimitS = 10;
constexpr uint64_t kHandshakeRto = 1'000'000'000; // a flight's first retransmission timeout
// Chunks the receiver holds at once without --window-chunks, unless the hello's
// RTT asks for more (Gateway::auto_window).
constexpr uint32_t kDefaultWindowChunks = 512;

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal.store(sig); }

uint64_t mono_ns()
{
	timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

std::string ip_str(uint32_t ip)
{
	char b[32];
	return drivers::ipv4_to_str(ip, b, sizeof(b));
}

bool parse_uint(const std::string &s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	if (s.empty() || s.size() > 20 || s.find_first_not_of("0123456789") != std::string::npos)
		return false;
	errno = 0;
	unsigned long long v = strtoull(s.c_str(), nullptr, 10);
	if (errno || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

bool parse_seconds(const std::string &s, double lo, double hi, double *out)
{
	char *end = nullptr;
	errno = 0;
	double v = strtod(s.c_str(), &end);
	if (s.empty() || errno || *end || !std::isfinite(v) || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

std::string json_str(const std::string &s)
{
	std::string o = "\"";
	for (unsigned char c : s) {
		if (c == '"' || c == '\\')
			o += '\\', o += char(c);
		else if (c < 0x20) {
			char b[8];
			snprintf(b, sizeof(b), "\\u%04x", c);
			o += b;
		} else
			o += char(c);
	}
	return o + "\"";
}

std::string human_bytes(double b)
{
	char buf[32];
	if (b >= 1024.0 * 1024 * 1024)
		snprintf(buf, sizeof(buf), "%.2f GiB", b / (1024.0 * 1024 * 1024));
	else
		snprintf(buf, sizeof(buf), "%.1f MiB", b / (1024.0 * 1024));
	return buf;
}

// UDP source ports per stream, so that the peer's RSS (when it has one) puts each
// stream on the queue of the worker that owns it (stream % queues).
void steer_ports(PeerPath *p, uint32_t our_ip, uint16_t peer_queues, uint16_t peer_reta, bool peer_rss)
{
	for (uint16_t s = 0; s <= wire::kMaxStreams; s++) {
		uint16_t port = uint16_t(49152 + s);
		if (peer_rss && peer_queues > 1 && peer_reta) {
			uint16_t want = uint16_t(s % peer_queues);
			for (uint32_t cand = 49152 + s; cand < 65536; cand += wire::kMaxStreams + 1) {
				uint32_t h = drivers::rss_hash(our_ip, p->ip, rte_cpu_to_be_16(uint16_t(cand)), p->udp_port);
				if (drivers::rss_queue(h, peer_reta, peer_queues) == want) {
					port = uint16_t(cand);
					break;
				}
			}
		}
		p->src_port[s] = port;
	}
}

} // namespace

const char *usage()
{
	return "usage: dwcp-gateway [EAL options] -- --ip ADDR (--listen --recv-dir DIR [--once] | --peer ADDR --send FILE)\n"
	       "         [--port N] [--dev NAME] [--mtu N] [--link-mbit N] [--cc bbr|cubic|reno]\n"
	       "         [--streams N|auto] [--max-streams N] [--window-chunks N]\n"
	       "         [--progress-s S] [--report-json FILE] [--timeout-s S]\n"
	       "         [--crypto on|off] --cert FILE --key FILE --ca FILE --peer-name NAME\n"
	       "         [--key-update-packets N] [--key-update-s S] [--baseline-dir DIR] [--config FILE]\n"
	       "  --config FILE        more options from FILE, one a line without the dashes ('cert /etc/dwcp/a.pem')\n"
	       "  --ip ADDR            this gateway's IPv4 address on the port\n"
	       "  --port N             UDP port, ours and the peer's (default 7470)\n"
	       "  --dev NAME           the DPDK port to use (default: the only one)\n"
	       "  --listen --recv-dir DIR   receive objects into DIR; --once: exit after one\n"
	       "  --peer ADDR --send FILE   send FILE to the gateway at ADDR\n"
	       "  --link-mbit N        the WAN link's rate: pacing stays under 0.95 of it (default: the port's speed)\n"
	       "  --cc ALGO            congestion control per stream (default bbr)\n"
	       "  --streams N|auto     data streams; auto starts from the spec's rule and follows measurement\n"
	       "  --max-streams N      the most streams autotune may use (default 64, at most 256)\n"
	       "  --window-chunks N    chunks the receiver holds at once (default: eight round trips of\n"
	       "                       the link as the handshake measured it, at least 512, in at most\n"
	       "                       half the free memory; 512 with --crypto off)\n"
	       "  --progress-s S       progress line every S seconds on stdout (0: none; default 1)\n"
	       "  --report-json FILE   write the summary as one JSON object to FILE\n"
	       "  --timeout-s S        give up when the peer is silent this long (default 30)\n"
	       "  --crypto on|off      TLS 1.3 + AES-256-GCM on every packet (default on; off only on links you own)\n"
	       "  --cert FILE --key FILE   this gateway's certificate and private key (PEM)\n"
	       "  --ca FILE            the operator's CA (PEM): the peer's certificate must chain to it\n"
	       "  --peer-name NAME     the name the peer's certificate must carry\n"
	       "  --key-update-packets N   new packet keys after N packets each way (default 8388608)\n"
	       "  --key-update-s S     and at least every S seconds (default 3600)\n"
	       "  --baseline-dir DIR   keep the versions sent or received in DIR; the next transfer of the same\n"
	       "                       name sends only what changed against the newest version both sides hold\n"
	       "  --baseline-keep N    versions kept per object (default 2)\n"
	       "  control/dwcp-certs makes a test CA and gateway certificates.\n";
}

namespace {

std::string parse_list(const std::vector<std::string> &args, GatewayOptions *o, bool *help, bool *streams_set,
		       bool in_config);

// --config FILE: one option a line, as on the command line without the leading
// dashes ("cert /etc/dwcp/site-a.pem", "crypto on", "listen"); '#' starts a
// comment.  Options after --config on the command line override the file's.
std::string parse_config(const std::string &path, GatewayOptions *o, bool *help, bool *streams_set)
{
	FILE *f = fopen(path.c_str(), "r");
	if (!f)
		return "--config " + path + ": cannot read it: " + strerror(errno);
	char line[4096];
	std::string err;
	for (int n = 1; fgets(line, sizeof(line), f); n++) {
		std::string l(line);
		if (!l.empty() && l.back() != '\n' && !feof(f)) {
			err = "--config " + path + " line " + std::to_string(n) + ": longer than 4095 bytes";
			break;
		}
		if (size_t hash = l.find('#'); hash != std::string::npos)
			l.resize(hash);
		std::vector<std::string> words;
		size_t i = 0;
		while (i < l.size()) {
			while (i < l.size() && isspace((unsigned char)l[i]))
				i++;
			size_t j = i;
			while (j < l.size() && !isspace((unsigned char)l[j]))
				j++;
			if (j > i)
				words.push_back(l.substr(i, j - i));
			i = j;
		}
		if (words.empty())
			continue;
		if (words.size() > 2) {
			err = "--config " + path + " line " + std::to_string(n) + ": '" + words[0] +
			      "' takes at most one value, got " + std::to_string(words.size() - 1);
			break;
		}
		words[0] = "--" + words[0];
		if (std::string e = parse_list(words, o, help, streams_set, true); !e.empty()) {
			err = "--config " + path + " line " + std::to_string(n) + ": " + e;
			break;
		}
	}
	fclose(f);
	return err;
}

} // namespace

std::string parse_options(const std::vector<std::string> &args, GatewayOptions *o, bool *help)
{
	*help = false;
	bool streams_set = false;
	if (std::string e = parse_list(args, o, help, &streams_set, false); !e.empty() || *help)
		return e;
	return check_options(o, streams_set);
}

namespace {

std::string parse_list(const std::vector<std::string> &args, GatewayOptions *o, bool *help, bool *streams_set,
		       bool in_config)
{
	for (size_t i = 0; i < args.size(); i++) {
		const std::string &a = args[i];
		auto value = [&](std::string *v) -> std::string {
			if (i + 1 >= args.size())
				return "option " + a + " needs a value";
			*v = args[++i];
			return "";
		};
		std::string v, err;
		uint64_t n = 0;
		if (a == "--help" || a == "-h") {
			*help = true;
			return "";
		} else if (a == "--config") {
			if (in_config)
				return "--config cannot name another config file";
			if (!(err = value(&v)).empty())
				return err;
			if (std::string e = parse_config(v, o, help, streams_set); !e.empty())
				return e;
		} else if (a == "--listen") {
			o->listen = true;
		} else if (a == "--once") {
			o->once = true;
		} else if (a == "--ip" || a == "--peer") {
			if (!(err = value(&v)).empty())
				return err;
			uint32_t ip;
			if (!drivers::ipv4_parse(v.c_str(), &ip) || ip == 0)
				return a + ": '" + v + "' is not an IPv4 address";
			(a == "--ip" ? o->ip : o->peer) = ip;
		} else if (a == "--port") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 1, 65535, &n))
				return "--port: '" + v + "' is not a UDP port (1..65535)";
			o->udp_port = uint16_t(n);
		} else if (a == "--dev") {
			if (!(err = value(&o->dev)).empty())
				return err;
		} else if (a == "--mtu") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 576, 9000, &n))
				return "--mtu: '" + v + "' is not an IP MTU in 576..9000";
			o->mtu = uint16_t(n);
		} else if (a == "--recv-dir") {
			if (!(err = value(&o->recv_dir)).empty())
				return err;
		} else if (a == "--send") {
			if (!(err = value(&o->send_path)).empty())
				return err;
		} else if (a == "--link-mbit") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 1, 1'000'000, &n))
				return "--link-mbit: '" + v + "' is not a rate in 1..1000000 Mbit/s";
			o->link_mbit = n;
		} else if (a == "--cc") {
			if (!(err = value(&v)).empty())
				return err;
			if (!amst::parse_cc_algo(v, &o->cc))
				return "--cc: '" + v + "' is not bbr, cubic or reno";
		} else if (a == "--streams") {
			if (!(err = value(&v)).empty())
				return err;
			*streams_set = true;
			if (v == "auto")
				o->streams = 0;
			else if (!parse_uint(v, 1, wire::kMaxStreams, &n))
				return "--streams: '" + v + "' is not 'auto' or a count in 1..256";
			else
				o->streams = uint16_t(n);
		} else if (a == "--max-streams") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 1, wire::kMaxStreams, &n))
				return "--max-streams: '" + v + "' is not a count in 1..256";
			o->max_streams = uint16_t(n);
		} else if (a == "--window-chunks") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 16, 65536, &n))
				return "--window-chunks: '" + v + "' is not a count in 16..65536";
			o->window_chunks = uint32_t(n);
		} else if (a == "--progress-s") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_seconds(v, 0, 3600, &o->progress_s))
				return "--progress-s: '" + v + "' is not a number of seconds in 0..3600";
		} else if (a == "--timeout-s") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_seconds(v, 0.1, 86400, &o->timeout_s))
				return "--timeout-s: '" + v + "' is not a number of seconds in 0.1..86400";
		} else if (a == "--report-json") {
			if (!(err = value(&o->report_json)).empty())
				return err;
		} else if (a == "--crypto") {
			if (!(err = value(&v)).empty())
				return err;
			if (v != "on" && v != "off")
				return "--crypto: '" + v + "' is not on or off";
			o->crypto = v == "on";
		} else if (a == "--cert" || a == "--key" || a == "--ca" || a == "--peer-name") {
			std::string *dst = a == "--cert" ? &o->tls.cert_file
					   : a == "--key" ? &o->tls.key_file
					   : a == "--ca"  ? &o->tls.ca_file
							  : &o->tls.peer_name;
			if (!(err = value(dst)).empty())
				return err;
			if (dst->empty())
				return a + " needs a non-empty value";
		} else if (a == "--key-update-packets") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 1000, 1ull << 23, &n))
				return "--key-update-packets: '" + v + "' is not a count in 1000..8388608 (AES-GCM's limit per key)";
			o->key_update_packets = n;
		} else if (a == "--baseline-dir") {
			if (!(err = value(&o->baseline_dir)).empty())
				return err;
			if (o->baseline_dir.empty())
				return "--baseline-dir needs a directory";
		} else if (a == "--baseline-keep") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_uint(v, 1, 1000, &n))
				return "--baseline-keep: '" + v + "' is not a count in 1..1000";
			o->baseline_keep = unsigned(n);
		} else if (a == "--key-update-s") {
			if (!(err = value(&v)).empty())
				return err;
			if (!parse_seconds(v, 5, 86400, &o->key_update_s))
				return "--key-update-s: '" + v + "' is not a number of seconds in 5..86400 (at least daily)";
		} else {
			return in_config ? "unknown option '" + a.substr(2) + "'"
					 : "unknown option '" + a + "' (EAL options go before '--', see --help)";
		}
	}
	return "";
}

} // namespace

std::string check_options(GatewayOptions *o, bool streams_set)
{
	if (!o->ip)
		return "--ip is required: this gateway's IPv4 address on the port";
	bool sender = o->peer || !o->send_path.empty();
	if (o->listen == sender)
		return "say what to do: either --listen --recv-dir DIR, or --peer ADDR --send FILE";
	if (o->listen && o->recv_dir.empty())
		return "--listen needs --recv-dir DIR";
	if (sender && (!o->peer || o->send_path.empty()))
		return o->peer ? "--peer needs --send FILE" : "--send needs --peer ADDR";
	if (o->peer == o->ip)
		return "--peer " + ip_str(o->peer) + " is this gateway's own address";
	if (streams_set && o->streams > o->max_streams)
		o->max_streams = o->streams;
	if (o->crypto) {
		std::string missing;
		for (auto [name, val] : {std::pair{"--cert", &o->tls.cert_file}, std::pair{"--key", &o->tls.key_file},
					 std::pair{"--ca", &o->tls.ca_file}, std::pair{"--peer-name", &o->tls.peer_name}})
			if (val->empty())
				missing += std::string(missing.empty() ? "" : ", ") + name;
		if (!missing.empty())
			return "security is on (--crypto on, the default) and needs " + missing +
			       " (control/dwcp-certs makes test ones; --crypto off sends in the clear)";
	}
	return "";
}

// ================================================================ the gateway

namespace {

class Gateway {
public:
	explicit Gateway(const GatewayOptions &o) : o_(o) {}
	~Gateway();
	int run();

private:
	// set-up (main lcore, before the workers start)
	std::string setup();
	// the control-plane thread
	void control();
	int control_sender();
	// Waits for the peer's `want` message (its body in *body); a reject, a close, a
	// timeout from since_ns or a signal give the error instead.
	std::string await_reply(MsgType want, const char *what, uint64_t since_ns, std::vector<uint8_t> *body);
	int control_receiver();
	// The receiver's window for a hello that carries its RTT, when --window-chunks
	// is not given.
	uint32_t auto_window(const Hello &h, const Begin &layout) const;
	// This side's transport parameters, for the handshake (messages.h).
	PortParams port_params() const
	{
		return {.rx_queues = uint16_t(workers_.size()),
			.reta_size = port_.reta_size,
			.rss = port_.rss_hf != 0,
			.window_floor = o_.window_chunks ? o_.window_chunks : kDefaultWindowChunks};
	}

	// helpers
	void post_all(const Worker::Command &fn);
	bool sync_workers(double timeout_s);
	// Waits until every control message queued so far on worker 0 is acknowledged
	// (or the session closed); false on timeout.
	bool wait_ctrl_flushed(double timeout_s);
	// Every worker's snapshot summed (RTTs: the largest smoothed, the smallest minimum).
	struct Totals {
		uint64_t rx_packets = 0, tx_packets = 0, tx_bytes = 0, sent = 0, lost = 0, retx = 0, tail_copies = 0;
		uint64_t delivered = 0, pacing = 0, in_flight = 0, chunks_acked = 0, rx_data = 0, duplicates = 0;
		uint64_t tx_ring_full = 0, rx_dropped = 0, unknown_session = 0, bad_header = 0, streams_heard = 0;
		uint64_t srtt_ns = 0, min_rtt_ns = 0;
		// security drops and work (WorkerSnapshot)
		uint64_t opened = 0, sealed = 0, no_key = 0, unprotected = 0, auth_failed = 0, replay = 0, replay_old = 0;
		uint64_t bad_initial = 0, bad_token = 0, initial_limited = 0, busy = 0, retry_sent = 0, seal_failed = 0;
		uint64_t tx_key_gen = 0, rx_key_gen = 0;
		uint64_t held = 0, held_over = 0; // DATA before the receiver was ready: held, dropped for want of room
		uint64_t held_dropped = 0;        // held, then freed undelivered (the session went or refused)
	};
	Totals totals() const;
	// True once the peer has sent nothing for --timeout-s (rx_packets unchanged).
	bool peer_silent(uint64_t rx_packets, uint64_t now);
	// Publishes the stream count streams_ and the session ceiling to every
	// worker's session; with sched, also attaches the object to send.
	void publish_streams(amst::ChunkScheduler *sched = nullptr, amst::ChunkProvider *src = nullptr);
	std::vector<std::shared_ptr<amst::Session>> make_sessions(uint64_t sid, bool sender, uint16_t nb_streams,
								   uint32_t ring_packets, uint32_t initial_window = 0);
	Event *next_event(uint64_t deadline_ns);
	bool interrupted() const { return g_signal.load() != 0; }
	void detach_all();
	void report(bool ok, const std::string &error);
	void progress_sender(uint64_t now, bool last);
	void progress_receiver(uint64_t now, bool last);

	// Security: the TLS handshake over INITIAL packets, then the keys on every
	// worker.  handshake() runs it to the end (or an error); pump_handshake() sends
	// what it has and, on a client, stops repeating its last flight once the
	// server's sealed packets open.
	std::string handshake(uint64_t deadline_ns);
	void pump_handshake(uint64_t now);
	std::string install_keys();
	void maybe_update_keys(uint64_t now);
	// A client's handshake completes before the server has checked its
	// certificate; the server's refusal (an alert) comes later.  "" or the error.
	std::string handshake_failure() const
	{
		return ic_ && ic_->handshake().failed()
			       ? "TLS handshake with " + ip_str(path_->ip) + " failed: " + ic_->handshake().error()
			       : "";
	}

	GatewayOptions o_;
	drivers::PortInfo port_;
	bool port_open_ = false;
	std::vector<rte_mempool *> pools_;
	std::vector<unsigned> lcores_;
	std::vector<std::unique_ptr<Worker>> workers_;
	std::vector<Worker *> worker_ptrs_;
	rte_ring *events_ = nullptr;
	drivers::Iface iface_;
	int exit_code_ = 2;
	std::string err_;
	uint16_t mss_ = 0;

	// The transfer
	std::shared_ptr<PeerPath> path_;
	std::vector<std::shared_ptr<amst::Session>> sessions_;
	std::unique_ptr<amst::ChunkScheduler> sched_;
	std::unique_ptr<amst::ChunkAssembler> assembler_;
	std::unique_ptr<SourceFile> source_;
	std::unique_ptr<SinkFile> sink_;
	uint64_t session_id_ = 0;
	uint32_t chunk_size_ = 0, nb_chunks_ = 0, window_ = 0;
	uint64_t object_size_ = 0;
	std::string object_name_, file_path_;
	Sha256 sha_{};
	bool sha_known_ = false;
	uint64_t start_ns_ = 0, first_packet_ns_ = 0, done_ns_ = 0, hello_rtt_ns_ = 0;
	bool early_data_ = false; // sender: data followed the hello, before the accept
	uint16_t streams_ = 0, streams_initial_ = 0;
	std::string streams_reason_;
	std::unique_ptr<StreamTuner> tuner_;
	uint64_t ceiling_ = 0;
	// progress
	uint64_t last_progress_ns_ = 0, last_bytes_ = 0, last_sent_ = 0, last_lost_ = 0, last_wire_ = 0;
	uint64_t refused_first_packets_ = 0; // unknown-session packets that were no hello
	uint64_t silence_rx_ = 0, silence_since_ = 0; // peer_silent()
	bool ok_ = false;
	// security
	std::unique_ptr<TlsContext> tls_;
	int crypto_dev_ = -1;
	std::unique_ptr<InitialChannel> ic_;
	bool keys_ = false, confirmed_ = false;
	uint64_t handshake_ns_ = 0, key_updates_ = 0, last_key_update_ns_ = 0, key_update_tx_ = 0;
	std::vector<uint64_t> sealed_at_update_; // per worker, tx_sealed at the last key update
	std::vector<uint64_t> sealed_per_worker() const
	{
		std::vector<uint64_t> v;
		for (auto &w : workers_)
			v.push_back(w->snapshot().tx_sealed);
		return v;
	}
	std::string tls_peer_;
	std::string aead_name_;
	// deltas
	BaselineStore store_;
	bool have_base_ = false;       // sender: a baseline to offer; receiver: the one accepted
	Baseline base_;
	std::unique_ptr<MappedFile> base_map_;
	std::unique_ptr<hde::BaselineIndex> base_index_;
	std::unique_ptr<hde::BaselineIndex> quick_index_; // in-place compares only, while base_index_ builds
	std::thread index_thread_;
	std::atomic<bool> index_ready_{false};
	bool index_published_ = false;
	std::unique_ptr<EncodedSource> encoded_;
	hde::TierPolicy tier_policy_;
	uint64_t new_version_ = 0, delta_base_ = 0;
	uint64_t last_enc_in_ = 0, last_enc_ns_ = 0, last_tier_ns_ = 0;
	uint64_t encoded_bytes_ = 0; // chunk payload bytes sent or received (encoded or raw)
	std::string baseline_note_;    // what happened to the baseline store, for the report
	std::string open_baselines_sender();
	void adopt_baseline(const std::string &path);
	// Checks b against its file (BaselineStore::check) and maps it as this
	// session's baseline (have_base_, base_, base_map_).  "" or why not.
	std::string use_baseline(const Baseline &b);
	// Receiver: takes the hello's baseline when this side holds that version with
	// the same digest and its file is still what was recorded.
	void accept_baseline(const Hello &hello);
	void tune_tier();
};

Gateway::~Gateway()
{
	if (index_thread_.joinable())
		index_thread_.join();
	workers_.clear(); // their Aeads free the cryptodev sessions
	// EAL cleanup closes every device and complains about a running cryptodev.
	if (crypto_dev_ >= 0)
		crypto::stop_cryptodev(crypto_dev_);
	if (events_) {
		void *p;
		while (rte_ring_dequeue(events_, &p) == 0)
			delete static_cast<Event *>(p);
		rte_ring_free(events_);
	}
	if (port_open_) {
		(void)drivers::port_close(port_.port_id);
	}
	hugepages::pools_free(&pools_);
}

std::string Gateway::setup()
{
	unsigned lc;
	RTE_LCORE_FOREACH(lc)
	lcores_.push_back(lc);
	// The main lcore first: it runs worker 0 (and queue 0, where ARP lands).
	std::stable_partition(lcores_.begin(), lcores_.end(), [](unsigned l) { return l == rte_get_main_lcore(); });
	uint16_t nb_workers = uint16_t(lcores_.size());

	// Credentials first: a missing or expired certificate is the operator's most
	// likely mistake, and it is named before any device is touched.
	if (o_.crypto) {
		std::string err;
		tls_ = TlsContext::load(o_.tls, o_.listen, &err);
		if (!tls_)
			return err;
	}

	uint16_t nb_ports = rte_eth_dev_count_avail();
	if (nb_ports == 0)
		return "no DPDK port: give the EAL one (-a PCI address, or --vdev net_af_packet0,iface=IFACE)";
	drivers::PortConfig pc;
	pc.name = o_.dev;
	pc.nb_queues = nb_workers;
	pc.mtu = o_.mtu;
	pc.require_rss = false; // without RSS the workers hand packets to each other
	// The core list must fit the device's queues; say so before anything is allocated.
	uint16_t pid = 0;
	if (!o_.dev.empty()) {
		if (rte_eth_dev_get_port_by_name(o_.dev.c_str(), &pid) != 0)
			return "--dev " + o_.dev + ": no such DPDK port (give the EAL the device: -a PCI address or --vdev)";
	} else if (nb_ports > 1) {
		return std::to_string(nb_ports) + " DPDK ports: say which one with --dev NAME";
	} else {
		RTE_ETH_FOREACH_DEV(pid) break;
	}
	rte_eth_dev_info dev{};
	if (rte_eth_dev_info_get(pid, &dev) != 0)
		return "port " + std::to_string(pid) + ": cannot read its device info";
	if (dev.max_rx_queues < nb_workers || dev.max_tx_queues < nb_workers)
		return "the core list has " + std::to_string(nb_workers) + " lcores (one worker each) but port " +
		       std::to_string(pid) + " (" + dev.driver_name + ") has " +
		       std::to_string(std::min(dev.max_rx_queues, dev.max_tx_queues)) +
		       " queue pair(s): give the EAL fewer lcores (-l) or the device more queues (e.g. qpairs=N)";

	// Pools sized for the most descriptors a queue may get; port_open settles the rest.
	hugepages::PoolDemand d;
	d.nb_workers = nb_workers;
	d.nb_rxd = std::min<uint16_t>(dev.rx_desc_lim.nb_max ? dev.rx_desc_lim.nb_max : 4096, 4096);
	d.nb_txd = std::min<uint16_t>(dev.tx_desc_lim.nb_max ? dev.tx_desc_lim.nb_max : 4096, 4096);
	d.nb_rxd = std::min<uint16_t>(d.nb_rxd, pc.nb_rxd);
	d.nb_txd = std::min<uint16_t>(d.nb_txd, pc.nb_txd);
	d.mtu = o_.mtu;
	// A receiver's workers hold the data that follows a hello until the receiver
	// is ready for it (Worker::kHeldMax); a sender keeps none.
	d.inflight_pkts = o_.listen ? Worker::kHeldMax : 0;
	hugepages::PoolPlan plan;
	if (std::string e = hugepages::plan_pools(d, &plan); !e.empty())
		return e;
	if (std::string e = hugepages::pools_create(plan, lcores_, "dwcp_pkt", &pools_); !e.empty())
		return e;
	pc.rx_pools = pools_;
	char dev_name[RTE_ETH_NAME_MAX_LEN];
	if (rte_eth_dev_get_name_by_port(pid, dev_name) == 0)
		pc.name = dev_name;
	if (std::string e = drivers::port_open(pc, &port_); !e.empty())
		return e;
	port_open_ = true;

	iface_.mac = port_.mac;
	iface_.ip = o_.ip;
	iface_.udp_port = rte_cpu_to_be_16(o_.udp_port);
	mss_ = uint16_t(wire::data_payload_max(o_.mtu, o_.crypto));
	if (o_.crypto) {
		std::string err;
		crypto_dev_ = crypto::setup_cryptodev(nb_workers, port_.socket_id, &err);
		if (crypto_dev_ < 0)
			return err;
	}

	events_ = rte_ring_create(("dwcp_ev_" + std::to_string(getpid())).c_str(), 4096, SOCKET_ID_ANY, RING_F_SC_DEQ);
	if (!events_)
		return std::string("cannot create the event ring: ") + rte_strerror(rte_errno);
	for (uint16_t i = 0; i < nb_workers; i++) {
		workers_.push_back(std::make_unique<Worker>());
		worker_ptrs_.push_back(workers_.back().get());
	}
	for (uint16_t i = 0; i < nb_workers; i++) {
		dataplane::WorkerConfig wc;
		wc.lcore = lcores_[i];
		wc.index = i;
		wc.nb_workers = nb_workers;
		wc.port_id = port_.port_id;
		wc.port_name = port_.name;
		wc.mtu = o_.mtu;
		wc.pool = pools_[i];
		wc.iface = iface_;
		wc.offloads = port_.tx;
		wc.listen = o_.listen && i == 0;
		wc.protect = o_.crypto;
		wc.crypto_dev = crypto_dev_;
		if (std::string e = workers_[i]->init(wc, events_, &worker_ptrs_); !e.empty())
			return e;
	}
	aead_name_ = workers_[0]->aead_name();
	return "";
}

void Gateway::post_all(const Worker::Command &fn)
{
	for (auto &w : workers_)
		while (!w->post(fn))
			std::this_thread::sleep_for(std::chrono::microseconds(100));
}

bool Gateway::sync_workers(double timeout_s)
{
	auto done = std::make_shared<std::atomic<unsigned>>(0);
	post_all([done](Worker &) { done->fetch_add(1); });
	uint64_t until = mono_ns() + uint64_t(timeout_s * 1e9);
	while (done->load() < workers_.size()) {
		if (mono_ns() > until)
			return false;
		std::this_thread::sleep_for(std::chrono::microseconds(200));
	}
	return true;
}

bool Gateway::wait_ctrl_flushed(double timeout_s)
{
	uint64_t until = mono_ns() + uint64_t(timeout_s * 1e9);
	if (!sync_workers(timeout_s))
		return false;
	// A snapshot taken after the commands ran.
	uint64_t after = mono_ns();
	while (mono_ns() < until && !interrupted()) {
		WorkerSnapshot s = workers_[0]->snapshot();
		if (s.at_ns > after && (s.ctrl_flushed || s.closed))
			return true;
		std::this_thread::sleep_for(std::chrono::milliseconds(1));
	}
	return false;
}

Gateway::Totals Gateway::totals() const
{
	Totals t;
	for (auto &w : workers_) {
		WorkerSnapshot s = w->snapshot();
		t.rx_packets += s.rx_packets;
		t.tx_packets += s.tx_packets;
		t.tx_bytes += s.tx_bytes;
		t.sent += s.sent_packets;
		t.lost += s.lost_packets;
		t.retx += s.session.tx_retransmits;
		t.tail_copies += s.session.tx_tail_copies;
		t.delivered += s.delivered_bytes;
		t.pacing += s.pacing_bytes_per_s;
		t.in_flight += s.bytes_in_flight;
		t.chunks_acked += s.session.chunks_acked;
		t.rx_data += s.session.rx_data_bytes;
		t.duplicates += s.session.rx_duplicate + s.session.rx_dup_data;
		t.tx_ring_full += s.tx_ring_full;
		t.rx_dropped += s.rx_drops + s.rx_handoff_full;
		t.unknown_session += s.rx_unknown_session + s.rx_protected;
		t.bad_header += s.rx_bad_header;
		t.streams_heard += s.streams_heard;
		t.opened += s.rx_opened;
		t.sealed += s.tx_sealed;
		t.no_key += s.rx_no_key;
		t.unprotected += s.rx_unprotected;
		t.auth_failed += s.rx_auth_failed;
		t.replay += s.rx_replay;
		t.replay_old += s.rx_replay_old;
		t.bad_initial += s.rx_bad_initial;
		t.bad_token += s.rx_bad_token;
		t.initial_limited += s.rx_initial_limited;
		t.busy += s.rx_busy;
		t.retry_sent += s.retry_sent;
		t.seal_failed += s.tx_seal_failed;
		t.held += s.rx_held;
		t.held_over += s.rx_held_over;
		t.held_dropped += s.rx_held_dropped;
		t.tx_key_gen = std::max(t.tx_key_gen, s.tx_key_generation);
		t.rx_key_gen = std::max(t.rx_key_gen, s.rx_key_generation);
		t.srtt_ns = std::max(t.srtt_ns, s.srtt_ns);
		if (s.min_rtt_ns && (!t.min_rtt_ns || s.min_rtt_ns < t.min_rtt_ns))
			t.min_rtt_ns = s.min_rtt_ns;
	}
	return t;
}

void Gateway::publish_streams(amst::ChunkScheduler *sched, amst::ChunkProvider *src)
{
	uint16_t n = streams_;
	uint64_t ceil = ceiling_;
	for (size_t i = 0; i < workers_.size(); i++) {
		auto s = sessions_[i];
		workers_[i]->post([s, n, ceil, sched, src](Worker &w) {
			s->set_active_streams(n, w.now_ns());
			if (ceil)
				s->set_rate_ceiling(ceil, w.now_ns());
			if (sched)
				s->attach_sender(sched, src);
		});
	}
}

bool Gateway::peer_silent(uint64_t rx_packets, uint64_t now)
{
	if (rx_packets != silence_rx_ || !silence_since_) {
		silence_rx_ = rx_packets;
		silence_since_ = now;
		return false;
	}
	return now - silence_since_ > uint64_t(o_.timeout_s * 1e9);
}

Event *Gateway::next_event(uint64_t deadline_ns)
{
	void *p;
	for (;;) {
		// The handshake's packets are the handshake's: whoever waits for an event
		// keeps it going.
		pump_handshake(mono_ns());
		if (rte_ring_sc_dequeue(events_, &p) == 0) {
			auto *ev = static_cast<Event *>(p);
			if (ev->kind != Event::Kind::initial)
				return ev;
			if (ic_ && ev->session_id == session_id_)
				ic_->on_packet(ev->body, mono_ns());
			delete ev;
			continue;
		}
		if (mono_ns() >= deadline_ns || interrupted())
			return nullptr;
		std::this_thread::sleep_for(std::chrono::microseconds(500));
	}
}

// ---------------------------------------------------------------- security

void Gateway::pump_handshake(uint64_t now)
{
	if (!ic_)
		return;
	for (auto &pkt : ic_->poll(now)) {
		auto b = std::make_shared<std::vector<uint8_t>>(std::move(pkt));
		workers_[0]->post([b](Worker &w) { w.send_initial(*b); });
	}
	// A client repeats its last flight until the server proves it has the keys:
	// the first sealed packet from it that opened.
	if (keys_ && !confirmed_) {
		uint64_t opened = 0;
		for (auto &w : workers_)
			opened += w->snapshot().rx_opened;
		if (opened) {
			confirmed_ = true;
			ic_->handshake().peer_confirmed();
			workers_[0]->post([](Worker &w) { w.end_handshake(); });
		}
	}
}

std::string Gateway::install_keys()
{
	const Handshake &hs = ic_->handshake();
	crypto::Secret tx = hs.tx_secret(), rx = hs.rx_secret();
	auto errs = std::make_shared<std::vector<std::string>>(workers_.size());
	post_all([errs, tx, rx](Worker &w) { (*errs)[w.config().index] = w.install_keys(tx, rx); });
	if (!sync_workers(5))
		return "a worker did not install the session keys within 5 s";
	for (auto &e : *errs)
		if (!e.empty())
			return e;
	keys_ = true;
	last_key_update_ns_ = mono_ns();
	key_update_tx_ = totals().tx_packets;
	sealed_at_update_ = sealed_per_worker();
	return "";
}

std::string Gateway::handshake(uint64_t deadline_ns)
{
	uint64_t t0 = mono_ns();
	std::string peer = ip_str(path_->ip);
	for (;;) {
		Handshake &hs = ic_->handshake();
		if (hs.failed()) {
			// The alert that tells the peer why goes out before the session does.
			pump_handshake(mono_ns());
			return "TLS handshake with " + peer + " failed: " + hs.error();
		}
		if (hs.complete()) {
			handshake_ns_ = mono_ns() - t0;
			tls_peer_ = hs.peer_subject();
			if (std::string e = install_keys(); !e.empty())
				return e;
			// The server's part ends here: the client's Finished has arrived.
			if (o_.listen) {
				confirmed_ = true;
				workers_[0]->post([](Worker &w) { w.end_handshake(); });
			}
			// Pump once more: a client's last flight goes out before anything sealed.
			pump_handshake(mono_ns());
			return "";
		}
		Event *ev = next_event(std::min(deadline_ns, mono_ns() + 2'000'000));
		if (interrupted())
			return "interrupted";
		if (ev) {
			std::unique_ptr<Event> hold(ev);
			if (ev->kind == Event::Kind::session_closed)
				return "peer " + peer + " closed the session during the TLS handshake: " + ev->text;
			continue;
		}
		if (mono_ns() >= deadline_ns)
			return "peer " + peer + ":" + std::to_string(o_.udp_port) + " did not complete the TLS handshake within " +
			       std::to_string(int(std::min(o_.timeout_s, kHandshakeLimitS))) + " s (" + std::to_string(ic_->packets_received()) +
			       " handshake packets received; is a gateway with security on listening there?)";
	}
}

void Gateway::maybe_update_keys(uint64_t now)
{
	if (!keys_ || now < last_key_update_ns_ + kMinKeyUpdateGapNs)
		return;
	Totals t = totals();
	if (now < last_key_update_ns_ + 4 * t.srtt_ns)
		return;
	uint64_t tx = t.tx_packets;
	if (tx - key_update_tx_ < o_.key_update_packets && now < last_key_update_ns_ + uint64_t(o_.key_update_s * 1e9))
		return;
	// Every worker must have sealed in the current phase since the last update:
	// one that skipped a phase would come back two keys ahead of what its peer
	// holds (current and next), with the same phase bit as the current key.  An
	// idle worker postpones the update; the budget in the default has room.
	std::vector<uint64_t> sealed = sealed_per_worker();
	if (sealed_at_update_.size() == sealed.size())
		for (size_t i = 0; i < sealed.size(); i++)
			if (sealed[i] == sealed_at_update_[i])
				return;
	sealed_at_update_ = sealed;
	// A worker that cannot switch keeps its current key (still within its budget
	// for a while) and says so.
	post_all([](Worker &w) {
		if (std::string e = w.update_tx_key(); !e.empty())
			fprintf(stderr, "dwcp-gateway: %s\n", e.c_str());
	});
	key_updates_++;
	last_key_update_ns_ = now;
	key_update_tx_ = tx;
}

std::vector<std::shared_ptr<amst::Session>> Gateway::make_sessions(uint64_t sid, bool sender, uint16_t nb_streams,
								    uint32_t ring_packets, uint32_t initial_window)
{
	std::vector<std::shared_ptr<amst::Session>> v;
	rte_ring *events = events_;
	for (uint16_t i = 0; i < workers_.size(); i++) {
		amst::SessionConfig c;
		c.session_id = sid;
		c.mss = mss_;
		c.packet_overhead = packet_overhead(o_.crypto);
		c.tag_len = o_.crypto ? uint32_t(wire::kTagLen) : 0;
		c.nb_streams = nb_streams;
		c.shard = i;
		c.nb_shards = uint16_t(workers_.size());
		c.sends_data = sender;
		c.data.cc = o_.cc;
		c.data.max_inflight_packets = ring_packets;
		if (initial_window)
			c.data.initial_cwnd_packets = initial_window;
		amst::Session::CtrlHandler h;
		if (i == 0)
			h = [events, sid](uint16_t type, std::span<const uint8_t> body) {
				auto *ev = new Event{.kind = Event::Kind::ctrl_message};
				ev->type = type;
				ev->session_id = sid;
				ev->body.assign(body.begin(), body.end());
				if (rte_ring_mp_enqueue(events, ev) != 0)
					delete ev;
			};
		v.push_back(std::make_shared<amst::Session>(c, nullptr, nullptr, nullptr, h));
	}
	return v;
}

void Gateway::detach_all()
{
	post_all([](Worker &w) { w.detach(); });
	sync_workers(5);
	sessions_.clear();
}

// ---------------------------------------------------------------- report

void Gateway::report(bool ok, const std::string &error)
{
	Totals t = totals();
	uint64_t rx = t.rx_packets, tx = t.tx_packets, sent = t.sent, lost = t.lost, retx = t.retx;
	uint64_t srtt = t.srtt_ns, minrtt = t.min_rtt_ns;
	rte_eth_stats ps{};
	(void)drivers::port_stats(port_.port_id, &ps);
	if (o_.listen) {
		// The receiver's count is what arrived: the data streams that carried packets.
		streams_ = uint16_t(t.streams_heard);
		streams_initial_ = streams_;
		streams_reason_ = "data streams the sender used";
	}
	double secs = first_packet_ns_ && done_ns_ > first_packet_ns_ ? double(done_ns_ - first_packet_ns_) / 1e9 : 0;
	// Goodput is verified bytes over time: a failed transfer has none.
	double goodput = ok && secs > 0 ? double(object_size_) * 8 / secs / 1e6 : 0;
	bool sender = !o_.listen;
	{
		printf("%s %s: %s\n", sender ? "send" : "recv", ok ? "verified" : "FAILED",
		       ok ? (file_path_ + " (" + std::to_string(object_size_) + " bytes)").c_str() : error.c_str());
		if (ok)
			printf("  %.2f s from first packet to verified file, %.1f Mbit/s goodput\n"
			       "  sha256 %s\n"
			       "  streams %u (started at %u: %s)\n"
			       "  rtt %.1f ms (min %.1f), loss %.2f%%, %" PRIu64 " retransmitted packets (+%" PRIu64 " tail copies), chunk %u B, window %u chunks, %zu worker core(s)\n",
			       secs, goodput, to_hex(sha_).c_str(), streams_, streams_initial_, streams_reason_.c_str(),
			       srtt / 1e6, minrtt / 1e6, sent ? 100.0 * double(lost) / double(sent) : 0.0, retx, t.tail_copies, chunk_size_,
			       window_, workers_.size());
		if (ok && !o_.baseline_dir.empty())
			printf("  baseline: %s%s\n", baseline_note_.c_str(),
			       delta_base_ && encoded_bytes_
				       ? (", " + std::to_string(encoded_bytes_) + " bytes for " + std::to_string(object_size_) +
					  " (" + std::to_string(double(object_size_) / double(encoded_bytes_)).substr(0, 6) + "x)")
						 .c_str()
				       : "");
		if (o_.crypto)
			printf("  security: TLS 1.3 peer '%s' (handshake %.1f ms%s), AES-256-GCM on %" PRIu64 " sealed / %" PRIu64
			       " opened packets, key updates %" PRIu64 " sent / %" PRIu64 " seen\n"
			       "  refused: %" PRIu64 " forged or corrupt, %" PRIu64 " replayed, %" PRIu64 " too old, %" PRIu64
			       " in the clear, %" PRIu64 " before keys, %" PRIu64 " bad handshake packets, %" PRIu64
			       " bad tokens, %" PRIu64 " over the handshake limits, %" PRIu64 " RETRYs sent\n",
			       tls_peer_.c_str(), handshake_ns_ / 1e6, ic_ && ic_->retried() ? ", after a RETRY" : "", t.sealed,
			       t.opened, t.tx_key_gen, t.rx_key_gen, t.auth_failed, t.replay, t.replay_old, t.unprotected,
			       t.no_key, t.bad_initial, t.bad_token, t.initial_limited, t.retry_sent);
		else
			printf("  security: OFF (--crypto off): this transfer crossed the network in the clear\n");
		fflush(stdout);
	}
	if (o_.report_json.empty())
		return;
	uint64_t payload = encoded_bytes_ ? encoded_bytes_ : (ok ? object_size_ : 0);
	char buf[8192];
	snprintf(buf, sizeof(buf),
		 "{\"role\": \"%s\", \"ok\": %s, \"error\": %s, \"file\": %s, \"bytes\": %" PRIu64 ", \"sha256\": \"%s\", "
		 "\"first_packet_ns\": %" PRIu64 ", \"done_ns\": %" PRIu64 ", \"seconds\": %.6f, \"goodput_mbit\": %.3f, "
		 "\"streams\": %u, \"streams_initial\": %u, \"streams_reason\": %s, \"cc\": \"%s\", \"rtt_ms\": %.3f, "
		 "\"min_rtt_ms\": %.3f, \"loss_pct\": %.4f, \"retransmits\": %" PRIu64 ", \"tail_copies\": %" PRIu64 ", \"packets_sent\": %" PRIu64
		 ", \"packets_received\": %" PRIu64 ", \"worker_cores\": %zu, \"chunk_size\": %u, \"window_chunks\": %u, "
		 "\"link_mbit\": %" PRIu64 ", \"hello_rtt_ms\": %.3f, \"port_rx_missed\": %" PRIu64
		 ", \"port_tx_errors\": %" PRIu64 ", \"tx_ring_full\": %" PRIu64 ", \"rx_dropped\": %" PRIu64
		 ", \"rx_unknown_session\": %" PRIu64 ", \"rx_bad_header\": %" PRIu64 ", \"refused_first_packets\": %" PRIu64
		 ", \"crypto\": %s, \"aead\": %s, \"tls_peer\": %s, \"handshake_ms\": %.3f, \"retried\": %s"
		 ", \"tx_sealed\": %" PRIu64 ", \"rx_opened\": %" PRIu64 ", \"key_updates_sent\": %" PRIu64
		 ", \"key_updates_seen\": %" PRIu64 ", \"rx_auth_failed\": %" PRIu64 ", \"rx_replay\": %" PRIu64
		 ", \"rx_replay_old\": %" PRIu64 ", \"rx_unprotected\": %" PRIu64 ", \"rx_no_key\": %" PRIu64
		 ", \"rx_bad_initial\": %" PRIu64 ", \"rx_bad_token\": %" PRIu64 ", \"rx_initial_limited\": %" PRIu64
		 ", \"rx_busy\": %" PRIu64 ", \"retry_sent\": %" PRIu64 ", \"tx_seal_failed\": %" PRIu64 ", \"delta\": %s, \"base_version\": %" PRIu64
		 ", \"new_version\": %" PRIu64 ", \"payload_bytes\": %" PRIu64 ", \"delta_ratio\": %.3f, \"tier\": %s"
		 ", \"baseline\": %s, \"early_data\": %s, \"rx_held\": %" PRIu64 ", \"rx_held_over\": %" PRIu64
		 ", \"rx_held_dropped\": %" PRIu64 "}\n",
		 sender ? "send" : "recv", ok ? "true" : "false", json_str(error).c_str(), json_str(file_path_).c_str(),
		 object_size_, sha_known_ ? to_hex(sha_).c_str() : "", first_packet_ns_, done_ns_, secs, goodput, streams_,
		 streams_initial_, json_str(streams_reason_).c_str(), amst::cc_algo_name(o_.cc), srtt / 1e6, minrtt / 1e6,
		 sent ? 100.0 * double(lost) / double(sent) : 0.0, retx, t.tail_copies, tx, rx, workers_.size(), chunk_size_, window_,
		 o_.link_mbit, hello_rtt_ns_ / 1e6, ps.imissed, ps.oerrors, t.tx_ring_full, t.rx_dropped, t.unknown_session, t.bad_header,
		 refused_first_packets_, o_.crypto ? "true" : "false", json_str(aead_name_).c_str(), json_str(tls_peer_).c_str(),
		 handshake_ns_ / 1e6, ic_ && ic_->retried() ? "true" : "false", t.sealed, t.opened, t.tx_key_gen, t.rx_key_gen,
		 t.auth_failed, t.replay, t.replay_old, t.unprotected, t.no_key, t.bad_initial, t.bad_token, t.initial_limited,
		 t.busy, t.retry_sent, t.seal_failed, delta_base_ ? "true" : "false", delta_base_, new_version_, payload,
		 payload ? double(object_size_) / double(payload) : 0.0,
		 encoded_ ? json_str(hde::tier_name(encoded_->tier())).c_str() : "null", json_str(baseline_note_).c_str(),
		 early_data_ ? "true" : "false", t.held, t.held_over, t.held_dropped);
	std::string tmp = o_.report_json + ".tmp";
	FILE *f = fopen(tmp.c_str(), "w");
	if (!f || fputs(buf, f) < 0 || fclose(f) != 0 || rename(tmp.c_str(), o_.report_json.c_str()) != 0)
		fprintf(stderr, "dwcp-gateway: cannot write the report '%s': %s\n", o_.report_json.c_str(), strerror(errno));
}

void Gateway::progress_sender(uint64_t now, bool last)
{
	if (o_.progress_s <= 0 || (!last && now < last_progress_ns_ + uint64_t(o_.progress_s * 1e9)))
		return;
	Totals t = totals();
	uint64_t sent = t.sent, lost = t.lost, wire = t.tx_bytes;
	uint64_t bytes = std::min<uint64_t>(t.chunks_acked * chunk_size_, object_size_);
	double dt = last_progress_ns_ ? double(now - last_progress_ns_) / 1e9 : 0;
	double rate = dt > 0 ? double(bytes - last_bytes_) * 8 / dt / 1e6 : 0;
	double loss = sent > last_sent_ ? 100.0 * double(lost - last_lost_) / double(sent - last_sent_) : 0;
	double wire_rate = dt > 0 ? double(wire - last_wire_) * 8 / dt / 1e6 : 0;
	last_wire_ = wire;
	printf("[%6.1fs] %s / %s  %5.1f%%  %7.1f Mbit/s  rtt %6.1f ms  loss %5.2f%%  streams %u  retx %" PRIu64
	       "  sending %.0f of %.0f Mbit/s paced  in flight %.1f MB\n",
	       double(now - start_ns_) / 1e9, human_bytes(double(bytes)).c_str(), human_bytes(double(object_size_)).c_str(),
	       object_size_ ? 100.0 * double(bytes) / double(object_size_) : 100.0, rate, t.srtt_ns / 1e6, loss, streams_,
	       t.retx, wire_rate, double(t.pacing) * 8 / 1e6, double(t.in_flight) / 1e6);
	fflush(stdout);
	last_progress_ns_ = now, last_bytes_ = bytes, last_sent_ = sent, last_lost_ = lost;
}

void Gateway::progress_receiver(uint64_t now, bool last)
{
	if (o_.progress_s <= 0 || (!last && now < last_progress_ns_ + uint64_t(o_.progress_s * 1e9)))
		return;
	Totals t = totals();
	uint64_t bytes = t.rx_data;
	double dt = last_progress_ns_ ? double(now - last_progress_ns_) / 1e9 : 0;
	double rate = dt > 0 ? double(bytes - last_bytes_) * 8 / dt / 1e6 : 0;
	printf("[%6.1fs] received %s / %s  %5.1f%%  %7.1f Mbit/s  written %s  duplicates %" PRIu64 "\n",
	       double(now - start_ns_) / 1e9, human_bytes(double(bytes)).c_str(), human_bytes(double(object_size_)).c_str(),
	       object_size_ ? 100.0 * double(bytes) / double(object_size_) : 100.0, rate,
	       human_bytes(sink_ ? double(sink_->bytes_written()) : 0).c_str(), t.duplicates);
	fflush(stdout);
	last_progress_ns_ = now, last_bytes_ = bytes;
}

// ---------------------------------------------------------------- sender

std::string Gateway::await_reply(MsgType want, const char *what, uint64_t since_ns, std::vector<uint8_t> *body)
{
	uint64_t deadline = since_ns + uint64_t(o_.timeout_s * 1e9);
	for (;;) {
		Event *ev = next_event(deadline);
		if (std::string e = handshake_failure(); !e.empty())
			return e;
		if (!ev)
			return interrupted() ? "interrupted"
					     : "peer " + ip_str(o_.peer) + ":" + std::to_string(o_.udp_port) + " did not " + what +
						       " within " + std::to_string(int(o_.timeout_s)) + " s (is a gateway listening there" +
						       (o_.crypto ? "?)" : ", with --crypto off too?)");
		std::unique_ptr<Event> hold(ev);
		if (ev->kind == Event::Kind::session_closed)
			return "peer closed the session: " + ev->text;
		if (ev->kind != Event::Kind::ctrl_message)
			continue;
		if (ev->type == uint16_t(MsgType::reject)) {
			Reject r;
			if (std::string e = decode(ev->body, &r); !e.empty())
				return "peer sent a malformed " + e;
			return "peer refused '" + object_name_ + "': " + r.reason;
		}
		if (ev->type == uint16_t(want)) {
			*body = std::move(ev->body);
			return "";
		}
	}
}

// ---------------------------------------------------------------- deltas

std::string Gateway::open_baselines_sender()
{
	if (std::string e = store_.open(o_.baseline_dir, true); !e.empty())
		return e;
	Baseline b;
	if (!store_.latest(object_name_, &b)) {
		new_version_ = 1;
		baseline_note_ = "no baseline of '" + object_name_ + "' yet: whole transfer";
		return "";
	}
	new_version_ = b.version + 1;
	if (std::string e = use_baseline(b); !e.empty()) {
		// A baseline that is not what its record says is never used: whole transfer.
		baseline_note_ = e + ": not offered";
		fprintf(stderr, "dwcp-gateway: %s\n", baseline_note_.c_str());
		return "";
	}
	// The index takes a while on a large baseline: build it while the peer is found
	// and the session set up.
	index_thread_ = std::thread([this] {
		hde::BaselineIndex::Options opt;
		// Hashing a large baseline (the anchors for shifted data above all) is the
		// longest step before a delta round can begin: use every core.
		opt.nb_threads = std::max(1u, std::thread::hardware_concurrency());
		base_index_ = std::make_unique<hde::BaselineIndex>(base_map_->bytes(), hde::baseline_tag(base_.sha256), opt);
		index_ready_.store(true, std::memory_order_release);
	});
	return "";
}

std::string Gateway::use_baseline(const Baseline &b)
{
	auto map = std::make_unique<MappedFile>();
	std::string e = store_.check(b);
	if (e.empty())
		e = map->open(b.path);
	if (!e.empty())
		return e;
	have_base_ = true;
	base_ = b;
	base_map_ = std::move(map);
	return "";
}

void Gateway::accept_baseline(const Hello &hello)
{
	baseline_note_ = "no '" + hello.name + "' version " + std::to_string(hello.base_version) + " here: whole transfer";
	for (const Baseline &b : store_.list(hello.name)) {
		if (b.version != hello.base_version || b.sha256 != hello.base_sha)
			continue;
		if (std::string e = use_baseline(b); !e.empty()) {
			baseline_note_ = e + ": not used, whole transfer";
			fprintf(stderr, "dwcp-gateway: %s\n", baseline_note_.c_str());
		}
		return;
	}
}

void Gateway::adopt_baseline(const std::string &path)
{
	if (o_.baseline_dir.empty() || !new_version_)
		return;
	Baseline b;
	std::string e = store_.adopt(object_name_, new_version_, path, sha_, &b);
	if (e.empty())
		e = store_.prune(object_name_, o_.baseline_keep);
	if (!e.empty()) {
		baseline_note_ = "not recorded as a baseline: " + e;
		fprintf(stderr, "dwcp-gateway: %s\n", baseline_note_.c_str());
		return;
	}
	printf("baseline: '%s' version %" PRIu64 " recorded in %s\n", object_name_.c_str(), new_version_,
	       o_.baseline_dir.c_str());
	fflush(stdout);
}

// Compression must never slow a transfer down: the policy lowers the tier while
// the encoders (all workers) produce less than the link could carry.
void Gateway::tune_tier()
{
	if (encoded_ && !index_published_ && index_ready_.load(std::memory_order_acquire)) {
		index_thread_.join();
		encoded_->set_index(base_index_.get());
		index_published_ = true;
	}
	uint64_t now = mono_ns();
	if (!encoded_ || now < last_tier_ns_ + 200'000'000)
		return;
	last_tier_ns_ = now;
	uint64_t in = encoded_->bytes_in(), ns = encoded_->encode_ns(), out = encoded_->bytes_out();
	if (ns > last_enc_ns_ && in > last_enc_in_) {
		double per_core = double(in - last_enc_in_) / (double(ns - last_enc_ns_) / 1e9);
		tier_policy_.observe_throughput(per_core * double(workers_.size()), double(ceiling_),
						out ? double(in) / double(out) : 1.0);
		encoded_->set_tier(tier_policy_.tier());
	}
	last_enc_in_ = in, last_enc_ns_ = ns;
}

int Gateway::control_sender()
{
	auto fail = [&](const std::string &e) {
		err_ = e;
		return 1;
	};
	source_ = std::make_unique<SourceFile>();
	if (std::string e = source_->open(o_.send_path); !e.empty()) {
		err_ = e;
		return 2;
	}
	object_size_ = source_->size();
	file_path_ = o_.send_path;
	object_name_ = file_path_.substr(file_path_.find_last_of('/') + 1);
	if (std::string why = check_object_name(object_name_); !why.empty()) {
		err_ = "--send: the file name '" + object_name_ + "' cannot be sent: " + why;
		return 2;
	}
	if (!o_.baseline_dir.empty()) {
		if (std::string e = open_baselines_sender(); !e.empty()) {
			err_ = "--baseline-dir: " + e;
			return 2;
		}
	}
	if (!o_.link_mbit) {
		rte_eth_link link{};
		if (drivers::port_link(port_.port_id, &link).empty() && link.link_speed && link.link_speed != RTE_ETH_SPEED_NUM_UNKNOWN)
			o_.link_mbit = link.link_speed;
	}
	uint64_t link_bps = o_.link_mbit * 1'000'000;

	// 1. The peer's MAC.
	auto *w0 = workers_[0].get();
	uint32_t peer = o_.peer;
	w0->post([peer](Worker &w) { w.resolve(peer); });
	rte_ether_addr mac{};
	for (;;) {
		Event *ev = next_event(mono_ns() + 10'000'000'000ull);
		if (!ev)
			return fail(interrupted() ? "interrupted" : "peer " + ip_str(peer) + " unreachable: no ARP verdict in 10 s");
		std::unique_ptr<Event> hold(ev);
		if (ev->kind == Event::Kind::arp_unreachable)
			return fail(ev->text);
		if (ev->kind == Event::Kind::arp_resolved) {
			mac = ev->mac;
			break;
		}
	}

	// 2. Hello: sessions on every worker, the control channel on worker 0.
	std::random_device rd;
	session_id_ = (uint64_t(rd()) << 32 | rd()) | 1;
	path_ = std::make_shared<PeerPath>();
	path_->ip = peer;
	path_->udp_port = rte_cpu_to_be_16(o_.udp_port);
	path_->mac = mac;
	drivers::tx_template_init(&path_->tpl, iface_, mac, peer, path_->udp_port, port_.tx);
	steer_ports(path_.get(), o_.ip, 1, 0, false);
	// Per-stream packet ring: four times the stream's share of a 500 ms BDP.
	uint16_t max_streams = o_.streams ? o_.streams : o_.max_streams;
	double bdp_pkts = double(link_bps ? link_bps : 10'000'000'000ull) / 8 * 0.5 / mss_;
	uint32_t ring = std::bit_ceil(uint32_t(std::clamp(4 * bdp_pkts / 16, 1024.0, 65536.0)));
	// First window per stream: its share of half the declared link's BDP at
	// kStartRttNs.  The pacer never exceeds 0.95 of the declared rate, so a
	// window larger than the real BDP cannot overrun the link; it only spares a
	// long path the doublings from 32 packets (1.5 s at 300 ms).
	double pkt = double(mss_ + packet_overhead(o_.crypto));
	double ceiling = double(link_bps) / 8 * 0.95;
	uint32_t iw = uint32_t(std::clamp(ceiling * double(kStartRttNs) / 1e9 / 2 / pkt / max_streams, 32.0, ring / 2.0));
	sessions_ = make_sessions(session_id_, true, max_streams, ring, iw);
	for (size_t i = 0; i < workers_.size(); i++) {
		auto s = sessions_[i];
		auto p = std::shared_ptr<const PeerPath>(path_);
		workers_[i]->post([s, p](Worker &w) { w.attach(s, p); });
	}
	first_packet_ns_ = mono_ns();
	if (o_.crypto) {
		ic_ = std::make_unique<InitialChannel>(*tls_, Handshake::Role::client, session_id_, o_.mtu - 20u - 8u,
						       kHandshakeRto, encode(port_params()));
		if (std::string e = handshake(first_packet_ns_ + uint64_t(std::min(o_.timeout_s, kHandshakeLimitS) * 1e9));
		    !e.empty())
			return fail(e);
	}
	Hello hello{.name = object_name_,
		    .size = object_size_,
		    .mss = mss_,
		    .max_streams = max_streams,
		    .link_bps = link_bps,
		    .rx_queues = uint16_t(workers_.size()),
		    .reta_size = port_.reta_size,
		    .rss = port_.rss_hf != 0,
		    .base_version = have_base_ ? base_.version : 0,
		    .base_sha = have_base_ ? base_.sha256 : Sha256{},
		    .new_version = new_version_,
		    .rtt_us = ic_ ? uint32_t(std::min<uint64_t>(ic_->rtt_ns() / 1000, kMaxHelloRttUs)) : 0};
	auto hb = std::make_shared<std::vector<uint8_t>>(encode(hello));
	auto s0 = sessions_[0];
	uint64_t hello_ns = mono_ns();
	w0->post([s0, hb](Worker &) { s0->send_ctrl(uint16_t(MsgType::hello), *hb); });

	// Data right behind the hello: a whole transfer (no baseline offered, so the
	// accept cannot change the layout) to a receiver whose parameters came with
	// its handshake.  The receiver holds what arrives before it is ready
	// (Worker::release_held); the accept then only confirms, and widens the
	// window from the floor every receiver grants to its own.
	PortParams pp;
	bool early = false;
	if (ic_ && ic_->handshake().has_peer_params()) {
		// Parameters this side cannot read (a newer peer's) only cost the round
		// trip: the accept says the same, and data waits for it.
		if (std::string e = decode(ic_->handshake().peer_params(), &pp); !e.empty())
			fprintf(stderr, "dwcp-gateway: cannot read the peer's transport parameters (%s): data waits for its accept\n",
				e.c_str());
		else
			early = !have_base_ && hello.rtt_us;
	}
	// The sending side of the transfer: chunk layout, scheduler, streams, first
	// windows, steering to the receiver's queues, HDE when delta.  Returns "" or
	// the error; *provider is what the streams send from.
	Begin layout;
	auto prepare_sending = [&](const Hello &measured, bool delta, uint32_t window, uint16_t rx_queues,
				   uint16_t reta_size, bool rss, amst::ChunkProvider **provider) -> std::string {
		layout = layout_for(measured, delta ? base_.version : 0);
		chunk_size_ = layout.chunk_size;
		nb_chunks_ = layout.nb_chunks;
		window_ = window;
		source_->set_chunk_size(chunk_size_);
		sched_ = std::make_unique<amst::ChunkScheduler>(nb_chunks_, window_);
		streams_initial_ = o_.streams ? o_.streams
					      : std::min(initial_streams(double(o_.link_mbit ? o_.link_mbit : 10000),
									 double(hello_rtt_ns_) / 1e6),
							 max_streams);
		streams_ = streams_initial_;
		char why[160];
		if (o_.streams)
			snprintf(why, sizeof(why), "fixed by --streams");
		else
			snprintf(why, sizeof(why), "start: min(256, max(16, %" PRIu64 " Mbit/s / (%.0f ms * 0.1)))", o_.link_mbit,
				 double(hello_rtt_ns_) / 1e6);
		streams_reason_ = why;
		if (!o_.streams) {
			AutotuneConfig ac;
			ac.max_streams = max_streams;
			// Every worker on both sides keeps a stream or two of its own.
			ac.min_streams = std::min<uint16_t>(max_streams, uint16_t(2 * std::max<size_t>(workers_.size(), rx_queues)));
			tuner_ = std::make_unique<StreamTuner>(ac, streams_, streams_reason_);
		}
		ceiling_ = link_bps ? uint64_t(double(link_bps) / 8 * 0.95) : 0;
		// Now that the set-up exchanges measured the RTT, the first window is each
		// stream's share of the real bandwidth-delay product at the pacing ceiling
		// (not the 250 ms guess the sessions were made with): a 300 ms path is full
		// from the first round trip instead of after two or three of startup.  The
		// pacer never exceeds the ceiling, so the window cannot overrun the link.
		if (ceiling_) {
			double bdp_pkts = double(ceiling_) * double(hello_rtt_ns_) / 1e9 / pkt;
			uint32_t first = uint32_t(std::clamp(bdp_pkts / std::max<uint16_t>(streams_, 1), 32.0, ring / 2.0));
			uint64_t rtt = hello_rtt_ns_;
			for (size_t i = 0; i < workers_.size(); i++) {
				auto s = sessions_[i];
				workers_[i]->post([s, first, rtt](Worker &w) { s->set_initial_windows(first, rtt, w.now_ns()); });
			}
		}
		steer_ports(path_.get(), o_.ip, rx_queues, reta_size, rss);
		*provider = source_.get();
		if (delta) {
			delta_base_ = base_.version;
			tier_policy_.observe_rtt(hello_rtt_ns_ / 1000);
			// Hashing a 4 GiB baseline takes seconds: the first chunks go against a
			// cheap index (unchanged and in-place-edited blocks, the bulk of a pre-copy
			// round), and the full one (moved and shifted data) takes over when built.
			const hde::BaselineIndex *index = nullptr;
			if (!index_ready_.load(std::memory_order_acquire)) {
				hde::BaselineIndex::Options quick;
				quick.moved_blocks = quick.shifted_data = false;
				quick_index_ = std::make_unique<hde::BaselineIndex>(base_map_->bytes(), hde::baseline_tag(base_.sha256),
										    quick);
				index = quick_index_.get();
			} else {
				index_thread_.join();
				index = base_index_.get(); // read only once the builder is done with it
				index_published_ = true;
			}
			encoded_ = std::make_unique<EncodedSource>();
			if (std::string e = encoded_->start(source_.get(), chunk_size_, nb_chunks_, window_, index,
							    tier_policy_.tier(), lcores_);
			    !e.empty())
				return e;
			*provider = encoded_.get();
			baseline_note_ = "delta against version " + std::to_string(base_.version);
		}
		return "";
	};
	amst::ChunkProvider *provider = nullptr;
	if (early) {
		hello_rtt_ns_ = std::max<uint64_t>(uint64_t(hello.rtt_us) * 1000, kMinSetupRttNs);
		if (std::string e = prepare_sending(hello, false, pp.window_floor, pp.rx_queues, pp.reta_size, pp.rss,
						    &provider);
		    !e.empty())
			return fail(e);
		publish_streams(sched_.get(), provider);
		early_data_ = true;
	}

	// 3. Accept or reject.
	Accept acc;
	std::vector<uint8_t> body;
	if (std::string e = await_reply(MsgType::accept, "answer the hello", hello_ns, &body); !e.empty())
		return fail(e);
	if (std::string e = decode(body, &acc); !e.empty())
		return fail("peer sent a malformed " + e);
	if (early) {
		if (!acc.ready || acc.base_version || acc.rx_queues != pp.rx_queues || acc.reta_size != pp.reta_size ||
		    acc.rss != pp.rss || acc.window_chunks < pp.window_floor)
			return fail("peer's accept contradicts the parameters of its handshake");
		window_ = acc.window_chunks;
		sched_->raise_window(acc.window_chunks);
	} else {
		// The hello's round trip holds the receiver's set-up too (creating and
		// reserving the file: over a second for 4 GiB on tmpfs).  The path's RTT is
		// the least of it, the handshake's and the transport's sample of the hello's
		// ACK.
		uint64_t rtt = mono_ns() - hello_ns;
		if (hello.rtt_us)
			rtt = std::min<uint64_t>(rtt, uint64_t(hello.rtt_us) * 1000);
		if (uint64_t ack_rtt = totals().min_rtt_ns)
			rtt = std::min(rtt, ack_rtt);
		hello_rtt_ns_ = std::max(rtt, kMinSetupRttNs);
		if (acc.base_version && acc.base_version != hello.base_version)
			return fail("peer accepted baseline version " + std::to_string(acc.base_version) + ", not the one offered (" +
				    std::to_string(hello.base_version) + ")");
		if (acc.ready && !hello.rtt_us)
			return fail("peer is ready for data before the chunk layout was set");

		// 4. The chunk layout: chunk size from the RTT (the handshake's, in the hello,
		// or else the hello's own), HDE deltas when the receiver holds the baseline
		// offered.  A ready ACCEPT means the receiver derived the same layout.
		bool delta = have_base_ && acc.base_version == base_.version;
		if (have_base_ && !delta)
			baseline_note_ = "peer does not hold '" + object_name_ + "' version " + std::to_string(base_.version) +
					 ": whole transfer";
		Hello measured = hello;
		if (!acc.ready)
			measured.rtt_us = uint32_t(std::min<uint64_t>(hello_rtt_ns_ / 1000, kMaxHelloRttUs));
		if (std::string e = prepare_sending(measured, delta, acc.window_chunks, acc.rx_queues, acc.reta_size,
						    acc.rss, &provider);
		    !e.empty())
			return fail(e);
		if (!acc.ready) {
			auto bb = std::make_shared<std::vector<uint8_t>>(encode(layout));
			w0->post([s0, bb](Worker &) { s0->send_ctrl(uint16_t(MsgType::begin), *bb); });
			if (std::string e = await_reply(MsgType::ready, "get ready", mono_ns(), &body); !e.empty())
				return fail(e);
		}
		publish_streams(sched_.get(), provider);
	}

	// 5. Run: tune, report progress, send the digest when the hash is done, wait for
	// the receiver's verdict.
	bool digest_sent = false;
	uint64_t next_tune = 0;
	silence_since_ = 0;
	for (;;) {
		uint64_t now = mono_ns();
		if (interrupted())
			return fail("interrupted");
		if (!digest_sent && source_->hash_done()) {
			if (!source_->hash_error().empty())
				return fail(source_->hash_error());
			sha_ = source_->digest();
			sha_known_ = true;
			auto db = std::make_shared<std::vector<uint8_t>>(encode(Digest{.sha256 = sha_}));
			w0->post([s0, db](Worker &) { s0->send_ctrl(uint16_t(MsgType::digest), *db); });
			digest_sent = true;
		}
		while (Event *ev = next_event(0)) {
			std::unique_ptr<Event> hold(ev);
			if (ev->kind == Event::Kind::session_closed)
				return fail("peer closed the session: " + ev->text);
			if (ev->kind != Event::Kind::ctrl_message || ev->type != uint16_t(MsgType::result))
				continue;
			Result r;
			if (std::string e = decode(ev->body, &r); !e.empty())
				return fail("peer sent a malformed " + e);
			done_ns_ = mono_ns();
			progress_sender(done_ns_, true);
			if (!r.ok)
				return fail("receiver: " + r.detail);
			// Say goodbye and give the close a moment to leave.
			std::string bye = "done";
			w0->post([s0, bye](Worker &) { s0->close(0, bye); });
			uint64_t until = mono_ns() + 200'000'000;
			while (mono_ns() < until && !(workers_[0]->snapshot().closed))
				std::this_thread::sleep_for(std::chrono::milliseconds(1));
			ok_ = true;
			if (encoded_)
				encoded_bytes_ = encoded_->bytes_out();
			adopt_baseline(file_path_);
			return 0;
		}
		Totals t = totals();
		if (peer_silent(t.rx_packets, now))
			return fail("peer " + ip_str(peer) + " silent for " + std::to_string(int(o_.timeout_s)) + " s");
		if (std::string e = handshake_failure(); !e.empty())
			return fail(e);
		maybe_update_keys(now);
		if (tuner_ && now >= next_tune) {
			next_tune = now + 50'000'000;
			AutotuneSample smp{.now_ns = now,
					   .delivered_bytes = t.delivered,
					   .srtt_ns = t.srtt_ns,
					   .app_limited = sched_->window_blocked() || sched_->all_claimed()};
			AutotuneDecision d = tuner_->observe(smp);
			if (d.changed) {
				streams_ = d.streams;
				if (!tuner_->last_reason().empty())
					streams_reason_ = tuner_->last_reason();
				publish_streams();
			}
			if (tuner_->settled_streams() == streams_ && !tuner_->last_reason().empty())
				streams_reason_ = tuner_->last_reason();
		}
		tune_tier();
		progress_sender(now, false);
		std::this_thread::sleep_for(std::chrono::milliseconds(2));
	}
}

// ---------------------------------------------------------------- receiver

uint32_t Gateway::auto_window(const Hello &h, const Begin &layout) const
{
	// Eight round trips of the link (amst::window_chunks_for), but the chunk
	// buffers may take at most half the free memory of the port's socket: a
	// smaller window costs some speed on a lossy long path, no memory costs the
	// transfer.  Never under the default of 512, whose shortage start() reports.
	uint32_t w = amst::window_chunks_for(setup_rtt_ns(h), h.link_bps / 8, layout.chunk_size);
	uint64_t slot = uint64_t(layout.chunk_size) +
			(layout.encoding == ChunkEncoding::hde ? hde::max_encoded_chunk_size(layout.chunk_size) + 4096 : 0);
	rte_malloc_socket_stats st{};
	if (rte_malloc_get_socket_stats(port_.socket_id < 0 ? 0 : port_.socket_id, &st) == 0)
		w = uint32_t(std::min<uint64_t>(w, st.heap_freesz_bytes / 2 / slot));
	return std::max<uint32_t>(w, kDefaultWindowChunks);
}

int Gateway::control_receiver()
{
	struct stat st;
	if (stat(o_.recv_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
		err_ = "--recv-dir '" + o_.recv_dir + "' is not a directory";
		return 2;
	}
	if (access(o_.recv_dir.c_str(), W_OK) != 0) {
		err_ = "--recv-dir '" + o_.recv_dir + "' is not writable: " + strerror(errno);
		return 2;
	}
	window_ = o_.window_chunks ? o_.window_chunks : kDefaultWindowChunks;
	if (!o_.baseline_dir.empty()) {
		if (std::string e = store_.open(o_.baseline_dir, true); !e.empty()) {
			err_ = "--baseline-dir: " + e;
			return 2;
		}
	}
	printf("listening on %s:%u (%s, %zu worker core(s)), receiving into %s\n", ip_str(o_.ip).c_str(), o_.udp_port,
	       port_.label().c_str(), workers_.size(), o_.recv_dir.c_str());
	fflush(stdout);

	for (;;) {
		// Wait for a peer's hello.
		Event *ev = nullptr;
		while (!ev) {
			if (interrupted()) {
				err_ = "interrupted";
				return 1;
			}
			ev = next_event(mono_ns() + 100'000'000);
		}
		std::unique_ptr<Event> first(ev);
		if (ev->kind != Event::Kind::new_peer)
			continue;
		// Security off: the first packet must hold a whole HELLO.  On: worker 0 let
		// it through only with a valid address token and a ClientHello's start,
		// and TLS judges the rest.
		Hello probe;
		if (!o_.crypto && !hello_from_first_packet(ev->body, &probe).empty()) {
			refused_first_packets_++;
			continue;
		}
		session_id_ = ev->session_id;
		first_packet_ns_ = mono_ns();
		start_ns_ = first_packet_ns_;
		path_ = std::make_shared<PeerPath>();
		path_->ip = ev->src_ip;
		path_->udp_port = rte_cpu_to_be_16(o_.udp_port);
		path_->mac = ev->mac;
		drivers::tx_template_init(&path_->tpl, iface_, ev->mac, ev->src_ip, path_->udp_port, port_.tx);
		steer_ports(path_.get(), o_.ip, 1, 0, false);
		sessions_ = make_sessions(session_id_, false, wire::kMaxStreams, 64);
		auto pkt = std::make_shared<std::vector<uint8_t>>(std::move(ev->body));
		if (o_.crypto) {
			ic_ = std::make_unique<InitialChannel>(*tls_, Handshake::Role::server, session_id_, o_.mtu - 20u - 8u,
							       kHandshakeRto, encode(port_params()));
			ic_->on_packet(*pkt, mono_ns());
		}
		for (size_t i = 0; i < workers_.size(); i++) {
			auto s = sessions_[i];
			auto p = std::shared_ptr<const PeerPath>(path_);
			bool replay = i == 0 && !o_.crypto;
			workers_[i]->post([s, p, pkt, replay](Worker &w) {
				w.attach(s, p);
				if (replay)
					w.replay(*pkt);
			});
		}
		std::string peer = ip_str(path_->ip);

		int rc = [&]() -> int {
			auto s0 = sessions_[0];
			auto *w0 = workers_[0].get();
			auto send = [&](MsgType t, std::vector<uint8_t> body) {
				auto b = std::make_shared<std::vector<uint8_t>>(std::move(body));
				w0->post([s0, t, b](Worker &) { s0->send_ctrl(uint16_t(t), *b); });
			};
			auto reject = [&](RejectCode c, const std::string &why) {
				send(MsgType::reject, encode(Reject{.code = c, .reason = why}));
				err_ = why;
				// The refusal must reach the sender before the session goes.
				wait_ctrl_flushed(std::min(o_.timeout_s, 3.0));
				return 1;
			};
			if (ic_) {
				if (std::string e =
					    handshake(first_packet_ns_ + uint64_t(std::min(o_.timeout_s, kHandshakeLimitS) * 1e9));
				    !e.empty()) {
					err_ = e;
					return 1;
				}
				printf("peer %s authenticated as '%s' (TLS 1.3, %.1f ms)\n", peer.c_str(), tls_peer_.c_str(),
				       handshake_ns_ / 1e6);
				fflush(stdout);
			}
			Hello hello;
			bool have_hello = false, have_begin = false;
			// Sets up the layout: the sink's decoder, the assembler on every
			// worker.  Returns -1 when ready, else the exit code.
			auto prepare = [&](const Begin &b) -> int {
				have_begin = true;
				chunk_size_ = b.chunk_size;
				nb_chunks_ = b.nb_chunks;
				new_version_ = o_.baseline_dir.empty() ? 0 : b.new_version;
				delta_base_ = b.base_version;
				if (b.encoding == ChunkEncoding::hde)
					sink_->expect_encoded(delta_base_ ? base_map_->bytes() : std::span<const uint8_t>{},
							      delta_base_ ? hde::baseline_tag(base_.sha256) : 0);
				if (delta_base_)
					baseline_note_ = "delta against version " + std::to_string(delta_base_);
				assembler_ = std::make_unique<amst::ChunkAssembler>(nb_chunks_, window_, hello.mss, sink_.get());
				if (std::string e2 = sink_->start(chunk_size_, nb_chunks_, window_, port_.socket_id, assembler_.get());
				    !e2.empty())
					return reject(RejectCode::io_error, e2);
				auto *as = assembler_.get();
				post_all([as](Worker &w) {
					if (w.session()) {
						w.session()->attach_receiver(as);
						w.release_held(w.now_ns()); // the data that followed the hello
					}
				});
				if (!sync_workers(5)) {
					err_ = "a worker did not answer within 5 s";
					return 1;
				}
				return -1;
			};
			silence_since_ = 0;
			for (;;) {
				uint64_t now = mono_ns();
				maybe_update_keys(now);
				if (interrupted()) {
					err_ = "interrupted";
					return 1;
				}
				while (Event *e = next_event(0)) {
					std::unique_ptr<Event> hold(e);
					if (e->kind == Event::Kind::session_closed) {
						if (ok_)
							return 0;
						err_ = "peer " + peer + " closed the session: " + e->text;
						return 1;
					}
					if (e->kind != Event::Kind::ctrl_message)
						continue;
					switch (MsgType(e->type)) {
					case MsgType::hello: {
						if (have_hello)
							break;
						if (std::string err = decode(e->body, &hello); !err.empty())
							return reject(RejectCode::bad_request, "malformed " + err);
						have_hello = true;
						object_size_ = hello.size;
						object_name_ = hello.name;
						sink_ = std::make_unique<SinkFile>();
						bool no_space = false;
						if (std::string err = sink_->create(o_.recv_dir, hello.name, hello.size, session_id_, &no_space);
						    !err.empty())
							return reject(no_space ? RejectCode::no_space : RejectCode::io_error, err);
						file_path_ = sink_->final_path();
						printf("receiving '%s' (%" PRIu64 " bytes) from %s\n", hello.name.c_str(), hello.size,
						       peer.c_str());
						fflush(stdout);
						steer_ports(path_.get(), o_.ip, hello.rx_queues, hello.reta_size, hello.rss);
						if (!o_.baseline_dir.empty() && hello.base_version)
							accept_baseline(hello);
						const uint64_t accepted = have_base_ ? base_.version : 0;
						// The handshake gave the sender an RTT: the layout is set
						// now and data may follow the accept at once.
						if (hello.rtt_us) {
							Begin b = layout_for(hello, accepted);
							if (std::string err = check_begin(b, hello, accepted); !err.empty())
								return reject(RejectCode::bad_request, err);
							if (!o_.window_chunks)
								window_ = auto_window(hello, b);
							if (int rc = prepare(b); rc >= 0)
								return rc;
						}
						send(MsgType::accept, encode(Accept{.window_chunks = window_,
										    .rx_queues = uint16_t(workers_.size()),
										    .reta_size = port_.reta_size,
										    .rss = port_.rss_hf != 0,
										    .base_version = accepted,
										    .ready = have_begin}));
						break;
					}
					case MsgType::begin: {
						if (!have_hello)
							break;
						// The ready ACCEPT set the layout: a sender that sends
						// its own anyway does not speak this version.
						if (have_begin)
							return reject(RejectCode::bad_request,
								      "begin: the layout was already set by the hello");
						Begin b;
						std::string err = decode(e->body, &b);
						if (err.empty())
							err = check_begin(b, hello, have_base_ ? base_.version : 0);
						if (!err.empty())
							return reject(RejectCode::bad_request, err);
						if (int rc = prepare(b); rc >= 0)
							return rc;
						send(MsgType::ready, {});
						break;
					}
					case MsgType::digest: {
						Digest d;
						if (std::string err = decode(e->body, &d); !err.empty())
							return reject(RejectCode::bad_request, "malformed " + err);
						sha_ = d.sha256;
						sha_known_ = true;
						break;
					}
					default:
						break;
					}
				}
				// A failed write or sync ends the transfer at once, digest or not.
				if (have_begin && (sink_->failed() || (sink_->done() && sha_known_)) && !ok_ && !done_ns_) {
					if (sink_->failed()) {
						send(MsgType::result, encode(Result{.ok = false, .bytes = 0, .detail = sink_->error()}));
						err_ = sink_->error();
						done_ns_ = mono_ns();
						// The verdict first: abort() joins a flusher that may hang in
						// fdatasync on a failing disk.
						wait_ctrl_flushed(3);
						sink_->abort();
						return 1;
					}
					std::string err = sink_->commit(sha_);
					done_ns_ = mono_ns();
					progress_receiver(done_ns_, true);
					if (!err.empty()) {
						send(MsgType::result, encode(Result{.ok = false, .bytes = object_size_, .detail = err}));
						err_ = err;
						// Let the verdict reach the sender before the session goes.
						wait_ctrl_flushed(3);
						return 1;
					}
					ok_ = true;
					encoded_bytes_ = sink_->bytes_received();
					send(MsgType::result, encode(Result{.ok = true, .bytes = object_size_, .detail = file_path_}));
					// The file is safe; the verdict gets a few seconds to reach the sender.
					wait_ctrl_flushed(std::min(o_.timeout_s, 5.0));
					adopt_baseline(file_path_);
					return 0;
				}
				if (peer_silent(totals().rx_packets, now)) {
					err_ = "peer " + peer + " silent for " + std::to_string(int(o_.timeout_s)) + " s";
					return 1;
				}
				if (have_begin)
					progress_receiver(now, false);
				std::this_thread::sleep_for(std::chrono::milliseconds(2));
			}
		}();

		if (rc != 0 && sink_)
			sink_->abort();
		if (rc != 0 && !done_ns_)
			done_ns_ = mono_ns();
		detach_all();
		report(rc == 0, err_);
		if (rc != 0)
			fprintf(stderr, "dwcp-gateway: %s\n", err_.c_str());
		assembler_.reset();
		sink_.reset();
		if (o_.once || interrupted())
			return rc;
		// Serve the next one.
		err_.clear();
		ok_ = false;
		sha_known_ = false;
		done_ns_ = first_packet_ns_ = 0;
		last_progress_ns_ = last_bytes_ = 0;
		ic_.reset();
		keys_ = confirmed_ = false;
		have_base_ = false;
		base_map_.reset();
		new_version_ = delta_base_ = encoded_bytes_ = 0;
		window_ = o_.window_chunks ? o_.window_chunks : kDefaultWindowChunks;
		baseline_note_.clear();
		handshake_ns_ = key_updates_ = 0;
		tls_peer_.clear();
		printf("listening on %s:%u\n", ip_str(o_.ip).c_str(), o_.udp_port);
		fflush(stdout);
	}
}

void Gateway::control()
{
	start_ns_ = mono_ns();
	int rc;
	if (o_.listen) {
		rc = control_receiver();
		if (rc == 2)
			fprintf(stderr, "dwcp-gateway: %s\n", err_.c_str());
	} else {
		rc = control_sender();
		if (!done_ns_)
			done_ns_ = mono_ns();
		if (rc != 0)
			fprintf(stderr, "dwcp-gateway: %s\n", err_.c_str());
		detach_all();
		report(rc == 0, err_);
	}
	exit_code_ = rc;
	for (auto &w : workers_)
		w->stop();
}

int Gateway::run()
{
	if (std::string e = setup(); !e.empty()) {
		fprintf(stderr, "dwcp-gateway: %s\n", e.c_str());
		return 2;
	}
	std::thread ctl([this] { control(); });
	std::vector<Worker *> *ws = &worker_ptrs_;
	rte_eal_mp_remote_launch(
		[](void *arg) -> int {
			auto *v = static_cast<std::vector<Worker *> *>(arg);
			unsigned lc = rte_lcore_id();
			for (Worker *w : *v)
				if (w->config().lcore == lc)
					return w->run();
			return 0;
		},
		ws, CALL_MAIN);
	rte_eal_mp_wait_lcore();
	ctl.join();
	return exit_code_;
}

} // namespace

int gateway_run(const GatewayOptions &o)
{
	struct sigaction sa {};
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, nullptr);
	sigaction(SIGTERM, &sa, nullptr);
	Gateway g(o);
	return g.run();
}

} // namespace dwcp::control
