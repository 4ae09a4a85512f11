"""Helpers for the 'deploy' suite (test/deploy/test_*.py).

Stdlib + python3-websockets (run with /usr/bin/python3). TAP output, loopback
only, every wait bounded. Environment (set by dist/meson.build):
  ECHO_EV          the built server binary
  EEV_SOURCE_ROOT  the source tree
  EEV_BUILD_ROOT   the build tree
  EEV_DIST_BUILD   build/dist (the generated units, echo-ev.1)
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.environ.get("EEV_SOURCE_ROOT") or os.path.dirname(os.path.dirname(HERE))
BUILD = os.environ.get("EEV_BUILD_ROOT") or os.path.join(SRC, "build")
DIST_BUILD = os.environ.get("EEV_DIST_BUILD") or os.path.join(BUILD, "dist")
ECHO_EV = os.environ.get("ECHO_EV") or os.path.join(BUILD, "src", "echo-ev", "echo-ev")

try:
    import websockets  # noqa: F401
    import websockets.client
    HAVE_WEBSOCKETS = True
except ImportError:  # pragma: no cover
    HAVE_WEBSOCKETS = False


# ---------------------------------------------------------------------------
# TAP

class Tap:
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, desc, diag=None):
        self.n += 1
        if cond:
            print("ok %d - %s" % (self.n, desc), flush=True)
        else:
            self.failed += 1
            print("not ok %d - %s" % (self.n, desc), flush=True)
            if diag:
                self.diag(diag)
        return cond

    def skip(self, desc, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, desc, why), flush=True)

    def diag(self, text):
        for line in str(text).rstrip().splitlines()[-60:]:
            print("# " + line, flush=True)

    def run(self, desc, fn, *a, **kw):
        """Runs fn; an exception is a failure with its traceback as diagnostics."""
        try:
            fn(*a, **kw)
        except Exception as e:  # noqa: BLE001
            self.ok(False, desc, traceback.format_exc() + "\n" + getattr(e, "extra", ""))
            return False
        return self.ok(True, desc)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


class Fail(AssertionError):
    pass


def check(cond, msg, extra=""):
    if not cond:
        e = Fail(msg)
        e.extra = extra
        raise e


def poll(fn, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def free_port():
    """A port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, host="127.0.0.1"):
    def try_connect():
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            return False
    return poll(try_connect, timeout, 0.05)


# ---------------------------------------------------------------------------
# Processes

class Proc:
    """A child whose stderr (and stdout) lines are collected in the background."""

    def __init__(self, argv, env=None, name=None, pass_fds=()):
        self.argv = [str(a) for a in argv]
        self.name = name or os.path.basename(self.argv[0])
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        self.lines = []
        self.lock = threading.Lock()
        self.p = subprocess.Popen(self.argv, env=full_env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  pass_fds=pass_fds, start_new_session=True)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for raw in self.p.stdout:
            with self.lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    @property
    def pid(self):
        return self.p.pid

    def text(self):
        with self.lock:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=10.0):
        rx = re.compile(pattern)

        def find():
            with self.lock:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
            return None
        return poll(find, timeout)

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout):
        try:
            rc = self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.t.join(5)  # its last lines are read before anyone looks at text()
        return rc

    def stop(self, timeout=10.0):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
        rc = self.wait(timeout)
        if rc is None:
            self.kill()
            rc = self.wait(5)
        self.t.join(2)
        return rc

    def kill(self):
        if self.alive():
            try:
                os.killpg(self.p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.wait(5)


def start_server(*args, port=0, bind="127.0.0.1", env=None, name="echo-ev", timeout=10.0):
    """Starts echo-ev and waits for its 'listening on' line; returns (proc, port)."""
    argv = [ECHO_EV]
    if port is not None:
        argv += ["--port", port]
    if bind is not None:
        argv += ["--bind", bind]
    argv += list(args)
    p = Proc(argv, env=env, name=name)
    # "listening on 127.0.0.1:PORT" or "listening on [::1]:PORT"
    m = p.wait_log(r"listening on (?:\[[0-9a-fA-F:.]+\]|[0-9.]+):(\d+)", timeout)
    if not m:
        out = p.text()
        p.kill()
        check(False, "%s did not log 'listening on' within %ss" % (name, timeout), out)
    return p, int(m.group(1))


# ---------------------------------------------------------------------------
# WebSocket clients (python3-websockets, asyncio)

def arun(coro, timeout=30.0):
    async def bounded():
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


async def echo_roundtrips(uri, messages, timeout=5.0):
    """Opens one connection, sends each message and checks its echo."""
    async with websockets.client.connect(uri, open_timeout=timeout, close_timeout=timeout,
                                         max_size=None, compression=None) as ws:
        for m in messages:
            await ws.send(m)
            got = await asyncio.wait_for(ws.recv(), timeout)
            check(got == m, "echo mismatch: sent %r got %r" % (m[:60], got[:60]))
    return True


def echo_ok(port, messages=("hello", b"\x00\x01binary\xff"), host="127.0.0.1", timeout=10.0):
    return arun(echo_roundtrips("ws://%s:%d/" % (host, port), list(messages)), timeout)


def http_get(port, path, host="127.0.0.1", timeout=5.0):
    """A minimal HTTP/1.1 GET (Connection: close); returns (status, headers, body)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n"
                   % (path, host, port)).encode())
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1]) if lines and len(lines[0].split()) > 1 else 0
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while body:
            size_line, _, rest = body.partition(b"\r\n")
            n = int(size_line.split(b";")[0] or b"0", 16)
            if n == 0:
                break
            out += rest[:n]
            body = rest[n + 2:]
        body = out
    return status, headers, body


def tmpdir(prefix="eev-deploy-"):
    return tempfile.mkdtemp(prefix=prefix)


def rmtree(d):
    shutil.rmtree(d, ignore_errors=True)


def which(name):
    return shutil.which(name) or (os.path.exists("/usr/sbin/" + name) and "/usr/sbin/" + name) or None


# ---------------------------------------------------------------------------
# A raw, synchronous WebSocket client (for holding connections open without
# an event loop).

def ws_open_raw(port, host="127.0.0.1", path="/", timeout=5.0):
    """Connects and completes the upgrade; returns the socket."""
    import base64
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection((host, port), timeout=timeout)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, port, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            break
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        s.close()
        raise Fail("upgrade refused: %r" % head[:200])
    return s


def ws_frame(opcode, payload):
    """A masked client frame."""
    import struct
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        hdr = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return hdr + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
