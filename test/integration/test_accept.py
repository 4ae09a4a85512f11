"""accept() errors: an inherited socket that is not listening is refused at
start; a listener that starts failing persistently is paused with backoff
(no busy loop, no log flood) while the other listeners keep serving.
Sockets are passed the way systemd does it (LISTEN_FDS, LISTEN_PID)."""

import os
import socket
import subprocess
import threading
import time

from eevtest import assert_served, binary, check, poll, sanitized, slow_factor
from run import test

MODULE_TIMEOUT = 120


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def activated(socks):
    """Starts echo-ev with socks as fds 3, 4, ... (LISTEN_PID set by the exec'd shell)."""
    fds = [os.dup(s.fileno()) for s in socks]
    # move them to 3.. in the child: pass_fds keeps numbers, so dup2 in a shell is simplest
    moves = " ".join("%d>&%d" % (3 + i, fd) for i, fd in enumerate(fds))
    cmd = 'LISTEN_PID=$$ LISTEN_FDS=%d exec "$0" %s' % (len(socks), moves)
    p = subprocess.Popen(["sh", "-c", cmd, binary()], pass_fds=fds, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    for fd in fds:
        os.close(fd)
    return p


def listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    return s


@test("an inherited socket that is not listening (Accept=yes style): refused at start, exit 1, one clear line")
def not_listening():
    good = listener()
    conn = socket.socket()
    conn.bind(("127.0.0.1", 0))  # bound, never listening: accept() would fail with EINVAL for ever
    p = activated([good, conn])
    try:
        _, err = p.communicate(timeout=10 * slow_factor())
        text = err.decode("utf-8", "replace")
        check(p.returncode == 1, "exit %s; stderr %r" % (p.returncode, text[-500:]))
        check("fd 4 is not a listening stream socket" in text, "stderr %r" % text[-500:])
        check(len(text.splitlines()) <= 3, "more than a few lines: %r" % text[:500])
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        good.close()
        conn.close()


@test("a listener that fails for ever (shut down under us): paused with backoff, little CPU, few lines; the other port serves")
def persistent_error():
    dead, alive = listener(), listener()
    p = activated([dead, alive])
    lines = []
    t = threading.Thread(target=lambda: lines.extend(p.stderr), daemon=True)
    t.start()
    try:
        port = alive.getsockname()[1]

        def up():
            try:
                assert_served(port)
                return True
            except Exception:
                return False
        check(poll(up, 10), "not serving on the inherited socket")
        # Our copy of the socket is the same socket: shutting it down makes
        # every accept() on it fail with EINVAL while epoll keeps saying readable.
        dead.shutdown(socket.SHUT_RDWR)
        time.sleep(0.5)
        c0 = cpu_seconds(p.pid)
        time.sleep(3)
        used = cpu_seconds(p.pid) - c0
        print("# server CPU with a failing listener: %.2f s in 3 s" % used)
        check(used < (0.3 if not sanitized() else 0.6), "server used %.2fs of CPU in 3 s with a failing listener" % used)
        assert_served(port)
        n = sum(b"accept" in ln for ln in lines)
        check(1 <= n <= 3, "%d accept error lines in 3.5 s (want 1-3): %r" % (n, lines[-3:]))
        p.terminate()
        check(p.wait(10 * slow_factor()) == 0, "exit status %s" % p.returncode)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        dead.close()
        alive.close()
