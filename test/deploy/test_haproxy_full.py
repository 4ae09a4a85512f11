#!/usr/bin/env python3
"""HAProxy with dist/haproxy/haproxy.cfg in front of three echo-ev
processes, one of them with --max-connections 3. Clients connect through
HAProxy until that instance is full. Its health check (on a spare slot)
then says "full": HAProxy stops sending it new clients, but the WebSockets
it holds are not cut, and new clients are served by the others."""

import time

from deploylib import Tap, check, http_get, poll, rmtree, start_server, tmpdir, which, ws_frame, ws_open_raw
from haproxylib import HAProxy

t = Tap()
haproxy = which("haproxy")
if not haproxy:
    t.skip("haproxy", "needs haproxy")
    t.done()

work = tmpdir()
servers = {}
hap = None
clients = []


def echo(s, text):
    s.sendall(ws_frame(0x1, text))
    want = 2 + len(text)
    got = b""
    s.settimeout(5)
    while len(got) < want:
        d = s.recv(want - len(got))
        check(d, "connection closed before the echo of %r" % text)
        got += d
    check(got[2:] == text, "echo %r, want %r" % (got[2:], text))


try:
    servers["ev1"] = start_server("--max-connections", "3", name="ev1")
    servers["ev2"] = start_server(name="ev2")
    servers["ev3"] = start_server(name="ev3")
    hap = HAProxy(haproxy, servers, work)
    hap.configure()
    hap.start()
    t.run("haproxy up, the three instances UP", hap.wait_all_up)

    def fill():
        for i in range(15):
            if hap.opens("ev1") >= 3:
                break
            clients.append(ws_open_raw(hap.port))
            poll(lambda: sum(hap.opens(n) for n in servers) >= len(clients), 5)
        check(hap.opens("ev1") == 3, "ev1 has %d WebSockets after %d clients" % (hap.opens("ev1"), len(clients)))
        for i, s in enumerate(clients):
            echo(s, b"before %d" % i)
    t.run("clients through haproxy until ev1 holds 3 (its --max-connections)", fill)

    def full_not_dead():
        st, _, body = http_get(servers["ev1"][1], "/healthz")
        check((st, body) == (200, b"full\n"), "ev1 /healthz at the limit: %s %r" % (st, body))
        st, _, body = http_get(servers["ev1"][1], "/readyz")
        check((st, body) == (503, b"full\n"), "ev1 /readyz at the limit: %s %r" % (st, body))
    t.run("at the limit ev1 still answers: /healthz 200 full, /readyz 503 full", full_not_dead)

    def no_new_clients():
        check(poll(lambda: hap.status("ev1").startswith("DOWN"), 8), "ev1 status %r" % hap.status("ev1"),
              hap.text()[-2000:])
        time.sleep(1.5)  # several more checks: sessions must survive them
        for i, s in enumerate(clients):
            echo(s, b"after %d" % i)
        for i in range(4):
            s = ws_open_raw(hap.port)
            clients.append(s)
            echo(s, b"new %d" % i)
        check(hap.opens("ev1") == 3, "ev1 got new WebSockets while full: %d" % hap.opens("ev1"))
    t.run("full ev1 gets no new clients; its 3 WebSockets still echo; new clients go to the others", no_new_clients)

    def back_up():
        ev1_port = servers["ev1"][1]
        # close one of ev1's clients: find them by asking ev1's /metrics is not
        # possible per client, so close clients until ev1 has a free slot
        for s in list(clients):
            st, _, body = http_get(ev1_port, "/readyz")
            if st == 200:
                break
            s.close()
            clients.remove(s)
            poll(lambda: http_get(ev1_port, "/readyz")[0] == 200, 1)
        check(poll(lambda: hap.status("ev1") == "UP", 8), "ev1 not UP again: %r" % hap.status("ev1"))
        for i, s in enumerate(clients):
            echo(s, b"end %d" % i)
    t.run("when a slot frees, ev1 is UP again and every remaining client still echoes", back_up)

    def stop_all():
        for s in clients:
            s.close()
        for n, (p, _) in servers.items():
            rc = p.stop(10)
            check(rc == 0, "%s exit status %r" % (n, rc), p.text()[-2000:])
    t.run("the instances exit 0 on SIGTERM", stop_all)
finally:
    for s in clients:
        s.close()
    if hap:
        hap.stop()
    for p, _ in servers.values():
        p.kill()
    rmtree(work)
t.done()
