"""HAProxy in front of echo-ev instances, for the deploy tests: the shipped
dist/haproxy/haproxy.cfg with its ports moved to free loopback ones (so the
tests check the real file), run in the foreground, and read through its
stats page."""

import csv
import io
import os
import re
import subprocess

from deploylib import SRC, Proc, check, free_port, http_get, poll, wait_port


class HAProxy:
    """servers: {"ev1": (Proc, port), "ev2": ..., "ev3": ...}, the three
    backends of haproxy.cfg; the config is written into work."""

    def __init__(self, haproxy, servers, work):
        self.haproxy, self.servers = haproxy, servers
        self.cfg = os.path.join(work, "haproxy.cfg")
        self.port, self.stats_port = free_port(), free_port()  # the frontend, the stats page
        self.proc = None

    def configure(self):
        """Writes the config with loopback ports; checks it with haproxy -c."""
        with open(os.path.join(SRC, "dist", "haproxy", "haproxy.cfg")) as f:
            code = "".join(ln for ln in f if not ln.lstrip().startswith("#"))
        moves = [("bind :8080", "bind 127.0.0.1:%d" % self.port), ("127.0.0.1:8404", "127.0.0.1:%d" % self.stats_port)]
        moves += [("127.0.0.1:900%d" % i, "127.0.0.1:%d" % self.servers["ev%d" % i][1]) for i in (1, 2, 3)]
        for old, new in moves:
            check(code.count(old) == 1, "haproxy.cfg: expected one %r" % old)
            code = code.replace(old, new)
        with open(self.cfg, "w") as f:
            f.write(code)
        r = subprocess.run([self.haproxy, "-c", "-f", self.cfg], capture_output=True, text=True, timeout=30)
        check(r.returncode == 0, "haproxy -c failed", r.stdout + r.stderr)

    def start(self):
        self.proc = Proc([self.haproxy, "-db", "-f", self.cfg], name="haproxy")

    def stop(self):
        if self.proc:
            self.proc.stop(5)
            self.proc.kill()

    def text(self):
        return self.proc.text()

    def stats(self):
        """{server name: its row of the stats CSV} for the echo_ev backend."""
        st, _, body = http_get(self.stats_port, "/stats;csv")
        if st != 200:
            return {}
        rows = csv.DictReader(io.StringIO(body.decode().lstrip("# ")))
        return {r["svname"]: r for r in rows if r["pxname"] == "echo_ev"}

    def status(self, name):
        return self.stats().get(name, {}).get("status", "")

    def wait_all_up(self):
        check(wait_port(self.port, 10), "haproxy does not listen", self.text())
        check(poll(lambda: all(self.status(n) == "UP" for n in self.servers), 10),
              "not all UP by the health checks: %s" % {n: self.status(n) for n in self.servers}, self.text())

    def opens(self, name):
        """How many WebSockets the instance has opened, from its log."""
        return len(re.findall(r"#\d+ \S+ open", self.servers[name][0].text()))
