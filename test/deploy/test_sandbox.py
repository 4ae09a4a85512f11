#!/usr/bin/env python3
"""The server under its units' sandbox, without systemd: sandbox_exec.py
applies the generated units' SystemCallFilter=, SystemCallErrorNumber=,
RestrictAddressFamilies=, MemoryDenyWriteExecute=, DynamicUser= (as nobody,
no capabilities, no_new_privs) and PrivateNetwork= (a new network
namespace), then execs echo-ev. It must serve, notify, report metrics and
shut down cleanly inside them; controls show the filter does bite."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys

from deploylib import (DIST_BUILD, ECHO_EV, HAVE_WEBSOCKETS, HERE, Proc, Tap, check, echo_ok, free_port, http_get,
                       poll, rmtree, tmpdir, which)

t = Tap()
WRAP = os.path.join(HERE, "sandbox_exec.py")
PY = sys.executable or "/usr/bin/python3"
try:
    import seccomp  # noqa: F401
except ImportError:
    t.skip("sandbox", "python3-seccomp not installed (apt-get install python3-seccomp)")
    t.done()
if not shutil.which("systemd-analyze") or not HAVE_WEBSOCKETS:
    t.skip("sandbox", "needs systemd-analyze and python3-websockets")
    t.done()

svc = os.path.join(DIST_BUILD, "echo-ev.service")
act = os.path.join(DIST_BUILD, "echo-ev-activated.service")
SUSPECT = re.compile(r"Operation not permitted|Permission denied|Bad system call|not supported", re.I)

# nobody must be able to reach the binary (it usually can: build trees are 0755)
r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ECHO_EV, "--version"],
                   capture_output=True, text=True, timeout=30) if shutil.which("setpriv") else None
if r is not None and r.returncode != 0:
    t.skip("sandbox", "user nobody cannot run %s: %s" % (ECHO_EV, r.stderr.strip()))
    t.done()

# LeakSanitizer (an ASan build) needs ptrace at exit, which the filter forbids.
os.environ["ASAN_OPTIONS"] = ":".join(x for x in (os.environ.get("ASAN_OPTIONS"), "detect_leaks=0") if x)

work = tmpdir()
os.chmod(work, 0o755)
try:
    r = subprocess.run([PY, WRAP, svc, "--", shutil.which("nice"), "-n", "1", "/bin/true"],
                       capture_output=True, text=True, timeout=30)
    if r.returncode == 77:
        t.skip("sandbox", r.stderr.strip())
        t.done()

    def control():
        check("Operation not permitted" in r.stderr, "nice (setpriority, @resources) was not refused: %r" % r.stderr)
    ok = t.run("control: the filter refuses setpriority() (~@resources) with EPERM", control)
    if not ok:
        t.done()

    def under_service_sandbox():
        mport = free_port()
        nsock = os.path.join(work, "notify")
        ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        ns.bind(nsock)
        os.chmod(nsock, 0o777)  # nobody must be able to send
        ns.settimeout(0.2)
        got = []
        p = Proc([PY, WRAP, svc, "--", ECHO_EV, "--bind", "127.0.0.1", "--port", "0",
                  "--metrics-bind", "127.0.0.1:%d" % mport],
                 env={"NOTIFY_SOCKET": nsock, "WATCHDOG_USEC": "400000"})
        try:
            m = p.wait_log(r"listening on 127\.0\.0\.1:(\d+)\s*$", 10)
            check(m, "did not start under the sandbox", p.text())
            port = int(m.group(1))

            def recv_all():
                try:
                    while True:
                        got.extend(ns.recv(4096).decode().split("\n"))
                except socket.timeout:
                    pass
                return "READY=1" in got
            check(poll(recv_all, 5), "no READY=1 under the sandbox", str(got))
            echo_ok(port, ["sandboxed", b"\x00" * 70000])
            st, _, body = http_get(mport, "/metrics")
            check(st == 200 and b"process_open_fds" in body and b"process_resident_memory_bytes" in body,
                  "metrics under the sandbox: %s" % st)
            rss = re.search(rb"^process_resident_memory_bytes (\S+)", body, re.M)
            check(rss and float(rss.group(1)) > 0, "RSS not readable under the sandbox (/proc/self)")
            proc_status = open("/proc/%d/status" % p.pid).read()
            check(re.search(r"^Seccomp:\s+2", proc_status, re.M) and re.search(r"^Uid:\s+65534", proc_status, re.M),
                  "the server is not filtered / not nobody", proc_status)
            p.signal(signal.SIGTERM)
            rc = p.wait(10)
            check(rc == 0, "exit status %r under the sandbox" % rc, p.text())
            recv_all()
            check("STOPPING=1" in got, "no STOPPING=1")
            check(any(x == "WATCHDOG=1" for x in got), "no WATCHDOG=1 under the sandbox")
            bad = [x for x in p.text().splitlines() if SUSPECT.search(x)]
            check(not bad, "the server hit the sandbox: %s" % bad, p.text())
        finally:
            p.kill()
            ns.close()
    t.run("echo-ev.service's sandbox: echoes, READY/WATCHDOG/STOPPING, /metrics, exit 0, no EPERM in its log",
          under_service_sandbox)

    ssa = which("systemd-socket-activate")
    if ssa:
        def under_activated_sandbox():
            port = free_port()
            p = Proc([ssa, "-E", "ASAN_OPTIONS", "-l", "127.0.0.1:%d" % port, PY, WRAP, act, "--", ECHO_EV])
            try:
                check(p.wait_log(r"Listening on", 10), "systemd-socket-activate did not listen", p.text())
                echo_ok(port, ["no network of my own", b"\x01\x02"], timeout=15)
                check(p.wait_log(r"using 1 socket\(s\) from socket activation", 5), "no activation line", p.text())
                st, _, body = http_get(port, "/metrics")
                check(st == 200 and b"echo_ev_messages_received_total" in body, "/metrics on the activated port")
                pid = p.pid
                netns = os.readlink("/proc/%d/ns/net" % pid)
                check(netns != os.readlink("/proc/self/ns/net"), "not in a private network namespace")
                p.signal(signal.SIGTERM)
                rc = p.wait(10)
                check(rc == 0, "exit status %r" % rc, p.text())
                bad = [x for x in p.text().splitlines() if SUSPECT.search(x)]
                check(not bad, "the server hit the sandbox: %s" % bad, p.text())
            finally:
                p.kill()
        t.run("echo-ev-activated.service's sandbox (PrivateNetwork, AF_UNIX only): serves the inherited socket",
              under_activated_sandbox)

        def activated_cannot_bind():
            p = Proc([PY, WRAP, act, "--", ECHO_EV, "--bind", "127.0.0.1", "--port", "0"])
            rc = p.wait(10)
            out = p.text()
            p.kill()
            check(rc == 1 and "cannot listen" in out, "expected exit 1 'cannot listen', got %r" % rc, out)
        t.run("control: without LISTEN_FDS the activated sandbox cannot open a TCP socket (exit 1)",
              activated_cannot_bind)
    else:
        t.skip("activated sandbox", "no systemd-socket-activate")
finally:
    rmtree(work)
t.done()
