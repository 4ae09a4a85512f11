"""Holding up under hostile clients: half-close, HTTP-phase backpressure,
keep-alive limits, deadlines, reassembly growth, the memory budget, the
queue bound. Each test ends by checking that another client is served."""

import os
import socket
import struct
import threading
import time

from eevtest import (Conn, RawWS, Server, TestFailure, assert_served, check, connect, frame, metrics, poll,
                     read_response, sanitized, slow_factor)
from run import test

MODULE_TIMEOUT = 300


def read_frame_header(c, timeout):
    b0, b1 = c.read_exact(2, timeout)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", c.read_exact(2, timeout))[0]
    elif n == 127:
        n = struct.unpack("!Q", c.read_exact(8, timeout))[0]
    return b0, n


@test("half-close: an 8 MiB message then FIN gets all 8 MiB back, then the server closes", timeout=60)
def half_close_ws():
    # No pause: the server reads the FIN while the echo is still queued.
    with Server("--high-water", "64M") as srv:
        c = RawWS.open(srv.port, timeout=10)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # the echo cannot all fit in flight
        payload = os.urandom(8 << 20)
        c.sendall(frame(0x2, payload))
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(1)  # read nothing until the server has seen the FIN
        b0, n = read_frame_header(c, 10 * slow_factor())
        check(b0 == 0x82 and n == len(payload), "echo header %#x len %d" % (b0, n))
        got = bytearray()
        deadline = time.monotonic() + 20 * slow_factor()
        try:
            while len(got) < n and time.monotonic() < deadline:
                got += c.read_exact(min(1 << 20, n - len(got)), max(0.1, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError, socket.timeout):
            pass
        check(len(got) == n, "got %d of %d echoed bytes after a half-close" % (len(got), n))
        check(bytes(got) == payload, "echo differs")
        check(c.wait_eof(10 * slow_factor()), "server did not close after flushing")
        c.close()
        assert_served(srv.port)


@test("half-close: 5,000 pipelined GET / then FIN get all 5,000 responses", timeout=60)
def half_close_http():
    with Server() as srv:
        c = Conn(connect(srv.port, 10))
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % srv.port).encode()
        c.sendall(req * 5000)
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(1)
        count = 0
        try:
            while count < 5000:
                r = read_response(c, 10 * slow_factor())
                check(r.status == 200, "response %d: status %d" % (count, r.status))
                count += 1
        except (EOFError, ConnectionResetError, socket.timeout):
            pass
        check(count == 5000, "%d of 5000 responses after a half-close" % count)
        c.close()
        assert_served(srv.port)


@test("--idle-timeout 2 --ping-interval 10: an idle client is closed within ~2 idle periods, not 10 s", timeout=60)
def idle_not_stretched_by_ping():
    with Server("--idle-timeout", "2", "--ping-interval", "10") as srv:
        c = RawWS.open(srv.port)
        t0 = time.monotonic()
        code, _ = c.expect_close(12 * slow_factor())
        dt = time.monotonic() - t0
        check(code == 1000, "close code %d, want 1000" % code)
        check(dt < 4.5 * slow_factor(), "idle client closed after %.1fs (want < 4.5s)" % dt)
        c.close()
        assert_served(srv.port)


def vm_kib(srv, field):
    with open("/proc/%d/status" % srv.proc.pid) as f:
        for ln in f:
            if ln.startswith(field + ":"):
                return int(ln.split()[1])
    return 0


@test("100 headers declaring 16 MiB reserve only what arrived (VmSize, VmRSS), a real 4 MiB message still echoes", timeout=60)
def declared_length_not_reserved():
    with Server("--max-message-size", "16M") as srv:
        assert_served(srv.port)
        vsz0, rss0 = vm_kib(srv, "VmSize"), srv.rss_kib()
        hogs = []
        for _ in range(100):
            h = RawWS.open(srv.port)
            h.sendall(frame(0x2, b"\x01" * 1000, length=16 << 20)[: 14 + 1000])
            hogs.append(h)
        time.sleep(0.5)
        vsz1, rss1 = vm_kib(srv, "VmSize"), srv.rss_kib()
        print("# VmSize +%d KiB, VmRSS +%d KiB for 100 x 16 MiB headers" % (vsz1 - vsz0, rss1 - rss0))
        check(vsz1 - vsz0 < 256 * 1024, "address space grew by %d MiB for 100 unfinished headers" % ((vsz1 - vsz0) >> 10))
        check(rss1 - rss0 < 64 * 1024, "RSS grew by %d MiB" % ((rss1 - rss0) >> 10))
        big = os.urandom(4 << 20)
        c = RawWS.open(srv.port)
        c.send(0x2, big)
        op, got = c.recv_message(20 * slow_factor())
        check(op == 0x2 and got == big, "4 MiB echo mismatch")
        c.close()
        for h in hogs:
            h.close()
        assert_served(srv.port)


@test("HTTP pipelining without reading: the server pauses (RSS bounded), drops it at the handshake deadline", timeout=60)
def pipelining_never_reads():
    env = {}
    if sanitized():
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    with Server("--handshake-timeout", "4", env=env) as srv:
        assert_served(srv.port)
        base = srv.rss_kib()
        s = connect(srv.port)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.setblocking(False)
        req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % srv.port).encode() * 1000
        sent, peak, dropped = 0, base, False
        t0 = time.monotonic()
        import select
        while time.monotonic() - t0 < 10 * slow_factor():
            _, w, _ = select.select([], [s], [], 0.1)
            if w:
                try:
                    sent += s.send(req)
                except BlockingIOError:
                    pass
                except (BrokenPipeError, ConnectionResetError):
                    dropped = True
                    break
            peak = max(peak, srv.rss_kib())
        dt = time.monotonic() - t0
        print("# sent %d KiB of requests in %.1fs; RSS base %d KiB, peak %d KiB" % (sent >> 10, dt, base, peak))
        check(peak - base < 32 * 1024, "RSS grew by %d MiB while a client pipelined without reading" % ((peak - base) >> 10))
        if not dropped:  # the reset may come on a recv instead
            try:
                s.setblocking(True)
                s.settimeout(2)
                while s.recv(1 << 20):
                    pass
                dropped = True
            except (ConnectionResetError, socket.timeout, BrokenPipeError):
                dropped = True
        check(dropped and dt < 8 * slow_factor(), "pipelining client still connected after %.1fs (--handshake-timeout 4)" % dt)
        s.close()
        assert_served(srv.port)


@test("HTTP keep-alive: requests do not restart the handshake deadline (--handshake-timeout 2)", timeout=30)
def keepalive_lifetime():
    with Server("--handshake-timeout", "2") as srv:
        c = Conn(connect(srv.port))
        req = ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % srv.port).encode()
        t0 = time.monotonic()
        closed = False
        while time.monotonic() - t0 < 8 * slow_factor():
            try:
                c.sendall(req)
                r = read_response(c, 3 * slow_factor())
                check(r.status == 200, "status %d" % r.status)
            except (EOFError, ConnectionResetError, BrokenPipeError, socket.timeout):
                closed = True
                break
            time.sleep(0.25)
        dt = time.monotonic() - t0
        check(closed, "a keep-alive connection making a request every 0.25s outlived --handshake-timeout 2 (%.1fs)" % dt)
        check(dt < 4 * slow_factor(), "closed after %.1fs" % dt)
        srv.wait_log(r"keep-alive lifetime")
        c.close()
        assert_served(srv.port)


@test("HTTP keep-alive: the 10,000th request is answered with Connection: close", timeout=60)
def keepalive_count():
    with Server("--handshake-timeout", "30") as srv:
        c = Conn(connect(srv.port))
        req = ("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n" % srv.port).encode()
        got, last = 0, None
        for _ in range(10):
            c.sendall(req * 1001)
            for _ in range(1001):
                try:
                    last = read_response(c, 5 * slow_factor())
                except (EOFError, ConnectionResetError):
                    last = None
                    break
                got += 1
                if got == 10000:
                    break
            if last is None or got >= 10000:
                break
        check(got == 10000, "%d responses on one connection (want 10000, then close)" % got)
        check((last.header("connection") or "").lower() == "close", "10,000th response without Connection: close")
        check(c.wait_eof(5), "connection not closed after the 10,000th response")
        c.close()
        assert_served(srv.port)


def unfinished_message(port, size):
    """Opens a WebSocket and sends all of a size-byte message but its last byte."""
    c = RawWS.open(port)
    c.sock.settimeout(10 * slow_factor())
    try:
        c.sendall(frame(0x2, b"\x00" * size, key=b"\0\0\0\0")[:-1])
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass  # refused part way: the server stopped taking bytes
    return c


@test("--max-memory 20M: 100 clients holding unfinished 1 MiB messages stay within the budget; the rest get 1013", timeout=120)
def memory_budget():
    env = {}
    if sanitized():
        env["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=16"
    with Server("--max-memory", "20M", "--max-message-size", "1M", env=env) as srv:
        assert_served(srv.port)
        base = srv.rss_kib()
        hogs = [unfinished_message(srv.port, 1 << 20) for _ in range(100)]
        time.sleep(0.5)
        rss = srv.rss_kib()
        m = metrics(srv.port)
        held, limit = m.get("echo_ev_memory_bytes", -1), m.get("echo_ev_memory_limit_bytes", -1)
        refused = m.get("echo_ev_memory_refusals_total", 0)
        evicted = m.get("echo_ev_memory_evictions_total", 0)
        print("# 100 x unfinished 1 MiB: RSS +%d KiB, memory_bytes %d of %d, %d refused, %d evicted"
              % (rss - base, held, limit, refused, evicted))
        check(limit == 20 << 20, "echo_ev_memory_limit_bytes %r" % limit)
        # the formula: a growth past the budget is refused unless the buffer stays <= 64 KiB
        check(0 < held <= limit + 100 * 65536, "echo_ev_memory_bytes %r over the budget" % held)
        check(rss - base < 48 * 1024, "RSS grew by %d MiB with --max-memory 20M" % ((rss - base) >> 10))
        codes = []
        for h in hogs:
            try:
                code, _ = h.expect_close(0.05)
                codes.append(code)
            except (socket.timeout, TestFailure):
                pass
        check(len(codes) >= 70 and set(codes) == {1013}, "%d refused, codes %r" % (len(codes), sorted(set(codes))))
        check(refused + evicted == len(codes), "echo_ev_memory_refusals_total %r + echo_ev_memory_evictions_total %r, "
              "%d clients got 1013" % (refused, evicted, len(codes)))
        assert_served(srv.port)
        for h in hogs:
            h.close()
        # the budget frees up: a large message goes through again
        ok = poll(lambda: metrics(srv.port).get("echo_ev_memory_bytes", 1) == 0, 10)
        check(ok, "memory_bytes did not return to 0 after the holders left")
        big = os.urandom(900 << 10)
        c = RawWS.open(srv.port)
        c.send(0x2, big)
        op, got = c.recv_message(10 * slow_factor())
        check(op == 0x2 and got == big, "900 KiB echo after the holders left")
        c.close()
        assert_served(srv.port)


@test("--max-memory: a budget full of half-sent messages evicts the largest holder (1013), not the new large message",
      timeout=120)
def memory_evicts_largest():
    sizes = [1536 << 10, 2560 << 10, 2 << 20]  # A, B (the largest, not the oldest), C: 6 MiB
    with Server("--max-memory", "6200K", "--max-message-size", "4M") as srv:
        holders, total = [], 0
        for size in sizes:
            holders.append(unfinished_message(srv.port, size))
            total += size
            ok = poll(lambda: metrics(srv.port).get("echo_ev_memory_bytes", 0) >= total - 8, 10 * slow_factor())
            check(ok, "the server did not take the half-sent messages (memory_bytes %r, want %d)"
                  % (metrics(srv.port).get("echo_ev_memory_bytes"), total))
        a, b, c = holders
        # A new client's 1 MiB message: today's code refused it (1013).
        msg = os.urandom(1 << 20)
        w = RawWS.open(srv.port)
        w.send(0x2, msg)
        op, got = w.recv_message(10 * slow_factor())
        check(op == 0x2 and got == msg, "1 MiB message under a full budget: got %r" % ((op, got if op == "close" else len(got)),))
        w.close()
        code, reason = b.expect_close(5 * slow_factor())
        check(code == 1013, "the largest holder got Close %d %r (want 1013)" % (code, reason))
        srv.wait_log(r"evicted.*largest holder")
        m = metrics(srv.port)
        check(m.get("echo_ev_memory_evictions_total") == 1 and m.get("echo_ev_memory_refusals_total") == 0,
              "evictions %r, refusals %r (want 1, 0)"
              % (m.get("echo_ev_memory_evictions_total"), m.get("echo_ev_memory_refusals_total")))
        check(m.get("echo_ev_memory_bytes", -1) <= total - sizes[1] + 4096,
              "the evicted holder's buffer is still counted: memory_bytes %r" % m.get("echo_ev_memory_bytes"))
        # A grower larger than every holder is the one refused, as before.
        big = unfinished_message(srv.port, 3 << 20)
        code, _ = big.expect_close(10 * slow_factor())
        check(code == 1013, "a 3 MiB message, larger than any holder, got Close %d (want 1013)" % code)
        m = metrics(srv.port)
        check(m.get("echo_ev_memory_evictions_total") == 1 and m.get("echo_ev_memory_refusals_total") == 1,
              "evictions %r, refusals %r (want 1, 1)"
              % (m.get("echo_ev_memory_evictions_total"), m.get("echo_ev_memory_refusals_total")))
        big.close()
        # The smaller holders were left alone: their messages complete.
        for h, size in ((a, sizes[0]), (c, sizes[2])):
            h.sendall(b"\x00")
            op, got = h.recv_message(10 * slow_factor())
            check(op == 0x2 and got == bytes(size), "holder of %d bytes: echo %r" % (size, op))
            h.close()
        b.close()
        assert_served(srv.port)


@test("--max-memory: a client that never reads, paused with its echoes queued, is evicted for a new large message",
      timeout=90)
def memory_evicts_queue():
    with Server("--max-memory", "768K", "--high-water", "512K", "--low-water", "128K") as srv:
        hog = RawWS.open(srv.port)
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        small = frame(0x2, b"\x5a" * (60 << 10), key=b"\0\0\0\0")  # each under 64 KiB: never refused

        def push():
            hog.sock.settimeout(3 * slow_factor())
            try:
                for _ in range(300):  # 18 MiB: more than the kernel buffers take
                    hog.sock.sendall(small)
            except (socket.timeout, OSError):
                pass  # paused: the server stopped reading

        th = threading.Thread(target=push, daemon=True)
        th.start()
        ok = poll(lambda: metrics(srv.port).get("echo_ev_backpressure_pauses_total", 0) >= 1, 10 * slow_factor())
        check(ok, "the hog was never paused")
        queued = metrics(srv.port).get("echo_ev_queued_bytes", 0)
        check(queued > 512 << 10, "only %d bytes queued" % queued)
        # In three fragments, so it is reassembled (growing to 400 KiB) however
        # the reads split it; with the hog's queue (> 512 KiB) that crosses 768K.
        msg = os.urandom(300 << 10)
        w = RawWS.open(srv.port)
        w.sendall(frame(0x2, msg[:100 << 10], fin=False) + frame(0x0, msg[100 << 10:200 << 10], fin=False)
                  + frame(0x0, msg[200 << 10:]))
        op, got = w.recv_message(10 * slow_factor())
        check(op == 0x2 and got == msg, "300 KiB message with %d bytes queued for a non-reader: got %r"
              % (queued, (op, got if op == "close" else len(got))))
        w.close()
        m = metrics(srv.port)
        check(m.get("echo_ev_memory_evictions_total") == 1, "evictions %r" % m.get("echo_ev_memory_evictions_total"))
        check(m.get("echo_ev_queued_bytes", -1) < 64 << 10, "the hog's queue is still held: %r" % m.get("echo_ev_queued_bytes"))
        # The hog's stream ends: echoes already begun, then Close 1013 or, if it
        # was owed more than 64 KiB of a frame begun, a cut.
        code = None
        try:
            while True:
                fin, op, p, _ = hog.recv_frame(5 * slow_factor())
                if op == 0x8:
                    code = struct.unpack("!H", p[:2])[0]
                    break
        except (EOFError, ConnectionResetError):
            pass
        print("# the hog, %d bytes queued: %s" % (queued, "cut" if code is None else "Close %d" % code))
        check(code in (None, 1013), "the hog got Close %r" % code)
        check(hog.wait_eof(5 * slow_factor()), "the hog's connection was not closed")
        th.join(5)
        hog.close()
        assert_served(srv.port)


@test("queue bound: a client sending 4 MiB messages and never reading queues at most --high-water 1M + 4 MiB + 512 KiB", timeout=60)
def queue_bound():
    import threading
    with Server("--high-water", "1M", "--low-water", "256K", "--max-message-size", "4M") as srv:
        hog = RawWS.open(srv.port)
        hog.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        msg = frame(0x2, b"\x5a" * (4 << 20), key=b"\0\0\0\0")

        def push():
            hog.sock.settimeout(3 * slow_factor())
            try:
                for _ in range(10):
                    hog.sock.sendall(msg)
            except (socket.timeout, OSError):
                pass  # paused: the server stopped reading

        th = threading.Thread(target=push, daemon=True)
        th.start()
        peak = 0
        t0 = time.monotonic()
        while th.is_alive() and time.monotonic() - t0 < 6 * slow_factor():
            peak = max(peak, metrics(srv.port).get("echo_ev_queued_bytes", 0))
            time.sleep(0.02)
        th.join(5)
        peak = max(peak, metrics(srv.port).get("echo_ev_queued_bytes", 0))
        bound = (1 << 20) + (4 << 20) + (512 << 10) + 10 * 14
        print("# peak queued %d bytes, documented bound %d" % (peak, bound))
        check(peak > 0, "nothing was ever queued: the test did not load the server")
        check(peak <= bound, "queued %d bytes, over the documented bound %d" % (peak, bound))
        hog.close()
        assert_served(srv.port)
