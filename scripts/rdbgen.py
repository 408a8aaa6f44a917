"""Small RDB builder, walker and structure-aware mutator for the differential verdict test (standard library only).

Used by scripts/test-verdict.py; see that file for how the cases are judged.

- Encoders: LEN, STR (raw / LZF), ziplist, listpack, intset, zipmap, stream node listpacks, whole one-key files, and
  `wrap_payload` (a DUMP payload -> a one-key RDB file of the payload's RDB version).
- `walk(data)`: the top level of an RDB file: where each embedded blob (ziplist, listpack, intset, zipmap, stream
  node, LZF string) lies, and where EOF is, so a mutation can rewrite one string and fix up the file around it.
- `mutate(data, rng)`: one structure-aware change inside one blob; the enclosing string length and the CRC-64 are
  fixed up, so the outer file stays well-formed and only the inner structure is wrong (or, sometimes, still right).

Byte layouts follow /work/shared/RDB-FORMAT.md; the CRC is Redis's CRC-64 "Jones" variant (src/format/crc.rs).
"""

import struct

# ------------------------------------------------------------------------------------------------------------------
# CRC-64 Jones (reflected poly 0x95AC9329AC4BC9B5, init 0, xorout 0).

_POLY = 0x95AC9329AC4BC9B5
_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ _POLY if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc64(data, crc=0):
    t = _TABLE
    for b in data:
        crc = t[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc


assert crc64(b"123456789") == 0xE9C6D914C4B8D9CA

# ------------------------------------------------------------------------------------------------------------------
# Primitives.


def enc_len(n):
    if n < 64:
        return bytes([n])
    if n < 16384:
        return bytes([0x40 | (n >> 8), n & 0xFF])
    if n <= 0xFFFFFFFF:
        return b"\x80" + struct.pack(">I", n)
    return b"\x81" + struct.pack(">Q", n)


def lzf_compress(data):
    """A tiny greedy LZF compressor (hash of 3 bytes), enough to make back-references for mutation."""
    out = bytearray()
    lit = bytearray()
    table = {}
    i, n = 0, len(data)

    def flush():
        for j in range(0, len(lit), 32):
            c = lit[j:j + 32]
            out.append(len(c) - 1)
            out.extend(c)
        lit.clear()

    while i < n:
        ref = table.get(data[i:i + 3]) if i + 3 <= n else None
        if i + 3 <= n:
            table[data[i:i + 3]] = i
        if ref is not None and i - ref - 1 < 8192:
            ln = 3
            while i + ln < n and ln < 264 and data[ref + ln] == data[i + ln]:
                ln += 1
            flush()
            off = i - ref - 1
            l2 = ln - 2
            if l2 < 7:
                out.append((l2 << 5) | (off >> 8))
            else:
                out.append((7 << 5) | (off >> 8))
                out.append(l2 - 7)
            out.append(off & 0xFF)
            i += ln
        else:
            lit.append(data[i])
            i += 1
    flush()
    return bytes(out)


def lzf_decompress(comp, ulen):
    """LZF decompression; None when the stream is invalid or does not give exactly ulen bytes."""
    out = bytearray()
    i, n = 0, len(comp)
    while i < n:
        ctrl = comp[i]
        i += 1
        if ctrl < 32:
            ln = ctrl + 1
            if i + ln > n or len(out) + ln > ulen:
                return None
            out += comp[i:i + ln]
            i += ln
        else:
            ln = ctrl >> 5
            if ln == 7:
                if i >= n:
                    return None
                ln += comp[i]
                i += 1
            if i >= n:
                return None
            off = ((ctrl & 0x1F) << 8) + comp[i] + 1
            i += 1
            if off > len(out) or len(out) + ln + 2 > ulen:
                return None
            for _ in range(ln + 2):
                out.append(out[-off])
    return bytes(out) if len(out) == ulen else None


def enc_str(b, lzf=False):
    if isinstance(b, str):
        b = b.encode()
    if lzf and b:
        c = lzf_compress(b)
        return b"\xc3" + enc_len(len(c)) + enc_len(len(b)) + c
    return enc_len(len(b)) + b


# ------------------------------------------------------------------------------------------------------------------
# Blob encoders. Entries are bytes (strings) or int.


def zl_entry(prevlen, v, big_prevlen=False):
    if prevlen < 254 and not big_prevlen:
        p = bytes([prevlen])
    else:
        p = b"\xfe" + struct.pack("<I", prevlen)
    if isinstance(v, int):
        if 0 <= v <= 12:
            e = bytes([0xF1 + v])
        elif -128 <= v <= 127:
            e = b"\xfe" + struct.pack("<b", v)
        elif -32768 <= v <= 32767:
            e = b"\xc0" + struct.pack("<h", v)
        elif -(1 << 23) <= v < (1 << 23):
            e = b"\xf0" + struct.pack("<i", v)[:3]
        elif -(1 << 31) <= v < (1 << 31):
            e = b"\xd0" + struct.pack("<i", v)
        else:
            e = b"\xe0" + struct.pack("<q", v)
    else:
        n = len(v)
        if n < 64:
            e = bytes([n]) + v
        elif n < 16384:
            e = bytes([0x40 | (n >> 8), n & 0xFF]) + v
        else:
            e = b"\x80" + struct.pack(">I", n) + v
    return p + e


def ziplist_raw(raw_entries, count=None, zlbytes=None, zltail=None, end=b"\xff"):
    """raw_entries: complete entry byte strings (prevlen already inside)."""
    body = b"".join(raw_entries)
    tail = 10 + sum(len(e) for e in raw_entries[:-1]) if raw_entries else 10
    if count is None:
        count = min(len(raw_entries), 0xFFFF)
    total = 10 + len(body) + len(end)
    return struct.pack("<IIH", total if zlbytes is None else zlbytes, tail if zltail is None else zltail,
                       count) + body + end


def zl_entries(values, big_prevlen_at=()):
    out, prev = [], 0
    for i, v in enumerate(values):
        e = zl_entry(prev, v, i in big_prevlen_at)
        out.append(e)
        prev = len(e)
    return out


def ziplist(values):
    return ziplist_raw(zl_entries(values))


def lp_backlen_real(n, redundant=False):
    """lpEncodeBacklen: for l bytes, buf[0] holds the most significant group with no flag, later bytes have 128 set;
    Redis: 1 byte: [l]; 2 bytes: [l>>7, (l&127)|128]; … reading backwards from the last byte decodes low bits
    first (lpDecodeBacklen: val |= (p[0]&127) << shift; continue while p[0]&128; p--)."""
    groups = []
    v = n
    while True:
        groups.append(v & 0x7F)
        v >>= 7
        if not v:
            break
    if redundant:
        groups.append(0)
    groups.reverse()  # msb first
    out = bytearray()
    for i, g in enumerate(groups):
        out.append(g if i == 0 else g | 0x80)
    return bytes(out)


def lp_encode(v):
    if isinstance(v, int):
        if 0 <= v <= 127:
            return bytes([v])
        if -4096 <= v <= 4095:
            u = v & 0x1FFF
            return bytes([0xC0 | (u >> 8), u & 0xFF])
        if -32768 <= v <= 32767:
            return b"\xf1" + struct.pack("<h", v)
        if -(1 << 23) <= v < (1 << 23):
            return b"\xf2" + struct.pack("<i", v)[:3]
        if -(1 << 31) <= v < (1 << 31):
            return b"\xf3" + struct.pack("<i", v)
        return b"\xf4" + struct.pack("<q", v)
    n = len(v)
    if n < 64:
        return bytes([0x80 | n]) + v
    if n < 4096:
        return bytes([0xE0 | (n >> 8), n & 0xFF]) + v
    return b"\xf0" + struct.pack("<I", n) + v


def lp_element(v, redundant=False):
    e = lp_encode(v)
    return e + lp_backlen_real(len(e), redundant)


def listpack_raw(elements, count=None, total=None, end=b"\xff"):
    """elements: complete element byte strings (encoding+data+backlen)."""
    body = b"".join(elements)
    if count is None:
        count = min(len(elements), 0xFFFF)
    tb = 6 + len(body) + len(end)
    return struct.pack("<IH", tb if total is None else total, count) + body + end


def listpack(values):
    return listpack_raw([lp_element(v) for v in values])


def intset(values, width=None):
    if width is None:
        width = 2
        for v in values:
            if not -(1 << 15) <= v < (1 << 15):
                width = max(width, 4)
            if not -(1 << 31) <= v < (1 << 31):
                width = 8
    fmt = {2: "<h", 4: "<i", 8: "<q"}[width]
    return struct.pack("<II", width, len(values)) + b"".join(struct.pack(fmt, v) for v in values)


def zipmap(pairs, zmlen=None):
    out = bytearray([len(pairs) if zmlen is None else zmlen])

    def zlen(n):
        return bytes([n]) if n < 254 else b"\xfe" + struct.pack("<I", n)

    for k, v in pairs:
        out += zlen(len(k)) + k + zlen(len(v)) + b"\x00" + v
    out.append(0xFF)
    return bytes(out)


def stream_node_listpack(entries, master_fields, base=(0, 0)):
    """entries: list of (ms, seq, fields dict-like list of (f, v)); returns the node listpack values list."""
    vals = [len(entries), 0, len(master_fields)] + list(master_fields) + [0]
    for ms, seq, fv in entries:
        fields = [f for f, _ in fv]
        same = fields == list(master_fields)
        flags = 2 if same else 0
        vals += [flags, ms - base[0], seq - base[1]]
        if same:
            vals += [v for _, v in fv]
            vals.append(len(fv) + 3)
        else:
            vals.append(len(fv))
            for f, v in fv:
                vals += [f, v]
            vals.append(2 * len(fv) + 4)
    return vals


def stream_id(ms, seq):
    return struct.pack(">QQ", ms, seq)


def stream_value(nodes, length, last_id, groups=(), version=3, first_id=None, max_del=(0, 0), added=None):
    """nodes: list of (node_key_bytes16, listpack_bytes). groups: list of dict(name, last_id, entries_read, pel:
    [(id16, time, count)], consumers: [(name, seen, active, [id16…])]). version 1/2/3 = types 15/19/21."""
    out = bytearray(enc_len(len(nodes)))
    for k, lp in nodes:
        out += enc_str(k) + enc_str(lp)
    out += enc_len(length) + enc_len(last_id[0]) + enc_len(last_id[1])
    if version >= 2:
        fi = first_id or (0, 0)
        out += enc_len(fi[0]) + enc_len(fi[1]) + enc_len(max_del[0]) + enc_len(max_del[1])
        out += enc_len(length if added is None else added)
    out += enc_len(len(groups))
    for g in groups:
        out += enc_str(g["name"]) + enc_len(g["last_id"][0]) + enc_len(g["last_id"][1])
        if version >= 2:
            out += enc_len(g.get("entries_read", 0))
        out += enc_len(len(g["pel"]))
        for id16, t, cnt in g["pel"]:
            out += id16 + struct.pack("<q", t) + enc_len(cnt)
        out += enc_len(len(g["consumers"]))
        for name, seen, active, pel in g["consumers"]:
            out += enc_str(name) + struct.pack("<q", seen)
            if version >= 3:
                out += struct.pack("<q", active)
            out += enc_len(len(pel))
            for id16 in pel:
                out += id16
    return bytes(out)


# ------------------------------------------------------------------------------------------------------------------
# Files.


def magic(version):
    if version == 80:
        return b"VALKEY080"
    return b"REDIS%04d" % version


def finish(body_without_eof, version=None):
    b = body_without_eof + b"\xff"
    if version is not None and version < 5:
        return b
    return b + struct.pack("<Q", crc64(b))


def key_record(type_byte, key, value, expire_ms=None):
    pre = b""
    if expire_ms is not None:
        pre = b"\xfc" + struct.pack("<q", expire_ms)
    return pre + bytes([type_byte]) + enc_str(key) + value


def one_key_file(version, type_byte, key, value, expire_ms=None, extra=b"", select=True):
    body = magic(version)
    if select:
        body += b"\xfe\x00"
    body += key_record(type_byte, key, value, expire_ms) + extra
    return finish(body, version)


def wrap_payload(payload, key=b"key"):
    """A DUMP payload (type + value + 2-byte version + 8-byte CRC) as a one-key RDB file at its version."""
    if len(payload) < 11:
        raise ValueError("payload shorter than type + version + CRC")
    ver = struct.unpack("<H", payload[-10:-8])[0]
    body = payload[:-10]
    return one_key_file(ver, body[0], key, body[1:]), ver


def fix_crc(data, eof):
    """Re-terminate data at its EOF byte (offset eof) with a fresh CRC-64 (version >= 5)."""
    head = data[:eof + 1]
    ver = file_version(data)
    if ver is not None and ver < 5:
        return head
    return head + struct.pack("<Q", crc64(head))


def file_version(data):
    try:
        if data.startswith(b"VALKEY"):
            return int(data[6:9])
        if data.startswith(b"REDIS"):
            return int(data[5:9])
    except ValueError:
        pass
    return None


# ------------------------------------------------------------------------------------------------------------------
# Walker: the top level of a file, with the span of every embedded blob string.


class WalkError(Exception):
    pass


class Site:
    """One STR in the file: [start, end) of the whole STR encoding; kind of blob it holds; lzf flag."""

    def __init__(self, start, end, kind, content, lzf):
        self.start, self.end, self.kind, self.content, self.lzf = start, end, kind, content, lzf

    def __repr__(self):
        return "Site(%d..%d %s%s %dB)" % (self.start, self.end, self.kind, " lzf" if self.lzf else "",
                                          len(self.content))


class _W:
    def __init__(self, data):
        self.d = data
        self.p = 0
        self.sites = []
        self.fields = []  # (start, end, kind, value): LEN fields and raw IDs, for count/metadata mutations

    def lenf(self, kind):
        start = self.p
        v, enc = self.length()
        if not enc:
            self.fields.append((start, self.p, kind, v))
        return v, enc

    def rawf(self, n, kind):
        start = self.p
        b = self.raw(n)
        self.fields.append((start, self.p, kind, b))
        return b

    def need(self, n):
        if self.p + n > len(self.d):
            raise WalkError("truncated at %d" % self.p)

    def u8(self):
        self.need(1)
        b = self.d[self.p]
        self.p += 1
        return b

    def raw(self, n):
        self.need(n)
        b = self.d[self.p:self.p + n]
        self.p += n
        return b

    def length(self):
        b = self.u8()
        t = b >> 6
        if t == 0:
            return b & 0x3F, False
        if t == 1:
            return ((b & 0x3F) << 8) | self.u8(), False
        if b == 0x80:
            return struct.unpack(">I", self.raw(4))[0], False
        if b == 0x81:
            return struct.unpack(">Q", self.raw(8))[0], False
        if t == 3:
            return b & 0x3F, True
        raise WalkError("bad length byte %#x at %d" % (b, self.p - 1))

    def string(self, kind=None):
        start = self.p
        n, enc = self.length()
        lzf = False
        if enc:
            if n == 0:
                v = str(struct.unpack("<b", self.raw(1))[0]).encode()
            elif n == 1:
                v = str(struct.unpack("<h", self.raw(2))[0]).encode()
            elif n == 2:
                v = str(struct.unpack("<i", self.raw(4))[0]).encode()
            elif n == 3:
                clen, _ = self.length()
                ulen, _ = self.length()
                c = self.raw(clen)
                v = lzf_decompress(c, ulen)
                if v is None:
                    raise WalkError("bad lzf at %d" % start)
                lzf = True
            else:
                raise WalkError("bad string encoding at %d" % start)
        else:
            v = self.raw(n)
        if kind is not None or lzf:
            self.sites.append(Site(start, self.p, kind or "string", v, lzf))
        return v

    def module_value(self):
        while True:
            op, _ = self.length()
            if op == 0:
                return
            if op in (1, 2):
                self.length()
            elif op == 3:
                self.raw(4)
            elif op == 4:
                self.raw(8)
            elif op == 5:
                self.string()
            else:
                raise WalkError("module opcode %d" % op)

    def value(self, t, valkey):
        if t == 0:
            self.string("string")
        elif t in (1, 2):
            n, _ = self.lenf("count")
            for _ in range(n):
                self.string()
        elif t == 3:
            n, _ = self.lenf("count")
            for _ in range(n):
                self.string()
                ln = self.u8()
                if ln < 253:
                    self.raw(ln)
        elif t == 4:
            n, _ = self.lenf("count")
            for _ in range(2 * n):
                self.string()
        elif t == 5:
            n, _ = self.lenf("count")
            for _ in range(n):
                self.string()
                self.raw(8)
        elif t == 7:
            self.length()
            self.module_value()
        elif t == 9:
            self.string("zipmap")
        elif t in (10, 12, 13):
            self.string("ziplist")
        elif t == 11:
            self.string("intset")
        elif t == 14:
            n, _ = self.lenf("quicklist-nodes")
            for _ in range(n):
                self.string("ziplist")
        elif t in (16, 17, 20):
            self.string("listpack")
        elif t == 18:
            n, _ = self.lenf("quicklist-nodes")
            for _ in range(n):
                c, _ = self.lenf("quicklist-container")
                self.string("listpack" if c == 2 else "string")
        elif t in (15, 19, 21):
            self.stream(1 if t == 15 else 2 if t == 19 else 3)
        elif t == 22 and valkey:
            n, _ = self.length()
            for _ in range(n):
                self.string()
                self.string()
                self.raw(8)
        elif t in (22, 24):
            if t == 24:
                self.raw(8)
            n, _ = self.length()
            for _ in range(n):
                self.length()
                self.string()
                self.string()
        elif t in (23, 25):
            if t == 25:
                self.raw(8)
            self.string("listpack-ex")
        else:
            raise WalkError("type %d" % t)

    def stream(self, v):
        n, _ = self.lenf("stream-nodes")
        for _ in range(n):
            self.string()
            self.string("stream-node")
        for k in ("stream-length", "stream-last-ms", "stream-last-seq"):
            self.lenf(k)
        if v >= 2:
            for k in ("stream-first-ms", "stream-first-seq", "stream-maxdel-ms", "stream-maxdel-seq",
                      "stream-entries-added"):
                self.lenf(k)
        g, _ = self.lenf("stream-groups")
        for _ in range(g):
            self.string()
            self.lenf("group-last-ms")
            self.lenf("group-last-seq")
            if v >= 2:
                self.lenf("group-entries-read")
            p, _ = self.lenf("group-pel-count")
            for _ in range(p):
                self.rawf(16, "group-pel-id")
                self.raw(8)
                self.lenf("group-pel-delivery-count")
            c, _ = self.lenf("group-consumers")
            for _ in range(c):
                self.string()
                self.raw(8)
                if v >= 3:
                    self.raw(8)
                q, _ = self.lenf("consumer-pel-count")
                for _ in range(q):
                    self.rawf(16, "consumer-pel-id")


def walk(data, with_fields=False):
    """(sites, eof_offset or None), plus the LEN/ID fields with with_fields. Stops quietly at anything it cannot walk
    (what was found so far is kept)."""
    w = _W(data)
    if data[:5] == b"REDIS":
        valkey = False
    elif data[:6] == b"VALKEY":
        valkey = True
    else:
        return ([], None, []) if with_fields else ([], None)
    w.p = 9
    try:
        while True:
            op = w.u8()
            if op == 0xFF:
                return (w.sites, w.p - 1, w.fields) if with_fields else (w.sites, w.p - 1)
            if op == 0xFE:
                w.length()
            elif op == 0xFB:
                w.length()
                w.length()
            elif op == 0xFA:
                w.string()
                w.string()
            elif op == 0xFD:
                w.raw(4)
            elif op == 0xFC:
                w.raw(8)
            elif op == 0xF8:
                w.length()
            elif op == 0xF9:
                w.raw(1)
            elif op == 0xF7:
                w.length()
                w.length()
                w.length()
                w.module_value()
            elif op == 0xF5:
                w.string("function")
            elif op == 0xF4:
                w.length()
                w.length()
                w.length()
            else:
                start = w.p - 1
                w.string()  # key
                w.value(op, valkey)
                w.fields.append((start, w.p, "record", None))
    except WalkError:
        return (w.sites, None, w.fields) if with_fields else (w.sites, None)


# ------------------------------------------------------------------------------------------------------------------
# Blob parsers into element lists (for rebuilding), lenient: None when the blob is not well-formed.


def parse_listpack(b):
    if len(b) < 7:
        return None
    els, p = [], 6
    while p < len(b) and b[p] != 0xFF:
        s = p
        c = b[p]
        if c < 0x80:
            n = 1
        elif c < 0xC0:
            n = 1 + (c & 0x3F)
        elif c < 0xE0:
            n = 2
        elif c < 0xF0:
            if p + 1 >= len(b):
                return None
            n = 2 + (((c & 0x0F) << 8) | b[p + 1])
        elif c == 0xF0:
            if p + 5 > len(b):
                return None
            n = 5 + struct.unpack("<I", b[p + 1:p + 5])[0]
        elif c in (0xF1, 0xF2, 0xF3, 0xF4):
            n = {0xF1: 3, 0xF2: 4, 0xF3: 5, 0xF4: 9}[c]
        else:
            return None
        bl = len(lp_backlen_real(n))
        p += n + bl
        if p > len(b):
            return None
        els.append(b[s:p])
    return els


def lp_value(el):
    """The value of one element (its encoding part): int or bytes."""
    c = el[0]
    if c < 0x80:
        return c
    if c < 0xC0:
        return el[1:1 + (c & 0x3F)]
    if c < 0xE0:
        u = ((c & 0x1F) << 8) | el[1]
        return u - 8192 if u >= 4096 else u
    if c < 0xF0:
        n = ((c & 0x0F) << 8) | el[1]
        return el[2:2 + n]
    if c == 0xF0:
        n = struct.unpack("<I", el[1:5])[0]
        return el[5:5 + n]
    if c == 0xF1:
        return struct.unpack("<h", el[1:3])[0]
    if c == 0xF2:
        return struct.unpack("<i", el[1:4] + (b"\xff" if el[3] & 0x80 else b"\x00"))[0]
    if c == 0xF3:
        return struct.unpack("<i", el[1:5])[0]
    return struct.unpack("<q", el[1:9])[0]


def parse_ziplist(b):
    """List of (prevlen_bytes, encoding+data bytes)."""
    if len(b) < 11:
        return None
    out, p = [], 10
    while p < len(b) and b[p] != 0xFF:
        if b[p] == 0xFE:
            pl = b[p:p + 5]
        else:
            pl = b[p:p + 1]
        q = p + len(pl)
        if q >= len(b):
            return None
        c = b[q]
        t = c >> 6
        if t == 0:
            n = 1 + (c & 0x3F)
        elif t == 1:
            n = 2 + (((c & 0x3F) << 8) | b[q + 1]) if q + 1 < len(b) else None
        elif t == 2:
            n = 5 + struct.unpack(">I", b[q + 1:q + 5])[0] if q + 5 <= len(b) else None
        else:
            n = {0xC0: 3, 0xD0: 5, 0xE0: 9, 0xF0: 4, 0xFE: 2}.get(c, 1 if 0xF1 <= c <= 0xFD else None)
        if n is None or q + n > len(b):
            return None
        out.append((pl, b[q:q + n]))
        p = q + n
    return out


def rebuild_ziplist(items, count=None, fix_prevlen=True):
    raw, prev = [], 0
    for pl, e in items:
        if fix_prevlen:
            pl = bytes([prev]) if prev < 254 and len(pl) == 1 else b"\xfe" + struct.pack("<I", prev)
        raw.append(pl + e)
        prev = len(pl) + len(e)
    return ziplist_raw(raw, count=count)


# ------------------------------------------------------------------------------------------------------------------
# Mutations. Each returns (new_content, description) or None when it does not apply.

EDGE_STRINGS = [b"nan", b"-nan", b"inf", b"-inf", b"-0", b"0", b"1.5abc", b" 1", b"1e400", b"0x10", b"",
                b"00", b"+1", b"9223372036854775808", b"-9223372036854775809", b"\x00", b"1.0", b"3"]
EDGE_INTS = [0, -1, 1, 127, 128, -4096, 4095, 4096, 32767, -32768, 1 << 23, (1 << 31) - 1, -(1 << 63),
             (1 << 63) - 1, 1 << 48, (1 << 48) - 1]


def _flip(rng, b, lo=0, hi=None):
    hi = len(b) if hi is None else hi
    if hi <= lo:
        return None
    i = rng.randrange(lo, hi)
    b = bytearray(b)
    how = rng.randrange(3)
    if how == 0:
        b[i] ^= 1 << rng.randrange(8)
    elif how == 1:
        b[i] = rng.choice([0x00, 0xFF, 0xFE, 0x7F, 0x80, 0xC0, 0xF0, 0xF5, b[i] + 1 & 0xFF, b[i] - 1 & 0xFF])
    else:
        b[i] = rng.randrange(256)
    return bytes(b), "byte %d set to %#04x" % (i, b[i])


def _insert(rng, b, lo=0):
    i = rng.randrange(lo, len(b) + 1)
    ins = bytes(rng.randrange(256) for _ in range(rng.choice([1, 1, 2, 4])))
    return b[:i] + ins + b[i:], "insert %s at %d" % (ins.hex(), i)


def _delete(rng, b, lo=0):
    if len(b) <= lo:
        return None
    i = rng.randrange(lo, len(b))
    n = rng.choice([1, 1, 2, 4])
    return b[:i] + b[i + n:], "delete %d bytes at %d" % (n, i)


def _set_u(b, off, fmt, v):
    b = bytearray(b)
    struct.pack_into(fmt, b, off, v)
    return bytes(b)


def mut_listpack(rng, b, kind):
    els = parse_listpack(b)
    ops = ["flip", "insert", "delete", "count", "total", "end", "flip-hdr"]
    if els:
        ops += ["drop-el", "dup-el", "swap-el", "edge-str", "edge-int", "backlen", "redundant-backlen",
                "el-hdr", "drop-el-fixed", "dup-el-fixed", "edge-str", "edge-int", "redundant-backlen"]
    op = rng.choice(ops)
    if op == "flip":
        return _flip(rng, b, 6)
    if op == "flip-hdr":
        return _flip(rng, b, 0, 6)
    if op == "insert":
        return _insert(rng, b, 6)
    if op == "delete":
        return _delete(rng, b, 6)
    if op == "count":
        n = struct.unpack("<H", b[4:6])[0] if len(b) >= 6 else 0
        v = rng.choice([0, 65535, n + 1, max(n - 1, 0), n + 2])
        return (_set_u(b, 4, "<H", v) if len(b) >= 6 else None), "num_elements %d -> %d" % (n, v)
    if op == "total":
        if len(b) < 6:
            return None
        v = len(b) + rng.choice([-1, 1, 100, -len(b)])
        return _set_u(b, 0, "<I", v & 0xFFFFFFFF), "total_bytes %d -> %d" % (len(b), v)
    if op == "end":
        return b[:-1] + bytes([rng.choice([0x00, 0xFE, 0x80])]), "end byte replaced"
    i = rng.randrange(len(els))
    if op == "drop-el":
        e2 = els[:i] + els[i + 1:]
        return listpack_raw(e2, count=len(els)), "element %d dropped, count kept" % i
    if op == "drop-el-fixed":
        e2 = els[:i] + els[i + 1:]
        return listpack_raw(e2), "element %d dropped, count fixed" % i
    if op == "dup-el":
        e2 = els[:i + 1] + [els[i]] + els[i + 1:]
        return listpack_raw(e2, count=len(els)), "element %d duplicated, count kept" % i
    if op == "dup-el-fixed":
        step = 3 if kind == "listpack-ex" else 2 if rng.random() < 0.7 else 1
        j = i - i % step
        grp = els[j:j + step]
        e2 = els[:j + step] + grp + els[j + step:]
        return listpack_raw(e2), "elements %d..%d duplicated, count fixed" % (j, j + step - 1)
    if op == "swap-el":
        j = rng.randrange(len(els))
        e2 = list(els)
        e2[i], e2[j] = e2[j], e2[i]
        return listpack_raw(e2), "elements %d and %d swapped" % (i, j)
    if op == "edge-str":
        s = rng.choice(EDGE_STRINGS)
        e2 = list(els)
        e2[i] = lp_element(s)
        return listpack_raw(e2), "element %d := string %r" % (i, s)
    if op == "edge-int":
        v = rng.choice(EDGE_INTS)
        e2 = list(els)
        e2[i] = lp_element(v)
        return listpack_raw(e2), "element %d := int %d" % (i, v)
    if op in ("backlen", "redundant-backlen"):
        el = els[i]
        body = el[:len(el) - len(lp_backlen_real(_lp_enc_size(el)))]
        if op == "backlen":
            bl = lp_backlen_real(max(len(body) + rng.choice([-1, 1, 2]), 0))
            desc = "element %d backlen wrong" % i
        else:
            bl = lp_backlen_real(len(body), redundant=True)
            desc = "element %d backlen with a redundant continuation byte" % i
        e2 = list(els)
        e2[i] = body + bl
        return listpack_raw(e2), desc
    if op == "el-hdr":
        el = bytearray(els[i])
        el[0] = rng.choice([0xF5, 0xF6, 0xFE, 0xF0, 0xF4, 0xE0 | (el[0] & 0x0F), 0x80 | (el[0] & 0x3F), el[0] ^ 0x40])
        e2 = list(els)
        e2[i] = bytes(el)
        return listpack_raw(e2), "element %d encoding byte := %#04x" % (i, el[0])
    return None


def _lp_enc_size(el):
    # Size of the encoding+data part of a complete element (its total minus the backlen).
    for n in range(len(el) - 1, 0, -1):
        if len(lp_backlen_real(n)) + n == len(el):
            return n
    return len(el) - 1


def mut_ziplist(rng, b):
    items = parse_ziplist(b)
    ops = ["flip", "insert", "delete", "count", "zlbytes", "zltail", "end"]
    if items:
        ops += ["drop", "dup", "dup-fixed", "prevlen", "big-prevlen", "edge-str", "edge-int", "enc", "swap",
                "big-prevlen", "dup-fixed", "edge-str"]
    op = rng.choice(ops)
    if op == "flip":
        return _flip(rng, b, 10)
    if op == "insert":
        return _insert(rng, b, 10)
    if op == "delete":
        return _delete(rng, b, 10)
    if len(b) < 10:
        return _flip(rng, b)
    if op == "count":
        n = struct.unpack("<H", b[8:10])[0]
        v = rng.choice([0, 0xFFFF, n + 1, max(n - 1, 0)])
        return _set_u(b, 8, "<H", v), "zllen %d -> %d" % (n, v)
    if op == "zlbytes":
        v = len(b) + rng.choice([-1, 1, 50])
        return _set_u(b, 0, "<I", v), "zlbytes -> %d" % v
    if op == "zltail":
        t = struct.unpack("<I", b[4:8])[0]
        v = t + rng.choice([-1, 1, -2, 3])
        return _set_u(b, 4, "<I", v & 0xFFFFFFFF), "zltail %d -> %d" % (t, v)
    if op == "end":
        return b[:-1] + b"\x00", "end byte replaced"
    i = rng.randrange(len(items))
    if op == "drop":
        return rebuild_ziplist(items[:i] + items[i + 1:], count=len(items)), "entry %d dropped, count kept" % i
    if op == "dup":
        return rebuild_ziplist(items[:i + 1] + [items[i]] + items[i + 1:], count=len(items)), \
            "entry %d duplicated, count kept" % i
    if op == "dup-fixed":
        j = i - i % 2
        g = items[j:j + 2]
        return rebuild_ziplist(items[:j + 2] + g + items[j + 2:]), "entries %d..%d duplicated" % (j, j + 1)
    if op == "prevlen":
        raw = []
        prev = 0
        for k, (pl, e) in enumerate(items):
            p = prev + (rng.choice([-1, 1]) if k == i else 0)
            raw.append((bytes([p & 0xFF]) if p < 254 else b"\xfe" + struct.pack("<I", p)) + e)
            prev = len(raw[-1])
        return ziplist_raw(raw), "entry %d prevlen off by one" % i
    if op == "big-prevlen":
        it = list(items)
        it[i] = (b"\xfe\x00\x00\x00\x00", it[i][1])
        return rebuild_ziplist(it), "entry %d prevlen in the 5-byte form" % i
    if op == "edge-str":
        s = rng.choice(EDGE_STRINGS)
        it = list(items)
        it[i] = (b"\x00", zl_entry(0, s)[1:])
        return rebuild_ziplist(it), "entry %d := string %r" % (i, s)
    if op == "edge-int":
        v = rng.choice(EDGE_INTS)
        it = list(items)
        it[i] = (b"\x00", zl_entry(0, v)[1:])
        return rebuild_ziplist(it), "entry %d := int %d" % (i, v)
    if op == "enc":
        it = list(items)
        e = bytearray(it[i][1])
        e[0] = rng.choice([0xC1, 0xF0, 0xFE, 0xE0, 0xD0, 0xFF, 0x80 | (e[0] & 0x3F), e[0] ^ 0x40])
        it[i] = (it[i][0], bytes(e))
        return rebuild_ziplist(it), "entry %d encoding byte := %#04x" % (i, e[0])
    if op == "swap":
        j = rng.randrange(len(items))
        it = list(items)
        it[i], it[j] = it[j], it[i]
        return rebuild_ziplist(it), "entries %d and %d swapped" % (i, j)
    return None


def mut_intset(rng, b):
    op = rng.choice(["flip", "enc", "len", "swap", "dup", "truncate", "extend", "insert"])
    if len(b) < 8 or op == "flip":
        return _flip(rng, b)
    w, n = struct.unpack("<II", b[:8])
    if op == "enc":
        v = rng.choice([0, 1, 3, 2, 4, 8, 16])
        return _set_u(b, 0, "<I", v), "encoding %d -> %d" % (w, v)
    if op == "len":
        v = rng.choice([0, n + 1, max(n - 1, 0), 0xFFFFFFFF, 1 << 29])
        return _set_u(b, 4, "<I", v), "length %d -> %d" % (n, v)
    if w not in (2, 4, 8) or len(b) != 8 + n * w or n == 0:
        return _flip(rng, b)
    fmt = {2: "<h", 4: "<i", 8: "<q"}[w]
    vals = [struct.unpack_from(fmt, b, 8 + k * w)[0] for k in range(n)]
    i = rng.randrange(n)
    if op == "swap" and n > 1:
        j = (i + 1) % n
        vals[i], vals[j] = vals[j], vals[i]
        return intset(vals, w), "elements %d and %d swapped" % (i, j)
    if op == "dup":
        vals.insert(i, vals[i])
        return intset(vals, w), "element %d duplicated" % i
    if op == "truncate":
        return b[:-1], "last byte cut"
    if op == "extend":
        return b + b"\x00" * rng.choice([1, w]), "bytes appended"
    if op == "insert":
        vals.append(vals[-1] + 1 if vals[-1] < (1 << (8 * w - 1)) - 1 else vals[-1])
        return intset(sorted(vals), w * 2 if w < 8 and rng.random() < 0.3 else w), "element appended"
    return _flip(rng, b)


def mut_zipmap(rng, b):
    op = rng.choice(["flip", "zmlen", "zmlen", "end", "free", "insert", "delete", "lenbyte"])
    if op == "zmlen":
        v = rng.choice([254, 255, 0, b[0] + 1 & 0xFF, 253])
        return bytes([v]) + b[1:], "zmlen %d -> %d" % (b[0], v)
    if op == "end":
        return b[:-1] + b"\x00", "end byte replaced"
    if op == "free" and len(b) > 4:
        # first entry: len k, k bytes, len v, free byte
        k = b[1]
        if k < 254 and 2 + k < len(b) and b[2 + k] < 254:
            off = 3 + k
            if off < len(b):
                return b[:off] + bytes([rng.choice([1, 2, 200])]) + b[off + 1:], "first free byte set"
    if op == "lenbyte" and len(b) > 2:
        return b[:1] + bytes([rng.choice([0xFE, 0xFF, b[1] + 1 & 0xFF])]) + b[2:], "first key length byte set"
    if op == "insert":
        return _insert(rng, b, 1)
    if op == "delete":
        return _delete(rng, b, 1)
    return _flip(rng, b)


def mut_stream_node(rng, b):
    els = parse_listpack(b)
    if not els:
        return mut_listpack(rng, b, "stream-node")
    vals = [lp_value(e) for e in els]
    op = rng.choice(["count", "deleted", "nfields", "flags", "lpcount", "delta", "generic", "generic", "master0"])
    idx = None
    desc = op
    if op == "count":
        idx, new = 0, (vals[0] + rng.choice([1, -1, 2])) if isinstance(vals[0], int) else 0
    elif op == "deleted":
        idx, new = 1, rng.choice([1, 2])
    elif op == "nfields":
        idx, new = 2, (vals[2] + rng.choice([1, -1])) if isinstance(vals[2], int) else 0
    elif op == "master0" and isinstance(vals[2], int) and 3 + vals[2] < len(vals):
        idx, new = 3 + vals[2], 1
    elif isinstance(vals[2], int) and 4 + vals[2] < len(vals):
        first = 4 + vals[2]  # flags of the first entry
        if op == "flags":
            idx, new = first, rng.choice([0, 1, 3, 4, 2])
        elif op == "delta" and first + 1 < len(vals):
            idx, new = first + 1 + rng.randrange(2), rng.choice([-1, 1 << 40, 0])
        elif op == "lpcount":
            idx, new = len(vals) - 1, (vals[-1] + rng.choice([1, -1])) if isinstance(vals[-1], int) else 0
    if idx is None or idx >= len(els):
        return mut_listpack(rng, b, "stream-node")
    e2 = list(els)
    e2[idx] = lp_element(new)
    return listpack_raw(e2), "stream node element %d (%s) := %r" % (idx, desc, new)


def mut_lzf(rng, comp, ulen):
    """Mutations of the compressed form: returns (str_encoding_bytes, desc)."""
    op = rng.choice(["flip", "ulen", "clen-extra", "zero", "backref", "truncate"])
    if op == "flip" and comp:
        c, d = _flip(rng, comp)
        return b"\xc3" + enc_len(len(c)) + enc_len(ulen) + c, "lzf data " + d
    if op == "ulen":
        u = ulen + rng.choice([-1, 1, 1000])
        return b"\xc3" + enc_len(len(comp)) + enc_len(max(u, 0)) + comp, "lzf ulen %d -> %d" % (ulen, u)
    if op == "clen-extra":
        return b"\xc3" + enc_len(len(comp) + 1) + enc_len(ulen) + comp + b"\x00", "lzf trailing byte"
    if op == "zero":
        return b"\xc3\x00\x00", "lzf with both lengths 0"
    if op == "truncate" and comp:
        c = comp[:-1]
        return b"\xc3" + enc_len(len(c)) + enc_len(ulen) + c, "lzf data cut by one"
    # back-reference pointing before the output start
    c = b"\x20\xff" + comp
    return b"\xc3" + enc_len(len(c)) + enc_len(ulen) + c, "lzf back-reference before start"


def mut_field(rng, data, eof, field):
    """A LEN count/metadata field set to a nearby or odd value, or a raw stream ID changed; CRC fixed up."""
    start, end, kind, v = field
    if kind == "record":
        # The whole key record once more right after itself: the same key twice in one database.
        out = data[:end] + data[start:end] + data[end:]
        return fix_crc(out, eof + end - start), "key record at %d..%d duplicated" % (start, end)
    if isinstance(v, bytes):
        ms, seq = struct.unpack(">QQ", v)
        ms2, seq2 = rng.choice([(ms, seq + 1), (ms + 1, seq), (0, 0), (ms, max(seq - 1, 0))])
        new = stream_id(ms2, seq2)
        desc = "%s %d-%d -> %d-%d" % (kind, ms, seq, ms2, seq2)
    else:
        n = rng.choice([v + 1, max(v - 1, 0), 0, v + 2, 2 * v, (1 << 32) + v, 1 << 62 if "ms" in kind else v + 1])
        new = enc_len(n)
        desc = "%s %d -> %d" % (kind, v, n)
    out = data[:start] + new + data[end:]
    return fix_crc(out, eof + len(out) - len(data)), "%s at %d" % (desc, start)


def mutate(data, rng):
    """One structure-aware mutation of data; (new_file, description) or None when no site can be mutated."""
    try:
        return _mutate(data, rng)
    except (IndexError, ValueError, struct.error):
        return None  # a mutator that does not fit this blob's shape: the caller draws another


def _mutate(data, rng):
    sites, eof, fields = walk(data, with_fields=True)
    if eof is None:
        return None
    records = [f for f in fields if f[2] == "record"]
    fields = [f for f in fields if f[2] != "record"]
    if records and rng.random() < 0.03:
        return mut_field(rng, data, eof, rng.choice(records))
    if fields and rng.random() < 0.25:
        return mut_field(rng, data, eof, rng.choice(fields))
    sites = [s for s in sites if s.kind != "string" or s.lzf or rng.random() < 0.1]
    if not sites:
        return None
    s = rng.choice(sites)
    if s.lzf and rng.random() < 0.3:
        # Reparse the LZF header to get the compressed bytes.
        w = _W(data)
        w.p = s.start
        w.u8()
        clen, _ = w.length()
        ulen, _ = w.length()
        comp = w.raw(clen)
        enc, desc = mut_lzf(rng, comp, ulen)
    else:
        c = s.content
        if s.kind in ("listpack", "listpack-ex"):
            r = mut_listpack(rng, c, s.kind)
        elif s.kind == "stream-node":
            r = mut_stream_node(rng, c)
        elif s.kind == "ziplist":
            r = mut_ziplist(rng, c)
        elif s.kind == "intset":
            r = mut_intset(rng, c)
        elif s.kind == "zipmap":
            r = mut_zipmap(rng, c)
        else:
            r = _flip(rng, c) if c else _insert(rng, c)
        if r is None or r[0] is None:
            return None
        new, desc = r
        enc = enc_str(new, lzf=s.lzf)
    out = data[:s.start] + enc + data[s.end:]
    new_eof = eof + len(out) - len(data)
    return fix_crc(out, new_eof), "%s at %d%s: %s" % (s.kind, s.start, " (lzf)" if s.lzf else "", desc)


# ------------------------------------------------------------------------------------------------------------------
# Hand-built one-key files: valid seeds of every blob kind (mutated by the harness), and named families for the
# known classes of issue 15.

T2100_MS = 4102444800000  # far-future expiry: keys stay loadable


def _rstr(rng, lo=1, hi=12):
    n = rng.randint(lo, hi)
    alpha = b"abcdefghijklmnopqrstuvwxyz0123456789_"
    return bytes(rng.choice(alpha) for _ in range(n))


def _rval(rng):
    r = rng.random()
    if r < 0.3:
        return rng.choice(EDGE_INTS + [rng.randint(-100000, 100000)])
    if r < 0.4:
        return b"x" * rng.choice([63, 64, 300, 4096])
    return _rstr(rng)


def _uniq(rng, n, make):
    out, seen = [], set()
    while len(out) < n:
        v = make(rng)
        k = v if isinstance(v, bytes) else str(v).encode()
        if k not in seen:
            seen.add(k)
            out.append(v)
    return out


def _score(rng):
    return rng.choice([0, 1, -1, 2.5, 1e300, -3.25, 7, 123456789])


def _score_bytes(s):
    return str(s).encode() if isinstance(s, int) else repr(s).encode()


def _stream(rng, version, groups=True):
    n = rng.randint(1, 5)
    ms0 = 1700000000000
    fields = [b"f1", b"f2"] if rng.random() < 0.7 else [b"a"]
    entries = []
    for i in range(n):
        if rng.random() < 0.7:
            fv = [(f, _rstr(rng)) for f in fields]
        else:
            fv = [(b"other", _rstr(rng))]
        entries.append((ms0 + i, 0, fv))
    lp = listpack(stream_node_listpack(entries, fields, (ms0, 0)))
    ids = [stream_id(ms0 + i, 0) for i in range(n)]
    gs = []
    if groups:
        pel_ids = ids[: rng.randint(0, n)]
        gs.append({"name": b"g1", "last_id": (ms0 + n - 1, 0), "entries_read": n,
                   "pel": [(i, 1700000001000, 1) for i in pel_ids],
                   "consumers": [(b"c1", 1700000001000, 1700000001000, pel_ids)]})
    return stream_value([(stream_id(ms0, 0), lp)], n, (ms0 + n - 1, 0), gs, version, (ms0, 0)), pel_ids if groups \
        else []


def seed_file(rng):
    """A valid one-key file of a random kind: (name, bytes)."""
    kind = rng.choice(["zl-list", "zl-hash", "zl-zset", "intset", "zipmap", "lp-hash", "lp-zset", "qlist2",
                       "lp-set", "stream1", "stream2", "stream3", "lpex", "lzf-string", "qlist-zl",
                       "valkey-lp-hash", "valkey-stream", "valkey-set", "zset-text"])
    lzf = rng.random() < 0.3
    if kind in ("zl-list", "qlist-zl"):
        vals = [_rval(rng) for _ in range(rng.randint(1, 8))]
        zl = enc_str(ziplist(vals), lzf)
        if kind == "zl-list":
            return kind, one_key_file(rng.choice([3, 6, 7]), 10, b"l", zl)
        return kind, one_key_file(rng.choice([7, 9]), 14, b"l", enc_len(1) + zl)
    if kind == "zl-hash":
        ks = _uniq(rng, rng.randint(1, 6), _rstr)
        vals = []
        for k in ks:
            vals += [k, _rval(rng)]
        return kind, one_key_file(rng.choice([6, 9]), 13, b"h", enc_str(ziplist(vals), lzf))
    if kind in ("zl-zset", "lp-zset", "valkey-lp-zset"):
        ms = _uniq(rng, rng.randint(1, 6), _rstr)
        sc = sorted(_score(rng) for _ in ms)
        vals = []
        for m, s in zip(ms, sc):
            vals += [m, s if isinstance(s, int) else _score_bytes(s)]
        if kind == "zl-zset":
            return kind, one_key_file(9, 12, b"z", enc_str(ziplist(vals), lzf))
        return kind, one_key_file(10, 17, b"z", enc_str(listpack(vals), lzf))
    if kind == "intset":
        vals = sorted(set(rng.choice(EDGE_INTS + [rng.randint(-1000, 1000)]) for _ in range(rng.randint(1, 8))))
        return kind, one_key_file(rng.choice([6, 9, 10]), 11, b"s", enc_str(intset(vals), lzf))
    if kind == "zipmap":
        ks = _uniq(rng, rng.randint(1, 5), _rstr)
        return kind, one_key_file(rng.choice([3, 6, 9]), 9, b"h", enc_str(zipmap([(k, _rstr(rng)) for k in ks]), lzf))
    if kind in ("lp-hash", "valkey-lp-hash"):
        ks = _uniq(rng, rng.randint(1, 6), _rstr)
        vals = []
        for k in ks:
            vals += [k, _rval(rng)]
        return kind, one_key_file(80 if kind.startswith("valkey") else 10, 16, b"h", enc_str(listpack(vals), lzf))
    if kind == "qlist2":
        vals = [_rval(rng) for _ in range(rng.randint(1, 8))]
        return kind, one_key_file(rng.choice([10, 12]), 18, b"l", enc_len(1) + enc_len(2) + enc_str(listpack(vals), lzf))
    if kind in ("lp-set", "valkey-set"):
        vals = _uniq(rng, rng.randint(1, 6), _rval)
        return kind, one_key_file(80 if kind.startswith("valkey") else 11, 20, b"s", enc_str(listpack(vals), lzf))
    if kind.startswith("stream") or kind == "valkey-stream":
        v = 3 if kind == "valkey-stream" else int(kind[-1])
        t = {1: 15, 2: 19, 3: 21}[v]
        ver = 80 if kind == "valkey-stream" else {1: 9, 2: 10, 3: 11}[v]
        val, _ = _stream(rng, v)
        return kind, one_key_file(ver, t, b"st", val)
    if kind == "lpex":
        ks = _uniq(rng, rng.randint(1, 5), _rstr)
        ttl_n = rng.randint(0, len(ks))
        ttls = sorted(T2100_MS + rng.randint(0, 10 ** 6) for _ in range(ttl_n)) + [0] * (len(ks) - ttl_n)
        vals = []
        for k, t in zip(ks, ttls):
            vals += [k, _rval(rng), t]
        return kind, one_key_file(12, 25, b"h", struct.pack("<q", ttls[0] if ttl_n else 0) + enc_str(listpack(vals), lzf))
    if kind == "lzf-string":
        s = (_rstr(rng) * rng.randint(3, 30))[:2000]
        return kind, one_key_file(rng.choice([9, 10, 12]), 0, b"k", enc_str(s, True))
    if kind == "zset-text":
        ms = _uniq(rng, rng.randint(1, 4), _rstr)
        body = enc_len(len(ms))
        for m in ms:
            sc = _score_bytes(_score(rng))
            body += enc_str(m) + bytes([len(sc)]) + sc
        return kind, one_key_file(rng.choice([3, 6, 7]), 3, b"z", body)
    raise AssertionError(kind)


def families():
    """Named hand-built files for the known classes of issue 15 (and their valid neighbours): {name: bytes}."""
    f = {}
    ms0 = 1700000000000
    # Stream consumer group whose PEL holds an ID no consumer owns.
    lp = listpack(stream_node_listpack([(ms0, 0, [(b"f", b"v")])], [b"f"], (ms0, 0)))
    node = [(stream_id(ms0, 0), lp)]
    g = {"name": b"g", "last_id": (ms0, 0), "entries_read": 1, "pel": [(stream_id(ms0, 0), ms0, 1)],
         "consumers": [(b"c", ms0, ms0, [])]}
    for ver, t, v in ((9, 15, 1), (10, 19, 2), (11, 21, 3), (80, 21, 3)):
        f["pel-without-consumer-v%d" % ver] = one_key_file(ver, t, b"st", stream_value(node, 1, (ms0, 0), [g], v, (ms0, 0)))
    gok = dict(g, consumers=[(b"c", ms0, ms0, [stream_id(ms0, 0)])])
    f["pel-with-consumer-v10"] = one_key_file(10, 19, b"st", stream_value(node, 1, (ms0, 0), [gok], 2, (ms0, 0)))
    # Consumer PEL ID missing from the group PEL.
    gbad = dict(g, pel=[], consumers=[(b"c", ms0, ms0, [stream_id(ms0, 0)])])
    f["consumer-pel-not-in-group-v10"] = one_key_file(10, 19, b"st", stream_value(node, 1, (ms0, 0), [gbad], 2, (ms0, 0)))
    # The same key twice in one database.
    for ver in (9, 10, 12, 80):
        body = magic(ver) + b"\xfe\x00" + key_record(0, b"k", enc_str(b"a")) + key_record(0, b"k", enc_str(b"b"))
        f["duplicate-key-v%d" % ver] = finish(body, ver)
    body = magic(10) + b"\xfe\x00" + key_record(0, b"k", enc_str(b"a")) + b"\xfe\x01" + key_record(0, b"k", enc_str(b"b"))
    f["same-key-two-dbs-v10"] = finish(body, 10)
    # Zipmap count byte 255 / 254 / wrong.
    zm = zipmap([(b"a", b"1"), (b"b", b"2")])
    for c in (255, 254, 253, 3, 1):
        f["zipmap-count-%d" % c] = one_key_file(6, 9, b"h", enc_str(bytes([c]) + zm[1:]))
    # Function libraries.
    lib = b"#!lua name=mylib\nredis.register_function('f1', function(keys, args) return 1 end)"
    for name, code in (("ok", lib), ("no-shebang", b"redis.register_function('f1', function() return 1 end)"),
                       ("no-name", b"#!lua\nredis.register_function('f1', function() return 1 end)"),
                       ("bad-engine", b"#!nosuch name=x\nreturn 1"), ("empty", b""),
                       ("lua-syntax-error", b"#!lua name=badlua\nredis.register_function('f1', function( return 1 end)"),
                       ("lua-no-function", b"#!lua name=nofunc\nlocal x = 1")):
        for ver in (10, 12, 80):
            f["function-%s-v%d" % (name, ver)] = finish(magic(ver) + b"\xf5" + enc_str(code), ver)
    for ver in (10, 12):
        f["function-twice-v%d" % ver] = finish(magic(ver) + b"\xf5" + enc_str(lib) + b"\xf5" + enc_str(lib), ver)
    # Old text zset scores.
    for name, sc in (("trailing", b"1.5abc"), ("space", b" 2"), ("hex", b"0x10"), ("nan-text", b"nan"),
                     ("inf-text", b"inf"), ("ok", b"2.5"), ("empty", b""), ("exp", b"1e5")):
        f["zset-text-score-%s" % name] = one_key_file(6, 3, b"z", enc_len(1) + enc_str(b"m") + bytes([len(sc)]) + sc)
    f["zset-text-score-nan-253"] = one_key_file(6, 3, b"z", enc_len(1) + enc_str(b"m") + b"\xfd")
    # NaN and other odd scores in ziplist / listpack zsets.
    for sc in (b"nan", b"-nan", b"inf", b"-0", b"1.5abc", b"", b"1e400"):
        nm = sc.decode() or "empty"
        f["zset-zl-score-%s" % nm] = one_key_file(9, 12, b"z", enc_str(ziplist([b"m", sc])))
        f["zset-lp-score-%s-v10" % nm] = one_key_file(10, 17, b"z", enc_str(listpack([b"m", sc])))
        f["zset-lp-score-%s-v80" % nm] = one_key_file(80, 17, b"z", enc_str(listpack([b"m", sc])))
    f["zset2-score-nan"] = one_key_file(9, 5, b"z", enc_len(1) + enc_str(b"m") + struct.pack("<d", float("nan")))
    f["zset2-score-negzero"] = one_key_file(9, 5, b"z", enc_len(1) + enc_str(b"m") + struct.pack("<d", -0.0))
    # Stream node whose master entry count is wrong.
    ents = [(ms0 + i, 0, [(b"f", b"v%d" % i)]) for i in range(3)]
    vals = stream_node_listpack(ents, [b"f"], (ms0, 0))
    for name, idx, new in (("count-high", 0, 4), ("count-low", 0, 2), ("deleted-high", 1, 1)):
        v2 = list(vals)
        v2[idx] = new
        for ver, t, sv in ((9, 15, 1), (10, 19, 2), (12, 21, 3), (80, 21, 3)):
            f["stream-node-%s-v%d" % (name, ver)] = one_key_file(
                ver, t, b"st", stream_value([(stream_id(ms0, 0), listpack(v2))], 3, (ms0 + 2, 0), [], sv, (ms0, 0)))
    # An entry flagged DELETED while the master entry still counts it as live (and the consistent form).
    base_vals = stream_node_listpack(ents, [b"f"], (ms0, 0))
    first_flags = 4 + 1  # count, deleted, nfields, "f", 0 terminator, then the first entry's flags
    for name, count, deleted in (("deleted-flag-counted-live", 3, 0), ("deleted-flag-consistent", 2, 1)):
        v2 = list(base_vals)
        v2[0], v2[1] = count, deleted
        v2[first_flags] = v2[first_flags] | 1
        for ver, t, sv in ((9, 15, 1), (10, 19, 2), (12, 21, 3), (80, 21, 3)):
            f["stream-node-%s-v%d" % (name, ver)] = one_key_file(
                ver, t, b"st", stream_value([(stream_id(ms0, 0), listpack(v2))], 2, (ms0 + 2, 0), [], sv, (ms0, 0),
                                            added=3))
    # Entries out of ID order inside a node (the second entry's delta below the first's), and stream metadata that
    # contradicts the entries: last ID below the top entry, entries_added below the length, max deleted ID above last.
    ooo = [(ms0 + 5, 0, [(b"f", b"a")]), (ms0 + 1, 0, [(b"f", b"b")])]
    node_ooo = [(stream_id(ms0, 0), listpack(stream_node_listpack(ooo, [b"f"], (ms0, 0))))]
    for ver, t, sv in ((10, 19, 2), (80, 21, 3)):
        f["stream-entries-out-of-order-v%d" % ver] = one_key_file(
            ver, t, b"st", stream_value(node_ooo, 2, (ms0 + 5, 0), [], sv, (ms0 + 1, 0)))
    node3 = [(stream_id(ms0, 0), listpack(stream_node_listpack(ents, [b"f"], (ms0, 0))))]
    for name, kw in (("last-id-below-top", dict(last_id=(ms0, 0))),
                     ("entries-added-below-length", dict(added=1)),
                     ("max-deleted-above-last", dict(max_del=(ms0 + 100, 0))),
                     ("length-above-entries", dict(length=4, added=4)),
                     ("length-below-entries", dict(length=2))):
        for ver, t, sv in ((10, 19, 2), (12, 21, 3), (80, 21, 3)):
            args = dict(last_id=(ms0 + 2, 0), added=None, max_del=(0, 0), length=3)
            args.update(kw)
            f["stream-meta-%s-v%d" % (name, ver)] = one_key_file(
                ver, t, b"st", stream_value(node3, args["length"], args["last_id"], [], sv, (ms0, 0), args["max_del"],
                                            args["added"]))
    # A stream node listpack whose num_elements header is wrong (or "unknown").
    lp3 = listpack(stream_node_listpack(ents, [b"f"], (ms0, 0)))
    for name, n in (("plus2", struct.unpack("<H", lp3[4:6])[0] + 2), ("unknown", 65535), ("zero", 0)):
        bad = lp3[:4] + struct.pack("<H", n) + lp3[6:]
        for ver, t, sv in ((9, 15, 1), (12, 21, 3), (80, 21, 3)):
            f["stream-node-lp-header-count-%s-v%d" % (name, ver)] = one_key_file(
                ver, t, b"st", stream_value([(stream_id(ms0, 0), bad)], 3, (ms0 + 2, 0), [], sv, (ms0, 0)))
    # A 11xxxxxx byte where a plain length belongs (Redis reads its low 6 bits).
    f["len-special-list-count"] = one_key_file(9, 1, b"l", b"\xc2" + enc_str(b"a") + enc_str(b"b"))
    f["len-special-set-count"] = one_key_file(9, 2, b"s", b"\xc1" + enc_str(b"a"))
    f["len-special-selectdb"] = finish(magic(9) + b"\xfe\xc0" + key_record(0, b"k", enc_str(b"v")), 9)
    f["len-special-resizedb"] = finish(magic(9) + b"\xfe\x00\xfb\xc1\xc0" + key_record(0, b"k", enc_str(b"v")), 9)
    # An expiry opcode directly before EOF; FREQ/IDLE before EOF.
    for ver in (9, 10, 12, 80):
        f["expiry-before-eof-v%d" % ver] = finish(magic(ver) + b"\xfe\x00" + key_record(0, b"k", enc_str(b"v")) +
                                                  b"\xfc" + struct.pack("<q", T2100_MS), ver)
    f["idle-before-eof-v10"] = finish(magic(10) + b"\xfe\x00" + key_record(0, b"k", enc_str(b"v")) + b"\xf8\x05", 10)
    f["freq-before-eof-v10"] = finish(magic(10) + b"\xfe\x00" + key_record(0, b"k", enc_str(b"v")) + b"\xf9\x05", 10)
    # LZF strings with both lengths 0 and other odd lengths.
    f["lzf-both-zero-value"] = one_key_file(9, 0, b"k", b"\xc3\x00\x00")
    f["lzf-both-zero-key"] = finish(magic(9) + b"\xfe\x00" + b"\x00\xc3\x00\x00" + enc_str(b"v"), 9)
    f["lzf-ulen-zero"] = one_key_file(9, 0, b"k", b"\xc3\x02\x00\x00a")
    f["lzf-clen-zero"] = one_key_file(9, 0, b"k", b"\xc3\x00\x05")
    f["lzf-literal-ok"] = one_key_file(9, 0, b"k", b"\xc3" + enc_len(3) + enc_len(2) + b"\x01ab")
    # Listpack back-length with a redundant continuation byte, and a single byte with the flag set.
    els = [lp_element(b"a"), lp_element(b"1"), lp_element(b"b"), lp_element(b"2")]
    e2 = list(els)
    e2[1] = lp_encode(b"1") + lp_backlen_real(len(lp_encode(b"1")), redundant=True)
    f["lp-backlen-redundant"] = one_key_file(10, 16, b"h", enc_str(listpack_raw(e2)))
    e3 = list(els)
    e3[1] = lp_encode(b"1") + bytes([len(lp_encode(b"1")) | 0x80])
    f["lp-backlen-flag-on-single"] = one_key_file(10, 16, b"h", enc_str(listpack_raw(e3)))
    # A one-byte element (int 0, byte 0x00) whose backlen byte has the continuation flag (0x81): read right to left
    # it continues into the element's own 0x00 byte, which adds nothing, so it still decodes to 1.
    e4 = [lp_element(b"a"), b"\x00\x81", lp_element(b"b"), lp_element(b"2")]
    f["lp-backlen-continuation-decodes-v10"] = one_key_file(10, 16, b"h", enc_str(listpack_raw(e4)))
    f["lp-backlen-continuation-decodes-v80"] = one_key_file(80, 16, b"h", enc_str(listpack_raw(e4)))
    sv_els = [lp_element(v) for v in stream_node_listpack(ents, [b"f"], (ms0, 0))]
    sv_els[1] = b"\x00\x81"  # the master entry's "deleted" count 0
    for ver, t, sv in ((9, 15, 1), (12, 21, 3), (80, 21, 3)):
        f["stream-node-backlen-continuation-decodes-v%d" % ver] = one_key_file(
            ver, t, b"st", stream_value([(stream_id(ms0, 0), listpack_raw(sv_els))], 3, (ms0 + 2, 0), [], sv, (ms0, 0)))
    # Ziplist 5-byte prevlen for a small previous entry (valid in Redis).
    f["zl-big-prevlen-ok"] = one_key_file(9, 13, b"h", enc_str(ziplist_raw(zl_entries([b"a", b"1"], big_prevlen_at=(1,)))))
    # Empty collections, counts of 0.
    f["empty-set-v9"] = one_key_file(9, 2, b"s", enc_len(0))
    f["empty-list-v9"] = one_key_file(9, 1, b"l", enc_len(0))
    f["empty-hash-lp-v10"] = one_key_file(10, 16, b"h", enc_str(listpack([])))
    f["empty-quicklist2-v10"] = one_key_file(10, 18, b"l", enc_len(0))
    # Duplicate members in plain sets / hashes, and in listpacks.
    f["set-dup-member"] = one_key_file(9, 2, b"s", enc_len(2) + enc_str(b"a") + enc_str(b"a"))
    f["hash-dup-field"] = one_key_file(9, 4, b"h", enc_len(2) + enc_str(b"a") + enc_str(b"1") + enc_str(b"a") + enc_str(b"2"))
    f["lp-set-dup-v11"] = one_key_file(11, 20, b"s", enc_str(listpack([b"a", b"a"])))
    f["lp-zset-dup-v10"] = one_key_file(10, 17, b"z", enc_str(listpack([b"a", 1, b"a", 2])))
    f["intset-unsorted"] = one_key_file(9, 11, b"s", enc_str(intset([3, 1])))
    f["intset-wider-than-needed"] = one_key_file(9, 11, b"s", enc_str(intset([1, 2], 8)))
    # Hash field TTLs (RDB 12 / Valkey).
    f["lpex-ttl-zero-first-v12"] = one_key_file(12, 25, b"h", struct.pack("<q", 0) +
                                                enc_str(listpack([b"a", b"1", 0, b"b", b"2", T2100_MS])))
    f["hmeta-ttl-zero-v12"] = one_key_file(12, 24, b"h", struct.pack("<q", T2100_MS) + enc_len(1) + enc_len(0) +
                                           enc_str(b"a") + enc_str(b"1"))
    f["valkey-hash2-no-ttl"] = one_key_file(80, 22, b"h", enc_len(1) + enc_str(b"a") + enc_str(b"1") +
                                            struct.pack("<q", -1))
    f["valkey-hash2-ttl"] = one_key_file(80, 22, b"h", enc_len(1) + enc_str(b"a") + enc_str(b"1") +
                                         struct.pack("<q", T2100_MS))
    # An expired key, and an integer-encoded key name.
    f["expired-key-v10"] = one_key_file(10, 0, b"k", enc_str(b"v"), expire_ms=1000)
    f["int-key-name"] = finish(magic(9) + b"\xfe\x00" + b"\x00\xc0\x05" + enc_str(b"v"), 9)
    return f
