#!/usr/bin/env python3
"""Log format under systemd's journal, without journald: echo-ev detects the
journal by JOURNAL_STREAM naming its stderr (device:inode), as systemd sets
it for StandardError=journal. Then text lines carry a "<N>" syslog priority
prefix and no timestamp; otherwise (or with a JOURNAL_STREAM naming some
other file) plain timestamped lines; --log-format json stays JSON."""

import json
import os
import re
import subprocess
import threading


from deploylib import ECHO_EV, Tap, check, poll, ws_frame, ws_open_raw

t = Tap()


def run_server(extra_args, journal_stream):
    """Starts echo-ev with stderr on a pipe; journal_stream(st) -> JOURNAL_STREAM value or None."""
    r, w = os.pipe()
    st = os.fstat(w)
    env = dict(os.environ)
    env.pop("JOURNAL_STREAM", None)
    js = journal_stream(st)
    if js:
        env["JOURNAL_STREAM"] = js
    p = subprocess.Popen([ECHO_EV, "--bind", "127.0.0.1", "--port", "0"] + extra_args, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=w)
    os.close(w)
    lines = []

    def reader():
        with os.fdopen(r, "rb") as f:
            for raw in f:
                lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
    th = threading.Thread(target=reader, daemon=True)
    th.start()
    return p, lines, th


def session(extra_args, journal_stream):
    p, lines, th = run_server(extra_args, journal_stream)
    try:
        m = poll(lambda: [re.search(r"listening on 127\.0\.0\.1:(\d+)", x) for x in lines if "listening on" in x], 10)
        check(m and m[0], "no 'listening on' line", "\n".join(lines))
        port = int(m[0].group(1))
        s = ws_open_raw(port)
        s.sendall(ws_frame(1, b"hi"))
        s.recv(16)
        s.sendall(ws_frame(8, b"\x03\xe8"))
        s.recv(16)
        s.close()
        poll(lambda: any("closed" in x for x in lines), 5)
        p.terminate()
        rc = p.wait(10)
        th.join(5)
        check(rc == 0, "exit status %r" % rc, "\n".join(lines))
        return lines
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(5)


def journal(st):
    return "%d:%d" % (st.st_dev, st.st_ino)


def under_journal():
    lines = session([], journal)
    check(lines, "no output")
    bad = [x for x in lines if not re.match(r"^<[0-7]>", x)]
    check(not bad, "lines without a <N> priority prefix: %s" % bad[:3], "\n".join(lines))
    check(not any(re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d", x) for x in lines), "timestamps under the journal",
          "\n".join(lines))
    check(any(re.match(r"^<6>.*listening on 127\.0\.0\.1:\d+", x) for x in lines), "listening line not <6> (info)",
          "\n".join(lines))
    check(any(re.match(r"^<6>.*#\d+ \S+ open", x) for x in lines), "no <6> open line", "\n".join(lines))
    check(any(re.match(r"^<6>.*#\d+ \S+ closed code=1000", x) for x in lines), "no <6> closed code=1000 line",
          "\n".join(lines))
t.run("JOURNAL_STREAM = stderr's dev:ino: <N> prefixes (info = <6>), no timestamps", under_journal)


def not_journal():
    lines = session([], lambda st: "%d:%d" % (st.st_dev, st.st_ino + 1))
    check(lines and all(re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ", x) for x in lines),
          "expected timestamped lines", "\n".join(lines))
    check(not any(x.startswith("<") for x in lines), "priority prefix without the journal")
t.run("JOURNAL_STREAM naming another file: plain timestamped lines", not_journal)


def json_journal():
    lines = session(["--log-format", "json"], journal)
    for x in lines:
        try:
            o = json.loads(x)
        except ValueError:
            check(False, "not JSON: %r" % x)
        check({"time", "level"} <= set(o) and ("msg" in o or "event" in o),
              "JSON line lacks time/level/msg (or event): %r" % x)
    check(any("listening on" in json.loads(x).get("msg", "") for x in lines), "no listening message")
t.run("--log-format json under the journal: one JSON object per line", json_journal)
t.done()
