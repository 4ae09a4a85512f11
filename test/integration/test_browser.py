"""Headless Chromium (puppeteer-core) driving the test console at GET / (browser.mjs).

browser.mjs asks for the server to be stopped (SIGTERM, to show the page's
closed state) and started again on the same port (to show auto-reconnect);
this module does that with the suite's Server, so exit status and sanitizer
reports are checked as everywhere else. Screenshots of each state go to
<build dir>/page-screenshots/.
"""

import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time

from eevtest import HERE, Server, binary, check, slow_factor
from run import test

MODULE_TIMEOUT = 240


def screenshot_dir():
    """<build dir>/page-screenshots: the meson build dir holding the binary under test."""
    d = os.path.dirname(os.path.abspath(binary()))
    for _ in range(4):
        if os.path.isdir(os.path.join(d, "meson-private")):
            return os.path.join(d, "page-screenshots")
        d = os.path.dirname(d)
    return os.path.join(tempfile.gettempdir(), "echo-ev-page-screenshots-%d" % os.getpid())


def lines_of(stream, q):
    for raw in stream:
        q.put(raw.decode("utf-8", "replace").rstrip("\n"))
    q.put(None)


@test("chromium console", timeout=200)
def chromium():
    check(os.access(os.environ.get("CHROMIUM", "/usr/bin/chromium"), os.X_OK), "/usr/bin/chromium not installed")
    node = shutil.which("node") or shutil.which("nodejs")
    check(node is not None, "node not installed")
    check(os.path.isdir(os.path.join(HERE, "..", "node_modules", "puppeteer-core")),
          "test/node_modules missing: run `npm ci` in test/")
    shots = screenshot_dir()
    shutil.rmtree(shots, ignore_errors=True)
    srv = Server("--protocol", "chat").start()
    servers = [srv]
    port = srv.port
    proc = subprocess.Popen([node, os.path.join(HERE, "browser.mjs"), str(port), shots], cwd=HERE,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = queue.Queue(), queue.Queue()
    threading.Thread(target=lines_of, args=(proc.stdout, out), daemon=True).start()
    threading.Thread(target=lines_of, args=(proc.stderr, err), daemon=True).start()
    results = []
    deadline = time.monotonic() + 180 * slow_factor()
    try:
        while time.monotonic() < deadline:
            try:
                line = out.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                break
            try:
                r = json.loads(line)
            except ValueError:
                continue
            if "need" in r:
                answer = "ok"
                try:
                    if r["need"] == "stop":
                        rc = srv.stop()
                        srv.assert_clean_exit(rc)
                    elif r["need"] == "start":
                        srv = Server("--protocol", "chat", port=port).start()
                        servers.append(srv)
                    else:
                        answer = "unknown request"
                except AssertionError as e:
                    answer = "failed: %s" % str(e).replace("\n", " ")[:500]
                proc.stdin.write((answer + "\n").encode())
                proc.stdin.flush()
                continue
            results.append((r["name"], r["ok"], r.get("detail", "")))
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    stderr = "\n".join(iter_queue(err))
    check(results, "browser.mjs printed no results (exit %s): %s" % (proc.returncode, stderr[-2000:]))
    if rc != 0 and all(ok for _, ok, _ in results):
        results.append(("exit status", False, "browser.mjs exit %s: %s" % (rc, stderr[-2000:])))
    print("# screenshots: %s" % shots)
    # The page's close with 4001 "bye" reached the server.
    results.append(("server saw the page's close code 4001",
                    any("code=4001" in ln for ln in servers[0].lines), servers[0].log_text()[-1500:]))
    srv.assert_alive()
    rc = srv.stop()
    srv.assert_clean_exit(rc)
    return results


def iter_queue(q):
    while True:
        try:
            item = q.get_nowait()
        except queue.Empty:
            return
        if item is None:
            return
        yield item
