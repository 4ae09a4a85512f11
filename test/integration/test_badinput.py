"""Bad input over raw sockets. Every test ends by checking that a fresh client
is still served."""

import os
import socket
import struct
import time

from eevtest import (Conn, RawWS, Server, Shared, assert_served, check, close_payload, connect, frame,
                     read_response, set_linger0, slow_factor, upgrade_request, metrics, poll, sanitized)
from run import test

MODULE_TIMEOUT = 300

SRV = Shared("--handshake-timeout", "2", "--max-message-size", "1048576")


def teardown():
    SRV.teardown()


def refused(port, raw, want, timeout=5.0):
    """Sends raw bytes, expects an HTTP status `want` and then the connection closed."""
    c = Conn(connect(port))
    try:
        c.sendall(raw)
        r = read_response(c, timeout)
        check(r.status == want, "status %d %s, want %d" % (r.status, r.reason, want))
        check(c.wait_eof(5.0), "connection not closed after the %d" % want)
        return r
    finally:
        c.close()


@test("garbage before the handshake -> 400")
def garbage():
    srv = SRV.get()
    refused(srv.port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n", 400)
    assert_served(srv.port)


@test("garbage request line -> 400")
def garbage_line():
    srv = SRV.get()
    refused(srv.port, b"HELLO THERE\r\nHost: x\r\n\r\n", 400)
    assert_served(srv.port)


@test("request head that never ends is dropped at --handshake-timeout 2")
def stalled_head():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    try:
        c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
        t0 = time.monotonic()
        check(c.wait_eof(8 * slow_factor()), "connection still open after 8s (handshake timeout is 2s)")
        dt = time.monotonic() - t0
        check(dt >= 1.5, "dropped after %.1fs, before the 2s handshake timeout" % dt)
    finally:
        c.close()
    assert_served(srv.port)


@test("connection that sends nothing is dropped at --handshake-timeout 2")
def silent():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    try:
        check(c.wait_eof(8 * slow_factor()), "silent connection still open after 8s")
    finally:
        c.close()
    assert_served(srv.port)


@test("endless header lines -> 431 once the head passes 8 KiB")
def endless_head():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    try:
        c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        sent = 0
        status = None
        for i in range(400):  # 400 x 100 B = 40 KiB at most, well past 8 KiB
            try:
                c.sendall(b"X-Filler-%04d: %s\r\n" % (i, b"f" * 84))
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 100
        r = read_response(c, 5.0)
        status = r.status
        check(status == 431, "status %d, want 431" % status)
    finally:
        c.close()
    assert_served(srv.port)


@test("complete but oversize head (12 KiB cookie) -> 431")
def oversize_head():
    srv = SRV.get()
    req = upgrade_request(srv.port, extra=[("Cookie", "a=" + "b" * 12288)])
    c = Conn(connect(srv.port))
    try:
        try:
            c.sendall(req)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_response(c, 5.0)
        check(r.status == 431, "status %d, want 431" % r.status)
    finally:
        c.close()
    assert_served(srv.port)


@test("head just under 8 KiB is accepted")
def big_ok_head():
    srv = SRV.get()
    base = len(upgrade_request(srv.port, extra=[("X-Pad", "")]))
    req = upgrade_request(srv.port, extra=[("X-Pad", "p" * (8000 - base))])
    check(len(req) <= 8192, "test bug")
    c = Conn(connect(srv.port))
    try:
        c.sendall(req)
        r = read_response(c)
        check(r.status == 101, "status %d for a %d-byte head" % (r.status, len(req)))
    finally:
        c.close()


@test("upgrade without Sec-WebSocket-Key -> 400")
def missing_key():
    srv = SRV.get()
    refused(srv.port, upgrade_request(srv.port, omit=("Sec-WebSocket-Key",)), 400)
    assert_served(srv.port)


@test("malformed Sec-WebSocket-Key -> 400")
def bad_key():
    srv = SRV.get()
    for key in ("not base64!!", "c2hvcnQ=", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        refused(srv.port, upgrade_request(srv.port, key=key), 400)
    assert_served(srv.port)


@test("Sec-WebSocket-Version: 8 -> 426 with Sec-WebSocket-Version: 13")
def version8():
    srv = SRV.get()
    req = upgrade_request(srv.port, omit=("Sec-WebSocket-Version",), extra=[("Sec-WebSocket-Version", "8")])
    c = Conn(connect(srv.port))
    try:
        c.sendall(req)
        r = read_response(c)
        check(r.status == 426, "status %d, want 426" % r.status)
        check((r.header("sec-websocket-version") or "").strip() == "13",
              "Sec-WebSocket-Version header %r" % r.header("sec-websocket-version"))
    finally:
        c.close()
    assert_served(srv.port)


@test("unmasked client frame -> Close 1002")
def unmasked():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        c.send(0x1, b"hello", mask=False)
        code, _ = c.expect_close()
        check(code == 1002, "close code %d, want 1002" % code)
        check(c.wait_eof(5), "connection not closed after the 1002")
    finally:
        c.close()
    srv.wait_log(r"1002")
    assert_served(srv.port)


@test("invalid UTF-8 in a text message -> Close 1007")
def bad_utf8():
    srv = SRV.get()
    for bad in (b"\xff", b"abc\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"):
        c = RawWS.open(srv.port)
        try:
            c.send(0x1, bad)
            code, _ = c.expect_close()
            check(code == 1007, "%r: close code %d, want 1007" % (bad, code))
        finally:
            c.close()
    assert_served(srv.port)


@test("invalid UTF-8 split across fragments -> Close 1007")
def bad_utf8_frag():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        c.send(0x1, b"ok \xe2\x9c", fin=False)
        c.send(0x0, b"\x41", fin=True)  # \xe2\x9c\x41: broken sequence
        code, _ = c.expect_close()
        check(code == 1007, "close code %d, want 1007" % code)
    finally:
        c.close()
    assert_served(srv.port)


@test("invalid UTF-8 in a close reason -> Close 1007 (or 1002)")
def bad_close_reason():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        c.send(0x8, close_payload(1000, b"\xff\xfe"))
        code, _ = c.expect_close()
        check(code in (1007, 1002), "close code %d, want 1007" % code)
    finally:
        c.close()
    assert_served(srv.port)


@test("protocol violations -> Close 1002 (RSV bits, bad opcodes, bad continuation, long control)")
def violations():
    srv = SRV.get()
    cases = [
        ("RSV1 without extension", [frame(0x1, b"x", rsv=4)]),
        ("reserved opcode 3", [frame(0x3, b"x")]),
        ("reserved opcode 0xB", [frame(0xB, b"x")]),
        ("continuation without start", [frame(0x0, b"x")]),
        ("new message inside a fragmented one", [frame(0x1, b"a", fin=False), frame(0x1, b"b")]),
        ("fragmented ping", [frame(0x9, b"x", fin=False)]),
        ("ping payload 126 bytes", [frame(0x9, b"p" * 126)]),
    ]
    for desc, frames in cases:
        c = RawWS.open(srv.port)
        try:
            c.sendall(b"".join(frames))
            code, _ = c.expect_close()
            check(code == 1002, "%s: close code %d, want 1002" % (desc, code))
        finally:
            c.close()
    assert_served(srv.port)


@test("message larger than --max-message-size 1 MiB -> Close 1009 from the header alone")
def too_big():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        # announce 2 MiB, send only the header and 10 bytes
        c.sendall(frame(0x2, b"\0" * 10, length=2 << 20))
        code, _ = c.expect_close(5)
        check(code == 1009, "close code %d, want 1009" % code)
    finally:
        c.close()
    c = RawWS.open(srv.port)
    try:
        # fragments that only together exceed the limit
        c.send(0x2, b"\0" * (600 << 10), fin=False)
        c.sendall(frame(0x0, b"", fin=True, length=600 << 10))
        code, _ = c.expect_close(5)
        check(code == 1009, "fragmented: close code %d, want 1009" % code)
    finally:
        c.close()
    # exactly the limit is fine
    c = RawWS.open(srv.port)
    try:
        data = os.urandom(1 << 20)
        c.send(0x2, data)
        op, got = c.recv_message(10)
        check(op == 0x2 and got == data, "1 MiB message (== limit) not echoed")
    finally:
        c.close()
    assert_served(srv.port)


@test("peers that vanish mid-frame, mid-handshake or reset (SO_LINGER 0)", timeout=60)
def vanish():
    srv = SRV.get()
    m0 = metrics(srv.port)
    base_open = m0.get("echo_ev_connections_open")
    for i in range(20):
        c = RawWS.open(srv.port)
        c.sendall(frame(0x2, os.urandom(50), length=1000)[: 30 + i])
        if i % 2:
            set_linger0(c.sock)
        c.close()
    for i in range(10):
        c = Conn(connect(srv.port))
        c.sendall(upgrade_request(srv.port)[: 20 + i * 7])
        if i % 2:
            set_linger0(c.sock)
        c.close()
    for i in range(10):  # reset while the server has an echo of 1 MiB queued
        c = RawWS.open(srv.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.send(0x2, os.urandom(1 << 20), key=b"\0\0\0\0")
        time.sleep(0.02)
        set_linger0(c.sock)
        c.close()
    srv.assert_alive()
    assert_served(srv.port)
    if base_open is not None:
        ok = poll(lambda: metrics(srv.port).get("echo_ev_connections_open") == base_open, 5)
        check(ok, "connections_open is %s, was %s before the vanishing peers: connections leaked"
              % (metrics(srv.port).get("echo_ev_connections_open"), base_open))


def push_binary(sock, total, seconds, chunk):
    """Sends `chunk` repeatedly without reading, until `total` bytes or the deadline.
    Returns (bytes sent, error or None)."""
    sock.setblocking(False)
    import select
    sent = 0
    view = memoryview(chunk)
    off = 0
    deadline = time.monotonic() + seconds
    while sent < total and time.monotonic() < deadline:
        _, w, _ = select.select([], [sock], [], 0.2)
        if not w:
            continue
        try:
            n = sock.send(view[off:])
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError) as e:
            return sent, e
        sent += n
        off = (off + n) % len(chunk)
    return sent, None


@test("client pushing up to 200 MiB and never reading: backpressure, RSS bounded, others served", timeout=90)
def never_reads():
    env = {}
    if sanitized():
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    with Server("--backpressure-timeout", "60", env=env) as srv:
        assert_served(srv.port)
        base = srv.rss_kib()
        hog = RawWS.open(srv.port)
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        chunk = frame(0x2, b"\xab" * (1 << 20), key=b"\0\0\0\0")  # zero mask key: no masking cost
        import threading
        res = {}
        th = threading.Thread(target=lambda: res.update(r=push_binary(hog.sock, 200 << 20, 20, chunk)), daemon=True)
        th.start()
        peak = base
        served = 0
        t_end = time.monotonic() + 22
        while th.is_alive() and time.monotonic() < t_end:
            peak = max(peak, srv.rss_kib())
            assert_served(srv.port)
            served += 1
            time.sleep(0.2)
        th.join(5)
        peak = max(peak, srv.rss_kib())
        sent, err = res.get("r", (0, None))
        print("# pushed %d MiB (%s), RSS base %d KiB peak %d KiB, %d liveness checks" % (sent >> 20, err, base, peak, served))
        check(served >= 3, "only %d liveness checks while the hog pushed" % served)
        check(peak - base < 100 * 1024, "server RSS grew by %d KiB (> 100 MiB) while a client did not read" % (peak - base))
        srv.assert_alive()
        m = metrics(srv.port)
        if sent < (200 << 20):  # the server stopped reading: it must say so
            check(m.get("echo_ev_backpressure_pauses_total", 0) >= 1,
                  "only %d MiB accepted but backpressure_pauses_total is %r" % (sent >> 20, m.get("echo_ev_backpressure_pauses_total")))
        hog.close()
        assert_served(srv.port)


@test("--backpressure-timeout 2: a client that never reads is dropped", timeout=60)
def backpressure_drop():
    with Server("--backpressure-timeout", "2") as srv:
        hog = RawWS.open(srv.port)
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        chunk = frame(0x2, b"\xcd" * (1 << 20), key=b"\0\0\0\0")
        t0 = time.monotonic()
        sent, err = push_binary(hog.sock, 400 << 20, 20 * slow_factor(), chunk)
        dt = time.monotonic() - t0
        # the server must have cut us off: either sends failed, or the socket reads EOF/reset now
        dropped = err is not None or hog.wait_eof(5)
        check(dropped, "stalled client still connected after %.1fs (%d MiB pushed)" % (dt, sent >> 20))
        hog.close()
        assert_served(srv.port)


@test("handshake_failures_total{reason=...}: exact counts for each refusal reason", timeout=60)
def failure_reasons():
    with Server("--handshake-timeout", "1", "--max-connections", "3") as srv:
        key = 'echo_ev_handshake_failures_total{reason="%s"}'
        before = metrics(srv.port)
        refused(srv.port, b"BLAH\r\n\r\n", 400)
        refused(srv.port, upgrade_request(srv.port, omit=("Sec-WebSocket-Key",)), 400)
        c = Conn(connect(srv.port))
        c.sendall(upgrade_request(srv.port, omit=("Sec-WebSocket-Version",), extra=[("Sec-WebSocket-Version", "8")]))
        check(read_response(c).status == 426, "version 8 not 426")
        c.close()
        c = Conn(connect(srv.port))
        try:
            c.sendall(upgrade_request(srv.port, extra=[("Cookie", "x" * 10000)]))
        except OSError:
            pass
        check(read_response(c).status == 431, "oversize head not 431")
        c.close()
        c = Conn(connect(srv.port))
        c.sendall(b"GET / HTTP/1.1\r\n")
        check(c.wait_eof(6 * slow_factor()), "stalled head not dropped")
        c.close()
        held = [RawWS.open(srv.port) for _ in range(3)]
        c = Conn(connect(srv.port))
        import select
        if not select.select([c.sock], [], [], 0.5)[0]:
            try:
                c.sendall(upgrade_request(srv.port))
            except OSError:
                pass
        check(read_response(c).status == 503, "4th connection not 503")
        c.close()
        for h in held:
            h.send(0x8, close_payload(1000))
            h.expect_close()
            h.close()

        def scrape():
            try:
                return metrics(srv.port)
            except Exception:
                return None
        after = poll(scrape, 5, 0.2)
        check(after is not None, "/metrics unreachable after the held clients closed")
        want = {"bad_request": 2, "version": 1, "too_large": 1, "timeout": 1, "capacity": 1}
        got = {r: after.get(key % r, 0) - before.get(key % r, 0) for r in want}
        check(got == want, "handshake failure deltas %r, want %r" % (got, want))


@test("slow reader: echoes paused above --high-water resume below --low-water, all intact and in order", timeout=90)
def pause_resume():
    import threading
    with Server("--high-water", "2M", "--low-water", "512K") as srv:
        c = RawWS.open(srv.port)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        N = 40
        res = {}

        def sender():
            try:
                s = socket.socket(fileno=os.dup(c.sock.fileno()))
                s.settimeout(60 * slow_factor())
                for i in range(N):
                    s.sendall(frame(0x2, bytes([i]) * (1 << 20), key=b"\0\0\0\0"))
                s.close()
                res["ok"] = True
            except Exception as e:  # noqa
                res["err"] = repr(e)
        th = threading.Thread(target=sender, daemon=True)
        th.start()
        time.sleep(2)  # let the server hit the high-water mark
        check(th.is_alive(), "all %d MiB were accepted while nobody read: no backpressure" % N)
        m = metrics(srv.port)
        check(m.get("echo_ev_backpressure_pauses_total", 0) >= 1, "backpressure_pauses_total %r" % m.get("echo_ev_backpressure_pauses_total"))
        check(m.get("echo_ev_queued_bytes", 0) <= 8 << 20, "queued_bytes %r with --high-water 2M" % m.get("echo_ev_queued_bytes"))
        for i in range(N):
            op, got = c.recv_message(30 * slow_factor())
            check(op == 0x2 and len(got) == 1 << 20 and got.count(bytes([i])) == len(got),
                  "echo %d: op %r, %d bytes, first byte %r" % (i, op, len(got), got[:1]))
        th.join(10)
        check(res.get("ok"), "sender: %r" % res)
        c.send(0x8, close_payload(1000))
        code, _ = c.expect_close()
        check(code == 1000, "close %d" % code)
        c.close()
        assert_served(srv.port)
