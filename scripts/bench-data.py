#!/usr/bin/env python3
"""Generate a large, realistic RDB file for the benchmarks (benches/parse.rs, scripts/compare.sh).

    .venv/bin/python scripts/bench-data.py                      # target/bench-data/redis-7.0-100M.rdb
    .venv/bin/python scripts/bench-data.py --size 1G            # target/bench-data/redis-7.0-1G.rdb
    .venv/bin/python scripts/bench-data.py --server redis-6.2   # RDB 9 instead of RDB 10
    .venv/bin/python scripts/bench-data.py --force              # regenerate even if the file exists

Starts a real server through scripts/servers.sh on a free port in 7500-7599 (in a scratch directory under
target/bench-data/), fills it deterministically (fixed seed, pipelined with the `redis` Python client) with a
mix of every common encoding, SAVEs, copies dump.rdb to target/bench-data/<server>-<size>.rdb and stops the
server. The output is never meant for git (target/ is ignored).

The mix, by share of the dump's bytes (approximately):
  small random strings and integers, LZF-compressible strings (repetitive, > 20 bytes), small listpack
  hashes / zsets / lists, small hashtable sets (7.0 has no listpack sets), intsets (small and large), a few
  10k-field hashtable hashes, skiplist zsets, multi-node quicklists, streams with a consumer group and a PEL.
About 20 % of the keys get a far-future expiry (year 2100+); keys are spread over databases 0-3.

The dump size is reached by estimating each value's serialized size, then calibrating the estimate against
real SAVEs until the dump is at least the target size. Data depends only on the seed and the target size
(stream IDs are explicit); only the `ctime` AUX field and consumer-group times follow the clock.
"""

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import redis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS_SH = os.path.join(ROOT, "scripts", "servers.sh")
OUT_DIR = os.path.join(ROOT, "target", "bench-data")

SEED = 0x5EED_2026
T2100_MS = 4102444800000  # 2100-01-01T00:00:00Z
PORTS = range(7500, 7600)
# Database weights: most keys in db 0, like real deployments.
DBS = [(0, 0.55), (1, 0.25), (2, 0.12), (3, 0.08)]
BATCH = 5000  # commands per pipeline flush

# (kind, share of the dump bytes)
MIX = [
    ("str_small", 0.17),
    ("int", 0.04),
    ("str_lzf", 0.14),
    ("hash_small", 0.12),
    ("zset_small", 0.08),
    ("list_small", 0.07),
    ("set_small", 0.05),
    ("intset", 0.05),
    ("hash_big", 0.09),
    ("zset_big", 0.06),
    ("list_big", 0.06),
    ("stream", 0.07),
]

ALNUM = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
WORDS = [
    b"user", b"session", b"order", b"cart", b"item", b"price", b"status", b"active", b"pending", b"shipped",
    b"email", b"name", b"created", b"updated", b"region", b"eu-west-1", b"us-east-1", b"premium", b"free",
    b"token", b"device", b"mobile", b"desktop", b"click", b"view", b"score", b"level", b"country", b"lang",
]


def parse_size(s):
    s = s.strip().upper()
    mult = 1
    for suffix, m in (("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30)):
        if s.endswith(suffix):
            s, mult = s[:-1], m
            break
    return int(float(s) * mult)


def free_port():
    for port in PORTS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    sys.exit("bench-data: no free port in 7500-7599")


class Gen:
    """Deterministic value generator; every method returns (commands, estimated dump bytes)."""

    def __init__(self, seed):
        self.r = random.Random(seed)
        self.n = 0

    def rand_bytes(self, n):
        return bytes(self.r.choices(ALNUM, k=n))

    def word_value(self):
        r = self.r
        if r.random() < 0.3:
            return str(r.randrange(0, 1_000_000)).encode()
        return b"%s:%s" % (r.choice(WORDS), self.rand_bytes(r.randrange(2, 12)))

    def key(self, prefix):
        self.n += 1
        return b"%s:%08d:%s" % (prefix, self.n, self.rand_bytes(self.r.randrange(0, 8)))

    def make(self, kind):
        return getattr(self, kind)()

    def str_small(self):
        k = self.key(b"s")
        v = self.rand_bytes(self.r.randrange(4, 64))
        return k, [("SET", k, v)], len(k) + len(v) + 4

    def int(self):
        k = self.key(b"n")
        r = self.r
        v = str(r.choice([r.randrange(0, 128), r.randrange(-32768, 32768), r.randrange(-(2**31), 2**31),
                          r.randrange(-(2**62), 2**62)])).encode()
        return k, [("SET", k, v)], len(k) + 7

    def str_lzf(self):
        k = self.key(b"z")
        r = self.r
        unit = b"%s=%s;" % (r.choice(WORDS), self.rand_bytes(r.randrange(4, 16)))
        total = r.choice([24, 40, 80, 200, 600, 2000, 8000])
        v = bytearray()
        while len(v) < total:
            v += unit
            if r.random() < 0.05:
                v += self.rand_bytes(3)
        v = bytes(v[:total])
        # LZF on such runs gives about len/25 plus the unit itself.
        return k, [("SET", k, v)], len(k) + len(unit) + total // 25 + 10

    def hash_small(self):
        k = self.key(b"h")
        n = self.r.randrange(3, 40)
        args, est = [], len(k) + 12
        for i in range(n):
            f, v = b"f%d" % i if self.r.random() < 0.5 else self.r.choice(WORDS) + b"%d" % i, self.word_value()
            args += [f, v]
            est += len(f) + len(v) + 4
        return k, [("HSET", k, *args)], est

    def zset_small(self):
        k = self.key(b"zs")
        n = self.r.randrange(3, 60)
        args, est = [], len(k) + 12
        for i in range(n):
            m = b"m%d:%s" % (i, self.rand_bytes(self.r.randrange(0, 10)))
            s = self.r.choice([self.r.randrange(0, 10000), round(self.r.uniform(-1e6, 1e6), 3)])
            args += [s, m]
            est += len(m) + len(str(s)) + 4
        return k, [("ZADD", k, *args)], est

    def list_small(self):
        k = self.key(b"l")
        n = self.r.randrange(2, 60)
        vals = [self.word_value() for _ in range(n)]
        return k, [("RPUSH", k, *vals)], len(k) + 14 + sum(len(v) + 2 for v in vals)

    def set_small(self):
        k = self.key(b"st")
        n = self.r.randrange(2, 50)
        vals = [b"%s:%d" % (self.r.choice(WORDS), i) for i in range(n)]
        return k, [("SADD", k, *vals)], len(k) + 4 + sum(len(v) + 1 for v in vals)

    def intset(self):
        k = self.key(b"is")
        r = self.r
        # At most set-max-intset-entries (512) members, or the server stores a hashtable set.
        n = r.choice([r.randrange(2, 30), r.randrange(30, 200), r.randrange(200, 500)])
        width = r.choice([1 << 15, 1 << 31, 1 << 62])
        vals = {r.randrange(-width, width) for _ in range(n)}
        size = 2 if width == 1 << 15 else 4 if width == 1 << 31 else 8
        return k, [("SADD", k, *vals)], len(k) + 12 + size * len(vals)

    def hash_big(self):
        k = self.key(b"H")
        n = 10_000
        cmds, est, args = [], len(k) + 8, []
        for i in range(n):
            f, v = b"field:%05d" % i, self.word_value()
            args += [f, v]
            est += len(f) + len(v) + 2
            if len(args) >= 2000:
                cmds.append(("HSET", k, *args))
                args = []
        if args:
            cmds.append(("HSET", k, *args))
        return k, cmds, est

    def zset_big(self):
        k = self.key(b"ZS")
        n = self.r.randrange(200, 3000)
        cmds, est, args = [], len(k) + 8, []
        for i in range(n):
            m = b"member:%06d:%s" % (i, self.rand_bytes(4))
            args += [self.r.uniform(-1e9, 1e9), m]
            est += len(m) + 9
            if len(args) >= 2000:
                cmds.append(("ZADD", k, *args))
                args = []
        if args:
            cmds.append(("ZADD", k, *args))
        return k, cmds, est

    def list_big(self):
        k = self.key(b"L")
        n = self.r.randrange(1000, 20000)
        cmds, est, vals = [], len(k) + 8, []
        for _ in range(n):
            v = self.word_value()
            vals.append(v)
            est += len(v) + 2
            if len(vals) >= 1000:
                cmds.append(("RPUSH", k, *vals))
                vals = []
        if vals:
            cmds.append(("RPUSH", k, *vals))
        # Quicklist nodes of 8 KiB listpacks may be LZF-compressed only with list-compress-depth (off): no gain.
        return k, cmds, est

    def stream(self):
        k = self.key(b"X")
        r = self.r
        n = r.randrange(100, 3000)
        ms = 1_700_000_000_000 + r.randrange(0, 10**9)
        cmds, est = [], len(k) + 200
        for i in range(n):
            ms += r.randrange(0, 50)
            fields = [b"event", r.choice(WORDS), b"user", b"%d" % r.randrange(0, 100000), b"v", self.word_value()]
            # Explicit, strictly increasing IDs keep the data independent of the clock.
            cmds.append(("XADD", k, b"%d-%d" % (ms, i), *fields))
            est += 4 + sum(len(x) for x in fields[1::2]) + 3
        cmds.append(("XGROUP", "CREATE", k, "g1", "0"))
        cmds.append(("XGROUP", "CREATE", k, "g2", "$"))
        # Deliver some entries to two consumers and ack part of them: a non-empty PEL.
        count = r.randrange(1, min(n, 200) + 1)
        cmds.append(("XREADGROUP", "GROUP", "g1", "alice", "COUNT", count, "STREAMS", k, ">"))
        cmds.append(("XREADGROUP", "GROUP", "g1", "bob", "COUNT", r.randrange(1, 50), "STREAMS", k, ">"))
        est += count * 40 + 100
        return k, cmds, est


class Filler:
    """Pipelines commands per database."""

    def __init__(self, port):
        self.clients = {db: redis.Redis(host="127.0.0.1", port=port, db=db, socket_timeout=600) for db, _ in DBS}
        self.pipes = {db: c.pipeline(transaction=False) for db, c in self.clients.items()}
        self.pending = {db: 0 for db in self.pipes}

    def add(self, db, cmds):
        p = self.pipes[db]
        for c in cmds:
            p.execute_command(*c)
        self.pending[db] += len(cmds)
        if self.pending[db] >= BATCH:
            self.flush(db)

    def flush(self, db=None):
        for d in [db] if db is not None else list(self.pipes):
            if self.pending[d]:
                # Errors would mean a bug in this script: raise them.
                self.pipes[d].execute(raise_on_error=True)
                self.pending[d] = 0


def save_size(client, dump):
    client.save()
    return os.path.getsize(dump)


def fill(port, target, dump, seed):
    g = Gen(seed)
    f = Filler(port)
    r = g.r
    kinds = [k for k, _ in MIX]
    weights = [w for _, w in MIX]
    db_ids = [d for d, _ in DBS]
    db_w = [w for _, w in DBS]
    # Byte budget per kind so big values do not dominate by chance: pick the kind furthest behind its share.
    spent = {k: 0.0 for k in kinds}
    est_total = 0.0
    scale = 1.0
    keys = 0
    expiring = 0
    next_report = time.time() + 5
    actual = 0
    while True:
        while est_total * scale < target:
            kind = min(kinds, key=lambda k: spent[k] / weights[kinds.index(k)])
            key, cmds, est = g.make(kind)
            spent[kind] += est
            est_total += est
            db = r.choices(db_ids, db_w)[0]
            if r.random() < 0.2:
                cmds = cmds + [("PEXPIREAT", key, T2100_MS + r.randrange(0, 10**10))]
                est += 9
                expiring += 1
            keys += 1
            f.add(db, cmds)
            if time.time() >= next_report:
                next_report = time.time() + 5
                print(f"bench-data: {keys} keys, ~{est_total * scale / 1e6:.0f} MB estimated", flush=True)
        f.flush()
        actual = save_size(f.clients[0], dump)
        print(f"bench-data: SAVE -> {actual} bytes (estimate {est_total * scale:.0f}, {keys} keys)", flush=True)
        if actual >= target:
            break
        # Calibrate: the estimate's error is mostly a constant factor.
        scale = actual / est_total * 0.995
    return keys, expiring, actual


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="100M", help="target dump size, e.g. 100M (default), 1G")
    ap.add_argument("--server", default="redis-7.0", help="server from scripts/servers.sh (default redis-7.0)")
    ap.add_argument("--seed", type=int, default=SEED, help="random seed")
    ap.add_argument("--force", action="store_true", help="regenerate even if the output exists")
    ap.add_argument("--out", help="output path (default target/bench-data/<server>-<size>.rdb)")
    args = ap.parse_args()

    target = parse_size(args.size)
    out = args.out or os.path.join(OUT_DIR, f"{args.server}-{args.size.upper()}.rdb")
    if os.path.exists(out) and not args.force:
        print(f"bench-data: {out} exists ({os.path.getsize(out)} bytes); use --force to regenerate")
        return
    os.makedirs(os.path.dirname(out), exist_ok=True)

    port = free_port()
    work = os.path.join(OUT_DIR, f".server-{args.server}-{port}")
    shutil.rmtree(work, ignore_errors=True)
    t0 = time.time()
    subprocess.run([SERVERS_SH, "start", args.server, str(port), work], check=True, stdout=subprocess.DEVNULL)
    try:
        keys, expiring, size = fill(port, target, os.path.join(work, "dump.rdb"), args.seed)
        tmp = out + ".tmp"
        shutil.copyfile(os.path.join(work, "dump.rdb"), tmp)
        os.replace(tmp, out)
    finally:
        subprocess.run([SERVERS_SH, "stop", work], check=False)
        shutil.rmtree(work, ignore_errors=True)
    dt = time.time() - t0
    print(f"bench-data: wrote {out}: {size} bytes, {keys} keys ({expiring} with expiry) in {dt:.1f} s")


if __name__ == "__main__":
    main()
