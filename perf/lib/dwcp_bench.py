"""Shared pieces of perf/wan-bench, perf/line-rate and perf/demo (stdlib only).

They all do the same few things: build the release gateway, check the tools they
run, bring an emulated WAN up and always down again (../shared/wan-link), write a
test file, run a receiving and a sending dwcp-gateway and read the JSON reports
they leave, and measure the kernel peers (iperf3) on the same link.

Errors are raised as Fail(message); each tool prints "tool: message" and exits 1,
after every `finally` (link teardown, killing gateways) has run.
"""
import fcntl
import hashlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# Where meson puts the gateway, relative to the build directory: the executable
# is declared in control/meson.build (the contract first said dataplane/).
GATEWAY_REL = 'control/dwcp-gateway'
BUILD_DIR = 'build-release'
F_SETPIPE_SZ = getattr(fcntl, 'F_SETPIPE_SZ', 1031)

# The DPDK port each gateway attaches to the wan-link's veth end.  af_packet knobs
# worth tuning here: framecnt=, blocksz=, framesz=, qdisc_bypass=1, qpairs=.
AF_PACKET_VDEV = 'net_af_packet0,iface={iface},framecnt=4096'
# Two gateways joined back to back (perf/line-rate).  memif needs DPDK's
# multi-process channel, so memif processes run without --no-shconf.
MEMIF_VDEV = 'net_memif0,role={role},socket={socket}'
# --no-pci: never let EAL probe the machine's own NIC.
EAL_COMMON = ['--no-huge', '-m', '1024', '--no-pci']

# Addresses on wan-link: the kernel's own (iperf3) and the gateways' (DPDK ports).
KERNEL_B_IP = '10.99.0.2'
GATEWAY_IP = {'send': '10.99.0.11', 'recv': '10.99.0.12'}
# Sender on lcore 1, receiver on lcore 0 (the two cores of the test machine).
GATEWAY_LCORE = {'send': 1, 'recv': 0}

# The apt package that provides each tool we run.
APT_PACKAGE = {
    'iperf3': 'iperf3', 'ip': 'iproute2', 'ss': 'iproute2', 'ethtool': 'ethtool',
    'dpdk-testpmd': 'dpdk-dev', 'meson': 'meson', 'ninja': 'ninja-build',
    'openssl': 'openssl', 'cc': 'gcc', 'sha256sum': 'coreutils', 'sysctl': 'procps',
}


class Fail(Exception):
    """A one-line reason the run cannot go on."""


def main_guard(prog, fn):
    """Runs fn(); turns Fail and SIGTERM into one line on stderr and exit 1."""
    def on_term(signum, frame):
        raise Fail(f'stopped by signal {signum}')
    signal.signal(signal.SIGTERM, on_term)
    try:
        fn()
    except Fail as e:
        print(f'{prog}: {e}', file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print(f'{prog}: interrupted', file=sys.stderr)
        sys.exit(130)


def log(prog, msg):
    print(f'{prog}: {msg}', file=sys.stderr, flush=True)


# ---------------------------------------------------------------- set-up

def repo_root():
    """The repository: this file lives in <repo>/perf/lib/."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_bytes(text):
    """'4G', '64MiB', '1.5g', '1000000' -> bytes (K/M/G/T are powers of 1024)."""
    t = text.strip().lower().removesuffix('ib').removesuffix('b')
    mult = 1
    if t and t[-1] in 'kmgt':
        mult = 1024 ** ('kmgt'.index(t[-1]) + 1)
        t = t[:-1]
    try:
        n = int(float(t) * mult)
    except ValueError:
        raise Fail(f"bad size '{text}' (use e.g. 4G, 64M, 1000000)") from None
    if n <= 0:
        raise Fail(f"size '{text}' must be positive")
    return n


def human_bytes(n):
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if n < 1024 or unit == 'TiB':
            return f'{n:.0f} {unit}' if unit == 'B' else f'{n:.2f} {unit}'
        n /= 1024


def need_root():
    if os.geteuid() != 0:
        raise Fail('must run as root (network namespaces, DPDK ports)')


def need_tools(*tools):
    for tool in tools:
        if not shutil.which(tool):
            raise Fail(f'missing {tool}: apt-get install -y {APT_PACKAGE.get(tool, tool)}')


def build_gateway(root, no_build=False):
    """Builds build-release/ (configuring it if needed) and returns the gateway path.

    DWCP_GATEWAY=PATH in the environment runs that binary instead, unbuilt.
    """
    if os.environ.get('DWCP_GATEWAY'):
        gateway = os.path.abspath(os.environ['DWCP_GATEWAY'])
        if not os.access(gateway, os.X_OK):
            raise Fail(f'DWCP_GATEWAY={gateway} is not an executable')
        return gateway
    build = os.path.join(root, BUILD_DIR)
    gateway = os.path.join(build, GATEWAY_REL)
    if not no_build:
        need_tools('meson', 'ninja')
        if not os.path.exists(os.path.join(build, 'build.ninja')):
            run_quiet(['meson', 'setup', BUILD_DIR, '-Dbuildtype=release'], root, 'meson setup ' + BUILD_DIR)
        run_quiet(['ninja', '-C', BUILD_DIR], root, 'ninja -C ' + BUILD_DIR)
    if not os.access(gateway, os.X_OK):
        raise Fail(f'no gateway binary at {gateway}' + (' (run without --no-build)' if no_build else ''))
    return gateway


def run_quiet(cmd, cwd, what):
    """Runs a build step; on failure shows its last lines and stops."""
    r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        tail = '\n'.join(r.stdout.strip().splitlines()[-15:])
        print(tail, file=sys.stderr)
        raise Fail(f'{what} failed (exit {r.returncode})')


# ---------------------------------------------------------------- test data

def sha256_file(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        while block := f.read(16 << 20):
            h.update(block)
    return h.hexdigest()


def generate_file(path, nbytes, seed=1):
    """Writes nbytes of seeded pseudo-random data to path; returns its sha256.

    The data is the AES-128-CTR keystream of a key made from the seed (openssl,
    about 1.4 GB/s), so it neither compresses nor repeats, and the same seed gives
    the same file; without openssl it falls back to os.urandom (about 0.5 GB/s).
    Reading the keystream, hashing and writing run in three threads (hashlib and
    file writes let go of the GIL), so the slowest of them sets the pace and the
    file is never read back: 1 GiB in 1.8 s on the 2-core test machine while a
    C++ build ran beside it.
    """
    piece = 64 << 20
    key = hashlib.sha256(f'dwcp-bench-{seed}'.encode()).hexdigest()[:32]
    src = None
    if shutil.which('openssl'):
        src = subprocess.Popen(['openssl', 'enc', '-aes-128-ctr', '-nosalt', '-K', key, '-iv', '0',
                                '-bufsize', '1048576', '-in', '/dev/zero'], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, bufsize=0)
        try:
            fcntl.fcntl(src.stdout, F_SETPIPE_SZ, 1 << 20)  # fewer, larger reads
        except OSError:
            pass
    h = hashlib.sha256()
    try:
        out = open(path, 'wb')
    except OSError as e:
        raise Fail(f'cannot write {path}: {e.strerror}') from None
    errors = []

    def write(block):
        try:
            out.write(block)
        except OSError as e:
            errors.append(e)
    stages = [Stage(h.update), Stage(write)]
    try:
        left = nbytes
        while left and not errors:
            want = min(piece, left)
            block = read_exact(src.stdout, want) if src else os.urandom(want)
            if len(block) != want:
                raise Fail(f'openssl stopped after {nbytes - left} bytes while writing {path}')
            for stage in stages:
                stage.put(block)
            left -= want
    finally:
        for stage in stages:
            stage.close()
        out.close()
        if src:
            src.kill()
            src.wait()
    if errors:
        raise Fail(f'cannot write {path}: {errors[0].strerror}')
    return h.hexdigest()


class Stage:
    """A thread applying fn to each block put, in order, at most two blocks behind."""

    def __init__(self, fn):
        self.blocks = queue.Queue(maxsize=2)
        self.thread = threading.Thread(target=lambda: [fn(b) for b in iter(self.blocks.get, None)], daemon=True)
        self.thread.start()

    def put(self, block):
        self.blocks.put(block)

    def close(self):
        self.blocks.put(None)
        self.thread.join()


def read_exact(stream, n):
    """n bytes from a pipe, fewer only at its end."""
    block = bytearray(n)
    view = memoryview(block)
    got = 0
    while got < n:
        k = stream.readinto(view[got:])
        if not k:
            break
        got += k
    return block if got == n else block[:got]


# ---------------------------------------------------------------- wan-link

def wan_link_path(root):
    path = os.environ.get('WAN_LINK')
    d = root
    while not path and os.path.dirname(d) != d:
        cand = os.path.join(os.path.dirname(d), 'shared', 'wan-link')
        if os.access(cand, os.X_OK):
            path = cand
        d = os.path.dirname(d)
    path = path or os.path.join(os.path.dirname(root), 'shared', 'wan-link')
    if not os.access(path, os.X_OK):
        raise Fail(f'no wan-link at {path} (set WAN_LINK to its path)')
    return path


def check_prefix(prefix):
    if not prefix or len(prefix) > 12 or not prefix.isalnum():
        raise Fail(f"bad prefix '{prefix}': use up to 12 letters or digits")


class WanLink:
    """An emulated WAN between namespaces <prefix>-a and <prefix>-b.

        with WanLink(root, 'hb1', rtt_ms=100, rate_mbit=1000, loss_pct=1) as link:
            link.ns('a') ...

    The link is torn down on leaving the block, whatever happened inside.
    """

    def __init__(self, root, prefix, rtt_ms, rate_mbit, loss_pct, jitter_ms=0, pcap=None):
        check_prefix(prefix)
        self.tool = wan_link_path(root)
        self.prefix = prefix
        self.pcap = pcap
        self.shape = dict(rtt_ms=rtt_ms, rate_mbit=rate_mbit, loss_pct=loss_pct, jitter_ms=jitter_ms)
        self.up_line = ''

    def ns(self, side):
        return f'{self.prefix}-{side}'

    def __enter__(self):
        cmd = [self.tool, '--prefix', self.prefix, 'up']
        for k, v in self.shape.items():
            cmd += ['--' + k.replace('_', '-'), fmt_num(v)]
        if self.pcap:
            cmd += ['--pcap', self.pcap]
        try:
            r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            self.down()
            raise Fail(f'wan-link up --prefix {self.prefix} did not finish in 60 s') from None
        if r.returncode:
            self.down()
            err = (r.stderr.strip().splitlines() or ['no message'])[-1]
            raise Fail(f'wan-link up --prefix {self.prefix} failed: {err}')
        self.up_line = r.stdout.strip()
        return self

    def __exit__(self, *exc):
        self.down()
        return False

    def down(self):
        subprocess.run([self.tool, '--prefix', self.prefix, 'down'],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)

    def counters(self):
        """The emulator's own counters ('wan-link status'), or '' if it has none."""
        r = subprocess.run([self.tool, '--prefix', self.prefix, 'status'],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=20)
        return r.stdout.strip()

    def tune_tcp_buffers(self, max_bytes):
        """Lets kernel TCP grow its windows to max_bytes in both sites (per-netns sysctls).

        The defaults (6 MiB receive) cap a TCP stream below one BDP on a far link,
        which would measure the buffer, not the congestion control.
        """
        for side in ('a', 'b'):
            for key, default in (('tcp_rmem', 131072), ('tcp_wmem', 16384)):
                subprocess.run(['ip', 'netns', 'exec', self.ns(side), 'sysctl', '-q', '-w',
                                f'net.ipv4.{key}=4096 {default} {max_bytes}'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def num(v):
    """1000.0 -> 1000, 0.5 -> 0.5: for JSON and command lines."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def fmt_num(v):
    return f'{v:g}' if isinstance(v, float) else str(v)


# ---------------------------------------------------------------- gateways

def eal_args(role, vdev, unique, shconf=False):
    args = ['-l', str(GATEWAY_LCORE[role])] + EAL_COMMON
    if not shconf:
        args.append('--no-shconf')
    return args + ['--file-prefix', f'dwcp-{role}-{unique}', '--vdev', vdev]


# Certificate names of the two sites (control/dwcp-certs makes them per run).
GATEWAY_CERT_NAME = {'send': 'site-a.dwcp.test', 'recv': 'site-b.dwcp.test'}


def make_certs(root, work):
    """A test CA and one certificate per role, in work/certs, by control/dwcp-certs."""
    out = os.path.join(work, 'certs')
    tool = os.path.join(root, 'control', 'dwcp-certs')
    run_quiet([tool, '--out', out, '--force'] + list(GATEWAY_CERT_NAME.values()), root, 'control/dwcp-certs')
    return out


def security_args(role, crypto, certs):
    """--crypto off, or the role's certificate, key, the CA and the peer's name."""
    if not crypto:
        return ['--crypto', 'off']
    peer = 'recv' if role == 'send' else 'send'
    name = GATEWAY_CERT_NAME[role]
    return ['--cert', os.path.join(certs, name + '.pem'), '--key', os.path.join(certs, name + '.key'),
            '--ca', os.path.join(certs, 'ca.pem'), '--peer-name', GATEWAY_CERT_NAME[peer]]


def gateway_args(role, recv_dir=None, send_file=None, link_mbit=None, cc=None, streams=None,
                 progress_s=1, report=None, timeout_s=None, crypto=True, certs=None, baseline_dir=None):
    """The options after '--' for one role of the contract."""
    args = ['--ip', GATEWAY_IP[role]] + security_args(role, crypto, certs)
    if baseline_dir:
        args += ['--baseline-dir', f'{baseline_dir}-{role}']
    if role == 'recv':
        args += ['--listen', '--recv-dir', recv_dir, '--once']
    else:
        args += ['--peer', GATEWAY_IP['recv'], '--send', send_file]
    if link_mbit:
        args += ['--link-mbit', fmt_num(link_mbit)]
    if cc:
        args += ['--cc', cc]
    if streams:
        args += ['--streams', str(streams)]
    if timeout_s:
        args += ['--timeout-s', fmt_num(timeout_s)]
    return args + ['--progress-s', fmt_num(progress_s), '--report-json', report]


class Gateway:
    """One running gateway: stdout copied line by line to a log (and a stream)."""

    def __init__(self, name, cmd, work, echo=None):
        self.name = name
        self.who = {'send': 'sender', 'recv': 'receiver'}.get(name, name)
        self.out_log = os.path.join(work, name + '.log')
        self.err_log = os.path.join(work, name + '.err')
        self.listening = threading.Event()
        self.cmd = cmd
        err = open(self.err_log, 'wb')
        try:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        except OSError as e:
            raise Fail(f'cannot start {name} ({cmd[0]}): {e.strerror}') from None
        finally:
            err.close()
        self.pump = threading.Thread(target=self._copy, args=(echo,), daemon=True)
        self.pump.start()

    def _copy(self, echo):
        with open(self.out_log, 'w') as out:
            for raw in self.proc.stdout:
                line = raw.decode(errors='replace')
                out.write(line)
                out.flush()
                if 'listening' in line:
                    self.listening.set()
                if echo:
                    echo.write(line)
                    echo.flush()

    def running(self):
        return self.proc.poll() is None

    def stop(self):
        """Ends the process if it still runs: SIGTERM, then SIGKILL after 3 s."""
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pump.join(2)

    def tail(self, n=8):
        """The last lines of its stderr, else stdout, for an error message."""
        for path in (self.err_log, self.out_log):
            try:
                lines = [l for l in open(path, errors='replace').read().splitlines() if l.strip()]
            except OSError:
                lines = []
            if lines:
                return '\n'.join(f'  {self.name}| {l}' for l in lines[-n:])
        return f'  {self.name}| (no output)'


def run_pair(recv_cmd, send_cmd, work, limit_s, echo_send=None, echo_recv=None, listen_wait_s=3):
    """Starts the receiver, waits for 'listening' (or listen_wait_s), starts the sender.

    Waits at most limit_s for both to exit; kills both on timeout and says which
    one hung.  Returns both Gateways, ended.
    """
    recv = Gateway('recv', recv_cmd, work, echo_recv)
    send = None
    try:
        deadline = time.monotonic() + listen_wait_s
        while not recv.listening.is_set() and recv.running() and time.monotonic() < deadline:
            recv.listening.wait(0.05)
        if not recv.running():
            raise Fail(f'receiver exited (code {recv.proc.returncode}) before the sender started\n{recv.tail()}')
        send = Gateway('send', send_cmd, work, echo_send)
        deadline = time.monotonic() + limit_s
        wait_until(send, deadline)
        if send.proc.returncode:
            # The sender gave up: its report says why; the receiver need not time out too.
            wait_until(recv, min(deadline, time.monotonic() + 5))
            return send, recv
        wait_until(recv, deadline)
        hung = [g.who for g in (send, recv) if g.running()]
        if hung:
            raise Fail(f'{" and ".join(hung)} still running after {limit_s:.0f} s, killed both '
                       f'(logs in {work})')
        return send, recv
    finally:
        for g in (send, recv):
            if g:
                g.stop()


def wait_until(gateway, deadline):
    try:
        gateway.proc.wait(max(0.1, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass


def transfer(gateway, work, src, src_sha, limit_s, side_cmd, vdev, shconf=False, echo_send=None,
             **opts):
    """Moves src from a sending to a receiving gateway and checks what arrived.

    side_cmd(role) is the command prefix that puts a role where it runs (e.g.
    'ip netns exec wb-a'); vdev(role) its port.  opts go to gateway_args.
    Returns (figures, sender report, receiver report); stops if it did not verify.
    """
    recv_dir = os.path.join(work, 'recv')
    os.makedirs(recv_dir, exist_ok=True)
    # Write back what the set-up left dirty (the generated file, a baseline copy, a
    # round's changed pages) now: else the kernel's flusher writes gigabytes of it
    # 30 s later, in the middle of the transfer, on the cores the gateways and the
    # emulator share, and the figure measures the set-up's writeback.
    os.sync()
    if opts.get('crypto', True) and not opts.get('certs'):
        opts['certs'] = make_certs(repo_root(), work)
    unique = str(os.getpid())
    # A pipe makes C stdio buffer whole blocks: ask for lines, so "listening" and
    # the progress lines arrive when they are printed.
    line_buffered = ['stdbuf', '-oL'] if shutil.which('stdbuf') else []
    cmds = {}
    for role in ('recv', 'send'):
        report = os.path.join(work, role + '.json')
        if os.path.exists(report):
            os.unlink(report)
        cmds[role] = (side_cmd(role) + line_buffered + [gateway] + eal_args(role, vdev(role), unique, shconf) +
                      ['--'] + gateway_args(role, recv_dir=recv_dir, send_file=src, report=report, **opts))
    with open(os.path.join(work, 'commands'), 'w') as f:
        f.writelines(' '.join(c) + '\n' for c in cmds.values())
    try:
        send, recv = run_pair(cmds['recv'], cmds['send'], work, limit_s, echo_send=echo_send)
    finally:
        # EAL leaves a runtime directory per --file-prefix, even with --no-shconf.
        for role in ('recv', 'send'):
            shutil.rmtree(f'/var/run/dpdk/dwcp-{role}-{unique}', ignore_errors=True)
    reps = {}
    for g in (send, recv):  # the sender first: when it failed, its words matter most
        path = os.path.join(work, g.name + '.json')
        if not os.path.exists(path):
            raise Fail(f'{g.who} exited with code {g.proc.returncode} and left no report\n{g.tail()}')
        rep = reps[g.name] = read_report(path, g.who)
        if g.proc.returncode != 0 or not rep.get('ok'):
            raise Fail(f"transfer failed: {g.who} exit {g.proc.returncode}: "
                       f"{rep.get('error') or 'no error given'} (logs in {work})")
    figures = transfer_result(reps['send'], reps['recv'], src_sha)
    if not figures['sha256_ok']:
        raise Fail(f"received file {figures['received_file'] or '(none)'} does not match the source's sha256 {src_sha}")
    return figures, reps['send'], reps['recv']


def crypto_modes(first, one_mode):
    """The --crypto modes a benchmark runs: the main one, then (unless one_mode) the
    other, so the cost of encryption is a ratio measured on the same link."""
    return [first] + ([] if one_mode else ['off' if first == 'on' else 'on'])


def empty_dir(path):
    """Removes the files a transfer left in path (the next one starts clean)."""
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))


def make_work(prefix, parent):
    """A fresh work directory under parent (--work; default $TMPDIR), or Fail
    naming what is wrong with parent."""
    try:
        return tempfile.mkdtemp(prefix=prefix, dir=parent)
    except OSError as e:
        raise Fail(f'--work {parent}: cannot make a work directory there: {e.strerror}')


def cleanup_work(work, keep, ok, log_fn):
    """Removes the work directory after a good run; after a failed one keeps the
    logs and reports to read but drops the bulk data."""
    if keep:
        log_fn(f'work kept in {work}')
    elif ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        shutil.rmtree(os.path.join(work, 'recv'), ignore_errors=True)
        if os.path.exists(os.path.join(work, 'source')):
            os.unlink(os.path.join(work, 'source'))
        log_fn(f'logs and reports kept in {work}')


def read_report(path, name):
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise Fail(f'{name} left no report at {path}') from None
    except (OSError, ValueError) as e:
        raise Fail(f'{name} report {path} is not JSON: {e}') from None


def transfer_limit_s(nbytes, rate_mbit, gateway_timeout_s=30):
    """How long a transfer may take before it counts as hung: a quarter of the link
    rate, plus start-up, plus the gateway's own silence timeout."""
    return nbytes * 8 / (rate_mbit * 1e6 * 0.25) + 30 + gateway_timeout_s


def transfer_result(send_rep, recv_rep, src_sha):
    """The figures the tools print, from both reports and the source's digest."""
    nbytes = send_rep.get('bytes') or recv_rep.get('bytes') or 0
    wall_ns = (recv_rep.get('done_ns') or 0) - (send_rep.get('first_packet_ns') or 0)
    got = recv_rep.get('file') or ''
    got_sha = sha256_file(got) if recv_rep.get('ok') and os.path.isfile(got) else ''
    return {
        'bytes': nbytes,
        'seconds': round(wall_ns / 1e9, 3) if wall_ns > 0 else None,
        'dwcp_goodput_mbit': round(nbytes * 8 / wall_ns * 1e3, 1) if wall_ns > 0 else None,
        'sha256_ok': bool(recv_rep.get('ok')) and recv_rep.get('sha256') == src_sha == got_sha,
        'streams': send_rep.get('streams'),
        'streams_initial': send_rep.get('streams_initial'),
        'streams_reason': send_rep.get('streams_reason') or recv_rep.get('streams_reason') or '',
        'cc': send_rep.get('cc'),
        'dwcp_retransmits': send_rep.get('retransmits'),
        'dwcp_rtt_ms': send_rep.get('rtt_ms'),
        'dwcp_min_rtt_ms': send_rep.get('min_rtt_ms'),
        'dwcp_loss_pct': send_rep.get('loss_pct'),
        'packets_sent': send_rep.get('packets_sent'),
        'packets_received': recv_rep.get('packets_received'),
        'worker_cores': (send_rep.get('worker_cores') or 0) + (recv_rep.get('worker_cores') or 0),
        'received_file': got,
    }


# ---------------------------------------------------------------- kernel peers

def ensure_bbr():
    """True when the kernel offers BBR, loading tcp_bbr if it must; else False."""
    avail = '/proc/sys/net/ipv4/tcp_available_congestion_control'

    def has():
        try:
            return 'bbr' in open(avail).read().split()
        except OSError:
            return False
    if not has() and shutil.which('modprobe'):
        subprocess.run(['modprobe', 'tcp_bbr'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return has()


def iperf3(link, args, seconds, port):
    """One iperf3 test: server in site B, client in site A to 10.99.0.2.

    Returns (client JSON, server JSON).  The server is a one-off (-1) on its own
    port, so tests never meet each other's sockets.
    """
    server = subprocess.Popen(['ip', 'netns', 'exec', link.ns('b'), 'iperf3', '-s', '-1', '-p', str(port), '--json'],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        for _ in range(50):
            ss = subprocess.run(['ip', 'netns', 'exec', link.ns('b'), 'ss', '-Hltn', f'sport = :{port}'],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout
            if ss.strip() or server.poll() is not None:
                break
            time.sleep(0.1)
        cmd = ['ip', 'netns', 'exec', link.ns('a'), 'iperf3', '-c', KERNEL_B_IP, '-p', str(port),
               '-t', str(seconds), '--json'] + args
        try:
            client = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            raise Fail(f'iperf3 {" ".join(args)} did not finish in {seconds + 60} s') from None
        try:
            out, _ = server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            out, _ = server.communicate()
        c = parse_json(client.stdout, 'iperf3 client ' + ' '.join(args))
        s = parse_json(out, 'iperf3 server') if out.strip() else {}
        return c, s
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def parse_json(text, what):
    try:
        doc = json.loads(text)
    except ValueError:
        raise Fail(f'{what} printed no JSON') from None
    if doc.get('error'):
        raise Fail(f"{what}: {doc['error']}")
    return doc


def received_mbit(client, server):
    """Receiver goodput of an iperf3 test in Mbit/s: bytes the receiver got over its seconds."""
    end = client.get('end', {})
    for s in (end.get('sum_received'), server.get('end', {}).get('sum')):
        if s and s.get('seconds'):
            return round(s['bytes'] * 8 / s['seconds'] / 1e6, 1)
    raise Fail('iperf3 reported no received bytes')


def baselines(link, rate_mbit, udp_seconds, tcp_seconds, log_fn, port=5201):
    """The path limit and the TCP peers on this link: UDP at the link rate,
    one CUBIC stream, 16 BBR streams.  Missing BBR gives None and a message."""
    out = {}
    log_fn(f'iperf3 UDP at {fmt_num(rate_mbit)} Mbit/s for {udp_seconds} s')
    # -w 4M: with the default 208 KiB socket buffer the iperf3 server itself drops
    # datagrams at 1 Gbit/s (measured: 884 instead of 953 Mbit/s at 1% loss).
    c, s = iperf3(link, ['-u', '-b', f'{fmt_num(rate_mbit)}M', '-l', '1472', '-w', '4M'], udp_seconds, port)
    out['path_limit_mbit'] = received_mbit(c, s)
    end = c.get('end', {})
    out['path_limit_lost_pct'] = round(end.get('sum_received', {}).get('lost_percent', 0), 2)
    sent = end.get('sum_sent', {})
    if sent.get('seconds'):
        out['path_limit_sent_mbit'] = round(sent['bytes'] * 8 / sent['seconds'] / 1e6, 1)
    log_fn(f'iperf3 TCP 1 stream CUBIC for {tcp_seconds} s')
    c, s = iperf3(link, ['-C', 'cubic'], tcp_seconds, port + 1)
    out['tcp1_mbit'] = received_mbit(c, s)
    out['tcp1_retransmits'] = c.get('end', {}).get('sum_sent', {}).get('retransmits')
    if ensure_bbr():
        log_fn(f'iperf3 TCP 16 streams BBR for {tcp_seconds} s')
        c, s = iperf3(link, ['-P', '16', '-C', 'bbr'], tcp_seconds, port + 2)
        out['tcp16_bbr_mbit'] = received_mbit(c, s)
        out['tcp16_retransmits'] = c.get('end', {}).get('sum_sent', {}).get('retransmits')
    else:
        log_fn('TCP BBR not measured: the kernel has no bbr (modprobe tcp_bbr failed or modprobe missing: apt-get install -y kmod)')
        out['tcp16_bbr_mbit'] = None
    return out


# ---------------------------------------------------------------- output

AEAD_BENCH_REL = 'dataplane/crypto/dwcp-aead-bench'


def aead_bench(root, gateway, packets=200000):
    """AES-256-GCM Gbit/s on one core through the gateway's cryptodev path
    (dwcp-aead-bench from the same build as the gateway): its JSON line."""
    build = os.path.dirname(os.path.dirname(gateway))
    tool = os.path.join(build, AEAD_BENCH_REL)
    if not os.access(tool, os.X_OK):
        raise Fail(f'no {AEAD_BENCH_REL} beside the gateway in {build}')
    prefix = f'dwcp-aead-{os.getpid()}'
    cmd = [tool, '-l', '0', '--no-huge', '--no-pci', '-m', '256', '--no-shconf', '--file-prefix', prefix,
           '--log-level', 'lib.*:error', '--', '--packets', str(packets)]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    finally:
        shutil.rmtree(f'/var/run/dpdk/{prefix}', ignore_errors=True)
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        raise Fail(f'dwcp-aead-bench failed (exit {r.returncode}): {r.stderr.strip()[-300:]}')
    return json.loads(lines[-1])


def plaintext_hits(pcap, src, max_patterns=200000):
    """How many lines of the text file src appear verbatim in the capture pcap.

    The capture keeps the first 256 bytes of each frame, so a cleartext DATA packet
    shows about 180 bytes of the file: every line of 24 characters or more that
    falls inside is found (grep -F, Aho-Corasick over all patterns at once).
    Returns (frames captured, capture bytes, hits, patterns used)."""
    with open(pcap, 'rb') as f:
        data = f.read()
    frames = 0
    off = 24  # pcap global header; each record: 16-byte header, incl_len at +8
    while off + 16 <= len(data):
        incl = int.from_bytes(data[off + 8:off + 12], 'little')
        off += 16 + incl
        frames += 1
    patterns = []
    seen = set()
    with open(src, 'rb') as f:
        for line in f:
            line = line.rstrip(b'\n')
            if len(line) >= 24 and line not in seen and b'\0' not in line:
                seen.add(line)
                patterns.append(line)
                if len(patterns) >= max_patterns:
                    break
    if not patterns:
        raise Fail(f'{src} has no text lines of 24 characters or more to look for')
    with tempfile.NamedTemporaryFile('wb', delete=False) as pf:
        pf.write(b'\n'.join(patterns) + b'\n')
    try:
        # Bytes, not characters: in a UTF-8 locale grep builds its matcher per
        # character and 200000 patterns of non-ASCII text exhaust memory.
        r = subprocess.run(['grep', '-a', '-o', '-F', '-f', pf.name, pcap], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL='C'))
    finally:
        os.unlink(pf.name)
    if r.returncode not in (0, 1):  # 1: no match; anything else: grep failed, and 0 hits would be a lie
        raise Fail(f'grep over the capture failed (exit {r.returncode}): {r.stderr.decode(errors="replace").strip()}')
    hits = r.stdout.count(b'\n')
    return frames, len(data), hits, len(patterns)


def dirty_pages(path, pct, seed=5, page=4096):
    """Changes pct% of the file's pages in place, a few bytes each (1..63 at a random
    offset), as a VM's memory changes between two pre-copy rounds."""
    import random
    pages = os.path.getsize(path) // page
    rnd = random.Random(seed)
    n = int(pages * pct / 100)
    with open(path, 'r+b') as f:
        for p in sorted(rnd.sample(range(pages), n)):
            f.seek(p * page + rnd.randrange(page - 64))
            f.write(os.urandom(rnd.randrange(1, 64)))
    return n


def generate_text_file(path, nbytes):
    """A known text file: numbered lines, each unique, so a capture can be searched for them."""
    line_no = 0
    with open(path, 'w') as f:
        written = 0
        while written < nbytes:
            line = f'{line_no:010d} dwcp canary: the quick brown fox jumps over the lazy dog\n'
            f.write(line)
            written += len(line)
            line_no += 1
    return sha256_file(path)


def table(rows, headers):
    """Rows of cells as an aligned text table."""
    cells = [headers] + [[('' if c is None else str(c)) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, '  '.join('-' * w for w in widths))
    return '\n'.join(lines)


def pct(value, of):
    return f'{100 * value / of:.1f}%' if value is not None and of else ''
