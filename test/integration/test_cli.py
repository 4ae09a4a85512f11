"""Command line: -h/-V, --bind forms (names, unix sockets, ADDR:PORT), size limits, listener errors."""

import asyncio
import os
import re
import socket
import stat
import subprocess
import tempfile

import websockets

from eevtest import Server, assert_served, binary, check, ipv6_loopback, slow_factor
from run import test

MODULE_TIMEOUT = 120


def run_cli(*args):
    p = subprocess.run([binary(), *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=15 * slow_factor())
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


async def echo_at(uri=None, sock_path=None):
    if sock_path:
        ws = await websockets.unix_connect(sock_path, "ws://localhost/", compression=None)
    else:
        ws = await websockets.connect(uri, compression=None)
    try:
        await ws.send("via %s" % (sock_path or uri))
        got = await asyncio.wait_for(ws.recv(), 5)
        check(got == "via %s" % (sock_path or uri), "echo %r" % got)
    finally:
        await ws.close()


@test("-h and -V are --help and --version")
def short_help_version():
    rc, out, err = run_cli("-h")
    check(rc == 0 and "--port" in out and "-V, --version" in out, "-h: exit %d, %r %r" % (rc, out[:200], err))
    rc, out, err = run_cli("-V")
    check(rc == 0 and out.startswith("echo-ev ") and "0." in out, "-V: exit %d, %r %r" % (rc, out, err))


@test("--bind ADDR:PORT is refused with a pointer to --port")
def bind_with_port():
    for arg in ("1.2.3.4:80", "[::1]:8080", "localhost:80"):
        rc, _, err = run_cli("--bind", arg)
        check(rc == 2 and "--bind" in err and "--port" in err, "--bind %s: exit %d, %r" % (arg, rc, err))


@test("--max-message-size above 4 GiB - 1 is refused, not clamped; 4294967295 is accepted")
def max_message_size_limit():
    for arg in ("8G", "4G", "4294967296"):
        rc, _, err = run_cli("--max-message-size", arg)
        check(rc == 2 and "--max-message-size" in err and "4294967295" in err,
              "--max-message-size %s: exit %d, %r" % (arg, rc, err))
    with Server("--max-message-size", "4294967295") as srv:
        assert_served(srv.port)


@test("--bind NAME listens on every address the name resolves to, on one port")
async def bind_name():
    addrs = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", None, type=socket.SOCK_STREAM,
                                                          flags=socket.AI_PASSIVE)
                    if ai[0] in (socket.AF_INET, socket.AF_INET6)})
    check(addrs, "localhost resolves to nothing here")
    with Server(bind="localhost") as srv:
        for a in addrs:
            shown = "[%s]:%d" % (a, srv.port) if ":" in a else "%s:%d" % (a, srv.port)
            srv.wait_log(r"listening on %s" % shown.replace("[", r"\[").replace("]", r"\]").replace(".", r"\."))
            await echo_at(uri="ws://%s/" % shown)
        print("# localhost resolves to %s here" % ", ".join(addrs))


def private_hosts(hosts_text):
    """A command prefix running the server with its own /etc/hosts (a private mount namespace),
    or None where unshare/mount are not allowed."""
    fd, path = tempfile.mkstemp(prefix="echo-ev-hosts-")
    os.write(fd, hosts_text.encode())
    os.close(fd)
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount --bind "$0" /etc/hosts && exec "$@"', path]
    try:
        p = subprocess.run(prefix + ["getent", "ahosts", "localhost"], capture_output=True, timeout=10)
        ok = p.returncode == 0 and b"::1" in p.stdout
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else None


@test("--bind NAME resolving to IPv4 and IPv6 (localhost = 127.0.0.1 and ::1) listens on both")
async def bind_name_dual():
    prefix = private_hosts("127.0.0.1 localhost\n::1 localhost\n")
    if prefix is None:
        print("# skipped: cannot give the server its own /etc/hosts here (unshare -m)")
        return
    try:
        srv = Server(bind="localhost")
        srv.args = prefix + srv.args
        with srv:
            for shown in ("127.0.0.1:%d" % srv.port, "[::1]:%d" % srv.port):
                srv.wait_log(r"listening on %s" % shown.replace("[", r"\[").replace("]", r"\]").replace(".", r"\."))
                await echo_at(uri="ws://%s/" % shown)
    finally:
        os.unlink(prefix[-1])


@test("--bind ::1: the port is read from the '[::1]:PORT' line; a client echoes over IPv6")
async def bind_ipv6_loopback():
    if not ipv6_loopback():
        print("# skipped: ::1 cannot be bound here")
        return
    with Server(bind="::1") as srv:
        line = srv.wait_log(r"listening on")
        check(re.search(r"listening on \[::1\]:%d$" % srv.port, line), "port %s read from %r" % (srv.port, line))
        check(srv.host == "::1" and srv.url == "ws://[::1]:%d/" % srv.port, "host %r, url %r" % (srv.host, srv.url))
        await echo_at(uri=srv.url)
        await echo_at(uri=srv.url)  # the first client did not disturb the next


@test("--bind twice: 127.0.0.1 and unix:PATH (mode from --unix-mode); stale socket replaced; file removed at exit")
async def bind_unix():
    d = tempfile.mkdtemp(prefix="echo-ev-unix-")
    path = os.path.join(d, "echo-ev.sock")
    # A socket file nobody listens on (a crashed server's) is replaced.
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()
    try:
        with Server("--bind", "unix:" + path, "--unix-mode", "0600") as srv:
            srv.wait_log(r"listening on unix:%s" % path)
            check(any("removed the stale socket" in ln for ln in srv.lines), "stale socket not reported")
            mode = stat.S_IMODE(os.lstat(path).st_mode)
            check(mode == 0o600, "socket mode %o, want 600" % mode)
            await echo_at(sock_path=path)
            srv.wait_log(r"#\d+ unix open")
            assert_served(srv.port)
        check(not os.path.exists(path), "socket file left behind after exit")
        # A unix socket someone is using, or another kind of file, is not touched.
        with open(path, "w") as f:
            f.write("not a socket\n")
        rc, _, err = run_cli("--bind", "unix:" + path, "--port", "0")
        check(rc == 1 and "cannot listen on unix:%s" % path in err, "over a regular file: exit %d, %r" % (rc, err))
        check(open(path).read() == "not a socket\n", "a regular file was replaced")
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(d)


@test("a --metrics-bind that cannot listen says it was the metrics listener")
def metrics_listener_error():
    with Server() as srv:
        rc, _, err = run_cli("--bind", "127.0.0.1", "--port", "0", "--metrics-bind", "127.0.0.1:%d" % srv.port)
        check(rc == 1 and "metrics listener" in err and "127.0.0.1:%d" % srv.port in err,
              "exit %d, %r" % (rc, err))
        assert_served(srv.port)
