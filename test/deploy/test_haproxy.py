#!/usr/bin/env python3
"""HAProxy (the Debian package) with dist/haproxy/haproxy.cfg, its ports
substituted, on loopback in front of three echo-ev processes. Clients echo
numbered messages through it; one instance is killed with SIGKILL mid-run;
its clients reconnect, are served by the other two, and every message is
echoed intact: per client the echoed sequence numbers are exactly 0..n-1,
in order (unacknowledged messages are resent after a reconnect, so none is
lost and none is skipped). HAProxy's health check marks the dead one DOWN."""

import asyncio
import signal
import time

from deploylib import HAVE_WEBSOCKETS, Tap, check, poll, rmtree, start_server, tmpdir, which
from haproxylib import HAProxy

CLIENTS = 12
WINDOW = 4          # messages in flight per client
BEFORE_KILL = 1.5   # seconds of traffic before the kill
AFTER_KILL = 2.5    # and after

t = Tap()
haproxy = which("haproxy")
if not haproxy or not HAVE_WEBSOCKETS:
    t.skip("haproxy", "needs haproxy and python3-websockets")
    t.done()
import websockets.client  # noqa: E402
import websockets.exceptions  # noqa: E402

work = tmpdir()
servers = {}
hap = None
try:
    for name in ("ev1", "ev2", "ev3"):
        servers[name] = start_server("--shutdown-timeout", "2", name=name)
    hap = HAProxy(haproxy, servers, work)
    if not t.run("dist/haproxy/haproxy.cfg with loopback ports passes haproxy -c", hap.configure):
        t.done()

    hap.start()
    if not t.run("haproxy up; GET /healthz checks mark the three instances UP", hap.wait_all_up):
        t.done()

    # --- the traffic ---
    uri = "ws://127.0.0.1:%d/" % hap.port
    results = {}

    async def client(i, stop_at):
        acked = []           # sequence numbers echoed, in arrival order
        bad = []             # echoes that did not match
        reconnects = 0
        seq = 0              # next to send
        give_up = time.monotonic() + BEFORE_KILL + AFTER_KILL + 15
        while time.monotonic() < stop_at:
            try:
                async with websockets.client.connect(uri, open_timeout=5, close_timeout=2,
                                                     compression=None) as ws:
                    while time.monotonic() < stop_at:
                        # Unacknowledged messages are (re)sent from the first one.
                        seq = len(acked)
                        batch = ["c%d-%d-%s" % (i, s, "x" * (s % 37)) for s in range(seq, seq + WINDOW)]
                        for m in batch:
                            await ws.send(m)
                        for m in batch:
                            got = await asyncio.wait_for(ws.recv(), 5)
                            if got != m:
                                bad.append((m, got))
                                raise RuntimeError("mismatch")
                            acked.append(int(m.split("-")[1]))
            except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException):
                reconnects += 1
                if time.monotonic() > give_up:
                    break
                await asyncio.sleep(0.05)
        results[i] = {"acked": acked, "bad": bad, "reconnects": reconnects}

    async def run_all():
        stop_at = time.monotonic() + BEFORE_KILL + AFTER_KILL
        tasks = [asyncio.create_task(client(i, stop_at)) for i in range(CLIENTS)]
        await asyncio.sleep(BEFORE_KILL)
        before = {n: hap.opens(n) for n in servers}
        servers["ev2"][0].p.send_signal(signal.SIGKILL)
        await asyncio.gather(*tasks)
        return before

    def traffic():
        before = asyncio.run(asyncio.wait_for(run_all(), BEFORE_KILL + AFTER_KILL + 30))
        t.diag("WebSocket opens per instance at the kill: %s" % before)
        check(all(before[n] > 0 for n in servers), "leastconn did not use all three instances: %s" % before)
        state["before"] = before
    state = {}
    t.run("%d clients echo through haproxy; ev2 is SIGKILLed after %.1f s" % (CLIENTS, BEFORE_KILL), traffic)

    def none_lost():
        check(len(results) == CLIENTS, "only %d clients finished" % len(results))
        for i, r in sorted(results.items()):
            check(not r["bad"], "client %d: wrong echo %r" % (i, r["bad"][:1]))
            check(r["acked"] == list(range(len(r["acked"]))),
                  "client %d: echoed sequence has gaps or repeats: %s..." % (i, r["acked"][:20]))
            check(len(r["acked"]) >= WINDOW, "client %d: only %d echoes" % (i, len(r["acked"])))
        total = sum(len(r["acked"]) for r in results.values())
        t.diag("echoed messages: %d; reconnects per client: %s" %
               (total, [results[i]["reconnects"] for i in sorted(results)]))
    t.run("every client's messages were all echoed, intact and in order (none lost)", none_lost)

    def reconnected_elsewhere():
        re_clients = [i for i, r in results.items() if r["reconnects"] > 0]
        check(re_clients, "no client was on ev2 (nothing reconnected)")
        before = state["before"]
        after = {n: hap.opens(n) for n in servers}
        gained = sum(after[n] - before[n] for n in ("ev1", "ev3"))
        check(gained >= len(re_clients), "ev1+ev3 gained %d WebSockets for %d reconnecting clients" %
              (gained, len(re_clients)))
        check(after["ev2"] == before["ev2"], "ev2 opened connections after its death")
        t.diag("%d clients reconnected; ev1/ev3 opens %s -> %s" %
               (len(re_clients), (before["ev1"], before["ev3"]), (after["ev1"], after["ev3"])))
    t.run("the clients of the killed instance reconnected and were served by the others", reconnected_elsewhere)

    def marked_down():
        ok = poll(lambda: hap.status("ev2").startswith("DOWN"), 8)
        check(ok, "ev2 status %r" % hap.status("ev2"), hap.text()[-3000:])
        s = hap.stats()
        check(s["ev1"]["status"] == "UP" and s["ev3"]["status"] == "UP", "the others are not UP")
    t.run("haproxy's health check marks the killed instance DOWN, the others stay UP", marked_down)

    def stop_all():
        for n in ("ev1", "ev3"):
            rc = servers[n][0].stop(10)
            check(rc == 0, "%s exit status %r" % (n, rc), servers[n][0].text()[-2000:])
    t.run("the surviving instances exit 0 on SIGTERM", stop_all)
finally:
    if hap:
        hap.stop()
    for p, _ in servers.values():
        p.kill()
    rmtree(work)
t.done()
