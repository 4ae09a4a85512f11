"""Helpers for the echo-ev integration suite.

Stdlib + websockets only (run with /usr/bin/python3). Everything talks to
127.0.0.1 only, and every wait is bounded by a deadline.
"""

import base64
import json
import shutil
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

SANITIZER_PATTERNS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "SUMMARY: AddressSanitizer",
)


class TestFailure(AssertionError):
    pass


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def binary():
    return os.environ.get("ECHO_EV") or os.path.join(REPO, "build", "src", "echo-ev", "echo-ev")


def sanitized():
    """True when the binary under test is built with ASan (slower, more RAM)."""
    return os.environ.get("EEV_SANITIZED") == "1"


def slow_factor():
    return 3.0 if sanitized() else 1.0


# ---------------------------------------------------------------------------
# The server process


class Server:
    """One echo-ev process with an ephemeral port (on 127.0.0.1 unless bind says).

    Used as a context manager: on exit it sends SIGTERM and asserts exit 0
    and no sanitizer report (unless the block already raised).
    """

    # The first listener's start-up line: "listening on 127.0.0.1:PORT" or
    # "listening on [::1]:PORT"; groups host (or host6, an IPv6 address) and port.
    LISTEN_RE = re.compile(r"listening on (?:\[(?P<host6>[0-9a-fA-F:.]+)\]|(?P<host>[0-9.]+)):(?P<port>\d+)")

    def __init__(self, *args, env=None, bind="127.0.0.1", port=0, start_timeout=15.0):
        self.args = [binary()]
        if port is not None:
            self.args += ["--port", str(port)]
        if bind is not None:
            self.args += ["--bind", bind]
        self.args += [str(a) for a in args]
        self.env = dict(os.environ)
        if env:
            self.env.update(env)
        self.start_timeout = start_timeout * slow_factor()
        self.proc = None
        self.host = None  # of the first listener logged, e.g. "127.0.0.1" or "::1"
        self.port = None
        self.lines = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._reader = None

    # -- lifecycle
    def start(self):
        self.proc = subprocess.Popen(
            self.args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=self.env,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._listening.wait(0.05):
                return self
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise TestFailure(
                    "server exited with %s before listening; stderr:\n%s"
                    % (self.proc.returncode, self.log_text()[-3000:])
                )
        self.kill()
        raise TestFailure("server did not log 'listening on' within %.0fs; stderr:\n%s"
                          % (self.start_timeout, self.log_text()[-3000:]))

    def _read_stderr(self):
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(line)
            if not self._listening.is_set():
                m = self.LISTEN_RE.search(line)
                if m:
                    found = m.groupdict()
                    self.host = found.get("host6") or found.get("host")
                    self.port = int(found["port"])
                    self._listening.set()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        check(self.alive(), "server died (exit %s); stderr tail:\n%s"
              % (self.proc.returncode, self.log_text()[-3000:]))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout=15.0):
        """SIGTERM and wait; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.wait(timeout * slow_factor())
            if rc is None:
                self.kill()
                return None
        if self._reader:
            self._reader.join(5)
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def sanitizer_report(self):
        text = self.log_text()
        for p in SANITIZER_PATTERNS:
            if p in text:
                i = text.index(p)
                return text[max(0, i - 200): i + 3000]
        return None

    def assert_clean_exit(self, rc):
        rep = self.sanitizer_report()
        check(rep is None, "sanitizer report in server stderr:\n%s" % rep)
        check(rc == 0, "server exit status %r after SIGTERM (want 0); stderr tail:\n%s"
              % (rc, self.log_text()[-2000:]))

    def __enter__(self):
        return self.start()

    def __exit__(self, et, ev, tb):
        rc = self.stop()
        if et is None:
            self.assert_clean_exit(rc)
        return False

    # -- logs
    def log_text(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=5.0, start=0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * slow_factor()
        while True:
            with self._lock:
                lines = list(self.lines[start:])
            for ln in lines:
                if rx.search(ln):
                    return ln
            if time.monotonic() >= deadline:
                raise TestFailure("no log line matching %r within %.1fs; tail:\n%s"
                                  % (pattern, timeout, "\n".join(lines[-20:])))
            time.sleep(0.05)

    def nlines(self):
        with self._lock:
            return len(self.lines)

    # -- /proc
    def rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for ln in f:
                if ln.startswith("VmRSS:"):
                    return int(ln.split()[1])
        raise TestFailure("no VmRSS")

    @property
    def url(self):
        """The first listener's ws:// URL; 127.0.0.1 for an IPv4 or wildcard address."""
        if self.host and ":" in self.host and self.host != "::":
            return "ws://[%s]:%d/" % (self.host, self.port)
        return "ws://127.0.0.1:%d/" % self.port


# ---------------------------------------------------------------------------
# Raw sockets


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def set_linger0(s):
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class Conn:
    """A buffered socket with deadline-bounded reads."""

    def __init__(self, sock, buf=b""):
        self.sock = sock
        self.buf = bytearray(buf)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("deadline")
        self.sock.settimeout(left)
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("peer closed")
        self.buf += data

    def read_exact(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, sep, timeout=5.0, limit=1 << 20):
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(sep)
            if i >= 0:
                out = bytes(self.buf[: i + len(sep)])
                del self.buf[: i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise TestFailure("no %r within %d bytes" % (sep, limit))
            self._fill(deadline)

    def read_to_eof(self, timeout=5.0, limit=1 << 22):
        deadline = time.monotonic() + timeout
        try:
            while len(self.buf) < limit:
                self._fill(deadline)
        except EOFError:
            pass
        except ConnectionResetError:
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def sendall(self, data):
        self.sock.sendall(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def wait_eof(self, timeout):
        """True when the peer closes (FIN or RST) within timeout; data is discarded."""
        deadline = time.monotonic() + timeout
        try:
            while True:
                self.buf.clear()
                self._fill(deadline)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False


class HttpResponse:
    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (lower-name, value)
        self.body = body

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return None

    def __repr__(self):
        return "HttpResponse(%d %s, %r, body=%r)" % (self.status, self.reason, self.headers, self.body[:200])


def read_response(conn, timeout=5.0, head_only=False):
    head = conn.read_until(b"\r\n\r\n", timeout=timeout)
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3}) ?(.*)", lines[0])
    check(m is not None, "bad status line %r" % lines[0])
    headers = []
    for ln in lines[1:]:
        if not ln:
            continue
        k, _, v = ln.partition(":")
        headers.append((k.strip().lower(), v.strip()))
    resp = HttpResponse(int(m.group(1)), m.group(2), headers, b"")
    if head_only or resp.status == 101:
        return resp
    cl = resp.header("content-length")
    if cl is not None:
        resp.body = conn.read_exact(int(cl), timeout=timeout)
    return resp


def http_request(port, method="GET", path="/", headers=None, body=b"", timeout=5.0, conn=None):
    """One HTTP/1.1 request; returns (HttpResponse, Conn)."""
    own = conn is None
    if own:
        conn = Conn(connect(port, timeout))
    hdrs = {"Host": "127.0.0.1:%d" % port}
    if headers:
        hdrs.update(headers)
    if body:
        hdrs["Content-Length"] = str(len(body))
    req = "%s %s HTTP/1.1\r\n" % (method, path)
    req += "".join("%s: %s\r\n" % kv for kv in hdrs.items()) + "\r\n"
    conn.sendall(req.encode("latin-1") + body)
    return read_response(conn, timeout), conn


def http_get(port, path, timeout=5.0, headers=None):
    h = {"Connection": "close"}
    if headers:
        h.update(headers)
    r, c = http_request(port, "GET", path, headers=h, timeout=timeout)
    c.close()
    return r


def metrics(port, timeout=5.0):
    """Parses /metrics into {'name{labels}': float}."""
    r = http_get(port, "/metrics", timeout)
    check(r.status == 200, "/metrics status %d" % r.status)
    out = {}
    for ln in r.body.decode().splitlines():
        if not ln or ln.startswith("#"):
            continue
        name, _, val = ln.rpartition(" ")
        out[name.strip()] = float(val)
    return out


def ws_key():
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(port, path="/", key=None, extra=None, omit=()):
    hdrs = [
        ("Host", "127.0.0.1:%d" % port),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key or ws_key()),
        ("Sec-WebSocket-Version", "13"),
    ]
    hdrs = [(k, v) for k, v in hdrs if k not in omit]
    if extra:
        hdrs += list(extra)
    req = "GET %s HTTP/1.1\r\n" % path + "".join("%s: %s\r\n" % kv for kv in hdrs) + "\r\n"
    return req.encode("latin-1")


def mask_bytes(data, key):
    n = len(data)
    if n == 0 or key == b"\0\0\0\0":
        return bytes(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, mask=True, key=None, rsv=0, length=None):
    """Encodes one frame. length overrides the announced payload length."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = struct.pack("!BB", b0, mbit | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, mbit | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, mbit | 127, n)
    if mask:
        key = key if key is not None else os.urandom(4)
        return hdr + key + mask_bytes(payload, key)
    return hdr + bytes(payload)


def close_payload(code, reason=b""):
    return struct.pack("!H", code) + reason


class RawWS(Conn):
    """A hand-rolled WebSocket client for sending what a library would not."""

    @classmethod
    def open(cls, port, path="/", extra=None, timeout=5.0):
        s = connect(port, timeout)
        c = cls(s)
        key = ws_key()
        c.sendall(upgrade_request(port, path, key=key, extra=extra))
        r = read_response(c, timeout)
        check(r.status == 101, "handshake status %d (want 101): %r" % (r.status, r))
        import hashlib
        want = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode()).digest()).decode()
        check(r.header("sec-websocket-accept") == want,
              "bad Sec-WebSocket-Accept %r (want %r)" % (r.header("sec-websocket-accept"), want))
        c.response = r
        return c

    def send(self, opcode, payload=b"", **kw):
        self.sendall(frame(opcode, payload, **kw))

    def recv_frame(self, timeout=5.0):
        """Returns (fin, opcode, payload, masked)."""
        deadline = time.monotonic() + timeout
        left = lambda: max(0.001, deadline - time.monotonic())
        b0, b1 = self.read_exact(2, left())
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self.read_exact(2, left()))[0]
        elif n == 127:
            n = struct.unpack("!Q", self.read_exact(8, left()))[0]
        masked = bool(b1 & 0x80)
        key = self.read_exact(4, left()) if masked else None
        payload = self.read_exact(n, left())
        if masked:
            payload = mask_bytes(payload, key)
        return bool(b0 & 0x80), b0 & 0x0F, payload, masked

    def recv_message(self, timeout=5.0):
        """Joins data fragments; skips pings/pongs. Returns (opcode, payload); close → ('close', code)."""
        deadline = time.monotonic() + timeout
        op0, parts = None, []
        while True:
            fin, op, p, masked = self.recv_frame(max(0.001, deadline - time.monotonic()))
            check(not masked, "server frame is masked")
            if op == 0x8:
                return "close", (struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005)
            if op in (0x9, 0xA):
                continue
            if op0 is None:
                op0 = op
            parts.append(p)
            if fin:
                return op0, b"".join(parts)

    def expect_close(self, timeout=5.0):
        """Reads until a Close frame; returns (code, reason). Data frames are skipped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                fin, op, p, masked = self.recv_frame(max(0.001, deadline - time.monotonic()))
            except EOFError:
                raise TestFailure("connection closed without a Close frame")
            except ConnectionResetError:
                raise TestFailure("connection reset without a Close frame")
            if op == 0x8:
                code = struct.unpack("!H", p[:2])[0] if len(p) >= 2 else 1005
                return code, p[2:]


def assert_served(port, timeout=5.0, payload=None):
    """A fresh client still gets an echo (text and binary)."""
    payload = payload or os.urandom(300)
    c = RawWS.open(port, timeout=timeout)
    try:
        c.send(0x2, payload)
        op, got = c.recv_message(timeout)
        check(op == 0x2 and got == payload, "liveness check: binary echo mismatch (op %r, %d bytes)" % (op, len(got) if isinstance(got, bytes) else -1))
        c.send(0x1, b"still here \xe2\x9c\x93")
        op, got = c.recv_message(timeout)
        check(op == 0x1 and got == b"still here \xe2\x9c\x93", "liveness check: text echo mismatch")
        c.send(0x8, close_payload(1000))
        code, _ = c.expect_close(timeout)
        check(code == 1000, "liveness check: close code %d" % code)
    finally:
        c.close()


def ipv6_loopback():
    """True when this machine can bind ::1."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def poll(fn, timeout, interval=0.05):
    """Calls fn until it returns a truthy value or the deadline passes; returns the last value."""
    deadline = time.monotonic() + timeout * slow_factor()
    while True:
        v = fn()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


class Shared:
    """A module's default server, started on first use, checked at teardown."""

    def __init__(self, *args, **kw):
        self.args, self.kw, self.srv = args, kw, None

    def get(self):
        if self.srv is None:
            self.srv = Server(*self.args, **self.kw).start()
        self.srv.assert_alive()
        return self.srv

    def teardown(self):
        if self.srv is None:
            return
        rc = self.srv.stop()
        self.srv.assert_clean_exit(rc)


def node_results(script, args, timeout, env=None):
    node = shutil.which("node") or shutil.which("nodejs")
    check(node is not None, "node not installed")
    check(os.path.isdir(os.path.join(HERE, "..", "node_modules", "ws")), "test/node_modules missing: run `npm ci` in test/")
    p = subprocess.run([node, os.path.join(HERE, script), *args], cwd=HERE, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=timeout * slow_factor(),
                       env=dict(os.environ, **env) if env else None)
    out = []
    for ln in p.stdout.decode("utf-8", "replace").splitlines():
        try:
            r = json.loads(ln)
        except ValueError:
            continue
        out.append((r["name"], r["ok"], r.get("detail", "")))
    check(out, "%s printed no results (exit %d): %s" % (script, p.returncode, p.stderr.decode()[-2000:]))
    if p.returncode != 0 and all(ok for _, ok, _ in out):
        out.append(("exit status", False, "exit %d: %s" % (p.returncode, p.stderr.decode()[-2000:])))
    return out
