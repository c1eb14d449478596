#!/usr/bin/env python3
"""An attacker on the WAN, for the gateway smoke test.

Runs inside the wan-link's WAN namespace (ip netns exec PREFIX-wan), where it sees
every frame site A sends (a1) and can put frames on the wire towards site B (b1),
past the emulator: what it sends arrives at once and is never lost.

  attacker.py [--dst-ip 10.99.0.12] [--port 7470] [--skip 2000] [--capture 400]
              [--flood 1000] [--timeout-s 30]

1. Waits for the sender's sealed DATA/CTRL packets to the receiver, lets --skip go
   by (the transfer is then well under way), and copies the next --capture.
2. Sends, for every copied packet (so each attack is --capture packets), in this
   order:
     forged      its header with a packet number 2^40 ahead and a random body and tag
     bit-flipped one random bit flipped in the sealed body or tag
     truncated   1..40 bytes cut off the end (IPv4/UDP lengths fixed up)
     replayed    the packet again, unchanged
     reordered   the copies once more, last first
3. Floods the receiver with INITIAL packets that would open sessions:
     --flood from 10.99.0.1 on as many source ports, without a token
     --flood/4 from as many other addresses, each with a made-up token
     --flood/5 without a token and not padded to 1200 bytes (a RETRY would amplify)
4. Speaks in the running session's handshake from another address: --flood/5
   INITIALs with the session's id and CRYPTO bytes, and as many RETRYs.
Prints one JSON object: how many packets of each kind went out.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def ip_checksum(hdr):
    s = sum(struct.unpack('!10H', hdr))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def rebuild(frame, payload, src_ip=None, src_port=None):
    """The Ethernet/IPv4/UDP frame with a new UDP payload (lengths and IPv4 checksum
    fixed, UDP checksum 0: none), optionally from another address and port."""
    eth, ip = frame[:14], bytearray(frame[14:34])
    sport, dport = struct.unpack('!HH', frame[34:38])
    if src_ip is not None:
        ip[12:16] = socket.inet_aton(src_ip)
    if src_port is not None:
        sport = src_port
    ip[2:4] = struct.pack('!H', 20 + 8 + len(payload))
    ip[10:12] = b'\0\0'
    ip[10:12] = struct.pack('!H', ip_checksum(bytes(ip)))
    udp = struct.pack('!HHHH', sport, dport, 8 + len(payload), 0)
    return eth + bytes(ip) + udp + payload


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--dst-ip', default='10.99.0.12')
    p.add_argument('--port', type=int, default=7470)
    p.add_argument('--skip', type=int, default=2000)
    p.add_argument('--capture', type=int, default=400)
    p.add_argument('--flood', type=int, default=1000)
    p.add_argument('--timeout-s', type=float, default=30)
    p.add_argument('--seed', type=int, default=7)
    a = p.parse_args()
    rnd = random.Random(a.seed)

    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sniff.bind(('a1', 0))
    sniff.settimeout(1)
    inject = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    inject.bind(('b1', 0))
    dst = socket.inet_aton(a.dst_ip)

    # 1. Sealed packets of the transfer, site A to the receiver.
    copies, seen = [], 0
    deadline = time.monotonic() + a.timeout_s
    while len(copies) < a.capture:
        if time.monotonic() > deadline:
            print(f'attacker: saw {seen} sealed packets in {a.timeout_s} s, wanted {a.skip + a.capture}',
                  file=sys.stderr)
            return 1
        try:
            f = sniff.recv(2048)
        except socket.timeout:
            continue
        if (len(f) < 42 + 36 or f[12:14] != b'\x08\x00' or f[23] != 17 or f[30:34] != dst or
                struct.unpack('!H', f[36:38])[0] != a.port):
            continue
        dwcp = f[42:]
        if dwcp[0] & 0xf1 != 0x11 or dwcp[1] not in (1, 2):  # version 1, PROTECTED; DATA or CTRL
            continue
        seen += 1
        if seen > a.skip:
            copies.append(f)
    sniff.close()

    sent = {'replayed': 0, 'reordered': 0, 'bit_flipped': 0, 'truncated': 0, 'forged': 0,
            'flood_no_token': 0, 'flood_forged_token': 0, 'unpadded_initial': 0, 'foreign_handshake': 0}

    def send(frame, kind):
        inject.send(frame)
        sent[kind] += 1

    # 2. Attacks on the session.  The originals are still inside the emulator (50 ms
    # one way) while these arrive, so the altered copies and forgeries come first:
    # they must fail authentication without moving the replay window, or the
    # originals would then be refused.  The replays come after.
    for f in copies:
        dwcp = bytearray(f[42:])
        pn = struct.unpack('!Q', dwcp[12:20])[0]
        dwcp[12:20] = struct.pack('!Q', pn + (1 << 40))
        dwcp[20:] = os.urandom(len(dwcp) - 20)
        send(rebuild(f, bytes(dwcp)), 'forged')
    for f in copies:
        dwcp = bytearray(f[42:])
        i = rnd.randrange(20, len(dwcp))  # body or tag: the header stays parseable
        dwcp[i] ^= 1 << rnd.randrange(8)
        send(rebuild(f, bytes(dwcp)), 'bit_flipped')
    for f in copies:
        dwcp = f[42:]
        cut = rnd.randint(1, min(40, len(dwcp) - 37))
        send(rebuild(f, dwcp[:-cut]), 'truncated')
    for f in copies:
        send(f, 'replayed')
    for f in reversed(copies):
        send(f, 'reordered')

    # 3. Handshake flood: INITIALs starting a made-up TLS stream (CRYPTO frame at 0).
    template = copies[0]

    def initial(token=None, pad=True, sid=None, offset=0):
        sid = sid if sid is not None else rnd.getrandbits(64) | 1
        body = b''
        if token:
            body += bytes([0x07, len(token)]) + token
        hello = os.urandom(300)
        body += bytes([0x06]) + struct.pack('!QH', offset, len(hello)) + hello
        pkt = struct.pack('!BBHQQ', 0x10, 3, 0, sid, 0) + body
        return pkt + bytes(max(0, 1200 - len(pkt))) if pad else pkt  # padded as a real client's

    for i in range(a.flood):
        send(rebuild(template, initial(), src_ip='10.99.0.1', src_port=20000 + i), 'flood_no_token')
    for i in range(a.flood // 4):
        src = f'10.99.{1 + i // 250}.{1 + i % 250}'
        send(rebuild(template, initial(os.urandom(24)), src_ip=src, src_port=30000 + i), 'flood_forged_token')
    for i in range(a.flood // 5):
        send(rebuild(template, initial(pad=False), src_ip='10.99.0.1', src_port=40000 + i), 'unpadded_initial')
    # The session's own id, from an address that is not its peer: CRYPTO bytes
    # ahead of the real ones, and RETRYs.
    session = struct.unpack('!Q', template[42 + 4:42 + 12])[0]
    for i in range(a.flood // 10):
        send(rebuild(template, initial(sid=session, offset=5000 + i), src_ip='10.99.0.77'), 'foreign_handshake')
        retry = struct.pack('!BBHQQ', 0x10, 4, 0, session, 0) + bytes([0x07, 20]) + os.urandom(20)
        send(rebuild(template, retry, src_ip='10.99.0.77'), 'foreign_handshake')
    print(json.dumps(sent))
    return 0


if __name__ == '__main__':
    sys.exit(main())
