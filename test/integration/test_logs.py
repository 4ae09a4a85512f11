"""Logging: never blocks the event loop (a stderr nobody reads), drops and
counts lines instead, still flushes at exit; JSON with real fields; peer
strings escaped in both formats; --access-log on|off."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from eevtest import (RawWS, Server, assert_served, binary, check, close_payload, connect, metrics, poll,
                     read_response, slow_factor, upgrade_request)
from run import test

MODULE_TIMEOUT = 180


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_up(port, timeout=10):
    def up():
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False
    check(poll(up, timeout), "server not listening on %d" % port)


@test("stderr is a pipe nobody reads: 2500 clients still served; lines dropped, counted, reported later", timeout=120)
def stalled_stderr():
    port = free_port()
    rfd, wfd = os.pipe()
    p = subprocess.Popen([binary(), "--bind", "127.0.0.1", "--port", str(port)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=wfd, start_new_session=True)
    os.close(wfd)
    out = []
    try:
        wait_up(port)
        # Each client writes an "open" and a "closed" line: ~400 KB in all,
        # far more than the pipe (64 KiB) and the log buffer (256 KiB) hold.
        for i in range(2500):
            c = RawWS.open(port, timeout=5)
            c.send(0x8, close_payload(1000))
            c.expect_close(5)
            c.close()
        assert_served(port)
        m = metrics(port)
        check(m["echo_ev_log_lines_dropped_total"] > 0, "no dropped lines counted")
        # Now someone reads: what was kept comes out, then the count of the rest.
        reader = threading.Thread(target=lambda: out.append(_read_all(rfd)), daemon=True)
        reader.start()
        assert_served(port)
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        rc = p.wait(10 * slow_factor())
        check(rc == 0, "exit status %s" % rc)
        reader.join(10)
        text = out[0].decode("utf-8", "replace")
        n = re.findall(r"(\d+) log lines dropped", text)
        check(n, "no 'log lines dropped' line; tail: %r" % text[-500:])
        check(sum(map(int, n)) >= m["echo_ev_log_lines_dropped_total"],
              "dropped lines reported %s, counted %s" % (n, m["echo_ev_log_lines_dropped_total"]))
        check("exiting" in text.splitlines()[-1], "last line is not the exit line: %r" % text[-300:])
        check(not re.search(r"ERROR: AddressSanitizer|runtime error:", text), "sanitizer report")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(rfd)


def _read_all(fd):
    chunks = []
    while True:
        d = os.read(fd, 1 << 16)
        if not d:
            return b"".join(chunks)
        chunks.append(d)


@test("start-up errors still reach stderr (a port in use)")
def startup_error():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = subprocess.run([binary(), "--bind", "127.0.0.1", "--port", str(port)], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=10 * slow_factor())
        check(r.returncode == 1, "exit %d" % r.returncode)
        check(b"cannot listen" in r.stderr and b"Address already in use" in r.stderr, "stderr %r" % r.stderr)
    finally:
        s.close()


HOSTILE_PATH = b"/caf\xc3\xa9\xff\xfe\"q\\%0A"       # UTF-8, then bytes that are not, a quote, a backslash
HOSTILE_REASON = "bye\n\x1b[2J\u00e9".encode()      # valid UTF-8 with a newline and a terminal escape


def hostile_session(srv):
    """A WebSocket on HOSTILE_PATH with subprotocol chat: one 5-byte message, Close 4001 HOSTILE_REASON."""
    c = RawWS(connect(srv.port))
    c.sendall(b"GET " + HOSTILE_PATH + b" HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Protocol: chat\r\n\r\n")
    r = read_response(c)
    check(r.status == 101, "upgrade on a hostile path: %d" % r.status)
    c.send(0x1, b"hello")
    check(c.recv_message() == (1, b"hello"), "echo")
    c.send(0x8, close_payload(4001, HOSTILE_REASON))
    c.expect_close()
    c.close()


def raw_lines(srv):
    """stderr lines as bytes: nothing a terminal or a log shipper would trip on."""
    out = []
    for ln in srv.log_text().splitlines():
        b = ln.encode("utf-8", "surrogateescape")
        check("\ufffd" not in ln, "a log line is not valid UTF-8: %r" % ln)
        check(not any(ch < 0x20 and ch != 0x09 for ch in b), "raw control character in %r" % ln)
        out.append(ln)
    return out


@test("--log-format json: open and close with real fields (path, protocol, code, reason, counts), peer strings escaped")
def json_fields():
    import json
    with Server("--log-format", "json", "--protocol", "chat") as srv:
        hostile_session(srv)
        srv.wait_log(r'"event":"close"')
        events = {}
        for ln in raw_lines(srv):
            o = json.loads(ln)
            check(isinstance(o, dict) and "time" in o and "level" in o, "line %r" % ln)
            if "event" in o:
                events[o["event"]] = o
        op, cl = events.get("open"), events.get("close")
        check(op and cl, "no open/close events: %r" % events)
        check(op["conn"] == cl["conn"] and isinstance(op["conn"], int), "conn ids %r %r" % (op, cl))
        check(re.match(r"127\.0\.0\.1:\d+$", op["peer"]), "peer %r" % op["peer"])
        check(op["path"] == "/caf\u00e9\\xff\\xfe\"q\\%0A", "path %r" % op["path"])
        check(op["protocol"] == "chat", "protocol %r" % op.get("protocol"))
        check(cl["code"] == 4001 and cl["reason"] == HOSTILE_REASON.decode(), "code/reason %r" % cl)
        check((cl["bytes_in"], cl["bytes_out"], cl["messages"]) == (5, 5, 1), "counts %r" % cl)
        check(isinstance(cl["duration_ms"], (int, float)) and 0 <= cl["duration_ms"] < 10000, "duration %r" % cl)
        # The escapes themselves, byte for byte: control characters as \u00NN, bytes that are
        # not UTF-8 as the text "\xNN", valid UTF-8 as it is.
        text = srv.log_text()
        check('"path":"/caf\u00e9\\\\xff\\\\xfe\\"q\\\\%0A","protocol":"chat"' in text, "raw path: %r" % text)
        check('"reason":"bye\\u000a\\u001b[2J\u00e9"' in text, "raw reason: %r" % text)
        assert_served(srv.port)


@test("text log: readable open/close lines; control characters and invalid UTF-8 from the peer escaped")
def text_escaped():
    with Server("--protocol", "chat") as srv:
        hostile_session(srv)
        ln = srv.wait_log(r"closed code=4001")
        check('reason="bye\\x0a\\x1b[2J\u00e9"' in ln, "close line %r" % ln)
        check(re.search(r"messages=1 bytes_in=5 bytes_out=5 duration_ms=\d+", ln), "close line %r" % ln)
        op = srv.wait_log(r" open ")
        check('path="/caf\u00e9\\xff\\xfe\\"q\\\\%0A" protocol=chat' in op, "open line %r" % op)
        raw_lines(srv)
        assert_served(srv.port)


@test("--access-log off: no open/close lines (refusals still logged); metrics still count")
def access_log_off():
    with Server("--access-log", "off") as srv:
        for _ in range(5):
            assert_served(srv.port)
        c = connect(srv.port)
        c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        c.recv(4096)
        c.close()
        srv.wait_log(r"refused 400")
        text = srv.log_text()
        check(not re.search(r" open\b| closed ", text), "access log lines with --access-log off: %r" % text[-500:])
        m = metrics(srv.port)
        check(m['echo_ev_connections_closed_total{code="1000"}'] == 5, "closed_total %r" % m)
    r = subprocess.run([binary(), "--access-log", "maybe"], capture_output=True, timeout=10)
    check(r.returncode == 2 and b"--access-log" in r.stderr, "bad value: %d %r" % (r.returncode, r.stderr))


@test("close line: a connection that scraped /metrics before upgrading counts only its own messages")
def counts_after_scrape():
    with Server() as srv:
        other = RawWS.open(srv.port)  # #1: echoes counted by the driver, not yet scraped
        for _ in range(3):
            other.send(0x2, b"abc")
            check(other.recv_message() == (0x2, b"abc"), "echo to #1")
        c = RawWS(connect(srv.port))  # #2: a keep-alive scrape, then the upgrade
        c.sendall(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        r = read_response(c)
        check(r.status == 200, "/metrics: %r" % r)
        c.sendall(upgrade_request(srv.port))
        r = read_response(c)
        check(r.status == 101, "upgrade after the scrape: %r" % r)
        c.send(0x2, b"hello")
        check(c.recv_message() == (0x2, b"hello"), "echo to #2")
        c.send(0x8, close_payload(1000))
        c.expect_close()
        ln = srv.wait_log(r"#2 \S+ closed code=1000")
        check(re.search(r" messages=1 bytes_in=5 bytes_out=5 ", ln), "close line %r" % ln)
        other.close()
        assert_served(srv.port)
