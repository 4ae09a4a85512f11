"""build/tools/echo-bench against the server: live progress on a terminal, quiet otherwise."""

import os
import pty
import re
import select
import subprocess
import time

from eevtest import Server, binary, check, slow_factor
from run import test

MODULE_TIMEOUT = 90


def echo_bench():
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(binary())))),
                        "tools", "echo-bench")
    check(os.access(path, os.X_OK), "%s not built" % path)
    return path


def run_on_pty(argv, timeout):
    """Runs argv with stderr on a pseudo-terminal; returns (exit status, stdout, what the terminal got)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    got = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                got += chunk
            elif p.poll() is not None:
                break
        rc = p.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)
    return rc, p.stdout.read().decode(), got.decode("utf-8", "replace").replace("\r\n", "\n")


@test("echo-bench: one progress line a second on a terminal (warmup and measure), none into a pipe")
def bench_progress():
    bench = echo_bench()
    with Server() as srv:
        url = "ws://127.0.0.1:%d/" % srv.port
        rc, out, tty = run_on_pty([bench, url, "-c", "2", "-s", "64", "-w", "1", "-d", "3"], 40 * slow_factor())
        check(rc == 0, "exit %d; stdout %r; terminal %r" % (rc, out[-500:], tty[-1000:]))
        measure = re.findall(r"^measure (\d+)/3s: (\d+) msg/s, [\d.]+ MB/s, 2 connections open, 0 errors$", tty, re.M)
        check(re.search(r"^warmup \d+/1s: \d+ msg/s", tty, re.M), "no warmup line on the terminal: %r" % tty)
        check(2 <= len(measure) <= 4, "want 2-4 measure lines for -d 3, got %d: %r" % (len(measure), tty))
        check(all(int(n) > 0 for _, n in measure), "a second with no echoes: %r" % measure)
        check("messages:" in out, "no report on stdout: %r" % out)
        p = subprocess.run([bench, url, "-c", "2", "-s", "64", "-w", "0", "-d", "2"], stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=40 * slow_factor())
        err = p.stderr.decode()
        check(p.returncode == 0 and "messages:" in p.stdout.decode(), "piped run: exit %d %r" % (p.returncode, err))
        check(not re.search(r"^(warmup|measure) ", err, re.M), "progress lines went into a pipe: %r" % err)


@test("echo-bench --precompressed: every echo verified; echo-ev passes the compressed bytes back as sent")
def bench_precompressed():
    import json
    bench = echo_bench()
    with Server("--deflate-window-bits", "10") as srv:
        url = "ws://127.0.0.1:%d/" % srv.port
        for extra in (["--compressible"], ["--text"]):
            p = subprocess.run([bench, url, "-c", "4", "-s", "20000", "-i", "2", "-w", "0.2", "-d", "1", "--json",
                                "-q", "--precompressed"] + extra, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=40 * slow_factor())
            out = p.stdout.decode()
            check(p.returncode == 0, "%s: exit %d: %s %s" % (extra, p.returncode, out, p.stderr.decode()[-500:]))
            res = json.loads(out.strip().splitlines()[-1])
            check(res["ok"] and res["precompressed"] and res["messages"] > 0, "%s: %r" % (extra, res))
            check(res["passthrough_echoes"] == res["deflated_echoes"] == res["received"] > 0,
                  "%s: not every echo came back compressed as sent: %r" % (extra, res))
    # Against a server without the extension it is an error, not a silent plain run.
    with Server("--permessage-deflate", "off") as srv:
        p = subprocess.run([bench, "ws://127.0.0.1:%d/" % srv.port, "-c", "2", "-w", "0", "-d", "0.5", "-q",
                            "--precompressed"], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=40 * slow_factor())
        check(p.returncode != 0, "a server that declines permessage-deflate passed: %r" % p.stdout.decode())
