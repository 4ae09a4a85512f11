#!/usr/bin/env python3
"""--reuse-port: two echo-ev processes on one port both accept connections
(counted from their "open" log lines); without the flag the second one
fails with "Address already in use" and exit 1; when one stops, the other
keeps serving the port."""

import os
import re

from deploylib import DIST_BUILD, ECHO_EV, Proc, Tap, check, free_port, poll, start_server, ws_frame, ws_open_raw

N = 48  # connections; the kernel hashes each 4-tuple to one of the sockets

t = Tap()
port = free_port()
a, _ = start_server("--reuse-port", port=port, name="a")
b = None
try:
    b, _ = start_server("--reuse-port", port=port, name="b")
    t.ok(True, "a second echo-ev with --reuse-port binds the same port %d" % port)

    def both_accept():
        for _ in range(N):
            s = ws_open_raw(port)
            s.sendall(ws_frame(1, b"x"))
            echo = s.recv(16)
            check(echo == b"\x81\x01x", "bad echo %r" % echo)
            s.close()
        opens = lambda p: len(re.findall(r"#\d+ \S+ open", p.text()))  # noqa: E731
        # The log lines reach us through reader threads: wait until every
        # connection's "open" line has arrived from one process or the other.
        poll(lambda: opens(a) + opens(b) >= N, 10)
        na, nb = opens(a), opens(b)
        check(na + nb == N, "open lines: a=%d b=%d, want %d in all" % (na, nb, N))
        check(na > 0 and nb > 0, "connections per process: a=%d b=%d (one never accepted)" % (na, nb),
              "a:\n%s\nb:\n%s" % (a.text()[-2000:], b.text()[-2000:]))
        t.diag("of %d connections, a accepted %d and b %d" % (N, na, nb))
    t.run("both processes accept connections on the shared port", both_accept)

    def without_flag():
        p = Proc([ECHO_EV, "--bind", "127.0.0.1", "--port", port])
        rc = p.wait(10)
        out = p.text()
        p.kill()
        check(rc == 1, "exit status %r (expected 1)" % rc, out)
        check(re.search(r"cannot listen on \S*:%d: Address already in use" % port, out), "message", out)
    t.run("without --reuse-port a third process fails: Address already in use, exit 1", without_flag)

    def one_left():
        check(b.stop() == 0, "b did not exit 0", b.text())
        for _ in range(8):
            s = ws_open_raw(port)
            s.sendall(ws_frame(2, b"\x01\x02"))
            check(s.recv(16) == b"\x82\x02\x01\x02", "bad echo from a")
            s.close()
    t.run("after one stops, the other serves every new connection", one_left)
    t.ok(a.stop() == 0, "a exits 0 on SIGTERM", a.text())
finally:
    a.kill()
    if b:
        b.kill()


def template_instances():
    """echo-ev@.service's ExecStart=, expanded as systemd does for two
    instances whose /etc/echo-ev/INSTANCE.conf set the same ECHO_EV_PORT."""
    unit = open(os.path.join(DIST_BUILD, "echo-ev@.service")).read()
    cmd = re.search(r"^ExecStart=(.*)$", unit, re.M).group(1).split()
    tport = free_port()
    procs = []
    try:
        for i in (1, 2):
            env = {"ECHO_EV_PORT": str(tport), "ECHO_EV_OPTS": "--bind 127.0.0.1 --log-level info"}
            argv = []
            for w in cmd:
                if w == "$ECHO_EV_OPTS":
                    argv += env["ECHO_EV_OPTS"].split()  # unbraced: split on whitespace
                else:
                    argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], w))
            argv[0] = ECHO_EV
            p = Proc(argv, name="instance%d" % i)
            procs.append(p)
            check(p.wait_log(r"listening on 127\.0\.0\.1:%d" % tport, 10), "instance %d did not listen" % i, p.text())
        for _ in range(N):
            s = ws_open_raw(tport)
            s.close()
        count = lambda p: len(re.findall(r"#\d+ \S+ open", p.text()))  # noqa: E731
        poll(lambda: sum(count(p) for p in procs) >= N, 10)
        counts = [count(p) for p in procs]
        check(sum(counts) == N, "open lines: %s, want %d in all" % (counts, N))
        check(all(counts), "connections per instance: %s" % counts)
        for p in procs:
            check(p.stop() == 0, "instance exit status", p.text())
    finally:
        for p in procs:
            p.kill()
t.run("two echo-ev@ instances (ExecStart= as in the template) share one port", template_instances)
t.done()
