#!/usr/bin/env python3
"""sd_notify without systemd: the test binds the NOTIFY_SOCKET datagram
socket itself and checks what echo-ev sends: READY=1 once it listens,
STATUS="N connections" (with the live count), WATCHDOG=1 when WATCHDOG_USEC
and WATCHDOG_PID (= its own pid: a shell wrapper execs it) are set, none when
WATCHDOG_PID names another process, STOPPING=1 on SIGTERM; sender pids are
checked with SCM_CREDENTIALS."""

import os
import socket
import struct
import threading
import time

from deploylib import ECHO_EV, Proc, Tap, check, poll, rmtree, tmpdir, ws_frame, ws_open_raw

t = Tap()


class NotifySocket:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.s.bind(path)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.s.settimeout(0.2)
        self.msgs = []  # (monotonic time, sender pid, field)
        self.lock = threading.Lock()
        self.stop = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        csize = socket.CMSG_SPACE(struct.calcsize("3i"))
        while not self.stop:
            try:
                data, anc, _, _ = self.s.recvmsg(4096, csize)
            except socket.timeout:
                continue
            except OSError:
                return
            pid = None
            for level, typ, cdata in anc:
                if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("3i", cdata[:12])[0]
            now = time.monotonic()
            with self.lock:
                for field in data.decode("utf-8", "replace").split("\n"):
                    if field:
                        self.msgs.append((now, pid, field))

    def fields(self, prefix=""):
        with self.lock:
            return [m for m in self.msgs if m[2].startswith(prefix)]

    def wait(self, pred, timeout):
        return poll(lambda: [m for m in self.fields() if pred(m[2])], timeout)

    def close(self):
        self.stop = True
        self.th.join(2)
        self.s.close()


WRAP = 'export WATCHDOG_PID=$$; exec "$0" "$@"'

work = tmpdir()
try:
    # --- run 1: READY, STATUS, WATCHDOG, STOPPING ---
    ns = NotifySocket(os.path.join(work, "notify"))
    env = {"NOTIFY_SOCKET": os.path.join(work, "notify"), "WATCHDOG_USEC": "400000"}
    proc = Proc(["/bin/sh", "-c", WRAP, ECHO_EV, "--bind", "127.0.0.1", "--port", "0",
                 "--shutdown-timeout", "2"], env=env)
    state = {}  # the client held open across checks
    try:
        m = proc.wait_log(r"listening on \[?[0-9.:]+\]?:(\d+)", 10)
        port = int(m.group(1)) if m else 0

        def ready():
            r = ns.wait(lambda f: f == "READY=1", 10)
            check(r, "no READY=1", "%s\n%s" % (ns.fields(), proc.text()))
            check(r[0][1] == proc.pid, "READY=1 from pid %s, server is %s" % (r[0][1], proc.pid))
            # READY means serving: a connection made now is upgraded.
            s = ws_open_raw(port)
            s.close()
        t.run("READY=1 once listening (a connection right after it is served)", ready)

        def status0():
            r = ns.wait(lambda f: f.startswith("STATUS="), 5)
            check(r and r[0][2] == "STATUS=0 connections", "first STATUS: %r" % (r and r[0][2]))
        t.run('STATUS="0 connections" at start', status0)

        def status1():
            state["held"] = ws_open_raw(port)
            state["held"].sendall(ws_frame(1, b"ping"))
            r = ns.wait(lambda f: f == "STATUS=1 connections", 8)
            check(r, "no STATUS=1 connections within 8 s", "\n".join(m[2] for m in ns.fields("STATUS")))
        t.run('STATUS="1 connections" while a client is connected (periodic update)', status1)

        def watchdog():
            n0 = len(ns.fields("WATCHDOG=1"))
            time.sleep(1.2)
            w = ns.fields("WATCHDOG=1")
            check(len(w) - n0 >= 3, "%d WATCHDOG=1 in 1.2 s with WATCHDOG_USEC=400000" % (len(w) - n0))
            check(all(m[1] == proc.pid for m in w), "WATCHDOG=1 from another pid: %s" % {m[1] for m in w})
        t.run("WATCHDOG=1 every half WATCHDOG_USEC, from the server's pid", watchdog)

        def stopping():
            proc.signal(15)
            r = ns.wait(lambda f: f == "STOPPING=1", 5)
            check(r, "no STOPPING=1 after SIGTERM", "\n".join(m[2] for m in ns.fields()))
            h = state.get("held")
            if h:  # answer the server's Close 1001 so it exits before its timeout
                h.settimeout(3)
                data = b""
                try:
                    while len(data) < 2 or data[0] & 0x0F != 8:
                        chunk = h.recv(4096)
                        if not chunk:
                            break
                        data += chunk
                        if data[0] & 0x0F != 8 and len(data) >= 2 + (data[1] & 0x7F):
                            data = data[2 + (data[1] & 0x7F):]  # skip the echo
                except OSError:
                    pass
                check(len(data) >= 4 and data[0] & 0x0F == 8 and struct.unpack("!H", data[2:4])[0] == 1001,
                      "expected Close 1001, got %r" % data[:16])
                h.sendall(ws_frame(8, struct.pack("!H", 1001)))
            rc = proc.wait(10)
            check(rc == 0, "exit status %r" % rc, proc.text())
        t.run("SIGTERM: STOPPING=1, Close 1001 to the client, exit 0", stopping)
    finally:
        proc.kill()
        ns.close()

    # --- run 2: WATCHDOG_PID of another process: no watchdog pings ---
    ns2 = NotifySocket(os.path.join(work, "notify2"))
    env2 = {"NOTIFY_SOCKET": os.path.join(work, "notify2"), "WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}
    proc2 = Proc([ECHO_EV, "--bind", "127.0.0.1", "--port", "0"], env=env2)
    try:
        def no_watchdog():
            check(ns2.wait(lambda f: f == "READY=1", 10), "no READY=1", proc2.text())
            time.sleep(0.8)
            check(not ns2.fields("WATCHDOG"), "WATCHDOG=1 sent although WATCHDOG_PID is not ours")
        t.run("no WATCHDOG=1 when WATCHDOG_PID names another process", no_watchdog)
        t.ok(proc2.stop(10) == 0, "exit 0 on SIGTERM", proc2.text())
    finally:
        proc2.kill()
        ns2.close()

    # --- run 3: no NOTIFY_SOCKET at all still works ---
    def no_notify():
        env3 = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
        p3 = Proc([ECHO_EV, "--bind", "127.0.0.1", "--port", "0"], env=env3)
        try:
            check(p3.wait_log(r"listening on", 10), "did not start without NOTIFY_SOCKET", p3.text())
            check(p3.stop(10) == 0, "exit status", p3.text())
        finally:
            p3.kill()
    t.run("without NOTIFY_SOCKET it starts and stops normally", no_notify)
finally:
    rmtree(work)
t.done()
