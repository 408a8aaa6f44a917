#!/usr/bin/env python3
"""Re-wraps the DUMP payloads of Redis's tests/integration/corrupt-dump.tcl as one-key RDB files.

    git -C <redis checkout> show HEAD:tests/integration/corrupt-dump.tcl > /tmp/corrupt-dump.tcl
    python3 scripts/corrupt-dump-import.py /tmp/corrupt-dump.tcl testdata/corrupt-dump

Every `restore KEY 0 "<payload>"` (and `$corrupt_payload_7445`) becomes `NNN-<slug>.rdb`: magic of the payload's
RDB version, SELECTDB 0, the payload's type byte, KEY, the payload's value bytes, EOF and a fresh CRC-64 (the
payload's own DUMP CRC is dropped, so payloads the Tcl tests used with checksum validation off are judged on their
value bytes alone). An index of the files and the test titles goes to INDEX.txt. See testdata/corrupt-dump/README.md.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rdbgen  # noqa: E402

ESC = {"t": 9, "n": 10, "r": 13, "b": 8, "f": 12, "v": 11, "a": 7}


def tcl_unescape(s):
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
            continue
        n = s[i + 1]
        if n == "x":
            m = re.match(r"[0-9a-fA-F]{1,2}", s[i + 2:])
            out.append(int(m.group(0), 16))
            i += 2 + len(m.group(0))
        elif n in ESC:
            out.append(ESC[n])
            i += 2
        elif n in "01234567":
            m = re.match(r"[0-7]{1,3}", s[i + 1:])
            out.append(int(m.group(0), 8) & 0xFF)
            i += 1 + len(m.group(0))
        else:
            out += n.encode("latin-1")
            i += 2
    return bytes(out)


def main():
    src, outdir = sys.argv[1], sys.argv[2]
    text = open(src, encoding="latin-1").read()
    variables = {m.group(1): m.group(2) for m in re.finditer(r'^set (\w+) "((?:[^"\\]|\\.)*)"', text, re.M)}
    os.makedirs(outdir, exist_ok=True)
    title = "?"
    n = 0
    index = []
    for line in text.splitlines():
        t = re.match(r"\s*test \{(.*)\} \{", line)
        if t:
            title = t.group(1)
        for m in re.finditer(r'restore\s+(\S+)\s+0\s+(?:"((?:[^"\\]|\\.)*)"|\$(\w+))', line, re.I):
            key = m.group(1)
            raw = m.group(2) if m.group(2) is not None else variables[m.group(3)]
            payload = tcl_unescape(raw)
            data, ver = rdbgen.wrap_payload(payload, key.encode())
            n += 1
            slug = re.sub(r"[^a-z0-9]+", "-", title.lower().replace("corrupt payload:", "")).strip("-")[:60]
            name = "%03d-%s.rdb" % (n, slug)
            with open(os.path.join(outdir, name), "wb") as f:
                f.write(data)
            index.append("%s\tRDB %d\ttype %d\t%s" % (name, ver, payload[0], title))
    with open(os.path.join(outdir, "INDEX.txt"), "w") as f:
        f.write("\n".join(index) + "\n")
    print("%d payloads -> %s" % (n, outdir))


if __name__ == "__main__":
    main()
