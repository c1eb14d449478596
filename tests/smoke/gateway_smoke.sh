#!/usr/bin/env bash
# Smoke test of the real gateway: two dwcp-gateway processes in network namespaces
# joined by ../shared/wan-link (100 ms RTT, 1 Gbit/s, 1% loss) move a 64 MiB file
# over a mutually authenticated, encrypted session while an attacker on the WAN
# replays, reorders, flips, truncates and forges its packets and floods the
# receiver with handshakes; then bad command lines must fail cleanly.
#
#   tests/smoke/gateway_smoke.sh BUILD/control/dwcp-gateway
#
# Checks: both gateways exit 0, the receiver's report says ok and carries the
# source's sha256, the received file has that sha256, and the receive directory
# holds that file and nothing else (no partial or temporary file).  Bad arguments
# (no --ip, an unknown option, an unknown --cc) exit 2 with one error line naming
# the culprit.  The link is torn down whatever happens.  Needs root.
# WAN_LINK=PATH overrides where wan-link is (default ../shared/wan-link).
set -euo pipefail

say() { echo "smoke: $*"; }
fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

gw=${1:-}
[[ -n $gw ]] || fail "usage: $0 PATH/TO/dwcp-gateway"
[[ -x $gw ]] || fail "no executable gateway at '$gw'"
gw=$(realpath "$gw")
[[ $(id -u) == 0 ]] || fail "must run as root (network namespaces)"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# ../shared/wan-link beside the checkout, or shared/wan-link beside any folder above it.
wan_link=${WAN_LINK:-}
if [[ -z $wan_link ]]; then
	d=$top
	while [[ $d != / && -z $wan_link ]]; do
		[[ -x $(dirname "$d")/shared/wan-link ]] && wan_link=$(dirname "$d")/shared/wan-link
		d=$(dirname "$d")
	done
	wan_link=${wan_link:-$top/../shared/wan-link}
fi
[[ -x $wan_link ]] || fail "no wan-link at '$wan_link' (set WAN_LINK)"
command -v python3 >/dev/null || fail "missing python3: apt-get install -y python3"
command -v openssl >/dev/null || fail "missing openssl: apt-get install -y openssl"

prefix=smk$$
work=$(mktemp -d /tmp/dwcp-smoke.XXXXXX)
pids=()
cleanup() {
	local status=$? pid
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	"$wan_link" --prefix "$prefix" down >/dev/null 2>&1 || true
	# EAL leaves a runtime directory per --file-prefix, even with --no-shconf.
	rm -rf /var/run/dpdk/dwcp-{recv,send,bad,recvmw,sendmw}-"$prefix"
	if ((status == 0)); then
		rm -rf "$work"
	else
		# Keep the logs and reports to read; drop the data.
		rm -rf "$work/recv" "$work/recv_mw" "$work/recv2" "$work/smoke-64m.bin" "$work/interrupted.bin" "$work/delta"
		echo "smoke: logs and reports kept in $work" >&2
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# EAL for one role: receiver on lcore 0 in site B, sender on lcore 1 in site A.
eal() {
	local role=$1 core=$2 iface=$3
	echo "-l $core --no-huge -m 1024 --no-pci --no-shconf --file-prefix dwcp-$role-$prefix --vdev net_af_packet0,iface=$iface,framecnt=4096"
}
# Output to a file makes C stdio buffer whole blocks: ask for lines, so
# "listening" shows when it is printed.
line_buffered=
if command -v stdbuf >/dev/null; then line_buffered="stdbuf -oL"; fi
# One field of a JSON report, as Python prints it (True/False for booleans).
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# Prints the last lines of a log, indented, to stderr.
show() { if [[ -s $1 ]]; then sed 's/^/  | /' "$1" | tail -n "${2:-10}" >&2; fi; }

# Credentials: the operator's CA and one certificate per site; and an intruder's
# own CA with a certificate that carries site A's name.
"$top/control/dwcp-certs" --out "$work/certs" site-a.dwcp.test site-b.dwcp.test >/dev/null \
	|| fail "control/dwcp-certs could not make the test certificates"
"$top/control/dwcp-certs" --out "$work/intruder" site-a.dwcp.test >/dev/null \
	|| fail "control/dwcp-certs could not make the intruder's certificates"
# sec ROLE [CERTDIR]: the security options of the sender (site A) or receiver (site B).
sec() {
	local dir=${2:-$work/certs}
	if [[ $1 == send ]]; then
		echo "--cert $dir/site-a.dwcp.test.pem --key $dir/site-a.dwcp.test.key --ca $dir/ca.pem --peer-name site-b.dwcp.test"
	else
		echo "--cert $dir/site-b.dwcp.test.pem --key $dir/site-b.dwcp.test.key --ca $dir/ca.pem --peer-name site-a.dwcp.test"
	fi
}

say "wan-link up --prefix $prefix: 100 ms RTT, 1000 Mbit/s, 1% loss"
"$wan_link" --prefix "$prefix" up --rtt-ms 100 --rate-mbit 1000 --loss-pct 1 >/dev/null \
	|| fail "wan-link up --prefix $prefix failed"

# ---- case 1: a 64 MiB transfer ----
src=$work/smoke-64m.bin
head -c $((64 << 20)) /dev/urandom >"$src"
src_sha=$(sha256sum "$src" | cut -d' ' -f1)
mkdir "$work/recv"
say "source $src sha256 $src_sha"

# shellcheck disable=SC2046,SC2086 # eal and line_buffered print words to split
ip netns exec "$prefix-b" $line_buffered "$gw" $(eal recv 0 b0) -- --ip 10.99.0.12 --listen --recv-dir "$work/recv" --once \
	--link-mbit 1000 $(sec recv) --report-json "$work/recv.json" >"$work/recv.log" 2>"$work/recv.err" &
recv_pid=$!
pids+=("$recv_pid")
for _ in $(seq 30); do
	grep -q listening "$work/recv.log" 2>/dev/null && break
	kill -0 "$recv_pid" 2>/dev/null || { show "$work/recv.err"; fail "receiver exited before listening"; }
	sleep 0.1
done
grep -q listening "$work/recv.log" || say "receiver printed no 'listening' in 3 s, starting the sender anyway"

# The attacker sits in the WAN namespace (tests/smoke/attacker.py says what it does).
ip netns exec "$prefix-wan" python3 "$top/tests/smoke/attacker.py" >"$work/attack.json" 2>"$work/attack.err" &
attack_pid=$!
pids+=("$attack_pid")

say "sending"
# Paced at 400 Mbit/s: the session (1.3 s of data) outlasts the attacker, a
# python sender on the same two cores, whose packets must reach a live session.
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-a" $line_buffered "$gw" $(eal send 1 a0) -- --ip 10.99.0.11 --peer 10.99.0.12 --send "$src" \
	--link-mbit 400 $(sec send) --report-json "$work/send.json" >"$work/send.log" 2>"$work/send.err" &
send_pid=$!
pids+=("$send_pid")

# Meanwhile the kernel in site A throws garbage at the receiver's DWCP port:
# datagrams shorter than a header, headers of another version, and well-formed
# headers of sessions that do not exist.  Each must be dropped and counted, and
# the transfer must not notice.
ip netns exec "$prefix-a" python3 - <<'PY' &
import os, socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = ('10.99.0.12', 7470)
s.sendto(b'x', dst)  # the kernel holds only 3 datagrams while it resolves ARP (100 ms away)
time.sleep(0.5)
for i in range(600):
    s.sendto(os.urandom(1 + i % 19), dst)                                           # truncated
    s.sendto(bytes([0x70]) + os.urandom(40), dst)                                    # version 7
    s.sendto(struct.pack('>BBHQQ', 0x10, 2, 0, 0xdead0000 + i, i) + os.urandom(60), dst)  # no such session
    time.sleep(0.001)
PY
garbage_pid=$!
pids+=("$garbage_pid")

# 64 MiB at 1 Gbit/s takes under a second of wire time; 90 s is for slow machines.
wait_exit() { # pid name seconds -> the exit code in $code, or fails when it hangs
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { code=0; wait "$1" || code=$?; return; }
		sleep 0.1
	done
	fail "$2 still running after $3 s (logs: $work/$2.log, .err)"
}
wait_exit "$send_pid" send 90
send_code=$code
if ((send_code != 0)); then
	# The sender gave up; the receiver need not run into its own timeout too.
	sleep 2
	kill "$recv_pid" 2>/dev/null || true
fi
wait_exit "$recv_pid" recv 40
recv_code=$code
say "sender exit $send_code, receiver exit $recv_code"
if ((send_code != 0 || recv_code != 0)); then
	show "$work/send.err"; show "$work/recv.err"
	why=
	for role in send recv; do
		[[ -s $work/$role.json ]] && why+=" $role: '$(field "$work/$role.json" error)'"
	done
	fail "transfer failed: sender exit $send_code, receiver exit $recv_code;${why:- no reports}"
fi

[[ -s $work/recv.json ]] || fail "receiver left no report (--report-json)"
[[ -s $work/send.json ]] || fail "sender left no report (--report-json)"
[[ $(field "$work/recv.json" ok) == True ]] || fail "receiver report not ok: $(field "$work/recv.json" error)"
[[ $(field "$work/send.json" ok) == True ]] || fail "sender report not ok: $(field "$work/send.json" error)"
rep_sha=$(field "$work/recv.json" sha256)
[[ $rep_sha == "$src_sha" ]] || fail "receiver reports sha256 $rep_sha, source has $src_sha"
got=$(field "$work/recv.json" file)
[[ -f $got ]] || fail "received file '$got' (from the report) does not exist"
got_sha=$(sha256sum "$got" | cut -d' ' -f1)
[[ $got_sha == "$src_sha" ]] || fail "received file $got has sha256 $got_sha, source has $src_sha"
others=$(find "$work/recv" -mindepth 1 ! -path "$(realpath "$got")" -printf '%f ')
[[ -z $others ]] || fail "receive directory holds more than the file: $others"
wait "$garbage_pid" || fail "the garbage sender failed"
bad=$(field "$work/recv.json" rx_bad_header)
unknown=$(field "$work/recv.json" rx_unknown_session)
# The link loses 1% of them on the way.
((bad >= 1140)) || fail "receiver counted $bad bad headers, 1201 garbage datagrams were sent"
((unknown >= 570)) || fail "receiver counted $unknown packets of unknown sessions, 600 were sent"
say "garbage: $bad bad headers and $unknown unknown-session packets dropped and counted"

# Every attack dropped and counted, and the file (checked above) intact.
wait "$attack_pid" || { show "$work/attack.err"; fail "the attacker failed"; }
attack() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/attack.json" "$1"; }
replayed=$(($(attack replayed) + $(attack reordered)))
broken=$(($(attack bit_flipped) + $(attack truncated) + $(attack forged)))
flood=$(($(attack flood_no_token) + $(attack flood_forged_token)))
r=$(field "$work/recv.json" rx_replay); ro=$(field "$work/recv.json" rx_replay_old)
af=$(field "$work/recv.json" rx_auth_failed)
lim=$(field "$work/recv.json" rx_initial_limited); tok=$(field "$work/recv.json" rx_bad_token)
bini=$(field "$work/recv.json" rx_bad_initial)
retry=$(field "$work/recv.json" retry_sent); busy=$(field "$work/recv.json" rx_busy)
say "attacks sent: $(cat "$work/attack.json")"
say "receiver counted: replay $r, too old $ro, auth failed $af, handshakes limited $lim, bad tokens $tok," \
	"RETRYs $retry, busy $busy, bad handshake packets $bini"
# Forgeries never open.  Every other attack packet is refused either way: an
# altered copy that arrives before its original fails authentication (and leaves
# the replay window alone, or the original would be refused and the file would
# not verify), one that arrives after it is a replay.  A replayed copy whose
# original the emulator lost (1%) stands in for it: allow 5%.
((af >= $(attack forged))) || fail "forged: $(attack forged) sent, $af failed authentication"
((af + r + ro >= (replayed + broken) * 95 / 100)) \
	|| fail "attacks: $((replayed + broken)) sent, $((af + r + ro)) refused (auth $af, replay $((r + ro)))"
((lim + tok + retry + busy >= flood)) || fail "handshake flood: $flood sent, $((lim + tok + retry + busy)) counted"
# Unpadded INITIALs get no RETRY, and the session's handshake takes no packet from
# anyone but its peer.
odd=$(($(attack unpadded_initial) + $(attack foreign_handshake)))
((bini >= odd)) || fail "unpadded and foreign handshake packets: $odd sent, $bini refused"
# The flood from one address earns it at most the limiter's burst of RETRYs, plus
# one per made-up address (each has a fresh bucket): never one per packet.
((retry <= 40 + 20 * 5 + $(attack flood_forged_token) + 1)) || fail "handshake flood: $retry RETRYs sent"
[[ $(field "$work/send.json" crypto) == True ]] || fail "the sender did not seal its packets"
# The receiver's parameters came with its handshake: a whole transfer's data
# follows the hello at once, and the receiver holds what comes before it is ready.
[[ $(field "$work/send.json" early_data) == True ]] || fail "the sender waited for the accept before its data"
say "data before the receiver was ready: $(field "$work/recv.json" rx_held) packets held," \
	"$(field "$work/recv.json" rx_held_over) beyond the limit"
# What was held is delivered once the receiver is ready, never thrown away.
[[ $(field "$work/recv.json" rx_held_dropped) == 0 ]] || fail "held data was dropped, not delivered"
say "transfer ok: $(field "$work/recv.json" bytes) bytes in $(field "$work/recv.json" seconds) s," \
	"$(field "$work/recv.json" goodput_mbit) Mbit/s, streams $(field "$work/send.json" streams), sha256 match"

# ---- case 1b: two workers a side, with key updates ----
# Each gateway runs two workers on two af_packet queue pairs (PACKET_FANOUT
# spreads flows by hash, not by our stream ownership), so streams reach the
# wrong worker and are handed to their owner over the hand-off rings.  256 MiB
# with new keys every 5000 packets (and at most every second): both sides update
# their sending keys during the transfer without a pause.
big=$work/interrupted.bin
head -c $((256 << 20)) /dev/urandom >"$big"
big_sha=$(sha256sum "$big" | cut -d' ' -f1)
mkdir "$work/recv_mw"
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-b" "$gw" $(eal recvmw 0-1 b0),qpairs=2 -- --ip 10.99.0.12 --listen --recv-dir "$work/recv_mw" \
	--once --link-mbit 1000 $(sec recv) --key-update-packets 5000 --report-json "$work/recv_mw.json" >"$work/recv_mw.log" 2>"$work/recv_mw.err" &
recv_pid=$!
pids+=("$recv_pid")
for _ in $(seq 30); do grep -q listening "$work/recv_mw.log" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-a" "$gw" $(eal sendmw 0-1 a0),qpairs=2 -- --ip 10.99.0.11 --peer 10.99.0.12 --send "$big" \
	--link-mbit 1000 --streams 8 $(sec send) --key-update-packets 5000 --report-json "$work/send_mw.json" >"$work/send_mw.log" 2>"$work/send_mw.err" &
send_pid=$!
pids+=("$send_pid")
wait_exit "$send_pid" send_mw 90
send_code=$code
wait_exit "$recv_pid" recv_mw 40
recv_code=$code
((send_code == 0 && recv_code == 0)) || { show "$work/send_mw.err"; show "$work/recv_mw.err"; fail "two workers: sender exit $send_code, receiver exit $recv_code"; }
[[ $(field "$work/recv_mw.json" worker_cores) == 2 ]] || fail "two workers: the receiver ran $(field "$work/recv_mw.json" worker_cores) workers"
got_sha=$(sha256sum "$work/recv_mw/$(basename "$big")" | cut -d' ' -f1)
[[ $got_sha == "$big_sha" ]] || fail "two workers: received file has sha256 $got_sha, source has $big_sha"
(($(field "$work/send_mw.json" key_updates_sent) >= 1)) || fail "two workers: the sender never updated its keys"
(($(field "$work/recv_mw.json" key_updates_seen) >= 1)) || fail "two workers: the receiver never saw a key update"
# Data held before the receiver was ready, some of it handed between the workers,
# is all delivered.
[[ $(field "$work/recv_mw.json" rx_held_dropped) == 0 ]] || fail "two workers: held data was dropped, not delivered"
say "two workers a side: ok, $(field "$work/recv_mw.json" goodput_mbit) Mbit/s, sha256 match," \
	"held $(field "$work/recv_mw.json" rx_held) packets before the receiver was ready," \
	"key updates sent $(field "$work/send_mw.json" key_updates_sent), seen $(field "$work/recv_mw.json" key_updates_seen)"

# ---- case 1d: deltas against a baseline both sites hold ----
# Round 1 sends the 64 MiB file whole and both sides record it as version 1;
# round 2 sends it with 5% of its pages changed a little: only HDE deltas cross,
# and the result is byte-identical.  Round 3 finds the receiver's baseline
# changed on disk behind the store's back: it is not used, the file goes whole
# and still arrives intact.
mkdir -p "$work/delta/v2" "$work/delta/recv" "$work/delta/base-a" "$work/delta/base-b"
delta_round() { # round source -> exit codes checked, reports in $work/delta/{send,recv}ROUND.json
	local r=$1 f=$2 code scode
	# shellcheck disable=SC2046,SC2086
	ip netns exec "$prefix-b" $line_buffered "$gw" $(eal recv 0 b0) -- --ip 10.99.0.12 --listen --once \
		--recv-dir "$work/delta/recv" --baseline-dir "$work/delta/base-b" $(sec recv) --link-mbit 1000 \
		--report-json "$work/delta/recv$r.json" >"$work/delta/recv$r.log" 2>"$work/delta/recv$r.err" &
	recv_pid=$!
	pids+=("$recv_pid")
	for _ in $(seq 30); do grep -q listening "$work/delta/recv$r.log" 2>/dev/null && break; sleep 0.1; done
	code=0
	# shellcheck disable=SC2046
	timeout 90 ip netns exec "$prefix-a" "$gw" $(eal send 1 a0) -- --ip 10.99.0.11 --peer 10.99.0.12 --send "$f" \
		--baseline-dir "$work/delta/base-a" $(sec send) --link-mbit 1000 --report-json "$work/delta/send$r.json" \
		>"$work/delta/send$r.log" 2>"$work/delta/send$r.err" || code=$?
	scode=$code
	wait_exit "$recv_pid" "delta/recv$r" 30 # sets code: the receiver's
	((scode == 0 && code == 0)) || { show "$work/delta/send$r.err"; show "$work/delta/recv$r.err"; fail "delta round $r: sender exit $scode, receiver exit $code"; }
	cmp -s "$f" "$work/delta/recv/smoke-64m.bin" || fail "delta round $r: the received file differs from the source"
}
delta_round 1 "$src"
[[ $(field "$work/delta/send1.json" delta) == False ]] || fail "delta round 1: a delta without a baseline"
[[ -f $work/delta/base-a/smoke-64m.bin@1 && -f $work/delta/base-b/smoke-64m.bin@1 ]] \
	|| fail "delta round 1: version 1 not recorded on both sides"
cp "$src" "$work/delta/v2/smoke-64m.bin"
python3 - "$work/delta/v2/smoke-64m.bin" <<'PY'
import os, random, sys
path = sys.argv[1]
pages = os.path.getsize(path) // 4096
rnd = random.Random(5)
with open(path, 'r+b') as f:
    for page in rnd.sample(range(pages), pages // 20):  # 5% of the pages, a few bytes each
        f.seek(page * 4096 + rnd.randrange(4096 - 64))
        f.write(os.urandom(rnd.randrange(1, 64)))
PY
delta_round 2 "$work/delta/v2/smoke-64m.bin"
[[ $(field "$work/delta/send2.json" delta) == True ]] || fail "delta round 2: not sent as a delta ($(field "$work/delta/send2.json" baseline))"
# Whether the receiver holds the baseline is the accept's to say: no data before it.
[[ $(field "$work/delta/send2.json" early_data) == False ]] || fail "delta round 2: data before the accept"
ratio=$(field "$work/delta/send2.json" delta_ratio)
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) > 50 else 1)" "$ratio" || fail "delta round 2: ratio only $ratio"
say "deltas: round 2 sent $(field "$work/delta/send2.json" payload_bytes) bytes for 64 MiB (${ratio}x), byte-identical"
# Round 3: the receiver's version 2 changes on disk; the store must notice.
printf 'tampered' | dd of="$work/delta/base-b/smoke-64m.bin@2" bs=1 seek=1000 conv=notrunc status=none
cp "$src" "$work/delta/v3.bin" && mv "$work/delta/v3.bin" "$work/delta/v2/smoke-64m.bin"
delta_round 3 "$work/delta/v2/smoke-64m.bin"
[[ $(field "$work/delta/send3.json" delta) == False ]] || fail "delta round 3: a delta against a tampered baseline"
grep -q "sha256 mismatch" "$work/delta/recv3.err" || { show "$work/delta/recv3.err"; fail "delta round 3: the receiver did not name the bad baseline"; }
say "deltas: a tampered baseline is refused ($(grep -m1 'sha256 mismatch' "$work/delta/recv3.err")), whole transfer, byte-identical"

# ---- case 1c: an intruder with a certificate from another CA ----
# It carries site A's name but does not chain to the operator's CA: the receiver
# refuses the handshake, nothing is received, and both sides say why.
mkdir "$work/recv_in"
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-b" $line_buffered "$gw" $(eal recv 0 b0) -- --ip 10.99.0.12 --listen --recv-dir "$work/recv_in" \
	--once $(sec recv) --timeout-s 10 --report-json "$work/recv_in.json" >"$work/recv_in.log" 2>"$work/recv_in.err" &
recv_pid=$!
pids+=("$recv_pid")
for _ in $(seq 30); do grep -q listening "$work/recv_in.log" 2>/dev/null && break; sleep 0.1; done
code=0
# shellcheck disable=SC2046
# It trusts the operator's CA besides its own (so it accepts the receiver): the
# refusal is the receiver's.
cat "$work/intruder/ca.pem" "$work/certs/ca.pem" >"$work/intruder/both.pem"
timeout 60 ip netns exec "$prefix-a" "$gw" $(eal send 1 a0) -- $(sec send "$work/intruder" | sed "s|$work/intruder/ca.pem|$work/intruder/both.pem|") --ip 10.99.0.11 \
	--peer 10.99.0.12 --send "$src" --timeout-s 10 >"$work/send_in.log" 2>"$work/send_in.err" || code=$?
send_code=$code
wait_exit "$recv_pid" recv_in 30
((send_code == 1)) || { show "$work/send_in.err"; fail "intruder: sender exit $send_code, expected 1"; }
((code == 1)) || { show "$work/recv_in.err"; fail "intruder: receiver exit $code, expected 1"; }
grep -q "TLS handshake.*peer certificate rejected" "$work/recv_in.err" || { show "$work/recv_in.err"; fail "intruder: the receiver does not say it rejected the certificate"; }
left=$(find "$work/recv_in" -mindepth 1 -printf '%f ')
[[ -z $left ]] || fail "intruder: files left behind: $left"
say "intruder: refused: $(grep -m1 'TLS handshake' "$work/recv_in.err")"
grep -q "dwcp-gateway: TLS handshake" "$work/send_in.err" || { show "$work/send_in.err"; fail "intruder: its own side does not say the handshake failed"; }
say "intruder: its side: $(grep -m1 'dwcp-gateway:' "$work/send_in.err")"

# ---- case 2: an interrupted transfer leaves nothing that looks complete ----
# The receiver is stopped (SIGTERM) mid-transfer of a 256 MiB file: it must exit
# non-zero, and its directory must hold neither the file nor its temporary part.
# The sender then finds its peer silent and fails too.
mkdir "$work/recv2"
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-b" $line_buffered "$gw" $(eal recv 0 b0) -- $(sec recv) --ip 10.99.0.12 --listen --recv-dir "$work/recv2" --once \
	--link-mbit 1000 --report-json "$work/recv2.json" >"$work/recv2.log" 2>"$work/recv2.err" &
recv_pid=$!
pids+=("$recv_pid")
for _ in $(seq 30); do grep -q listening "$work/recv2.log" 2>/dev/null && break; sleep 0.1; done
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-a" $line_buffered "$gw" $(eal send 1 a0) -- $(sec send) --ip 10.99.0.11 --peer 10.99.0.12 --send "$big" \
	--link-mbit 1000 --timeout-s 3 --report-json "$work/send2.json" >"$work/send2.log" 2>"$work/send2.err" &
send_pid=$!
pids+=("$send_pid")
for _ in $(seq 100); do grep -q "^receiving" "$work/recv2.log" 2>/dev/null && break; sleep 0.1; done
sleep 0.5
kill -TERM "$recv_pid"
wait_exit "$recv_pid" recv2 30
recv_code=$code
wait_exit "$send_pid" send2 30
send_code=$code
((recv_code != 0)) || fail "interrupted receiver exited 0"
((send_code != 0)) || fail "sender of an interrupted transfer exited 0"
left=$(find "$work/recv2" -mindepth 1 -printf '%f ')
[[ -z $left ]] || fail "interrupted transfer left files behind: $left"
say "interrupted: receiver exit $recv_code, sender exit $send_code ($(grep -m1 'dwcp-gateway:' "$work/send2.err")), nothing left behind"

# ---- case 3: a disk too small for the object ----
# The receiver refuses it at the hello (statvfs, then fallocate), the sender
# reports the receiver's one-line reason, and nothing is left in the directory.
mkdir "$work/small"
mount -t tmpfs -o size=16m dwcp-smoke "$work/small" || fail "cannot mount a 16 MiB tmpfs for the full-disk case"
small_cleanup() { umount "$work/small" 2>/dev/null || true; }
# shellcheck disable=SC2046,SC2086
ip netns exec "$prefix-b" $line_buffered "$gw" $(eal recv 0 b0) -- $(sec recv) --ip 10.99.0.12 --listen --recv-dir "$work/small" --once \
	>"$work/recv3.log" 2>"$work/recv3.err" &
recv_pid=$!
pids+=("$recv_pid")
for _ in $(seq 30); do grep -q listening "$work/recv3.log" 2>/dev/null && break; sleep 0.1; done
code=0
# shellcheck disable=SC2046
timeout 60 ip netns exec "$prefix-a" "$gw" $(eal send 1 a0) -- $(sec send) --ip 10.99.0.11 --peer 10.99.0.12 --send "$src" \
	--timeout-s 10 >"$work/send3.log" 2>"$work/send3.err" || code=$?
wait_exit "$recv_pid" recv3 30
left=$(find "$work/small" -mindepth 1 -printf '%f ')
small_cleanup
((code == 1)) || { show "$work/send3.err"; fail "full disk: sender exit $code, expected 1"; }
grep -q "no space" "$work/send3.err" || { show "$work/send3.err"; fail "full disk: the sender's error does not say 'no space'"; }
[[ -z $left ]] || fail "full disk: files left behind: $left"
say "full disk: sender exit 1: $(grep 'no space' "$work/send3.err" | head -n1)"

# ---- case 4: a peer that is not there ----
code=0
# shellcheck disable=SC2046
timeout 60 ip netns exec "$prefix-a" "$gw" $(eal send 1 a0) -- $(sec send) --ip 10.99.0.11 --peer 10.99.0.99 --send "$src" \
	--timeout-s 5 >"$work/unreach.log" 2>"$work/unreach.err" || code=$?
((code == 1)) || { show "$work/unreach.err"; fail "unreachable peer: exit $code, expected 1"; }
grep -q "10.99.0.99 unreachable" "$work/unreach.err" || { show "$work/unreach.err"; fail "unreachable peer: no error naming it"; }
say "unreachable peer: exit 1: $(grep unreachable "$work/unreach.err" | head -n1)"

# ---- case 5: bad arguments ----
# Each must exit 2 and print one error line (besides DPDK's own log lines) that
# names what is wrong.  Run in site A so EAL finds its port and only our options fail.
bad_args() { # name expected-word gateway-options...
	local name=$1 word=$2 code=0
	shift 2
	# shellcheck disable=SC2046
	timeout 30 ip netns exec "$prefix-a" "$gw" $(eal bad 1 a0) -- "$@" >"$work/bad.out" 2>"$work/bad.err" || code=$?
	((code != 124)) || fail "$name: gateway still running after 30 s"
	((code == 2)) || { show "$work/bad.err"; fail "$name: exit $code, expected 2"; }
	# DPDK logs as 'EAL: ...', 'TELEMETRY: ...', 'NET_AF_PACKET: ...'; the rest is ours.
	grep -Ev '^[A-Z][A-Z0-9_]*: ' "$work/bad.err" | grep -v '^[[:space:]]*$' >"$work/bad.ours" || true
	local n; n=$(wc -l <"$work/bad.ours")
	((n == 1)) || { show "$work/bad.err" 20; fail "$name: expected one error line on stderr, got $n"; }
	grep -q -- "$word" "$work/bad.ours" || fail "$name: error does not name '$word': $(<"$work/bad.ours")"
	say "$name: exit 2: $(<"$work/bad.ours")"
}
bad_args "missing --ip" "--ip" --listen --recv-dir "$work/recv" --once
bad_args "unknown option" "--no-such-option" --ip 10.99.0.11 --peer 10.99.0.12 --send "$src" --no-such-option
bad_args "unknown --cc" "vegas" --ip 10.99.0.11 --peer 10.99.0.12 --send "$src" --cc vegas
bad_args "no credentials" "--cert" --ip 10.99.0.11 --peer 10.99.0.12 --send "$src"
# shellcheck disable=SC2046
bad_args "missing certificate" "$work/certs/nope.pem" --ip 10.99.0.11 --peer 10.99.0.12 --send "$src" \
	$(sec send | sed "s|$work/certs/site-a.dwcp.test.pem|$work/certs/nope.pem|")

say "PASS"
