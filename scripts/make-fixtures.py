#!/usr/bin/env python3
"""Generate the RDB fixtures in testdata/ from real servers.

    scripts/servers.sh install                 # once
    .venv/bin/python scripts/make-fixtures.py  # writes testdata/*.rdb and testdata/*.json

For every fixture: start the server in a temporary directory (through scripts/servers.sh), build a
deterministic data set, SAVE, copy dump.rdb to testdata/<name>.rdb and write testdata/<name>.json with
the server's own view of every key. Then start a fresh server on the copied file and check that it
loads it back with the same DEBUG DIGEST and the same view; any mismatch fails the run.

Only the standard library is used (a small RESP2 client is included), so any Python 3.9+ works.
See testdata/README.md for the JSON layout and the byte-string escaping.
"""

import base64
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS_SH = os.path.join(ROOT, "scripts", "servers.sh")
TESTDATA = os.path.join(ROOT, "testdata")

SEED = 20240601
# Absolute expiry times far in the future so the files stay loadable (expired keys are dropped on load).
T2100_MS = 4102444800000  # 2100-01-01T00:00:00Z
T2100_S = 4102444800

LUA_LIB = "#!lua name=mylib\nredis.register_function('myfunc', function(keys, args) return args[1] end)"

# Versions the servers are expected to report (a different version means a different package: stop).
EXPECTED = {
    "redis-6.2": ("6.2.14", b"REDIS0009"),
    "redis-7.0": ("7.0.15", b"REDIS0010"),
    "redis-8.2": ("8.2.3", b"REDIS0012"),
    "valkey-9.1": ("9.1.2", b"VALKEY080"),
}


# ----------------------------------------------------------------------------------------------
# Redis connections: scripts/resp.py.

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Conn, RespError  # noqa: E402  (shared RESP client)


def pairs(flat):
    """Flat RESP map (k1, v1, k2, v2, …) -> dict with str keys."""
    return {flat[i].decode(): flat[i + 1] for i in range(0, len(flat), 2)}


# ----------------------------------------------------------------------------------------------
# JSON escaping of byte strings.

def esc(b):
    """bytes -> JSON value: the text itself when it is UTF-8 without control characters,
    else {"b64": base64}."""
    if isinstance(b, str):
        b = b.encode()
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        s = None
    if s is not None and not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in s):
        return s
    return {"b64": base64.b64encode(b).decode()}


def esc_key(b):
    """bytes -> JSON object key: as esc() for plain text, else "b64:" + base64. Plain text that
    itself starts with "b64:" is also written in the b64: form, so the prefix is unambiguous."""
    e = esc(b)
    if isinstance(e, str) and not e.startswith("b64:"):
        return e
    return "b64:" + base64.b64encode(b).decode()


# ----------------------------------------------------------------------------------------------
# Servers (through scripts/servers.sh, so tests and fixtures start them the same way).

def sh(*args):
    return subprocess.run([SERVERS_SH, *args], check=True, capture_output=True, text=True).stdout.strip()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, name, workdir, extra=(), rdb=None):
        self.name, self.dir = name, workdir
        os.makedirs(workdir, exist_ok=True)
        if rdb is not None:
            shutil.copyfile(rdb, os.path.join(workdir, "dump.rdb"))
        self.port = free_port()
        r = subprocess.run([SERVERS_SH, "start", name, str(self.port), workdir, *extra],
                           capture_output=True, text=True)
        if r.returncode != 0:
            sys.stderr.write(r.stdout + r.stderr)
            raise SystemExit("FAILED to start %s in %s" % (name, workdir))
        self.c = Conn(self.port)

    def stop(self):
        try:
            self.c.close()
        finally:
            sh("stop", self.dir)

    def info(self, section="server"):
        out = {}
        for line in self.c("INFO", section).decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v
        return out


# ----------------------------------------------------------------------------------------------
# Data set.

def rng_for(key):
    return random.Random("%d:%s" % (SEED, key))


def rand_word(r, lo=3, hi=12):
    return "".join(r.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(r.randint(lo, hi)))


class Features:
    def __init__(self, name):
        self.name = name
        self.functions = name != "redis-6.2"
        self.listpack_sets = name in ("redis-8.2", "valkey-9.1")  # 7.2+
        self.field_ttl = name in ("redis-8.2", "valkey-9.1")
        self.entries_read = name != "redis-6.2"  # XGROUP CREATE … ENTRIESREAD (7.0+)
        self.pexpiretime = name != "redis-6.2"  # PEXPIRETIME (7.0+)
        self.vectorset = name == "redis-8.2"


LIST_INT_BOUNDARIES = [0, 12, 13, 127, 128, -4096, 4095, 4096, 32767, 32768, 8388607, 8388608,
                       2147483647, 2147483648, -9223372036854775808, 9223372036854775807,
                       -1, -128, -129, -32768, -32769, -8388608, -8388609, -2147483648, -2147483649]

STREAM_MS = 1700000000000


def build_strings(c):
    r = rng_for("strings")
    c.pipe([
        ["SET", "str:short", "hello"],
        ["SET", "str:int:12345", "12345"],
        ["SET", "str:int:-7", "-7"],
        ["SET", "str:int:2147483648", "2147483648"],
        ["SET", "str:int:-2147483648", "-2147483648"],
        ["SET", "str:int:max64", "9223372036854775807"],
        ["SET", "str:notint:007", "007"],
        ["SET", "str:empty", ""],
        ["SET", "str:binary", b"\x00\x01bin\xff\xfe\x00\r\n\x7f\x80"],
        ["SET", "str:utf8", "héllo wörld ✓ 日本"],
        ["SET", "str:lzf", "ab" * 500],
        ["SET", "str:random500", bytes(r.getrandbits(8) for _ in range(500))],
        ["SET", "str:20k", "".join(rand_word(r) + " " for _ in range(2600))[:20480]],
        ["SET", b"key:\x00\xff:binary", "value of a binary key"],
        ["SET", "ключ:ü", "non-ascii key"],
        ["SET", "b64:looks-escaped", "a plain key that starts with b64:"],
    ])


def build_lists(c, f):
    r = rng_for("lists")
    c.pipe([
        ["RPUSH", "list:small", "a", "b", "c", "1", "2", "-3", ""],
        ["RPUSH", "list:ints", *LIST_INT_BOUNDARIES],
        ["RPUSH", "list:bigelem", "x", "Y" * 9000, "z"],
    ])
    items = []
    for i in range(2000):
        items.append(str(r.randint(-100000, 100000)) if i % 3 == 0 else "elem-%d-%s" % (i, rand_word(r, 2, 8)))
    c.pipe([["RPUSH", "list:large", *items[i:i + 200]] for i in range(0, 2000, 200)])
    # Nodes of this one are LZF-compressed in memory (the quicklist keeps its own compress depth).
    c("CONFIG", "SET", "list-compress-depth", "1")
    items = ["c%d%s" % (i, "x" * (i % 5)) for i in range(3000)]
    c.pipe([["RPUSH", "list:compressed", *items[i:i + 300]] for i in range(0, 3000, 300)])
    c("CONFIG", "SET", "list-compress-depth", "0")
    c("PEXPIREAT", "list:small", T2100_MS + 1)


def build_sets(c, f):
    r = rng_for("sets")
    members = sorted({"m-" + rand_word(r, 2, 10) for _ in range(200)})
    c.pipe([
        ["SADD", "set:int16", 1, 2, 3, -5, 100, 32767, -32768],
        ["SADD", "set:int32", 1, 70000, -70000, 2147483647, -2147483648],
        ["SADD", "set:int64", 5, 2 ** 40, -(2 ** 40), 9223372036854775807, -9223372036854775808],
        ["SADD", "set:intset-600", *range(0, 1200, 2)],  # > set-max-intset-entries (512): hashtable
        ["SADD", "set:small-strings", "apple", "banana", "cherry", "42", "-1"],
        ["SADD", "set:hashtable", *members],
        ["SADD", "set:binary", b"\x00", b"\xff\xfe", b"a\x00b", "plain"],
        ["SADD", "set:bigmember", "short", "L" * 100],  # member > 64 bytes: hashtable on 7.2+
    ])


def build_zsets(c, f):
    r = rng_for("zsets")
    c("ZADD", "zset:small", 1, "one", 2.5, "two-and-half", 0, "zero", "inf", "pos-inf", "-inf", "neg-inf",
      "1e-300", "tiny", 3.14159, "pi", -2, "minus-two", 1e20, "big")
    args = []
    for i in range(300):
        args += [repr(r.uniform(-1e6, 1e6)), "member-%03d-%s" % (i, rand_word(r, 1, 6))]
    c("ZADD", "zset:large", *args)
    c("ZADD", "zset:bigmember", 1, "a", 2, "M" * 80)
    c("ZADD", "zset:samescore", *sum(([7, "s%02d" % i] for i in range(10)), []))


def build_hashes(c, f):
    r = rng_for("hashes")
    c("HSET", "hash:small", "name", "rdbkit", "n", "42", "neg", "-1", "empty", "", "bin", b"\x00\xff")
    args = []
    for i in range(1000):
        args += ["field-%04d" % i, str(r.randint(0, 10 ** 9)) if i % 2 else rand_word(r, 1, 20)]
    c.pipe([["HSET", "hash:big", *args[i:i + 400]] for i in range(0, len(args), 400)])
    c("HSET", "hash:bigvalue", "a", "1", "long", "V" * 100)
    if f.field_ttl:
        c("HSET", "hash:ttl-small", "f1", "v1", "f2", "v2", "f3", "v3", "f4", "v4", "f5", "v5")
        c("HPEXPIREAT", "hash:ttl-small", T2100_MS + 5000, "FIELDS", 2, "f2", "f4")
        c("HPEXPIREAT", "hash:ttl-small", T2100_MS + 1000, "FIELDS", 1, "f5")
        c("HSETEX", "hash:ttl-small", "PXAT", T2100_MS + 3000, "FIELDS", 1, "f6", "v6")
        args = []
        for i in range(600):
            args += ["hf-%04d" % i, "hv-%d" % r.randint(0, 10 ** 6)]
        c.pipe([["HSET", "hash:ttl-big", *args[i:i + 400]] for i in range(0, len(args), 400)])
        c("HPEXPIREAT", "hash:ttl-big", T2100_MS + 7, "FIELDS", 3, "hf-0001", "hf-0100", "hf-0599")
        c("HPEXPIREAT", "hash:ttl-big", T2100_MS + 2, "FIELDS", 2, "hf-0002", "hf-0300")
        # A whole-key expiry on top of field expiries.
        c("PEXPIREAT", "hash:ttl-big", T2100_MS + 99)


def sid(i, seq=1):
    return "%d-%d" % (STREAM_MS + i, seq)


def build_streams(c, f):
    cmds = []
    for i in range(250):
        if 200 <= i < 205:
            fields = ["temp", str(20 + i % 5), "hum", "%d%%" % (40 + i % 7)]
        elif i % 7 == 3:
            fields = ["a", str(i), "b", "val-%d" % i, "extra", "e%d" % i]
        elif i % 11 == 5:
            fields = ["x", str(-i)]
        else:
            fields = ["a", str(i), "b", "val-%d" % i]
        cmds.append(["XADD", "stream:main", sid(i), *fields])
    cmds.append(["XADD", "stream:main", sid(249, 7), "a", "last", "b", "entry"])  # same ms, seq 7
    c.pipe(cmds)
    c("XDEL", "stream:main", sid(0), sid(5), sid(50), sid(99), sid(150), sid(249, 7))
    c("XGROUP", "CREATE", "stream:main", "g1", "0")
    if f.entries_read:
        c("XGROUP", "CREATE", "stream:main", "g2", sid(120), "ENTRIESREAD", 117)
    else:
        c("XGROUP", "CREATE", "stream:main", "g2", sid(120))
    c("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 10, "STREAMS", "stream:main", ">")
    c("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 5, "STREAMS", "stream:main", ">")
    c("XACK", "stream:main", "g1", sid(1), sid(3), sid(12))
    c("XCLAIM", "stream:main", "g1", "bob", 0, sid(2))  # delivery count 2
    c("XGROUP", "CREATECONSUMER", "stream:main", "g1", "dave")  # consumer with an empty PEL
    c("XREADGROUP", "GROUP", "g2", "carol", "COUNT", 3, "STREAMS", "stream:main", ">")
    # Empty streams: one that never had entries (with a group), one whose only entry was deleted.
    c("XGROUP", "CREATE", "stream:empty", "g", "$", "MKSTREAM")
    c("XADD", "stream:emptied", "5-1", "f", "v")
    c("XDEL", "stream:emptied", "5-1")


def build_expiries(c, f):
    c.pipe([
        ["SET", "exp:ms", "expires in 2100 (ms)"],
        ["PEXPIREAT", "exp:ms", T2100_MS + 123],
        ["SET", "exp:s", "expires in 2100 (s)"],
        ["EXPIREAT", "exp:s", T2100_S + 60],
        ["HSET", "exp:hash", "k", "v"],
        ["PEXPIREAT", "exp:hash", T2100_MS + 456],
    ])


def build_other_dbs(c, f):
    c("SELECT", 1)
    c.pipe([["SET", "db1:str", "in db 1"], ["RPUSH", "db1:list", "x", "y", "z"], ["SET", "shared", "db1"]])
    c("SELECT", 5)
    c.pipe([["HSET", "db5:hash", "a", "1", "b", "2"], ["SADD", "db5:set", 1, 2, 3], ["SET", "shared", "db5"]])
    c("SELECT", 15)
    c.pipe([["ZADD", "db15:zset", 1, "a", 2, "b"], ["SET", "shared", "db15"],
            ["XADD", "db15:stream", "1-1", "k", "v"], ["XADD", "db15:stream", "1-2", "k", "w"],
            ["XADD", "db15:stream", "2-0", "k", "x", "n", "1"],
            # No tombstones: the groups keep a valid entries-read counter.
            ["XGROUP", "CREATE", "db15:stream", "reader", "0"],
            ["XGROUP", "CREATE", "db15:stream", "tail", "$"],
            ["XREADGROUP", "GROUP", "reader", "r1", "COUNT", 2, "STREAMS", "db15:stream", ">"]])
    c("SELECT", 63)
    c.pipe([["SET", "db63:str", "in the last db"], ["PEXPIREAT", "db63:str", T2100_MS + 63],
            ["SET", "shared", "db63"]])
    c("SELECT", 0)
    c("SET", "shared", "db0")


def build_main(srv, f, graph):
    c = srv.c
    build_strings(c)
    build_lists(c, f)
    build_sets(c, f)
    build_zsets(c, f)
    build_hashes(c, f)
    build_streams(c, f)
    build_expiries(c, f)
    build_other_dbs(c, f)
    if f.functions:
        c("FUNCTION", "LOAD", LUA_LIB)
    if f.vectorset:
        c("VADD", "vset:q8", "VALUES", 4, 0.1, 0.2, 0.3, 0.4, "elem1")
        c("VADD", "vset:q8", "VALUES", 4, 0.5, -0.2, 0.0, 1.0, "elem2")
        c("VADD", "vset:q8", "VALUES", 4, -1.0, 0.25, 0.75, 0.125, "elem3")
        c("VSETATTR", "vset:q8", "elem2", '{"color":"red"}')
        c("VADD", "vset:noquant", "VALUES", 3, 1.5, 2.5, 3.5, "a", "NOQUANT")
        c("VADD", "vset:noquant", "VALUES", 3, -1.5, 0, 0.5, "b", "NOQUANT")
        c("VADD", "vset:bin", "VALUES", 4, 1, -1, 1, -1, "p", "BIN")
    if graph:
        c("GRAPH.QUERY", "graph:g", "CREATE (:P {n:1})")


def build_multidb(srv, f):
    c = srv.c
    for db in range(64):
        c("SELECT", db)
        c("SET", "key:db%02d" % db, "value in db %d" % db)
    c("SELECT", 0)
    c.pipe([["SET", "extra:1", "a"], ["RPUSH", "extra:list", "1", "2"], ["HSET", "extra:hash", "f", "v"]])


# ----------------------------------------------------------------------------------------------
# The server's view of its data set.

def view_value(c, key, typ, f):
    if typ == "string":
        return esc(c("GET", key))
    if typ == "list":
        return [esc(x) for x in c("LRANGE", key, 0, -1)]
    if typ == "set":
        return [esc(x) for x in sorted(c("SMEMBERS", key))]
    if typ == "zset":
        flat = c("ZRANGE", key, 0, -1, "WITHSCORES")
        return [[esc(flat[i]), flat[i + 1].decode()] for i in range(0, len(flat), 2)]
    if typ == "hash":
        flat = c("HGETALL", key)
        items = sorted((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
        if f.field_ttl and items:
            ttls = c("HPEXPIRETIME", key, "FIELDS", len(items), *[k for k, _ in items])
            return [[esc(k), esc(v), t] for (k, v), t in zip(items, ttls)]
        return [[esc(k), esc(v)] for k, v in items]
    if typ == "stream":
        return view_stream(c, key, f)
    return None  # module values (vectorset, graphdata): type/encoding/digest only


def view_stream(c, key, f):
    info = pairs(c("XINFO", "STREAM", key, "FULL", "COUNT", 0))
    out = {"length": info["length"], "last_id": info["last-generated-id"].decode()}
    for k in ("max-deleted-entry-id", "entries-added", "recorded-first-entry-id"):
        if k in info:
            v = info[k]
            out[k.replace("-", "_")] = v.decode() if isinstance(v, bytes) else v
    out["entries"] = [[e[0].decode(), [esc(x) for x in e[1]]] for e in c("XRANGE", key, "-", "+")]
    groups = []
    for g in info["groups"]:
        g = pairs(g)
        gv = {"name": esc(g["name"]), "last_delivered_id": g["last-delivered-id"].decode()}
        if "entries-read" in g:
            gv["entries_read"] = g["entries-read"]
        # [id, consumer, delivery-time, delivery-count]: the delivery time depends on the clock.
        gv["pel"] = [[p[0].decode(), esc(p[1]), p[3]] for p in g["pending"]]
        gv["consumers"] = []
        for cons in g["consumers"]:
            cons = pairs(cons)
            gv["consumers"].append({"name": esc(cons["name"]),
                                    "pel": [[p[0].decode(), p[2]] for p in cons["pending"]]})
        groups.append(gv)
    out["groups"] = groups
    return out


def view(srv, f, expected_expiry):
    """Everything the server says about its data set (clock-independent parts only)."""
    c = srv.c
    info = srv.info("server")
    version = info.get("valkey_version", info["redis_version"])
    out = {"server": f.name, "version": version, "redis_version": info["redis_version"],
           "digest": c("DEBUG", "DIGEST").decode()}
    if not f.pexpiretime:
        out["pexpiretime_source"] = "data set (PEXPIRETIME needs 7.0; checked against PTTL)"
    dbs = {}
    keyspace = srv.info("keyspace")
    for dbname in sorted(keyspace, key=lambda s: int(s[2:])):
        db = int(dbname[2:])
        c("SELECT", db)
        keys = []
        cursor = b"0"
        while True:
            cursor, batch = c("SCAN", cursor, "COUNT", 1000)
            keys += batch
            if cursor == b"0":
                break
        entries = {}
        for key in sorted(set(keys)):
            typ = c("TYPE", key).decode()
            rec = {"key": esc(key), "type": typ, "encoding": c("OBJECT", "ENCODING", key).decode()}
            if f.pexpiretime:
                rec["pexpiretime"] = c("PEXPIRETIME", key)
            else:
                pttl = c("PTTL", key)
                want = expected_expiry.get((db, key), -1)
                if pttl == -1:
                    rec["pexpiretime"] = -1
                else:
                    now = int(time.time() * 1000)
                    if want == -1 or abs(now + pttl - want) > 10000:
                        raise SystemExit("expiry of %r: PTTL %d does not match %d" % (key, pttl, want))
                    rec["pexpiretime"] = want
                if (rec["pexpiretime"] == -1) != (want == -1):
                    raise SystemExit("expiry of %r: server %d, data set %d" % (key, pttl, want))
            rec["digest"] = c("DEBUG", "DIGEST-VALUE", key)[0].decode()
            rec["value"] = view_value(c, key, typ, f)
            entries[esc_key(key)] = rec
        dbs[str(db)] = entries
    c("SELECT", 0)
    out["databases"] = dbs
    if f.functions:
        libs = []
        for lib in c("FUNCTION", "LIST", "WITHCODE"):
            lib = pairs(lib)
            libs.append({"library_name": lib["library_name"].decode(), "engine": lib["engine"].decode(),
                         "code": lib["library_code"].decode()})
        out["functions"] = libs
    return out


# Expiries the data set sets, for Redis 6.2 (no PEXPIRETIME there).
EXPECTED_EXPIRY = {
    (0, b"list:small"): T2100_MS + 1,
    (0, b"exp:ms"): T2100_MS + 123,
    (0, b"exp:s"): (T2100_S + 60) * 1000,
    (0, b"exp:hash"): T2100_MS + 456,
    (0, b"hash:ttl-big"): T2100_MS + 99,
    (63, b"db63:str"): T2100_MS + 63,
}


# ----------------------------------------------------------------------------------------------

def diff(a, b, path="$"):
    """First difference between two JSON-like values, or None."""
    if type(a) is not type(b):
        return "%s: %r != %r" % (path, a, b)
    if isinstance(a, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                return "%s.%s: only in %s" % (path, k, "before" if k in a else "after")
            d = diff(a[k], b[k], "%s.%s" % (path, k))
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return "%s: length %d != %d" % (path, len(a), len(b))
        for i, (x, y) in enumerate(zip(a, b)):
            d = diff(x, y, "%s[%d]" % (path, i))
            if d:
                return d
        return None
    return None if a == b else "%s: %r != %r" % (path, a, b)


def dump_json(doc):
    """Pretty at the top, one line per key record (keeps the files small and diffable)."""
    def one(v):
        return json.dumps(v, ensure_ascii=False, separators=(",", ":"))
    lines = ["{"]
    items = list(doc.items())
    for i, (k, v) in enumerate(items):
        comma = "," if i + 1 < len(items) else ""
        if k == "databases":
            lines.append(' "databases": {')
            dbs = list(v.items())
            for j, (db, keys) in enumerate(dbs):
                lines.append("  %s: {" % one(db))
                recs = list(keys.items())
                for n, (key, rec) in enumerate(recs):
                    lines.append("   %s: %s%s" % (one(key), one(rec), "," if n + 1 < len(recs) else ""))
                lines.append("  }%s" % ("," if j + 1 < len(dbs) else ""))
            lines.append(" }" + comma)
        elif k == "functions":
            lines.append(' "functions": [')
            lines += ["  %s%s" % (one(f), "," if n + 1 < len(v) else "") for n, f in enumerate(v)]
            lines.append(" ]" + comma)
        else:
            lines.append(" %s: %s%s" % (one(k), one(v), comma))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    assert json.loads(text) == doc
    return text


def make_fixture(tmp, out_name, server, builder, extra=(), note=""):
    f = Features(server)
    workdir = os.path.join(tmp, out_name)
    srv = Server(server, workdir, extra)
    try:
        info = srv.info("server")
        version = info.get("valkey_version", info["redis_version"])
        want_version, want_magic = EXPECTED[server]
        if version != want_version:
            raise SystemExit("%s reports version %s, expected %s" % (server, version, want_version))
        builder(srv, f)
        before = view(srv, f, EXPECTED_EXPIRY)
        srv.c("SAVE")
    finally:
        srv.stop()
    rdb = os.path.join(TESTDATA, out_name + ".rdb")
    shutil.copyfile(os.path.join(workdir, "dump.rdb"), rdb)
    with open(rdb, "rb") as fh:
        magic = fh.read(9)
    if magic != want_magic:
        raise SystemExit("%s wrote magic %r, expected %r" % (server, magic, want_magic))

    # Reload check: a fresh server on the copied file must report the same digest and view.
    srv = Server(server, os.path.join(tmp, out_name + "-reload"), extra, rdb=rdb)
    try:
        after = view(srv, f, EXPECTED_EXPIRY)
    finally:
        srv.stop()
    if after["digest"] != before["digest"]:
        raise SystemExit("RELOAD MISMATCH %s: DEBUG DIGEST %s after reload, %s before"
                         % (out_name, after["digest"], before["digest"]))
    d = diff(before, after)
    if d:
        raise SystemExit("RELOAD MISMATCH %s: %s" % (out_name, d))

    doc = {"file": out_name + ".rdb", "server": before["server"], "version": before["version"],
           "redis_version": before["redis_version"], "magic": magic.decode(), "digest": before["digest"]}
    if note:
        doc["note"] = note
    for k in ("pexpiretime_source", "functions", "databases"):
        if k in before:
            doc[k] = before[k]
    with open(os.path.join(TESTDATA, out_name + ".json"), "w") as fh:
        fh.write(dump_json(doc))
    return rdb, doc


def main():
    if subprocess.run([SERVERS_SH, "available"]).returncode != 0:
        raise SystemExit("servers not installed: run scripts/servers.sh install")
    os.makedirs(TESTDATA, exist_ok=True)
    falkordb = sh("module", "falkordb")
    jobs = [
        ("redis-6.2", "redis-6.2", lambda s, f: build_main(s, f, False), (), ""),
        ("redis-7.0", "redis-7.0", lambda s, f: build_main(s, f, False), (), ""),
        ("redis-8.2", "redis-8.2", lambda s, f: build_main(s, f, True), ("--loadmodule", falkordb),
         "server started with --loadmodule falkordb.so; key graph:g is a FalkorDB graph (loads only with the module)"),
        ("redis-8.2-nomodule", "redis-8.2", lambda s, f: build_main(s, f, False), (),
         "same data set as redis-8.2.rdb without the graph, written by a server without FalkorDB"),
        ("valkey-9.1", "valkey-9.1", lambda s, f: build_main(s, f, False), (), ""),
        ("redis-7.0-multidb64", "redis-7.0", build_multidb, (), "one string key in each of databases 0..63"),
    ]
    only = set(sys.argv[1:])
    tmp = tempfile.mkdtemp(prefix="rdbkit-fixtures-")
    rows = []
    try:
        for out_name, server, builder, extra, note in jobs:
            if only and out_name not in only:
                continue
            t0 = time.time()
            rdb, doc = make_fixture(tmp, out_name, server, builder, extra, note)
            per_db = " ".join("%s:%d" % (db, len(keys)) for db, keys in doc["databases"].items())
            rows.append((os.path.relpath(rdb, ROOT), os.path.getsize(rdb), doc["magic"], per_db))
            print("ok  %-22s %.1fs (reloaded, digest %s)" % (out_name, time.time() - t0, doc["digest"][:12]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("%-32s %8s  %-9s  %s" % ("file", "bytes", "magic", "keys per db (db:count)"))
    for path, size, magic, per_db in rows:
        print("%-32s %8d  %-9s  %s" % (path, size, magic, per_db))
    total = sum(os.path.getsize(os.path.join(TESTDATA, n)) for n in os.listdir(TESTDATA))
    print("testdata/ total: %d bytes" % total)


if __name__ == "__main__":
    main()
