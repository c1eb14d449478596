#pragma once
// dwcp-gateway: one gateway host's program.  The EAL takes its options first
// (cores, devices, memory), then `--` and ours:
//
//   dwcp-gateway -l 0-1 --vdev net_af_packet0,iface=b0 -- --ip 10.99.0.12 --listen --recv-dir /srv/in
//   dwcp-gateway -l 0-1 --vdev net_af_packet0,iface=a0 -- --ip 10.99.0.11 --peer 10.99.0.12 --send /srv/vm.img
//
// Every EAL lcore runs a poll-mode worker with its own RX/TX queue pair (the main
// lcore too); the control-plane thread runs beside them, unpinned: it sets the
// session up, runs the stream tuner, prints progress and the summary, and talks
// to the workers only through rings (dataplane/worker.h).
#include <cstdint>
#include <string>
#include <vector>

#include "control/handshake.h"
#include "dataplane/amst/cc/cc.h"

namespace dwcp::control {

struct GatewayOptions {
	uint32_t ip = 0;              // network order
	uint16_t udp_port = 7470;
	std::string dev;              // ethdev name; empty = the only port
	uint16_t mtu = 1500;
	// Receiver
	bool listen = false;
	std::string recv_dir;
	bool once = false;
	// Sender
	uint32_t peer = 0;            // network order
	std::string send_path;
	// Transport
	uint64_t link_mbit = 0;       // 0 = the port's link speed
	amst::CcAlgo cc = amst::CcAlgo::bbr;
	uint16_t streams = 0;         // 0 = autotune
	uint16_t max_streams = 64;
	uint32_t window_chunks = 0;   // 0 = from the bandwidth-delay product
	// Security (on by default): TLS 1.3 with mutual certificates, then AES-256-GCM
	// on every packet.  Off only for measurements on links the operator owns.
	bool crypto = true;
	TlsConfig tls;
	uint64_t key_update_packets = 1ull << 23; // AES-GCM's per-key packet budget (RFC 9001 6.6)
	double key_update_s = 3600;
	// Deltas: the versions of each object sent or received are kept here, and the
	// next transfer of the same name sends only what changed against the newest
	// version both sides hold (HDE).  Empty: every transfer is whole.
	std::string baseline_dir;
	unsigned baseline_keep = 2; // versions kept per object
	// Operator
	double progress_s = 1;
	std::string report_json;
	double timeout_s = 30;
};

// Parses our options (what follows `--`; --config FILE reads more from a file, one
// option a line without the dashes).  Returns "" or one line naming the offending
// option (and the file and line); *help is set for --help.
[[nodiscard]] std::string parse_options(const std::vector<std::string> &args, GatewayOptions *o, bool *help);
// The checks across options (what to do, required pairs, credentials).
[[nodiscard]] std::string check_options(GatewayOptions *o, bool streams_set);
const char *usage();

// The whole program after rte_eal_init: returns the exit code (0 verified,
// 1 transfer failed, 2 bad set-up).
int gateway_run(const GatewayOptions &o);

} // namespace dwcp::control
