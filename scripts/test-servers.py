#!/usr/bin/env python3
"""Checks the files rdbkit writes (convert / split / export / import) by loading them into real servers.

    python3 scripts/test-servers.py          (RDBKIT=path/to/rdbkit skips the `cargo build --release`)

Each check prints one line `ok` / `FAIL` (with details below it); the script exits 1 when any check failed.
When the servers are not installed (`scripts/servers.sh available` fails) it prints
"skipped: servers not installed" and exits 0, or exits 1 when RDBKIT_REQUIRE_SERVERS=1.

What "the same data" means here: a file rdbkit wrote is loaded into a server (put at DIR/dump.rdb before
start), and the server's view is compared with the view of a server that loaded the original file:
DBSIZE per database, per key TYPE, DEBUG DIGEST-VALUE, expiry (PEXPIRETIME, or "has a TTL" on 6.2), hash
field TTLs (HPEXPIRETIME) where both servers have them, FUNCTION LIST WITHCODE. Digests are compared only
where the two servers hash the same way (see /work/shared/servers.md): sorted sets are compared by
ZRANGE WITHSCORES (scores as doubles) across the 6.2/7.0 vs 8.2/Valkey line, hashes with field TTLs by
HGETALL + HPEXPIRETIME between 8.2 and Valkey.

  1. down-conversion: redis-7.0.rdb -> RDB 9 (--lossy, function dropped) into 6.2, -> RDB 10 into 7.0;
     valkey-9.1.rdb -> 9 / 10 (--lossy) into 6.2 / 7.0, -> redis-8.2 into 8.2, and 8.2's SAVE of that
     -> valkey-9.1 into Valkey; refusals without --lossy write nothing.
  2. redis-8.2-nomodule.rdb -> redis-7.0: refused naming the keys; --lossy loads into 7.0.
  3. redis-check-rdb accepts every file of version <= 10 written here.
  4. export (page blob, gzip blob) loads into 7.0 with the original's DEBUG DIGEST.
  5. split --shards 3: slots agree with CLUSTER KEYSLOT; shards load into plain and cluster-mode 7.0; a 4 MB
     split for redis-8.2 (SLOT_INFO, hints patched after streaming) loads into plain and cluster-mode 8.2.
  6. import --tier p2 (32 databases) loads into a 32-database 7.0; the original does not load into 16.
  7. import --target redis-6.2 refuses (function library), --lossy loads with equal digests.

Servers listen on 127.0.0.1, ports 7600-7699 (each tried with bind() first), in a fresh temporary
directory, and are stopped by the directory/PID this script started them with (also on errors and signals).
"""

import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVERS_SH = os.path.join(ROOT, "scripts", "servers.sh")
TESTDATA = os.path.join(ROOT, "testdata")
PORT_LO, PORT_HI = 7600, 7699
CHECK_RDB = "/usr/bin/redis-check-rdb"


# ----------------------------------------------------------------------------------------------
# Redis connections: scripts/resp.py.

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from resp import Conn, RespError, port_free  # noqa: E402  (shared RESP client)


# ----------------------------------------------------------------------------------------------
# Servers, through scripts/servers.sh. Every started directory is remembered and stopped at exit.

STARTED = []
USED_PORTS = set()


class StartFailed(Exception):
    def __init__(self, msg, log):
        super().__init__(msg)
        self.log = log


def candidate_ports():
    ports = [p for p in range(PORT_LO, PORT_HI + 1) if p not in USED_PORTS]
    random.shuffle(ports)  # concurrent runs start at different places
    return ports


class Server:
    """A server of kind NAME started in DIR (optionally on a copy of RDB) on a free port."""

    def __init__(self, name, workdir, rdb=None, extra=()):
        self.name, self.dir = name, workdir
        os.makedirs(workdir, exist_ok=True)
        if rdb is not None:
            shutil.copyfile(rdb, os.path.join(workdir, "dump.rdb"))
        self.c = None
        for port in candidate_ports():
            # The cluster bus listens on port + 10000.
            if not port_free(port) or not port_free(port + 10000):
                continue
            USED_PORTS.add(port)
            self.port = port
            STARTED.append(workdir)  # before starting: an interrupt from here on still stops it
            r = subprocess.run([SERVERS_SH, "start", name, str(port), workdir, *extra],
                               capture_output=True, text=True, timeout=120)
            if r.returncode == 0:
                self.c = Conn(port)
                # servers.sh waits for PING on the port: make sure the answer came from our process and
                # not from a concurrent run's server that won the port (ours then died on bind).
                pid = read(os.path.join(workdir, "server.pid")).strip()
                got = dict(l.split(":", 1) for l in self.c("INFO", "server").decode().splitlines() if ":" in l)
                if got.get("process_id", "").strip() == pid:
                    return
                self.c.close()
                self.c = None
                STARTED.remove(workdir)
                try:  # ours died on bind; if not, stop it by its PID (never via the port: not ours)
                    os.kill(int(pid), signal.SIGTERM)
                except (OSError, ValueError):
                    pass
                continue  # USED_PORTS keeps it: the port belongs to someone else
            STARTED.remove(workdir)
            log = read(os.path.join(workdir, "server.log"))
            out = r.stdout + r.stderr
            if "already in use" in out or "Address already in use" in log:
                continue  # lost a race for the port: next one
            raise StartFailed("%s failed to start in %s: %s" % (name, workdir, out.strip()[-2000:]), log)
        raise StartFailed("no free port in %d-%d" % (PORT_LO, PORT_HI), "")

    def stop(self):
        if self.c is not None:
            try:
                self.c.close()
            except OSError:
                pass
            self.c = None
        subprocess.run([SERVERS_SH, "stop", self.dir], capture_output=True, timeout=120)
        if self.dir in STARTED:
            STARTED.remove(self.dir)
            USED_PORTS.discard(self.port)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def keyspace(self):
        """{db: DBSIZE} for every non-empty database (INFO keyspace)."""
        out = {}
        for line in self.c("INFO", "keyspace").decode().splitlines():
            if line.startswith("db") and ":" in line:
                db, rest = line.split(":", 1)
                out[int(db[2:])] = int(rest.split(",")[0].split("=")[1])
        return out

    def save_to(self, path):
        self.c("SAVE")
        shutil.copyfile(os.path.join(self.dir, "dump.rdb"), path)


def stop_all():
    for d in list(STARTED):
        subprocess.run([SERVERS_SH, "stop", d], capture_output=True, timeout=120)
        STARTED.remove(d)


def read(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# ----------------------------------------------------------------------------------------------
# A server's view of its data, and comparisons of two views.

HAS_PEXPIRETIME = {"redis-6.2": False, "redis-7.0": True, "redis-8.2": True, "valkey-9.1": True}
HAS_FIELD_TTL = {"redis-6.2": False, "redis-7.0": False, "redis-8.2": True, "valkey-9.1": True}
HAS_FUNCTIONS = {"redis-6.2": False, "redis-7.0": True, "redis-8.2": True, "valkey-9.1": True}
# Which digest family a server belongs to, per value kind (servers.md / testdata/README.md).
ZSET_DIGEST = {"redis-6.2": "old", "redis-7.0": "old", "redis-8.2": "new", "valkey-9.1": "new"}


def view(srv):
    """{"dbs": {db: {key: info}}, "dbsize": {...}, "digest": ..., "functions": ...}."""
    c = srv.c
    v = {"server": srv.name, "dbsize": srv.keyspace(), "digest": c("DEBUG", "DIGEST"), "dbs": {}}
    for db in v["dbsize"]:
        c("SELECT", db)
        keys = c("KEYS", "*")
        infos = {}
        types = c.pipe([["TYPE", k] for k in keys])
        digests = c.pipe([["DEBUG", "DIGEST-VALUE", k] for k in keys])
        if HAS_PEXPIRETIME[srv.name]:
            exp = c.pipe([["PEXPIRETIME", k] for k in keys])
        else:
            exp = ["ttl" if t >= 0 else -1 for t in c.pipe([["PTTL", k] for k in keys])]
        for k, t, d, e in zip(keys, types, digests, exp):
            d = d[0] if isinstance(d, list) else d
            info = {"type": t.decode(), "digest": d, "expire": e}
            if info["type"] == "zset":
                flat = c("ZRANGE", k, 0, -1, "WITHSCORES")
                info["value"] = [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
            elif info["type"] == "hash":
                flat = c("HGETALL", k)
                pairs = sorted((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
                info["value"] = pairs
                if HAS_FIELD_TTL[srv.name]:
                    fields = [p[0] for p in pairs]
                    ttls = c("HPEXPIRETIME", k, "FIELDS", len(fields), *fields) if fields else []
                    info["field_ttl"] = dict(zip(fields, ttls))
            infos[k] = info
        v["dbs"][db] = infos
    c("SELECT", 0)
    if HAS_FUNCTIONS[srv.name]:
        libs = c("FUNCTION", "LIST", "WITHCODE")
        out = []
        for lib in libs:
            m = {lib[i].decode(): lib[i + 1] for i in range(0, len(lib), 2)}
            out.append((m["library_name"], m["library_code"]))
        v["functions"] = sorted(out)
    else:
        v["functions"] = None
    return v


def field_ttl_keys(v):
    """(db, key) of hashes with at least one field TTL in view v."""
    out = set()
    for db, infos in v["dbs"].items():
        for k, info in infos.items():
            if any(t >= 0 for t in info.get("field_ttl", {}).values()):
                out.add((db, k))
    return out


def keys_of_type(v, typ):
    return {(db, k) for db, infos in v["dbs"].items() for k, i in infos.items() if i["type"] == typ}


def show(k):
    return k.decode("utf-8", "backslashreplace") if isinstance(k, bytes) else str(k)


def compare(orig, new, missing=(), ttl_stripped=(), functions=True):
    """Differences between two views (list of strings). `missing`: (db, key) expected absent in `new`;
    `ttl_stripped`: (db, key) hashes whose field TTLs are expected gone (compared by fields/values)."""
    diffs = []
    missing, ttl_stripped = set(missing), set(ttl_stripped)
    a_name, b_name = orig["server"], new["server"]
    same_zset_digest = ZSET_DIGEST[a_name] == ZSET_DIGEST[b_name]
    # Field-TTL hashes digest differently on 8.2 and Valkey.
    same_fttl_digest = a_name == b_name
    both_pexp = HAS_PEXPIRETIME[a_name] and HAS_PEXPIRETIME[b_name]
    both_fttl = HAS_FIELD_TTL[a_name] and HAS_FIELD_TTL[b_name]
    a_fttl = field_ttl_keys(orig)
    for db in sorted(set(orig["dbs"]) | set(new["dbs"])):
        a, b = orig["dbs"].get(db, {}), new["dbs"].get(db, {})
        for k in sorted(set(a) | set(b)):
            where = "db %d key %s" % (db, show(k))
            if (db, k) in missing:
                if k in b:
                    diffs.append("%s: expected dropped, but present" % where)
                continue
            if k not in b:
                diffs.append("%s: missing after load" % where)
                continue
            if k not in a:
                diffs.append("%s: unexpected key after load" % where)
                continue
            x, y = a[k], b[k]
            if x["type"] != y["type"]:
                diffs.append("%s: type %s vs %s" % (where, x["type"], y["type"]))
                continue
            ex, ey = x["expire"], y["expire"]
            if not both_pexp:
                ex, ey = ex != -1, ey != -1
            if ex != ey:
                diffs.append("%s: expiry %r vs %r" % (where, ex, ey))
            t = x["type"]
            if t == "zset" and not same_zset_digest:
                if x["value"] != y["value"]:
                    diffs.append("%s: ZRANGE WITHSCORES differs" % where)
            elif t == "hash" and ((db, k) in ttl_stripped or ((db, k) in a_fttl and not same_fttl_digest)):
                if x["value"] != y["value"]:
                    diffs.append("%s: HGETALL differs (%d vs %d fields)" % (where, len(x["value"]), len(y["value"])))
                if (db, k) in ttl_stripped:
                    if any(t >= 0 for t in y.get("field_ttl", {}).values()):
                        diffs.append("%s: field TTLs expected dropped, still present" % where)
                elif both_fttl and x["field_ttl"] != y["field_ttl"]:
                    diffs.append("%s: HPEXPIRETIME differs" % where)
            else:
                if x["digest"] != y["digest"]:
                    diffs.append("%s (%s): DIGEST-VALUE %s vs %s" % (where, t, x["digest"].decode(), y["digest"].decode()))
                if t == "zset" and x["value"] != y["value"]:
                    diffs.append("%s: ZRANGE WITHSCORES differs" % where)
                if t == "hash" and both_fttl and x.get("field_ttl") != y.get("field_ttl"):
                    diffs.append("%s: HPEXPIRETIME differs" % where)
    if functions and orig["functions"] is not None and new["functions"] is not None \
            and orig["functions"] != new["functions"]:
        diffs.append("FUNCTION LIST WITHCODE differs: %r vs %r" % (orig["functions"], new["functions"]))
    return diffs


def expected_dbsize(orig, missing=()):
    out = {}
    for db, infos in orig["dbs"].items():
        n = sum(1 for k in infos if (db, k) not in set(missing))
        if n:
            out[db] = n
    return out


# ----------------------------------------------------------------------------------------------
# Checks.

FAILURES = []
RDB_FILES = []  # files rdbkit wrote at version <= 10, for redis-check-rdb (check 3)


class CheckFailed(Exception):
    pass


def check(name, fn):
    t0 = time.time()
    try:
        detail = fn()
        print("ok    %-62s %5.1fs%s" % (name, time.time() - t0, ("  " + detail) if detail else ""), flush=True)
    except Exception as e:  # a failure of one check does not stop the others
        FAILURES.append(name)
        print("FAIL  %-62s %5.1fs" % (name, time.time() - t0), flush=True)
        msg = str(e) if isinstance(e, (CheckFailed, StartFailed)) else "%s: %s" % (type(e).__name__, e)
        for line in msg.splitlines()[:40]:
            print("        " + line, flush=True)
        if isinstance(e, StartFailed) and e.log:
            for line in e.log.strip().splitlines()[-8:]:
                print("        log: " + line, flush=True)


def expect(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def expect_no_diffs(diffs, what):
    if diffs:
        raise CheckFailed("%s: %d difference(s)\n%s" % (what, len(diffs), "\n".join(diffs[:30])))


class Env:
    def __init__(self, rdbkit, tmp):
        self.rdbkit, self.tmp = rdbkit, tmp
        self.n = 0
        self.cache = {}

    def dir(self, label):
        self.n += 1
        d = os.path.join(self.tmp, "%02d-%s" % (self.n, label))
        os.makedirs(d)
        return d

    def run(self, *args):
        # Bounded, like every step here: a hang is a failure with the command named, never a stalled run.
        return subprocess.run([self.rdbkit, *args], capture_output=True, text=True, timeout=600)

    def run_ok(self, *args):
        r = self.run(*args)
        if r.returncode != 0:
            raise CheckFailed("rdbkit %s: exit %d\n%s" % (" ".join(args), r.returncode, r.stderr.strip()))
        return r

    def view_of(self, name, rdb, extra=(), label=None):
        """Start NAME on a copy of RDB, return its view (memoized per (name, rdb))."""
        key = (name, os.path.abspath(rdb), tuple(extra))
        if key not in self.cache:
            with Server(name, self.dir(label or name), rdb, extra) as s:
                self.cache[key] = view(s)
        return self.cache[key]


def lossy_report(stdout):
    rep = json.loads(stdout)
    return rep, [(d["db"], d["key"], d["what"]) for d in rep["dropped"]["lossy"]]


def is_stream_meta(what):
    """A lossy drop of stream metadata an older stream layout does not store."""
    return "stream " in what and "(need RDB " in what


def bkey(k):
    return k.encode() if isinstance(k, str) else k


def check_convert_7_to_6(env):
    src = os.path.join(TESTDATA, "redis-7.0.rdb")
    d = env.dir("conv-7-to-9")
    out = os.path.join(d, "out.rdb")
    r = env.run("convert", src, "-o", out, "--rdb-version", "9")
    expect(r.returncode == 1, "without --lossy: exit %d, expected 1\n%s" % (r.returncode, r.stderr))
    expect("mylib" in r.stderr, "refusal does not name mylib: %s" % r.stderr)
    expect(os.listdir(d) == [], "refused conversion left files: %s" % os.listdir(d))
    r = env.run_ok("convert", src, "-o", out, "--rdb-version", "9", "--lossy", "--json")
    rep, lossy = lossy_report(r.stdout)
    # RDB 9 streams store no first ID, greatest deleted ID, entries added or group entries read: reported per key.
    other = [w for _, _, w in lossy if not is_stream_meta(w)]
    expect(len(other) == 1 and "mylib" in other[0], "lossy drops other than stream metadata: %r" % other)
    expect(any(is_stream_meta(w) for _, _, w in lossy), "stream metadata drops not reported: %r" % lossy)
    RDB_FILES.append(out)
    orig = env.view_of("redis-7.0", src)
    new = env.view_of("redis-6.2", out)
    expect(new["dbsize"] == orig["dbsize"], "DBSIZE %r vs %r" % (orig["dbsize"], new["dbsize"]))
    expect_no_diffs(compare(orig, new), "7.0 original vs 6.2")
    return "%d keys, refusal names mylib" % sum(orig["dbsize"].values())


def check_convert_7_to_10(env):
    src = os.path.join(TESTDATA, "redis-7.0.rdb")
    out = os.path.join(env.dir("conv-7-to-10"), "out.rdb")
    env.run_ok("convert", src, "-o", out, "--rdb-version", "10")
    RDB_FILES.append(out)
    orig = env.view_of("redis-7.0", src)
    new = env.view_of("redis-7.0", out)
    expect_no_diffs(compare(orig, new), "7.0 original vs rewritten")
    expect(new["digest"] == orig["digest"], "DEBUG DIGEST %s vs %s" % (orig["digest"], new["digest"]))
    return "DEBUG DIGEST %s" % orig["digest"].decode()


def check_up_6_to_82(env):
    """Up-conversion: a Redis 6.2 file (ziplists, stream v1) rewritten as REDIS0012 loads into Redis 8.2 with the
    same data (zset digests differ between 6.2 and 8.2 servers, so compare() compares those by value)."""
    src = os.path.join(TESTDATA, "redis-6.2.rdb")
    out = os.path.join(env.dir("conv-62-to-12"), "out.rdb")
    env.run_ok("convert", src, "-o", out, "--target", "redis-8.2")
    with open(out, "rb") as f:
        expect(f.read(9) == b"REDIS0012", "output is not REDIS0012")
    orig = env.view_of("redis-6.2", src)
    new = env.view_of("redis-8.2", out)
    expect(new["dbsize"] == orig["dbsize"], "DBSIZE %r vs %r" % (orig["dbsize"], new["dbsize"]))
    expect_no_diffs(compare(orig, new, functions=False), "6.2 original vs 8.2")
    return "%d keys" % sum(orig["dbsize"].values())


def valkey_down(env, version, server):
    src = os.path.join(TESTDATA, "valkey-9.1.rdb")
    d = env.dir("conv-valkey-to-%s" % version)
    out = os.path.join(d, "out.rdb")
    orig = env.view_of("valkey-9.1", src)
    fttl = field_ttl_keys(orig)
    expect(fttl, "the Valkey fixture has no hash with field TTLs")
    r = env.run("convert", src, "-o", out, "--rdb-version", version)
    expect(r.returncode == 1, "without --lossy: exit %d, expected 1" % r.returncode)
    for _, k in fttl:
        expect(show(k) in r.stderr, "refusal does not name %s:\n%s" % (show(k), r.stderr))
    expect(os.listdir(d) == [], "refused conversion left files: %s" % os.listdir(d))
    r = env.run_ok("convert", src, "-o", out, "--rdb-version", version, "--lossy", "--json")
    rep, lossy = lossy_report(r.stdout)
    reported = {(db, bkey(k)) for db, k, w in lossy if k is not None and not is_stream_meta(w)}
    expect(reported == fttl, "lossy report names %r, the field-TTL hashes are %r" % (reported, fttl))
    # The function library survives at RDB 10 only.
    fn_dropped = any(k is None and "mylib" in w for _, k, w in lossy)
    expect(fn_dropped == (version == "9"), "function library dropped=%s at RDB %s" % (fn_dropped, version))
    whole = {(db, bkey(k)) for db, k, w in lossy if k is not None and w.startswith("whole key")}
    RDB_FILES.append(out)
    new = env.view_of(server, out)
    expect_no_diffs(compare(orig, new, missing=whole, ttl_stripped=fttl - whole), "Valkey original vs %s" % server)
    expect(new["dbsize"] == expected_dbsize(orig, whole), "DBSIZE %r vs %r" % (orig["dbsize"], new["dbsize"]))
    how = "kept without field TTLs" if not whole else "dropped"
    return "field-TTL hashes reported (%s): %s" % (how, ", ".join(sorted(show(k) for _, k in fttl)))


def check_valkey_to_82_and_back(env):
    src = os.path.join(TESTDATA, "valkey-9.1.rdb")
    d = env.dir("conv-valkey-to-82")
    out = os.path.join(d, "out.rdb")
    env.run_ok("convert", src, "-o", out, "--target", "redis-8.2")
    with open(out, "rb") as f:
        expect(f.read(9) == b"REDIS0012", "--target redis-8.2 did not write REDIS0012")
    orig = env.view_of("valkey-9.1", src)
    saved = os.path.join(d, "saved-by-82.rdb")
    with Server("redis-8.2", env.dir("redis-8.2-from-valkey"), out) as s:
        new = view(s)
        s.save_to(saved)
    expect_no_diffs(compare(orig, new), "Valkey original vs Redis 8.2")
    fttl = field_ttl_keys(orig)
    expect(fttl == field_ttl_keys(new), "field-TTL hashes %r vs %r" % (fttl, field_ttl_keys(new)))
    back = os.path.join(d, "back.rdb")
    env.run_ok("convert", saved, "-o", back, "--target", "valkey-9.1")
    again = env.view_of("valkey-9.1", back)
    diffs = compare(orig, again)
    for db in orig["dbs"]:
        for k, info in orig["dbs"][db].items():
            got = again["dbs"].get(db, {}).get(k)
            if got is not None and got["digest"] != info["digest"]:
                diffs.append("db %d key %s: DIGEST-VALUE differs after the round trip" % (db, show(k)))
    expect_no_diffs(sorted(set(diffs)), "Valkey original vs Valkey <- 8.2 <- Valkey")
    expect(again["digest"] == orig["digest"], "DEBUG DIGEST %s vs %s" % (orig["digest"], again["digest"]))
    return "HPEXPIRETIME kept for %d hashes; round trip DEBUG DIGEST equal" % len(fttl)


def check_82_to_70(env):
    src = os.path.join(TESTDATA, "redis-8.2-nomodule.rdb")
    d = env.dir("conv-82-to-70")
    out = os.path.join(d, "out.rdb")
    orig = env.view_of("redis-8.2", src)
    fttl = field_ttl_keys(orig)
    vsets = keys_of_type(orig, "vectorset")
    expect(fttl and vsets, "fixture lacks field-TTL hashes (%r) or vector sets (%r)" % (fttl, vsets))
    r = env.run("convert", src, "-o", out, "--target", "redis-7.0")
    expect(r.returncode == 1, "without --lossy: exit %d, expected 1\n%s" % (r.returncode, r.stderr))
    for _, k in fttl | vsets:
        expect('"%s"' % show(k) in r.stderr, "refusal does not name %s:\n%s" % (show(k), r.stderr))
    expect(os.listdir(d) == [], "refused conversion left files: %s" % os.listdir(d))
    r = env.run_ok("convert", src, "-o", out, "--target", "redis-7.0", "--lossy", "--json")
    rep, lossy = lossy_report(r.stdout)
    reported = {(db, bkey(k)) for db, k, w in lossy if k is not None and not is_stream_meta(w)}
    whole = {(db, bkey(k)) for db, k, w in lossy if k is not None and w.startswith("whole key")}
    expect(reported == fttl | vsets, "lossy report names %r, expected %r" % (reported, fttl | vsets))
    expect(whole == vsets, "keys reported dropped whole %r, vector sets are %r" % (whole, vsets))
    RDB_FILES.append(out)
    new = env.view_of("redis-7.0", out)
    present = {(db, k) for db in new["dbs"] for k in new["dbs"][db]}
    gone = {(db, k) for db in orig["dbs"] for k in orig["dbs"][db]} - present
    expect(gone == whole, "keys missing after load %r, reported dropped %r" % (gone, whole))
    expect_no_diffs(compare(orig, new, missing=whole, ttl_stripped=fttl - whole), "8.2 original vs 7.0")
    return "refused naming %d keys; lossy dropped %s" % (len(fttl | vsets), ", ".join(sorted(show(k) for _, k in whole)))


def check_redis_check_rdb():
    expect(os.access(CHECK_RDB, os.X_OK), "%s missing" % CHECK_RDB)
    expect(RDB_FILES, "no files to check")
    bad = []
    for f in RDB_FILES:
        with open(f, "rb") as fh:
            magic = fh.read(9)
        expect(magic.startswith(b"REDIS") and int(magic[5:]) <= 10, "%s is %r" % (f, magic))
        r = subprocess.run([CHECK_RDB, f], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or "RDB looks OK" not in r.stdout + r.stderr:
            bad.append("%s: exit %d\n%s" % (os.path.relpath(f, os.path.dirname(f) + "/.."), r.returncode,
                                             (r.stdout + r.stderr).strip()[-600:]))
    expect(not bad, "\n".join(bad))
    return "%d files" % len(RDB_FILES)


def check_export(env):
    src = os.path.join(TESTDATA, "redis-7.0.rdb")
    d = env.dir("export")
    env.run_ok("export", src, "--prefix", "P", "--out-dir", d)
    env.run_ok("export", src, "--prefix", "P", "--out-dir", d, "--blob", "gzip")
    page, gz = os.path.join(d, "P.rdb"), os.path.join(d, "P.rdb.gz")
    expect(sorted(os.listdir(d)) == ["P.rdb", "P.rdb.gz"], "export dir holds %s" % sorted(os.listdir(d)))
    size = os.path.getsize(page)
    expect(size % 512 == 0, "page blob is %d bytes (not a multiple of 512)" % size)
    unz = os.path.join(d, "gunzipped.rdb")
    with open(unz, "wb") as f:
        r = subprocess.run(["gzip", "-dc", gz], stdout=f, stderr=subprocess.PIPE, timeout=300)
    expect(r.returncode == 0, "gzip -dc failed: %s" % r.stderr.decode(errors="replace"))
    with open(page, "rb") as f:
        data = f.read()
    with open(unz, "rb") as f:
        plain = f.read()
    with gzip.open(gz) as g:
        expect(g.read() == plain, "python gzip and gzip -dc disagree")
    # Both blobs hold the same RDB: the page blob is it plus fewer than 512 zero bytes.
    expect(data[:len(plain)] == plain and data[len(plain):] == b"\0" * (size - len(plain)) and
           size - len(plain) < 512, "page blob is not the gzip blob's RDB + zero padding (%d vs %d bytes)"
           % (size, len(plain)))
    RDB_FILES.extend([page, unz])
    orig = env.view_of("redis-7.0", src)
    for label, f in (("page", page), ("gzip", unz)):
        new = env.view_of("redis-7.0", f, label="export-" + label)
        expect_no_diffs(compare(orig, new), label)
        expect(new["digest"] == orig["digest"], "%s: DEBUG DIGEST %s vs %s" % (label, orig["digest"], new["digest"]))
    return "page %d bytes (%d x 512), gzip %d bytes" % (size, size // 512, os.path.getsize(gz))


def hash_tagged_commands():
    """Extra keys for the split check: many hash tags, edge cases of the tag rule, all value types."""
    cmds = []
    for i in range(60):
        cmds.append(["SADD", "{user%d}.following" % (1000 + i), "a%d" % i, "b"])
        cmds.append(["SADD", "{user%d}.followers" % (1000 + i), "c%d" % i])
        cmds.append(["SET", "plain:%d" % i, "v%d" % i])
    for i in range(40):
        cmds.append(["HSET", "session:{%d}:data" % i, "f", i])
        cmds.append(["RPUSH", "queue{q%d}" % (i % 7), "x%d" % i])
        cmds.append(["ZADD", "rank:{board%d}" % (i % 5), i, "m%d" % i])
    for k in ["foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{}", "{", "}", "}{", "{}x", "x{}",
              "a{b}c", "{a}", "a{", "a}b{c}", "{{}}", "{{a}}", "{}{a}", "{a}{}", "foo{bar", "foo}bar{zap}",
              b"\xff{\x00}\xfe", b"{\xff}", "{user1000}", "user1000", "{user1000}.following.2"]:
        cmds.append(["SET", k, "tagged"])
    return cmds


def check_split(env):
    d = env.dir("split")
    src = os.path.join(d, "F.rdb")
    with Server("redis-7.0", env.dir("split-build"), os.path.join(TESTDATA, "redis-7.0.rdb")) as s:
        s.c.pipe(hash_tagged_commands())
        s.save_to(src)
    orig = env.view_of("redis-7.0", src)
    keys0 = sorted(orig["dbs"][0])
    expect(len(keys0) >= 200, "only %d keys in db 0" % len(keys0))
    out = os.path.join(d, "shards")
    env.run_ok("split", src, "--shards", "3", "--out-dir", out, "--prefix", "F")
    manifest = json.load(open(os.path.join(out, "F.manifest.json")))
    shards = manifest["shards"]
    expect(len(shards) == 3, "manifest has %d shards" % len(shards))
    ranges = []
    for sh in shards:
        rs = []
        for r in sh["slots"]:
            a, _, b = r.partition("-")
            rs.append((int(a), int(b or a)))
        ranges.append(rs)
    covered = sorted(x for rs in ranges for x in rs)
    expect(covered[0][0] == 0 and covered[-1][1] == 16383 and
           all(covered[i][1] + 1 == covered[i + 1][0] for i in range(len(covered) - 1)),
           "slot ranges do not cover 0-16383 exactly: %r" % covered)
    # Slots by the server's own CLUSTER KEYSLOT.
    cdir = env.dir("cluster-keyslot")
    with Server("redis-7.0", cdir, None, ["--cluster-enabled", "yes",
                                          "--cluster-config-file", os.path.join(cdir, "nodes.conf")]) as s:
        s.c("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        slots = dict(zip(keys0, s.c.pipe([["CLUSTER", "KEYSLOT", k] for k in keys0])))
        user1000 = s.c("CLUSTER", "KEYSLOT", "user1000")
        for k in (b"{user1000}.following", b"{user1000}.followers", b"{user1000}", b"{user1000}.following.2"):
            expect(slots[k] == user1000, "%s: slot %d, not that of user1000 (%d)" % (show(k), slots[k], user1000))
        expect(slots[b"foo{}{bar}"] == s.c("CLUSTER", "KEYSLOT", "foo{}{bar}") != s.c("CLUSTER", "KEYSLOT", "bar"),
               "foo{}{bar} slot")
        expect(slots[b"foo{{bar}}zap"] == s.c("CLUSTER", "KEYSLOT", "{bar"), "foo{{bar}}zap slot")
    # Each shard on its own plain server: which keys landed where.
    shard_views, seen, diffs = [], {}, []
    for i, sh in enumerate(shards):
        f = os.path.join(out, sh["file"])
        RDB_FILES.append(f)
        v = env.view_of("redis-7.0", f, label="shard%d-plain" % i)
        shard_views.append(v)
        expect(set(v["dbsize"]) <= {0}, "shard %d has databases %r" % (i, sorted(v["dbsize"])))
        got = v["dbs"].get(0, {})
        expect(len(got) == sh["keys"], "shard %d: %d keys loaded, manifest says %d" % (i, len(got), sh["keys"]))
        for k, info in got.items():
            if k in seen:
                diffs.append("key %s in shards %d and %d" % (show(k), seen[k], i))
            seen[k] = i
            if k not in slots:
                diffs.append("shard %d: key %s not in the original db 0" % (i, show(k)))
                continue
            if not any(a <= slots[k] <= b for a, b in ranges[i]):
                diffs.append("key %s (CLUSTER KEYSLOT %d) in shard %d owning %r" % (show(k), slots[k], i, ranges[i]))
            if info["digest"] != orig["dbs"][0][k]["digest"] or info["expire"] != orig["dbs"][0][k]["expire"]:
                diffs.append("key %s: DIGEST-VALUE/expiry differs in shard %d" % (show(k), i))
    for k in keys0:
        if k not in seen:
            diffs.append("key %s (slot %d) in no shard" % (show(k), slots[k]))
    expect_no_diffs(diffs, "split")
    # Each shard into a cluster-mode node owning exactly its slots: assign them on an empty node, restart
    # it (nodes.conf keeps the slots) on the shard file, and check that nothing was loaded outside them.
    for i, sh in enumerate(shards):
        cd = env.dir("shard%d-cluster" % i)
        conf = ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(cd, "nodes.conf")]
        with Server("redis-7.0", cd, None, conf) as s:
            for a, b in ranges[i]:
                s.c("CLUSTER", "ADDSLOTSRANGE", a, b)
            before = sorted(s.c("CLUSTER", "SLOTS"))
        with Server("redis-7.0", cd, os.path.join(out, sh["file"]), conf) as s:
            n = s.c("DBSIZE")
            after = sorted(s.c("CLUSTER", "SLOTS"))
            owned = sorted((x[0], x[1]) for x in after)
            expect(n == sh["keys"], "cluster node %d: DBSIZE %d, shard has %d keys" % (i, n, sh["keys"]))
            expect([x[:2] for x in before] == [x[:2] for x in after] and owned == sorted(ranges[i]),
                   "cluster node %d owns %r after loading, expected %r" % (i, owned, ranges[i]))
            log = read(os.path.join(cd, "server.log"))
            expect("Taking responsibility" not in log, "node %d claimed extra slots:\n%s" % (i, log[-500:]))
    return "%d keys in db 0, shards %s" % (len(keys0), "/".join(str(sh["keys"]) for sh in shards))


def check_split_82(env):
    """A split for Redis 8.2 (RDB 12: SLOT_INFO before each slot's first key), of a file large enough that the
    shards' RESIZEDB/SLOT_INFO placeholders are patched into the files after streaming: every shard loads into a
    plain and a cluster-mode 8.2 with the original keys and DEBUG DIGEST-VALUEs."""
    d = env.dir("split82")
    src = os.path.join(d, "G.rdb")
    with Server("redis-8.2", env.dir("split82-build"), None) as s:
        s.c.pipe(hash_tagged_commands())
        rnd = random.Random(82)
        s.c.pipe([["SET", "r:%d" % i, bytes(rnd.getrandbits(8) for _ in range(100))] for i in range(40000)])
        s.save_to(src)
    orig = env.view_of("redis-8.2", src)
    keys0 = orig["dbs"][0]
    out = os.path.join(d, "shards")
    env.run_ok("split", src, "--shards", "3", "--out-dir", out, "--prefix", "G", "--target", "redis-8.2")
    shards = json.load(open(os.path.join(out, "G.manifest.json")))["shards"]
    seen, diffs = {}, []
    for i, sh in enumerate(shards):
        f = os.path.join(out, sh["file"])
        expect(os.path.getsize(f) > 1 << 20, "shard %d is too small to exercise patched hints" % i)
        got = env.view_of("redis-8.2", f, label="shard82-%d-plain" % i)["dbs"].get(0, {})
        expect(len(got) == sh["keys"], "shard %d: %d keys loaded, manifest says %d" % (i, len(got), sh["keys"]))
        for k, info in got.items():
            seen[k] = i
            if k not in keys0 or info["digest"] != keys0[k]["digest"] or info["expire"] != keys0[k]["expire"]:
                diffs.append("shard %d: key %s differs from the original" % (i, show(k)))
        ranges = []
        for r in sh["slots"]:
            a, _, b = r.partition("-")
            ranges.append((int(a), int(b or a)))
        cd = env.dir("shard82-%d-cluster" % i)
        conf = ["--cluster-enabled", "yes", "--cluster-config-file", os.path.join(cd, "nodes.conf")]
        with Server("redis-8.2", cd, None, conf) as s:
            for a, b in ranges:
                s.c("CLUSTER", "ADDSLOTSRANGE", a, b)
        with Server("redis-8.2", cd, f, conf) as s:
            n = s.c("DBSIZE")
            expect(n == sh["keys"], "8.2 cluster node %d: DBSIZE %d, shard has %d keys" % (i, n, sh["keys"]))
            log = read(os.path.join(cd, "server.log"))
            expect("Taking responsibility" not in log, "node %d claimed extra slots:\n%s" % (i, log[-500:]))
    diffs += ["key %s in no shard" % show(k) for k in keys0 if k not in seen]
    expect_no_diffs(diffs, "split for 8.2")
    return "%d keys in db 0, shards %s" % (len(keys0), "/".join(str(sh["keys"]) for sh in shards))


def check_import_tier(env):
    src = os.path.join(TESTDATA, "redis-7.0-multidb64.rdb")
    d = env.dir("import-p2")
    out = os.path.join(d, "out.rdb")
    r = env.run_ok("import", src, "-o", out, "--target", "redis-7.0", "--tier", "p2", "--json")
    rep = json.loads(r.stdout)
    RDB_FILES.append(out)
    orig = env.view_of("redis-7.0", src)
    expect(max(orig["dbsize"]) == 63, "original has databases %r" % sorted(orig["dbsize"]))
    want_dropped = {db: n for db, n in orig["dbsize"].items() if db >= 32}
    got_dropped = {int(db): n for db, n in rep["dropped"]["db"].items()}
    expect(got_dropped == want_dropped, "report dropped.db %r, dbs 32..63 hold %r" % (got_dropped, want_dropped))
    new = env.view_of("redis-7.0", out, ["--databases", "32"], label="import-p2-load")
    kept = {(db, k) for db in orig["dbs"] if db >= 32 for k in orig["dbs"][db]}
    expect_no_diffs(compare(orig, new, missing=kept), "original dbs 0..31 vs import loaded with --databases 32")
    # Why the limit matters: the original does not load into 16 databases.
    try:
        Server("redis-7.0", env.dir("import-16-refuses"), src, ["--databases", "16"]).stop()
        raise CheckFailed("Redis 7.0 with --databases 16 loaded the 64-database original")
    except StartFailed as e:
        expect("databases" in e.log, "server failed, but not for the databases:\n%s" % e.log[-800:])
        why = [l for l in e.log.splitlines() if "databases" in l][-1].split("# ", 1)[-1].strip()
        why = why.replace("FATAL: Data file was created with a Redis server configured to handle ", "")
    return "dropped %d keys in dbs 32..63; 16-db server exits: %s" % (sum(want_dropped.values()), why)


def check_import_62(env):
    src = os.path.join(TESTDATA, "redis-7.0.rdb")
    d = env.dir("import-62")
    out = os.path.join(d, "out.rdb")
    r = env.run("import", src, "--target", "redis-6.2", "-o", out)
    expect(r.returncode == 1, "without --lossy: exit %d, expected 1\n%s" % (r.returncode, r.stderr))
    expect("mylib" in r.stderr, "refusal does not name mylib:\n%s" % r.stderr)
    expect(os.listdir(d) == [], "refused import left files: %s" % os.listdir(d))
    r = env.run_ok("import", src, "--target", "redis-6.2", "-o", out, "--lossy", "--json")
    rep, lossy = lossy_report(r.stdout)
    expect([w for _, _, w in lossy if not is_stream_meta(w)] == ['function library "mylib"'], "lossy drops %r" % lossy)
    RDB_FILES.append(out)
    orig = env.view_of("redis-7.0", src)
    new = env.view_of("redis-6.2", out)
    expect(new["dbsize"] == orig["dbsize"], "DBSIZE %r vs %r" % (orig["dbsize"], new["dbsize"]))
    expect_no_diffs(compare(orig, new), "7.0 original vs 6.2")
    return "%d keys" % sum(new["dbsize"].values())


# ----------------------------------------------------------------------------------------------

def main():
    t0 = time.time()
    try:
        available = subprocess.run([SERVERS_SH, "available"], capture_output=True).returncode == 0
    except OSError:
        available = False
    if not available:
        if os.environ.get("RDBKIT_REQUIRE_SERVERS") == "1":
            print("test-servers: servers not installed and RDBKIT_REQUIRE_SERVERS=1 "
                  "(run scripts/servers.sh install)", file=sys.stderr)
            return 1
        print("skipped: servers not installed")
        return 0
    rdbkit = os.environ.get("RDBKIT")
    if not rdbkit:
        r = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "rdbkit"], cwd=ROOT)
        if r.returncode != 0:
            print("test-servers: cargo build --release failed", file=sys.stderr)
            return 1
        rdbkit = os.path.join(ROOT, "target", "release", "rdbkit")
    rdbkit = os.path.abspath(rdbkit)

    def on_signal(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    tmp = tempfile.mkdtemp(prefix="rdbkit-servers.")
    env = Env(rdbkit, tmp)
    try:
        check("1 convert redis-7.0 -> RDB 9 --lossy: loads into 6.2", lambda: check_convert_7_to_6(env))
        check("1 convert redis-7.0 -> RDB 10: loads into 7.0", lambda: check_convert_7_to_10(env))
        check("1 convert valkey-9.1 -> RDB 9 --lossy: loads into 6.2", lambda: valkey_down(env, "9", "redis-6.2"))
        check("1 convert valkey-9.1 -> RDB 10 --lossy: loads into 7.0", lambda: valkey_down(env, "10", "redis-7.0"))
        check("1 convert valkey-9.1 -> redis-8.2 -> SAVE -> valkey-9.1", lambda: check_valkey_to_82_and_back(env))
        check("1 convert redis-6.2 -> redis-8.2 (up): loads into 8.2", lambda: check_up_6_to_82(env))
        check("2 convert redis-8.2 -> redis-7.0: refused / --lossy", lambda: check_82_to_70(env))
        check("4 export page blob and gzip blob: load into 7.0", lambda: check_export(env))
        check("5 split --shards 3: CLUSTER KEYSLOT, plain and cluster loads", lambda: check_split(env))
        check("5 split --shards 3 for redis-8.2 (SLOT_INFO, patched hints): plain and cluster loads",
              lambda: check_split_82(env))
        check("6 import --tier p2: loads with 32 dbs, original not with 16", lambda: check_import_tier(env))
        check("7 import --target redis-6.2: refused / --lossy loads", lambda: check_import_62(env))
        check("3 redis-check-rdb accepts every file written at RDB <= 10", check_redis_check_rdb)
    finally:
        stop_all()
        if os.environ.get("RDBKIT_KEEP_TMP"):
            print("kept %s" % tmp, file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    took = time.time() - t0
    if FAILURES:
        print("test-servers: %d check(s) FAILED in %.1fs" % (len(FAILURES), took))
        return 1
    print("test-servers: all checks passed in %.1fs" % took)
    return 0


if __name__ == "__main__":
    sys.exit(main())
