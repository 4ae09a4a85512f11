#!/usr/bin/env python3
"""Socket activation for real: systemd-socket-activate binds loopback
sockets and execs echo-ev with LISTEN_FDS; echo-ev serves every inherited
socket, ignores --port, says so in its log and exits 0 on SIGTERM."""

import re
import signal

from deploylib import (ECHO_EV, HAVE_WEBSOCKETS, Proc, Tap, check, echo_ok, free_port, http_get,
                       wait_port, which)

t = Tap()
ssa = which("systemd-socket-activate")
if not ssa or not HAVE_WEBSOCKETS:
    t.skip("socket activation", "needs systemd-socket-activate and python3-websockets")
    t.done()

p1, p2, unused = free_port(), free_port(), free_port()
proc = Proc([ssa, "-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2,
             ECHO_EV, "--port", unused, "--log-level", "info"], name="socket-activate")
try:
    def listening():
        check(proc.wait_log(r"Listening on 127\.0\.0\.1:%d" % p2, 10), "systemd-socket-activate is not listening",
              proc.text())
    t.run("systemd-socket-activate listens on two loopback sockets", listening)

    def first_echo():
        # The first connection makes systemd-socket-activate exec echo-ev.
        echo_ok(p1, ["hello through an inherited socket", b"\x00\xffbin"], timeout=15)
    t.run("a websockets client gets echoes on the first inherited socket", first_echo)

    def logs_inherited():
        m = proc.wait_log(r"using (\d+) socket\(s\) from socket activation", 5)
        check(m and m.group(1) == "2", "no 'using 2 socket(s) from socket activation' line", proc.text())
        check(proc.wait_log(r"listening on \[?127\.0\.0\.1\]?:%d" % p2, 2), "second socket not logged", proc.text())
    t.run("echo-ev logs that it uses the inherited sockets", logs_inherited)

    t.run("the second inherited socket is served too", lambda: echo_ok(p2, ["second socket"], timeout=10))

    def healthz():
        st, _, body = http_get(p1, "/healthz")
        check(st == 200 and body == b"ok\n", "GET /healthz: %s %r" % (st, body))
    t.run("GET /healthz on the inherited socket", healthz)

    def port_ignored():
        check(not wait_port(unused, 0.3), "--port %d was bound despite LISTEN_FDS" % unused)
        check(not re.search(r"listening on .*:%d\b" % unused, proc.text()), "log mentions --port", proc.text())
    t.run("--port is ignored under socket activation", port_ignored)

    def conn_logged():
        check(proc.wait_log(r"#\d+ \S*127\.0\.0\.1\]?:\d+ open", 2), "no per-connection open line", proc.text())
        check(proc.wait_log(r"#\d+ \S*127\.0\.0\.1\]?:\d+ closed code=1000", 5), "no closed code=1000 line",
              proc.text())
    t.run("connections are logged with peer and close code", conn_logged)

    def sigterm():
        proc.signal(signal.SIGTERM)
        rc = proc.wait(10)
        check(rc == 0, "exit status %r after SIGTERM" % rc, proc.text())
    t.run("SIGTERM: exit 0 (echo-ev replaced systemd-socket-activate by exec)", sigterm)
finally:
    proc.kill()
t.done()
