"""Holding up under hostile clients: half-close, HTTP-phase backpressure,
keep-alive limits, deadlines, reassembly growth, the memory budget, the
queue bound. Each test ends by checking that another client is served."""

import os
import socket
import struct
import threading
import time

from eevtest import (Conn, RawWS, Server, assert_served, check, connect, frame, metrics,
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
