"""Process lifecycle: signals, exit codes, CLI errors, timeouts."""

import asyncio
import os
import signal
import socket
import subprocess
import time

import websockets

from eevtest import RawWS, Server, assert_served, binary, check, ipv6_loopback, slow_factor, sanitized
from run import test

MODULE_TIMEOUT = 180


@test("SIGTERM with 5 clients: each gets Close 1001, exit 0 within the shutdown timeout")
async def sigterm():
    srv = Server("--shutdown-timeout", "3").start()
    try:
        clients = [await websockets.connect(srv.url, compression=None, ping_interval=None) for _ in range(5)]
        for i, ws in enumerate(clients):
            await ws.send("hello %d" % i)
            check(await asyncio.wait_for(ws.recv(), 5) == "hello %d" % i, "echo")
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        await asyncio.gather(*(asyncio.wait_for(ws.wait_closed(), 10) for ws in clients))
        codes = [ws.close_code for ws in clients]
        check(codes == [1001] * 5, "close codes %r, want 5 x 1001" % codes)
        loop = asyncio.get_running_loop()
        rc = await loop.run_in_executor(None, srv.wait, 3 + 5 * slow_factor())
        dt = time.monotonic() - t0
        check(rc is not None, "server still running %.1fs after SIGTERM" % dt)
        srv.assert_clean_exit(rc)
    finally:
        srv.kill()


@test("SIGTERM with a client that ignores Close: no new clients while draining, exit 0 after --shutdown-timeout 2")
def sigterm_stubborn():
    srv = Server("--shutdown-timeout", "2").start()
    try:
        c = RawWS.open(srv.port)  # never answers the Close
        t0 = time.monotonic()
        srv.signal(signal.SIGTERM)
        code, _ = c.expect_close(5)
        check(code == 1001, "close code %d, want 1001" % code)
        # draining: no new WebSocket is accepted
        try:
            late = RawWS.open(srv.port, timeout=3)
            late.close()
            accepted = True
        except Exception:  # refused, reset, closed, or a non-101 status
            accepted = False
        check(not accepted, "a new WebSocket was accepted while draining")
        rc = srv.wait(2 + 6 * slow_factor())
        dt = time.monotonic() - t0
        check(rc is not None, "still running %.1fs after SIGTERM with --shutdown-timeout 2" % dt)
        check(dt >= 1.5, "exited after %.1fs without waiting for the close handshake" % dt)
        srv.assert_clean_exit(rc)
        c.close()
    finally:
        srv.kill()


@test("SIGINT also shuts down cleanly (exit 0)")
def sigint():
    srv = Server().start()
    try:
        assert_served(srv.port)
        srv.signal(signal.SIGINT)
        rc = srv.wait(10 * slow_factor())
        srv.assert_clean_exit(rc)
    finally:
        srv.kill()


@test("SIGHUP is logged and ignored")
def sighup():
    with Server() as srv:
        assert_served(srv.port)  # loop running: this checks the handler, not the start-up race below
        n = srv.nlines()
        srv.signal(signal.SIGHUP)
        srv.wait_log(r"(?i)hup", start=n)
        time.sleep(0.2)
        srv.assert_alive()
        assert_served(srv.port)


def start_and_signal(sig):
    """Starts the server and sends sig the moment it logs 'listening on'.
    Returns (exit status or None if still running after 1 s, Popen, stderr so far)."""
    p = subprocess.Popen([binary(), "--bind", "127.0.0.1", "--port", "0"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    seen = []
    deadline = time.monotonic() + 15 * slow_factor()
    while time.monotonic() < deadline:
        ln = p.stderr.readline()
        if not ln:
            break
        seen.append(ln.decode("utf-8", "replace"))
        if b"listening on" in ln:
            p.send_signal(sig)
            break
    check(any("listening on" in l for l in seen), "no 'listening on' line: %r" % seen)
    try:
        rc = p.wait(1.0 * slow_factor())
    except subprocess.TimeoutExpired:
        rc = None
    return rc, p, seen


@test("signals right after the 'listening on' line: SIGHUP ignored, SIGTERM exits 0 (10 runs each)")
def early_signals():
    # A supervisor may signal as soon as the server says it listens; the
    # handlers must be in place by then.
    for sig in (signal.SIGHUP, signal.SIGTERM):
        for i in range(10):
            rc, p, seen = start_and_signal(sig)
            try:
                if sig == signal.SIGHUP:
                    check(rc is None, "SIGHUP right after 'listening on' killed the server (status %s), run %d" % (rc, i))
                    p.send_signal(signal.SIGTERM)
                    rc = p.wait(10 * slow_factor())
                elif rc is None:
                    rc = p.wait(10 * slow_factor())
                err = "".join(seen) + p.stderr.read().decode("utf-8", "replace")
                check(rc == 0, "%s right after 'listening on': exit status %s, want 0 (run %d); stderr %r"
                      % (sig.name, rc, i, err[-500:]))
                check("ERROR: AddressSanitizer" not in err and "runtime error:" not in err, "sanitizer report: %s" % err[-2000:])
            finally:
                if p.poll() is None:
                    os.killpg(p.pid, signal.SIGKILL)
                    p.wait(5)


@test("port in use: second server exits 1 with 'cannot listen'")
def port_in_use():
    with Server() as srv:
        p = subprocess.run([binary(), "--bind", "127.0.0.1", "--port", str(srv.port)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=15 * slow_factor())
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 1, "exit %d, want 1; stderr %r" % (p.returncode, err))
        check("cannot listen" in err and "127.0.0.1:%d" % srv.port in err and "in use" in err,
              "stderr lacks 'cannot listen on 127.0.0.1:%d: Address already in use': %r" % (srv.port, err))
        assert_served(srv.port)


@test("--reuse-port: two servers share one port")
def reuse_port():
    with Server("--reuse-port") as a:
        with Server("--reuse-port", port=a.port) as b:
            check(b.port == a.port, "second server on %d" % b.port)
            for _ in range(6):
                assert_served(a.port)


def run_cli(*args):
    return subprocess.run([binary(), *args], stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=15 * slow_factor())


@test("bad flag values exit 2 with a one-line error naming the flag")
def bad_flags():
    for args, flag in ((["--port", "x"], "--port"), (["--port", "70000"], "--port"),
                       (["--max-message-size", "lots"], "--max-message-size"),
                       (["--log-level", "loud"], "--log-level"), (["--idle-timeout", "-3"], "--idle-timeout"),
                       (["--bind", "not-an-address"], "--bind"), (["--no-such-flag"], "--no-such-flag")):
        p = run_cli(*args)
        err = p.stderr.decode("utf-8", "replace")
        check(p.returncode == 2, "%s: exit %d, want 2 (stderr %r)" % (" ".join(args), p.returncode, err))
        check(flag in err, "%s: stderr does not name %s: %r" % (" ".join(args), flag, err))
        check(err.startswith("echo-ev: ") or "echo-ev" in err, "%s: stderr %r" % (" ".join(args), err))


@test("--help and --version exit 0")
def help_version():
    p = run_cli("--help")
    out = (p.stdout + p.stderr).decode()
    check(p.returncode == 0 and "--port" in out, "--help: exit %d, %r" % (p.returncode, out[:200]))
    p = run_cli("--version")
    out = (p.stdout + p.stderr).decode()
    check(p.returncode == 0 and "0." in out, "--version: exit %d, %r" % (p.returncode, out[:200]))


@test("--max-message-size accepts K/M suffixes")
async def size_suffix():
    with Server("--max-message-size", "4K") as srv:
        async with websockets.connect(srv.url, compression=None, max_size=None) as ws:
            await ws.send(b"a" * 4096)
            check(await asyncio.wait_for(ws.recv(), 5) == b"a" * 4096, "4096-byte echo")
            await ws.send(b"a" * 4097)
            try:
                await asyncio.wait_for(ws.recv(), 5)
                raise AssertionError("4097-byte message echoed with --max-message-size 4K")
            except websockets.exceptions.ConnectionClosed:
                pass
            check(ws.close_code == 1009, "close code %s, want 1009" % ws.close_code)


@test("--idle-timeout 1: an idle client is closed with 1000, an active one is not")
async def idle():
    with Server("--idle-timeout", "1") as srv:
        idle_ws = await websockets.connect(srv.url, compression=None, ping_interval=None)
        busy = await websockets.connect(srv.url, compression=None, ping_interval=None)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3:
            await busy.send("tick")
            check(await asyncio.wait_for(busy.recv(), 5) == "tick", "busy echo")
            await asyncio.sleep(0.3)
        await asyncio.wait_for(idle_ws.wait_closed(), 5 * slow_factor())
        check(idle_ws.close_code == 1000, "idle client closed with %s, want 1000" % idle_ws.close_code)
        check(not busy.closed, "active client was closed (code %s)" % busy.close_code)
        await busy.close()


@test("--ping-interval 1: a peer that never pongs is dropped, an auto-ponging client stays")
async def ping_interval():
    with Server("--ping-interval", "1") as srv:
        loop = asyncio.get_running_loop()
        good = await websockets.connect(srv.url, compression=None, ping_interval=None)  # auto-pongs
        bad = await loop.run_in_executor(None, RawWS.open, srv.port)

        def pings_then_drop():
            t0 = time.monotonic()
            pings = 0
            try:
                while time.monotonic() - t0 < 8 * slow_factor():
                    fin, op, p, _ = bad.recv_frame(max(0.01, 8 * slow_factor() - (time.monotonic() - t0)))
                    if op == 0x9:
                        pings += 1
                    if op == 0x8:
                        return pings, "close", time.monotonic() - t0
            except (EOFError, ConnectionResetError):
                return pings, "eof", time.monotonic() - t0
            except OSError:
                return pings, "timeout", time.monotonic() - t0
            return pings, "timeout", time.monotonic() - t0
        pings, how, dt = await loop.run_in_executor(None, pings_then_drop)
        check(pings >= 1, "no ping received from the server in %.1fs" % dt)
        check(how in ("close", "eof"), "silent peer not dropped within %.1fs (%d pings)" % (dt, pings))
        bad.close()
        check(not good.closed, "ponging client was dropped (code %s)" % good.close_code)
        await good.send("alive")
        check(await asyncio.wait_for(good.recv(), 5) == "alive", "ponging client echo")
        await good.close()


@test("default bind: dual-stack [::] serves 127.0.0.1 and ::1 (or 0.0.0.0 without IPv6)")
def default_bind():
    with Server(bind=None) as srv:
        line = srv.wait_log(r"listening on")
        if ipv6_loopback():
            check("[::]:%d" % srv.port in line, "start-up line %r, want [::]:%d" % (line, srv.port))
            s = socket.create_connection(("::1", srv.port), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            s.close()
            check(data.startswith(b"HTTP/1.1 200"), "via ::1: %r" % data[:80])
        else:
            check("0.0.0.0:%d" % srv.port in line, "start-up line %r" % line)
        assert_served(srv.port)


@test("--log-format json: one JSON object per line; --log-level error: no per-connection lines")
def log_formats():
    import json
    with Server("--log-format", "json") as srv:
        assert_served(srv.port)
        srv.wait_log(r'"event":"close"')
        for ln in srv.log_text().splitlines():
            try:
                obj = json.loads(ln)
            except ValueError:
                raise AssertionError("not JSON: %r" % ln)
            check(isinstance(obj, dict), "not an object: %r" % ln)
    # the start-up line is info: with --log-level error it may not appear, so pick the port here
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.Popen([binary(), "--bind", "127.0.0.1", "--port", str(port), "--log-level", "error"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        from eevtest import poll
        def up():
            try:
                assert_served(port)
                return True
            except Exception:
                return False
        check(poll(up, 5, 0.1), "server with --log-level error not serving")
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=10 * slow_factor())
        check(p.returncode == 0, "exit %d" % p.returncode)
        text = err.decode("utf-8", "replace")
        check(" open" not in text and "closed code" not in text, "info lines with --log-level error: %r" % text[:500])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@test("out of descriptors (EMFILE): excess connections are shed and logged, no busy loop, service resumes")
def emfile():
    # A hard limit of 48 descriptors (the server cannot raise it) leaves
    # room for about 40 clients; 70 arrive and stay.
    srv = Server()
    srv.args = ["prlimit", "--nofile=48:48", "--"] + srv.args
    srv.start()
    held = []
    try:
        for _ in range(70):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            held.append(s)
        srv.wait_log(r"shedding connections", timeout=5 * slow_factor())
        # The listener stays readable while clients wait in the backlog: a
        # server that spins on it would burn a core here.
        t0 = cpu_seconds(srv.proc.pid)
        time.sleep(2.0)
        used = cpu_seconds(srv.proc.pid) - t0
        check(used < 0.5 * slow_factor(), "server used %.2fs of CPU in 2s while out of descriptors" % used)
        srv.assert_alive()
        for s in held:
            s.close()
        held = []
        deadline = time.monotonic() + 10 * slow_factor()
        while True:
            try:
                assert_served(srv.port)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        rc = srv.stop()
        srv.assert_clean_exit(rc)
    finally:
        for s in held:
            s.close()
        srv.kill()
