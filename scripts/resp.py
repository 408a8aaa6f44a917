"""Minimal RESP2 client shared by the project's scripts (standard library only): replies are bytes / int / list /
None; an error reply raises RespError."""

import socket


class RespError(Exception):
    pass


def port_free(port):
    """True when nothing listens on 127.0.0.1:port (SO_REUSEADDR, as the servers bind: TIME_WAIT
    connections of a server stopped a moment ago do not count)."""
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.f = self.sock.makefile("rb")

    def close(self):
        try:
            self.f.close()
        finally:
            self.sock.close()

    @staticmethod
    def _enc(args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            elif isinstance(a, (int, float)) and not isinstance(a, bool):
                a = repr(a).encode() if isinstance(a, float) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        return b"".join(out)

    def _read(self):
        line = self.f.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed")
        t, rest = line[:1], line[1:-2]
        if t == b"+":
            return rest
        if t == b"-":
            return RespError(rest.decode(errors="replace"))
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ConnectionError("bad RESP type %r" % t)

    def __call__(self, *args):
        self.sock.sendall(self._enc(args))
        r = self._read()
        if isinstance(r, RespError):
            raise RespError("%s -> %s" % (" ".join(str(a)[:40] for a in args[:4]), r))
        return r

    def pipe(self, cmds, chunk=500):
        """Send many commands, raise on the first error."""
        res = []
        for i in range(0, len(cmds), chunk):
            part = cmds[i:i + chunk]
            self.sock.sendall(b"".join(self._enc(c) for c in part))
            for c in part:
                r = self._read()
                if isinstance(r, RespError):
                    raise RespError("%s -> %s" % (" ".join(str(a)[:40] for a in c[:4]), r))
                res.append(r)
        return res
