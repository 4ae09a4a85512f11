"""Logging: never blocks the event loop (a stderr nobody reads), drops and
counts lines instead, still flushes at exit."""

import os
import re
import signal
import socket
import subprocess
import threading
import time

from eevtest import (RawWS, assert_served, binary, check, close_payload, metrics, poll, slow_factor)
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
