"""Plain HTTP on the main port, --origin, --protocol, --max-connections, /metrics."""

import asyncio
import os
import time

import websockets

from eevtest import (Conn, RawWS, Server, Shared, assert_served, check, connect, http_get, http_request,
                     TestFailure, metrics, poll, read_response, upgrade_request)
from eevtest import metrics as _metrics
from run import test

MODULE_TIMEOUT = 180

SRV = Shared()


def teardown():
    SRV.teardown()


@test("GET / serves the HTML client page")
def index():
    srv = SRV.get()
    r = http_get(srv.port, "/")
    check(r.status == 200, "status %d" % r.status)
    check((r.header("content-type") or "").startswith("text/html"), "Content-Type %r" % r.header("content-type"))
    body = r.body.decode("utf-8", "replace")
    for needle in ('id="msg"', 'id="send"', 'id="log"', 'id="url"', 'src="page.js"', 'href="page.css"', "WebSocket"):
        check(needle in body, "page lacks %s" % needle)


@test("the console's files are served with their types; the favicon is no 404")
def page_assets():
    srv = SRV.get()
    want = {"/page.js": ("text/javascript", b"new WebSocket("), "/page.css": ("text/css", b"#log"),
            "/favicon.svg": ("image/svg+xml", b"<svg"), "/favicon.ico": ("image/svg+xml", b"<svg")}
    for path, (ctype, needle) in want.items():
        r = http_get(srv.port, path)
        check(r.status == 200, "%s: status %d" % (path, r.status))
        check((r.header("content-type") or "").startswith(ctype), "%s: Content-Type %r" % (path, r.header("content-type")))
        check(r.header("x-content-type-options") == "nosniff", "%s: no nosniff" % path)
        check(needle in r.body, "%s: body lacks %r" % (path, needle))
    check(http_get(srv.port, "/page.html").status == 404, "/page.html should be 404 (the page is /)")


@test("GET /healthz -> 200 ok")
def healthz():
    srv = SRV.get()
    r = http_get(srv.port, "/healthz")
    check(r.status == 200 and r.body == b"ok\n", "%r" % r)


@test("unknown path -> 404, query string ignored for /healthz")
def notfound():
    srv = SRV.get()
    r = http_get(srv.port, "/no/such/thing")
    check(r.status == 404, "status %d" % r.status)
    r = http_get(srv.port, "/healthz?x=1")
    check(r.status == 200, "/healthz?x=1 status %d" % r.status)


@test("POST / -> 405 with Allow: GET")
def post():
    srv = SRV.get()
    r, c = http_request(srv.port, "POST", "/", headers={"Connection": "close"}, body=b"a=1")
    c.close()
    check(r.status == 405, "status %d" % r.status)
    check("GET" in (r.header("allow") or ""), "Allow %r" % r.header("allow"))


@test("HEAD and PUT are refused or answered sanely (no crash)")
def other_methods():
    srv = SRV.get()
    r, c = http_request(srv.port, "PUT", "/healthz", headers={"Connection": "close"}, body=b"x")
    c.close()
    check(r.status == 405, "PUT status %d" % r.status)
    assert_served(srv.port)


@test("keep-alive: three requests on one connection")
def keepalive():
    srv = SRV.get()
    r1, c = http_request(srv.port, "GET", "/healthz")
    try:
        check(r1.status == 200 and r1.body == b"ok\n", "first %r" % r1)
        r2, _ = http_request(srv.port, "GET", "/", conn=c)
        check(r2.status == 200 and b'id="msg"' in r2.body, "second %r" % r2)
        r3, _ = http_request(srv.port, "GET", "/nope", conn=c)
        check(r3.status == 404, "third %r" % r3)
    finally:
        c.close()


@test("keep-alive: pipelined requests answered in order")
def pipelined():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    try:
        req = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
        c.sendall(req)
        r1 = read_response(c)
        r2 = read_response(c)
        check((r1.status, r2.status) == (200, 404), "statuses %d %d" % (r1.status, r2.status))
    finally:
        c.close()


@test("HTTP/1.0 request is answered and closed")
def http10():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    try:
        c.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
        r = read_response(c)
        check(r.status == 200, "status %d" % r.status)
        check(c.wait_eof(5), "HTTP/1.0 connection left open")
    finally:
        c.close()


@test("upgrade on any path works")
async def any_path():
    srv = SRV.get()
    async with websockets.connect("ws://127.0.0.1:%d/some/path?q=1" % srv.port, compression=None) as ws:
        await ws.send("p")
        check(await asyncio.wait_for(ws.recv(), 5) == "p", "echo")


@test("--origin: listed Origin connects, unlisted gets 403, none is allowed")
async def origin():
    with Server("--origin", "http://good.example", "--origin", "https://also.example:8443") as srv:
        for o in ("http://good.example", "https://also.example:8443"):
            async with websockets.connect(srv.url, origin=o, compression=None) as ws:
                await ws.send("hi")
                check(await asyncio.wait_for(ws.recv(), 5) == "hi", "echo with Origin %s" % o)
        for o in ("http://evil.example", "http://good.example:81", "null"):
            try:
                async with websockets.connect(srv.url, origin=o, compression=None):
                    pass
                raise AssertionError("Origin %s was accepted" % o)
            except websockets.exceptions.InvalidStatusCode as e:
                check(e.status_code == 403, "Origin %s: status %d, want 403" % (o, e.status_code))
        async with websockets.connect(srv.url, compression=None) as ws:  # no Origin header
            await ws.send("x")
            check(await asyncio.wait_for(ws.recv(), 5) == "x", "echo without Origin")
        m = metrics(srv.port)
        check(m.get('echo_ev_handshake_failures_total{reason="origin"}') == 3,
              "handshake_failures_total{reason=\"origin\"} = %r, want 3" % m.get('echo_ev_handshake_failures_total{reason="origin"}'))


@test("--protocol chat: offered chat is selected; no header when not offered")
async def protocol():
    with Server("--protocol", "chat", "--protocol", "superchat") as srv:
        async with websockets.connect(srv.url, subprotocols=["chat"], compression=None) as ws:
            check(ws.subprotocol == "chat", "subprotocol %r" % ws.subprotocol)
            await ws.send("c")
            check(await asyncio.wait_for(ws.recv(), 5) == "c", "echo")
        async with websockets.connect(srv.url, subprotocols=["other", "superchat", "chat"], compression=None) as ws:
            check(ws.subprotocol == "chat", "server preference order: got %r, want chat" % ws.subprotocol)
        for extra in ([], [("Sec-WebSocket-Protocol", "other, another")]):
            c = RawWS.open(srv.port, extra=extra)
            try:
                check(c.response.header("sec-websocket-protocol") is None,
                      "offered %r, server chose %r" % (extra, c.response.header("sec-websocket-protocol")))
            finally:
                c.close()


@test("--max-connections 5: the 6th connection gets 503, a slot frees on close")
def max_connections():
    with Server("--max-connections", "5") as srv:
        held = [RawWS.open(srv.port) for _ in range(5)]
        try:
            c = Conn(connect(srv.port))
            import select
            r, _, _ = select.select([c.sock], [], [], 0.5)
            if not r:  # server waits for the request before refusing
                try:
                    c.sendall(upgrade_request(srv.port))
                except OSError:
                    pass
            resp = read_response(c)
            check(resp.status == 503, "6th connection: status %d, want 503" % resp.status)
            check(c.wait_eof(5), "503 connection not closed")
            c.close()
            for h in held:  # the five are unaffected
                h.send(0x1, b"held")
                op, got = h.recv_message()
                check(got == b"held", "held connection broken")
            held.pop().close()

            def one_slot():
                try:
                    assert_served(srv.port)
                    return True
                except Exception:
                    return False
            check(poll(one_slot, 5, 0.2), "no connection accepted after one of the 5 closed")
            m = metrics  # noqa
        finally:
            for h in held:
                h.close()


@test("/metrics: exact counters after 10 x 100-byte messages and close 1000")
async def metrics_exact():
    with Server() as srv:
        scrapes = [0]

        def metrics(port):  # every scrape is one more accepted (HTTP) connection
            scrapes[0] += 1
            return _metrics(port)
        before = metrics(srv.port)
        scrapes[0] = 0
        for k in ("echo_ev_connections_open", "echo_ev_connections_accepted_total", "echo_ev_messages_received_total",
                  "echo_ev_messages_sent_total", "echo_ev_bytes_received_total", "echo_ev_bytes_sent_total",
                  "process_resident_memory_bytes", "process_open_fds"):
            check(k in before, "metric %s missing" % k)
        ws = await websockets.connect(srv.url, compression=None)
        for i in range(10):
            msg = os.urandom(100) if i % 2 else "%-100d" % i
            await ws.send(msg)
            check(await asyncio.wait_for(ws.recv(), 5) == msg, "echo")
        mid = metrics(srv.port)
        check(mid["echo_ev_connections_open"] - before["echo_ev_connections_open"] == 1,
              "connections_open went %s -> %s with one client" % (before["echo_ev_connections_open"], mid["echo_ev_connections_open"]))
        await ws.close(1000)
        key = 'echo_ev_connections_closed_total{code="1000"}'

        def closed():
            m = metrics(srv.port)
            return m if m.get(key, 0) - before.get(key, 0) >= 1 else None
        after = await asyncio.get_running_loop().run_in_executor(None, poll, closed, 5)
        check(after is not None, "%s did not increase" % key)
        d = lambda k: after.get(k, 0) - before.get(k, 0)
        check(d(key) == 1, "%s +%s, want +1" % (key, d(key)))
        for k, want in (("echo_ev_messages_received_total", 10), ("echo_ev_messages_sent_total", 10),
                        ("echo_ev_bytes_received_total", 1000), ("echo_ev_bytes_sent_total", 1000),
                        ("echo_ev_connections_accepted_total", 1 + scrapes[0])):
            check(d(k) == want, "%s +%s, want +%d" % (k, d(k), want))
        check(after["echo_ev_connections_open"] == before["echo_ev_connections_open"],
              "connections_open %s after close, %s before" % (after["echo_ev_connections_open"], before["echo_ev_connections_open"]))
        check(after["process_resident_memory_bytes"] > 1e5, "process_resident_memory_bytes %s" % after["process_resident_memory_bytes"])
        r = http_get(srv.port, "/metrics")
        ctype = r.header("content-type") or ""
        check(ctype.startswith("text/plain"), "Content-Type %r" % ctype)
        check(b"# TYPE echo_ev_messages_received_total counter" in r.body, "no TYPE line for messages_received_total")


@test("--no-metrics: /metrics is 404; --metrics-bind serves it elsewhere")
def metrics_flags():
    with Server("--no-metrics") as srv:
        r = http_get(srv.port, "/metrics")
        check(r.status == 404, "--no-metrics: /metrics status %d" % r.status)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    mport = s.getsockname()[1]
    s.close()
    with Server("--metrics-bind", "127.0.0.1:%d" % mport) as srv:
        r = poll(lambda: _try_get(mport, "/metrics"), 5, 0.1)
        check(r is not None and r.status == 200 and b"echo_ev_connections_open" in r.body,
              "--metrics-bind listener: %r" % r)
        r = http_get(srv.port, "/metrics")
        check(r.status == 404, "main port /metrics with --metrics-bind: status %d" % r.status)


def _try_get(port, path):
    try:
        return http_get(port, path)
    except OSError:
        return None


def served(port):
    """assert_served() as a yes/no answer, for polling."""
    try:
        assert_served(port, timeout=2)
        return True
    except (TestFailure, OSError):
        return False


@test("at --max-connections: /healthz 200 full, /readyz 503 full on spare slots (8 of them), then 503 at once; ok again when a slot frees")
def health_when_full():
    with Server("--max-connections", "3", "--log-level", "debug") as srv:
        held = [RawWS.open(srv.port) for _ in range(3)]
        try:
            r = http_get(srv.port, "/healthz")
            check((r.status, r.body) == (200, b"full\n"), "/healthz when full: %r" % r)
            r = http_get(srv.port, "/readyz")
            check((r.status, r.body) == (503, b"full\n"), "/readyz when full: %r" % r)
            r = http_get(srv.port, "/")
            check(r.status == 503, "a page request on a spare slot: %r" % r)
            # Eight idle connections take the spare slots (once the three above
            # have left theirs); the next one is refused at once.
            check(poll(lambda: srv.log_text().count(" disconnected") >= 3, 5), "spare connections not closed")
            idle = [connect(srv.port) for _ in range(8)]
            time.sleep(0.3)
            c = Conn(connect(srv.port))
            r = read_response(c)  # no request sent: the refusal comes unasked
            check(r.status == 503, "beyond the spare slots: %r" % r)
            c.close()
            for s in idle:
                s.close()
            held.pop().close()
            ok = poll(lambda: http_get(srv.port, "/readyz").status == 200, 5)
            check(ok, "/readyz not 200 after a slot freed")
            check(http_get(srv.port, "/healthz").body == b"ok\n", "/healthz not ok after a slot freed")
            # Each request above holds a slot until the server has read its FIN,
            # so the next client may find the server full for a moment.
            check(poll(lambda: served(srv.port), 5), "no client served after a slot freed")
        finally:
            for h in held:
                h.close()
