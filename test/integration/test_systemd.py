"""systemd integration without systemd as PID 1: sd_notify over a private
NOTIFY_SOCKET, and socket activation through systemd-socket-activate."""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from eevtest import Conn, Server, assert_served, binary, check, http_get, poll, slow_factor
from run import test

MODULE_TIMEOUT = 120


class NotifyListener:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="eev-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.msgs = []  # (monotonic time, text)
        self.stop = False
        self.th = threading.Thread(target=self._run, daemon=True)
        self.th.start()

    def _run(self):
        while not self.stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            for ln in data.decode("utf-8", "replace").splitlines():
                self.msgs.append((time.monotonic(), ln))

    def seen(self, prefix):
        return [t for t, m in list(self.msgs) if m.startswith(prefix)]

    def close(self):
        self.stop = True
        self.th.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@test("sd_notify: READY=1, WATCHDOG=1 with WATCHDOG_USEC, STATUS=, STOPPING=1 on SIGTERM", timeout=40)
def notify():
    nl = NotifyListener()
    try:
        srv = Server(env={"NOTIFY_SOCKET": nl.path, "WATCHDOG_USEC": "1000000"}).start()
        try:
            check(poll(lambda: nl.seen("READY=1"), 5), "no READY=1 within 5s; got %r" % nl.msgs[:5])
            assert_served(srv.port)
            t0 = time.monotonic()
            check(poll(lambda: len([t for t in nl.seen("WATCHDOG=1") if t >= t0]) >= 2, 3),
                  "fewer than 2 WATCHDOG=1 in 3s with WATCHDOG_USEC=1000000: %r" % nl.msgs[-5:])
            check(poll(lambda: nl.seen("STATUS="), 8), "no STATUS= within 8s")
            srv.signal(signal.SIGTERM)
            rc = srv.wait(10 * slow_factor())
            srv.assert_clean_exit(rc)
            # the datagram may still sit in the socket when the process is gone
            check(poll(lambda: nl.seen("STOPPING=1"), 2), "no STOPPING=1 on SIGTERM: %r" % nl.msgs[-5:])
            check(nl.seen("READY=1")[0] < nl.seen("STOPPING=1")[0], "STOPPING=1 before READY=1")
        finally:
            srv.kill()
    finally:
        nl.close()


def free_ports(n):
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@test("socket activation: serves every inherited socket, ignores --port", timeout=40)
def socket_activation():
    sa = shutil.which("systemd-socket-activate")
    check(sa is not None, "systemd-socket-activate not installed (apt-get install systemd)")
    p1, p2 = free_ports(2)
    proc = subprocess.Popen([sa, "-l", "127.0.0.1:%d" % p1, "-l", "127.0.0.1:%d" % p2, binary(), "--port", "1"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    lines = []
    th = threading.Thread(target=lambda: [lines.append(l.decode("utf-8", "replace")) for l in proc.stderr], daemon=True)
    th.start()
    try:
        # systemd-socket-activate execs echo-ev on the first connection
        check(poll(lambda: sum("Listening on" in l for l in lines) >= 2, 5), "socket-activate did not listen: %r" % lines)
        r = http_get(p2, "/healthz", timeout=10 * slow_factor())
        check(r.status == 200, "healthz via activated socket 2: %d" % r.status)
        check(poll(lambda: any("socket activation" in l for l in lines), 5), "no 'socket activation' log line: %r" % lines[-5:])
        assert_served(p1)
        assert_served(p2)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(10 * slow_factor())
        th.join(3)
        text = "".join(lines)
        check("ERROR: AddressSanitizer" not in text and "runtime error:" not in text, "sanitizer report:\n%s" % text[-3000:])
        check(rc == 0, "exit status %d after SIGTERM; log:\n%s" % (rc, text[-2000:]))
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
