"""/metrics under load and attack: a scrape costs the same whatever the
number of connections, gauges kept as things happen, close-code labels
that rare codes cannot crowd out, the message-size histogram, build info,
and /metrics kept off the public port when --metrics-bind is given."""

import os
import re
import signal
import socket
import time

from eevtest import (Conn, RawWS, Server, assert_served, check, close_payload, connect, http_get, http_request, metrics,
                     poll, read_response, slow_factor)
from run import test

MODULE_TIMEOUT = 240


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scrape_cpu(srv, n):
    """Server CPU seconds spent answering n pipelined GET /metrics."""
    c = Conn(connect(srv.port, 30))
    req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
    t0 = cpu_seconds(srv.proc.pid)
    sent = 0
    try:
        while sent < n:
            batch = min(50, n - sent)  # small batches: the pipelining cap stays out of it
            c.sendall(req * batch)
            for _ in range(batch):
                r = read_response(c, 30)
                check(r.status == 200, "/metrics status %d" % r.status)
            sent += batch
    finally:
        c.close()
    return cpu_seconds(srv.proc.pid) - t0


@test("/metrics costs the same with 3000 connections open as with none (no /proc listing, no walk)", timeout=120)
def scrape_cost():
    srv = Server("--handshake-timeout", "120").start()
    held = []
    try:
        n = 1000
        alone = scrape_cpu(srv, n)
        for _ in range(3000):
            held.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        poll(lambda: metrics(srv.port).get("echo_ev_http_connections_open", 0) >= 3000, 20)
        crowded = scrape_cpu(srv, n)
        check(crowded < 2.5 * alone + 0.15 * slow_factor(),
              "%d scrapes took %.2fs of server CPU with 3000 connections open, %.2fs with none"
              % (n, crowded, alone))
        # Counted, not listed: still right (the scrape's own connection is open).
        r, c = http_request(srv.port, "GET", "/metrics")
        fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
        c.close()
        open_fds = re.search(rb"^process_open_fds (\S+)$", r.body, re.M)
        check(float(open_fds.group(1)) == fds, "process_open_fds %s, /proc lists %d" % (open_fds.group(1), fds))
        print("# scrape CPU: %.3fs alone, %.3fs with 3000 connections" % (alone, crowded))
        for s in held:
            s.close()
        held = []
        assert_served(srv.port)
        srv.assert_clean_exit(srv.stop())
    finally:
        for s in held:
            s.close()
        srv.kill()


@test("gauges: WebSockets and HTTP connections apart, queued bytes back to 0 when a slow reader leaves")
def gauges():
    srv = Server("--high-water", "256K", "--low-water", "64K").start()
    try:
        ws = [RawWS.open(srv.port) for _ in range(2)]
        raw = [connect(srv.port) for _ in range(3)]
        m = poll(lambda: (lambda m: m if m["echo_ev_http_connections_open"] == 4 else None)(metrics(srv.port)), 5)
        check(m is not None, "http_connections_open never 4 (3 idle + the scrape)")
        check(m["echo_ev_connections_open"] == 2, "connections_open %s, want 2 WebSockets" % m["echo_ev_connections_open"])
        # A client that sends and never reads: its echoes queue up.
        slow = RawWS.open(srv.port)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        big = os.urandom(64 << 10)
        slow.sock.settimeout(0.5)
        try:
            for _ in range(64):
                slow.send(0x2, big)
        except socket.timeout:
            pass  # paused: the server stopped reading us
        q = poll(lambda: metrics(srv.port)["echo_ev_queued_bytes"] >= (64 << 10), 5)
        check(q, "echo_ev_queued_bytes stayed below 64 KiB with a client not reading")
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
        slow.close()
        q0 = poll(lambda: metrics(srv.port)["echo_ev_queued_bytes"] == 0, 5)
        check(q0, "echo_ev_queued_bytes %s after the slow client left" % metrics(srv.port)["echo_ev_queued_bytes"])
        for c in ws:
            c.close()
        for s in raw:
            s.close()
        assert_served(srv.port)
        srv.assert_clean_exit(srv.stop())
    finally:
        srv.kill()


@test("close codes: the standard ones keep their labels after 80 clients send rare codes; rest by class")
def close_labels():
    srv = Server().start()
    try:
        for code in list(range(3000, 3040)) + list(range(4000, 4040)):
            c = RawWS.open(srv.port)
            c.send(0x8, close_payload(code))
            c.expect_close()
            c.close()
        for code in (1000, 1001, 1009):
            c = RawWS.open(srv.port)
            if code == 1009:
                c.send(0x8, close_payload(1009, b"too big"))
            else:
                c.send(0x8, close_payload(code))
            c.expect_close()
            c.close()

        def want():
            m = metrics(srv.port)
            k = 'echo_ev_connections_closed_total{code="%s"}'
            return m if m.get(k % "3xxx") == 40 and m.get(k % "4xxx") == 40 and m.get(k % "1009") == 1 else None
        m = poll(want, 5)
        check(m is not None, "closed_total: %s" % {k: v for k, v in metrics(srv.port).items() if "closed" in k})
        for code in ("1000", "1001"):
            check(m['echo_ev_connections_closed_total{code="%s"}' % code] == 1, "code %s not counted" % code)
        check(not any(re.search(r'code="3\d\d\d"|code="4\d\d\d"|other', k) for k in m), "rare codes got labels of their own")
        assert_served(srv.port)
        srv.assert_clean_exit(srv.stop())
    finally:
        srv.kill()


@test("build_info and the message-size histogram (cumulative buckets, sum, count)")
def histogram_build_info():
    srv = Server().start()
    try:
        c = RawWS.open(srv.port)
        sizes = [0, 10, 64, 65, 1000, 5000, 70000]
        for n in sizes:
            c.send(0x2, b"x" * n)
            op, got = c.recv_message(10)
            check(len(got) == n, "echo of %d bytes" % n)
        c.send(0x8, close_payload(1000))
        c.expect_close()
        c.close()
        r = http_get(srv.port, "/metrics")
        body = r.body.decode()
        check(re.search(r'^echo_ev_build_info\{version="[^"]+"\} 1$', body, re.M), "no echo_ev_build_info")
        m = metrics(srv.port)
        b = lambda le: m['echo_ev_message_size_bytes_bucket{le="%s"}' % le]
        got = (b(64), b(256), b(1024), b(4096), b(16384), b(65536), b(262144), b("+Inf"))
        check(got == (3, 4, 5, 5, 6, 6, 7, 7), "buckets le=64..+Inf: %s" % (got,))
        check(m["echo_ev_message_size_bytes_count"] == 7 and m["echo_ev_message_size_bytes_sum"] == sum(sizes),
              "count %s sum %s" % (m["echo_ev_message_size_bytes_count"], m["echo_ev_message_size_bytes_sum"]))
        assert_served(srv.port)
        srv.assert_clean_exit(srv.stop())
    finally:
        srv.kill()


@test("--metrics-bind: /metrics off the public port unless --metrics-public")
def metrics_private():
    for extra, public in (((), False), (("--metrics-public",), True)):
        mport = _free_port()
        srv = Server("--metrics-bind", "127.0.0.1:%d" % mport, *extra).start()
        try:
            srv.wait_log(r"listening on .*\(metrics\)")
            check(http_get(mport, "/metrics").status == 200, "no /metrics on the metrics port")
            st = http_get(srv.port, "/metrics").status
            check(st == (200 if public else 404), "/metrics on the public port with %s: %d" % (extra, st))
            assert_served(srv.port)
            srv.assert_clean_exit(srv.stop())
        finally:
            srv.kill()


@test("shutdown counts WebSockets and HTTP connections apart")
def shutdown_counts():
    srv = Server("--shutdown-timeout", "1").start()
    try:
        ws = RawWS.open(srv.port)
        raw = [connect(srv.port) for _ in range(2)]
        poll(lambda: metrics(srv.port)["echo_ev_http_connections_open"] == 3, 5)
        assert_served(srv.port)
        n = srv.nlines()
        srv.signal(signal.SIGTERM)
        srv.wait_log(r"closing 1 WebSocket and 2 HTTP connections", 5, start=n)
        srv.assert_clean_exit(srv.wait(10 * slow_factor()))
        ws.close()
        for s in raw:
            s.close()
    finally:
        srv.kill()


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p
