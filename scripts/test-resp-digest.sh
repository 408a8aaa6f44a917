#!/usr/bin/env bash
# Checks `rdbkit dump --format resp` against real servers.
#
#   scripts/test-resp-digest.sh            (RDBKIT=path/to/rdbkit to skip the cargo build)
#
# For each server kind (redis-6.2, redis-7.0, redis-8.2 with the FalkorDB module, valkey-9.1) and its fixture:
#   1. start the server on a copy of the fixture and record its view of the data: DEBUG DIGEST, and per key
#      DEBUG DIGEST-VALUE, TYPE, expiry (PEXPIRETIME, or "has a TTL" on 6.2), hash field expiries (HPEXPIRETIME
#      where supported), XINFO STREAM FULL (without consumer seen/active times and radix-tree sizes, which depend
#      on the clock and on how entries were inserted), and FUNCTION LIST WITHCODE;
#   2. for plain commands and for --restore: start an empty server of the same kind, pipe
#      `rdbkit dump FIXTURE --format resp [--restore] | redis-cli --pipe` into it (no error replies allowed),
#      record the same view and compare;
#   3. DUMP cross-check: on that server, create a few keys (`SET foo bar`, …), SAVE, and check that every RESTORE
#      payload `rdbkit dump --restore` builds from the saved file equals the server's own `DUMP key`.
# Prints one line per server and mode; exits 1 on any mismatch.
#
# When the servers are not installed (scripts/servers.sh available fails) it prints
# "skipped: servers not installed" and exits 0, or exits 1 when RDBKIT_REQUIRE_SERVERS=1.
# Servers listen on 127.0.0.1, ports 7400-7499 (RDBKIT_TEST_PORT_BASE moves the start), and are stopped by the
# PID this script started them with.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SERVERS="$ROOT/scripts/servers.sh"

if ! "$SERVERS" available; then
  if [[ "${RDBKIT_REQUIRE_SERVERS:-}" == 1 ]]; then
    echo "test-resp-digest: servers not installed and RDBKIT_REQUIRE_SERVERS=1 (run scripts/servers.sh install)" >&2
    exit 1
  fi
  echo "skipped: servers not installed"
  exit 0
fi

if [[ -z "${RDBKIT:-}" ]]; then
  (cd "$ROOT" && cargo build --quiet --bin rdbkit)
  RDBKIT="$ROOT/target/debug/rdbkit"
fi
CLI="$("$SERVERS" cli)"
PY="$ROOT/.venv/bin/python"
[[ -x "$PY" ]] || PY=python3
FALKORDB="$("$SERVERS" module falkordb)"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rdbkit-resp.XXXXXX")"
STARTED=()
cleanup() {
  local d
  for d in "${STARTED[@]+"${STARTED[@]}"}"; do "$SERVERS" stop "$d" >/dev/null 2>&1 || true; done
  [[ -n "${RDBKIT_KEEP_TMP:-}" ]] && echo "kept $TMP" >&2 || rm -rf "$TMP"
}
trap cleanup EXIT

NEXT_PORT="${RDBKIT_TEST_PORT_BASE:-7400}"
PORT=""
# start_server NAME DIR [ARGS…]: starts NAME in DIR on the next free port in 7400-7499; sets PORT.
start_server() {
  local name="$1" dir="$2"; shift 2
  mkdir -p "$dir"
  while (( NEXT_PORT < 7500 )); do
    PORT=$NEXT_PORT
    NEXT_PORT=$((NEXT_PORT + 1))
    if "$SERVERS" start "$name" "$PORT" "$dir" "$@" >"$dir/start.out" 2>&1; then
      STARTED+=("$dir")
      return 0
    fi
    # Another process holds the port (or won the race for it): try the next one.
    grep -qE "already in use|exited during startup" "$dir/start.out" || { cat "$dir/start.out" >&2; return 1; }
  done
  echo "test-resp-digest: no free port in 7400-7499" >&2
  return 1
}

stop_server() { "$SERVERS" stop "$1" >/dev/null 2>&1 || true; }

# Every step is bounded (STEP_TIMEOUT seconds, default 300): a hang anywhere fails this script with the step named
# (exit 124 from timeout) instead of stalling the test run. Progress goes to stderr as it happens.
STEP_TIMEOUT="${STEP_TIMEOUT:-300}"
limit() { timeout -k 5 "$STEP_TIMEOUT" "$@"; }
progress() { echo "test-resp-digest: $(date +%T) $*" >&2; }

cat >"$TMP/helper.py" <<'PYEOF'
import json, socket, subprocess, sys

class RespError(Exception):
    pass

class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.f = self.sock.makefile("rb")
    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+": return rest
        if t == b"-": return RespError(rest.decode(errors="replace"))
        if t == b":": return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self.f.read(n + 2)[:-2]
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError("bad RESP type %r" % t)
    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        r = self._read()
        if isinstance(r, RespError):
            raise r
        return r

def jsonable(x):
    if isinstance(x, bytes):
        return x.decode("latin-1")
    if isinstance(x, list):
        return [jsonable(y) for y in x]
    return x

# XINFO STREAM FULL fields that depend on the clock or on node layout, not on the data.
VOLATILE = {b"seen-time", b"active-time", b"radix-tree-keys", b"radix-tree-nodes"}

def scrub(x):
    if isinstance(x, list):
        out = []
        skip = False
        for i, y in enumerate(x):
            if skip:
                out.append(None); skip = False; continue
            if isinstance(y, bytes) and y in VOLATILE and i + 1 < len(x) and not isinstance(x[i + 1], list):
                skip = True
            out.append(scrub(y))
        return out
    return x

def view(port):
    c = Conn(port)
    v = {"digest": jsonable(c("DEBUG", "DIGEST")), "dbs": {}}
    try:
        v["functions"] = jsonable(c("FUNCTION", "LIST", "WITHCODE"))
    except RespError:
        v["functions"] = None
    has_pexpiretime = has_hpexpiretime = True
    for db in range(64):
        c("SELECT", db)
        keys, cur = [], b"0"
        while True:
            cur, batch = c("SCAN", cur, "COUNT", 1000)
            keys += batch
            if cur == b"0":
                break
        if not keys:
            continue
        d = {}
        for k in sorted(set(keys)):
            t = c("TYPE", k)
            e = {"type": jsonable(t), "digest": jsonable(c("DEBUG", "DIGEST-VALUE", k))}
            if has_pexpiretime:
                try:
                    e["expire"] = c("PEXPIRETIME", k)
                except RespError:
                    has_pexpiretime = False
            if not has_pexpiretime:
                e["expire"] = c("PTTL", k) >= 0
            if t == b"hash" and has_hpexpiretime:
                fields = sorted(c("HKEYS", k))
                try:
                    e["field_expire"] = list(zip([jsonable(f) for f in fields],
                                                 c("HPEXPIRETIME", k, "FIELDS", len(fields), *fields)))
                except RespError:
                    has_hpexpiretime = False
            if t == b"stream":
                e["xinfo"] = jsonable(scrub(c("XINFO", "STREAM", k, "FULL", "COUNT", 0)))
            d[jsonable(k)] = e
        v["dbs"][str(db)] = d
    return v

def compare(a_path, b_path):
    a, b = json.load(open(a_path)), json.load(open(b_path))
    if a == b:
        return 0
    if a["digest"] != b["digest"]:
        print("    DEBUG DIGEST %s != %s" % (a["digest"], b["digest"]))
    if a.get("functions") != b.get("functions"):
        print("    functions differ")
    for db in sorted(set(a["dbs"]) | set(b["dbs"]), key=int):
        da, dbb = a["dbs"].get(db, {}), b["dbs"].get(db, {})
        for k in sorted(set(da) | set(dbb)):
            if da.get(k) != dbb.get(k):
                x, y = da.get(k) or {}, dbb.get(k) or {}
                what = [f for f in sorted(set(x) | set(y)) if x.get(f) != y.get(f)]
                print("    db %s key %r differs in %s" % (db, k, ", ".join(what)))
                for f in what:
                    print("      loaded:   %s" % json.dumps(x.get(f))[:300])
                    print("      restored: %s" % json.dumps(y.get(f))[:300])
    return 1

def parse_resp_commands(data):
    cmds, i = [], 0
    while i < len(data):
        assert data[i:i + 1] == b"*", data[i:i + 20]
        j = data.index(b"\r\n", i)
        n = int(data[i + 1:j]); i = j + 2
        args = []
        for _ in range(n):
            j = data.index(b"\r\n", i)
            ln = int(data[i + 1:j]); i = j + 2
            args.append(data[i:i + ln]); i += ln + 2
        cmds.append(args)
    return cmds

def dumpcheck(port, rdb, rdbkit):
    """Keys made by the server: its DUMP must equal the payload rdbkit builds from the SAVEd file."""
    c = Conn(port)
    c("FLUSHALL")
    c("SET", "foo", "bar")
    c("SET", "n", "12345")
    c("SET", "long", "x" * 300)
    c("RPUSH", "l", "a", "b", "1", "-2")
    c("SADD", "s", "x", "y")
    c("SADD", "si", "1", "2", "300")
    c("ZADD", "z", "1.5", "m", "-3", "n")
    c("HSET", "h", "f", "v", "g", "12")
    c("XADD", "st", "1-1", "a", "b")
    c("SAVE")
    out = subprocess.run([rdbkit, "dump", rdb, "--format", "resp", "--restore"], check=True,
                         stdout=subprocess.PIPE).stdout
    bad, n = [], 0
    for cmd in parse_resp_commands(out):
        if cmd[0] != b"RESTORE":
            continue
        n += 1
        key, payload = cmd[1], cmd[3]
        if c("DUMP", key) != payload:
            bad.append(key)
    if n != 9 or bad:
        print("    DUMP payload mismatch for %r (%d RESTOREs)" % (bad, n))
        return 1
    print("    DUMP cross-check: %d keys, server DUMP == rdbkit payload (foo: %s)" % (n, c("DUMP", "foo").hex()))
    return 0

def build(port, kind):
    """A synthetic data set with what the fixtures lack: pending entries whose stream entries were deleted,
    collections larger than one batch, edge-case scores, binary keys."""
    c = Conn(port)
    for i in range(1, 8):
        c("XADD", "ps", "%d-1" % i, "f", str(i))
    c("XGROUP", "CREATE", "ps", "g", "0")
    c("XREADGROUP", "GROUP", "g", "alice", "COUNT", 4, "STREAMS", "ps", ">")
    c("XREADGROUP", "GROUP", "g", "bob", "COUNT", 2, "STREAMS", "ps", ">")
    c("XGROUP", "CREATE", "ps", "other", "3-1")
    c("XDEL", "ps", "2-1", "5-1", "7-1")
    c("XACK", "ps", "g", "3-1")
    c("XADD", "pe", "1-1", "a", "b")
    c("XGROUP", "CREATE", "pe", "g", "0")
    c("XREADGROUP", "GROUP", "g", "c", "STREAMS", "pe", ">")
    c("XDEL", "pe", "1-1")
    c("RPUSH", "biglist", *[str(i) for i in range(2500)])
    c("SADD", "bigset", *["m%d" % i for i in range(2100)])
    c("ZADD", "bigzset", *sum([[repr(i * 0.1), "z%d" % i] for i in range(2100)], []))
    c("HSET", "bighash", *sum([["f%d" % i, "v%d" % i] for i in range(2100)], []))
    c("ZADD", "zs", "inf", "a", "-inf", "b", "0.1", "c", "1e300", "d", "-0", "e", "5e-324", "f", "-1.5e-7", "g")
    c("SET", b"bin\x00\xff\r\nkey", b"\x00\r\n\xff")
    c("SET", "empty", "")
    c("SET", "ttl", "v")
    c("PEXPIREAT", "ttl", 4102444800789)
    c("SELECT", 9)
    c("RPUSH", "l9", "x")
    c("SELECT", 0)
    if kind in ("redis-8.2", "valkey-9.1"):
        c("HSET", "hf", "a", "1", "b", "2", "c", "3")
        c("HPEXPIREAT", "hf", 4102444800000, "FIELDS", 2, "a", "b")
        c("HSET", "hfbig", *sum([["f%d" % i, "v" * 10] for i in range(300)], []))
        c("HPEXPIREAT", "hfbig", 4102444800000, "FIELDS", 3, "f1", "f2", "f250")
    c("SAVE")

if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "view":
        json.dump(view(int(sys.argv[2])), sys.stdout, sort_keys=True, indent=0)
    elif cmd == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    elif cmd == "build":
        build(int(sys.argv[2]), sys.argv[3])
    elif cmd == "dumpcheck":
        sys.exit(dumpcheck(int(sys.argv[2]), sys.argv[3], sys.argv[4]))
PYEOF

FAILED=0
# check NAME FIXTURE [SERVER ARGS…]
check() {
  local name="$1" fixture="$2"; shift 2
  local base="$TMP/$name-$(basename "$fixture" .rdb)"
  local src="$base/src"
  mkdir -p "$src"
  cp "$fixture" "$src/dump.rdb"
  progress "$name $(basename "$fixture"): loading it"
  start_server "$name" "$src" "$@"
  limit "$PY" "$TMP/helper.py" view "$PORT" >"$base/loaded.json"
  stop_server "$src"
  local mode flag dst out status line
  for mode in commands restore; do
    flag=(); [[ $mode == restore ]] && flag=(--restore)
    dst="$base/$mode"
    start_server "$name" "$dst" "$@"
    set +e
    progress "$name $(basename "$fixture") $mode: dump | redis-cli --pipe into port $PORT"
    out="$( { limit "$RDBKIT" dump "$fixture" --format resp "${flag[@]+"${flag[@]}"}"; echo $? >"$base/$mode.rc"; } \
            | limit "$CLI" -p "$PORT" --pipe 2>&1)"
    status=("$(cat "$base/$mode.rc")" "$?")
    set -e
    limit "$PY" "$TMP/helper.py" view "$PORT" >"$base/$mode.json"
    line="$(printf '%-11s %-26s %-9s' "$name" "$(basename "$fixture")" "$mode")"
    if [[ "${status[0]}" != 0 || "${status[1]}" != 0 ]] || ! grep -q "errors: 0," <<<"$out"; then
      echo "$line FAIL: rdbkit exit ${status[0]}, redis-cli exit ${status[1]}"
      grep -v "^All data transferred\|^Last reply" <<<"$out" | head -20 | sed 's/^/    /'
      FAILED=1
    elif limit "$PY" "$TMP/helper.py" compare "$base/loaded.json" "$base/$mode.json" >"$base/$mode.diff"; then
      local digest replies
      digest="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$base/$mode.json")"
      replies="$(grep -o "replies: [0-9]*" <<<"$out")"
      echo "$line ok (digest $digest, $replies)"
    else
      echo "$line MISMATCH"
      cat "$base/$mode.diff"
      FAILED=1
    fi
    if [[ $mode == restore ]]; then
      limit "$PY" "$TMP/helper.py" dumpcheck "$PORT" "$dst/dump.rdb" "$RDBKIT" || FAILED=1
    fi
    stop_server "$dst"
  done
}

# synthetic NAME: builds the synthetic data set on NAME, SAVEs it, and checks the saved file like a fixture.
synthetic() {
  local name="$1" dir="$TMP/$1-build"
  progress "$name: building the synthetic data set"
  start_server "$name" "$dir"
  limit "$PY" "$TMP/helper.py" build "$PORT" "$name"
  stop_server "$dir"
  cp "$dir/dump.rdb" "$TMP/synthetic-$name.rdb"
  check "$name" "$TMP/synthetic-$name.rdb"
}

T="$ROOT/testdata"
check redis-6.2 "$T/redis-6.2.rdb"
check redis-7.0 "$T/redis-7.0.rdb"
check redis-7.0 "$T/redis-7.0-multidb64.rdb"
check redis-8.2 "$T/redis-8.2.rdb" --loadmodule "$FALKORDB"
check redis-8.2 "$T/redis-8.2-nomodule.rdb"
check valkey-9.1 "$T/valkey-9.1.rdb"
for name in redis-6.2 redis-7.0 redis-8.2 valkey-9.1; do synthetic "$name"; done

if [[ $FAILED != 0 ]]; then
  echo "test-resp-digest: FAILED"
  exit 1
fi
echo "test-resp-digest: all servers agree"
