#!/usr/bin/env bash
# Nothing of a transfer crosses the WAN in the clear: perf/wan-bench sends a known
# text file (numbered lines, each unique) between two gateways over wan-link
# (100 ms, 1 Gbit/s, 1% loss) with a capture of the WAN side, and no line of the
# file may be found in the capture.  The same run with --crypto off must find
# them: the check can see plaintext when there is some.
#
#   tests/smoke/wan_capture.sh BUILD/control/dwcp-gateway
set -euo pipefail

say() { echo "wan-capture: $*"; }
fail() { echo "wan-capture: FAIL: $*" >&2; exit 1; }

gw=${1:-}
[[ -x $gw ]] || fail "usage: $0 PATH/TO/dwcp-gateway"
[[ $(id -u) == 0 ]] || fail "must run as root (network namespaces)"
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
work=$(mktemp -d /tmp/dwcp-capture.XXXXXX)
trap 'rm -rf "$work"' EXIT
field() { python3 -c 'import json,sys; v=json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]]; print(v)' "$1" "$2"; }

for mode in on off; do
	code=0
	DWCP_GATEWAY=$(realpath "$gw") "$top/perf/wan-bench" --rtt-ms 100 --rate-mbit 1000 --loss-pct 1 --text --bytes 16M \
		--pcap "$work/wan-$mode.pcap" --crypto "$mode" --one-mode --no-baselines --prefix "cap$$" --work "$work" \
		>"$work/bench-$mode.out" 2>"$work/bench-$mode.err" || code=$?
	((code == 0)) || { tail -n 15 "$work/bench-$mode.err" >&2; fail "crypto $mode: wan-bench exit $code"; }
	out=$work/bench-$mode.out
	[[ $(field "$out" sha256_ok) == True ]] || fail "crypto $mode: the file did not arrive intact"
	frames=$(field "$out" pcap_frames)
	hits=$(field "$out" pcap_plaintext_hits)
	patterns=$(field "$out" pcap_patterns)
	# 16 MiB is about 12000 full packets: the capture must hold the transfer.
	((frames >= 11000)) || fail "crypto $mode: the capture holds only $frames frames"
	say "crypto $mode: $frames frames captured, $hits of $patterns file lines found in them"
	if [[ $mode == on ]]; then
		((hits == 0)) || fail "crypto on: $hits lines of the file crossed the WAN in the clear"
	else
		((hits > 1000)) || fail "crypto off: only $hits lines found in a cleartext capture: the check is blind"
	fi
done
say "PASS"
