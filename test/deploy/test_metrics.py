#!/usr/bin/env python3
"""/metrics with --metrics-bind on a separate loopback port (the way the
units and HAProxy setups expose it), the main port without it, --no-metrics,
and the Prometheus text format of what is served."""

import re
import socket

from deploylib import HAVE_WEBSOCKETS, Tap, check, echo_ok, free_port, http_get, start_server

NAMES = ["echo_ev_connections_open", "echo_ev_connections_accepted_total", "echo_ev_connections_closed_total",
         "echo_ev_messages_received_total", "echo_ev_messages_sent_total", "echo_ev_bytes_received_total",
         "echo_ev_bytes_sent_total", "echo_ev_handshake_failures_total", "echo_ev_backpressure_pauses_total",
         "echo_ev_queued_bytes", "echo_ev_http_requests_total", "echo_ev_build_info",
         "echo_ev_http_connections_open", "echo_ev_message_size_bytes", "echo_ev_log_lines_dropped_total", "process_resident_memory_bytes",
         "process_cpu_seconds_total", "process_open_fds", "process_max_fds", "process_start_time_seconds"]
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})?'
                    r' [-+]?([0-9.eE+-]+|NaN|\+Inf|-Inf)$')


def parse(body):
    """{name: {labels: value}}, checking the exposition format line by line."""
    out, typed = {}, set()
    for line in body.decode().splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        check(m, "not a Prometheus sample line: %r" % line)
        family = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        check(m.group(1) in typed or family in typed, "%s has no # TYPE before it" % m.group(1))
        out.setdefault(m.group(1), {})[m.group(2) or ""] = float(line.rsplit(" ", 1)[1])
    return out


t = Tap()
mport = free_port()
srv, port = start_server("--metrics-bind", "127.0.0.1:%d" % mport)
try:
    t.ok(srv.wait_log(r"listening on \[?127\.0\.0\.1\]?:%d \(metrics\)" % mport, 5),
         "the metrics listener is logged", srv.text())

    def metrics_served():
        st, hdr, body = http_get(mport, "/metrics")
        check(st == 200, "GET /metrics on --metrics-bind: %s" % st)
        check(hdr.get("content-type", "").startswith("text/plain; version=0.0.4"),
              "Content-Type %r" % hdr.get("content-type"))
        parse(body)
        # A labelled family may have no series yet (nothing closed): # TYPE suffices.
        typed = {line.split()[2] for line in body.decode().splitlines() if line.startswith("# TYPE ")}
        missing = [n for n in NAMES if n not in typed]
        check(not missing, "missing metrics: %s" % missing, body.decode())
    t.run("GET /metrics on the --metrics-bind port: Prometheus 0.0.4, every documented metric", metrics_served)

    def healthz():
        st, _, body = http_get(mport, "/healthz")
        check(st == 200 and body == b"ok\n", "/healthz on metrics port: %s %r" % (st, body))
        st, _, body = http_get(port, "/healthz")
        check(st == 200 and body == b"ok\n", "/healthz on main port: %s %r" % (st, body))
    t.run("GET /healthz on both ports", healthz)

    def main_404():
        st, _, _ = http_get(port, "/metrics")
        check(st == 404, "GET /metrics on the main port with --metrics-bind: %s" % st)
    t.run("the main port does not serve /metrics when --metrics-bind is given", main_404)

    def no_ws_on_metrics():
        with socket.create_connection(("127.0.0.1", mport), timeout=5) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = s.recv(4096)
        check(not head.startswith(b"HTTP/1.1 101"), "the metrics port upgraded a WebSocket: %r" % head[:80])
    t.run("the metrics port does not accept WebSocket upgrades", no_ws_on_metrics)

    if HAVE_WEBSOCKETS:
        def counters_move():
            before = parse(http_get(mport, "/metrics")[2])
            echo_ok(port, ["one", "two", b"three"])
            after = parse(http_get(mport, "/metrics")[2])

            def v(m, n, lab=""):
                return m.get(n, {}).get(lab, 0.0)
            check(v(after, "echo_ev_messages_received_total") - v(before, "echo_ev_messages_received_total") == 3,
                  "messages_received_total did not grow by 3")
            check(v(after, "echo_ev_messages_sent_total") - v(before, "echo_ev_messages_sent_total") == 3,
                  "messages_sent_total did not grow by 3")
            check(v(after, "echo_ev_bytes_received_total") - v(before, "echo_ev_bytes_received_total") == 11,
                  "bytes_received_total did not grow by 11 payload bytes")
            check(v(after, "echo_ev_connections_accepted_total") > v(before, "echo_ev_connections_accepted_total"),
                  "connections_accepted_total did not grow")
            check(v(after, "echo_ev_connections_closed_total", '{code="1000"}') >= 1,
                  'no connections_closed_total{code="1000"}', str(after.get("echo_ev_connections_closed_total")))
        t.run("counters follow an echo session", counters_move)
    else:
        t.skip("counters follow an echo session", "python3-websockets missing")
    t.ok(srv.stop() == 0, "exit 0 on SIGTERM", srv.text())
finally:
    srv.kill()

srv2, port2 = start_server()
try:
    t.ok(http_get(port2, "/metrics")[0] == 200, "without --metrics-bind /metrics is on the main port")
    t.ok(srv2.stop() == 0, "exit 0 on SIGTERM", srv2.text())
finally:
    srv2.kill()

srv3, port3 = start_server("--no-metrics")
try:
    t.ok(http_get(port3, "/metrics")[0] == 404, "--no-metrics: GET /metrics is 404")
    t.ok(http_get(port3, "/healthz")[0] == 200, "--no-metrics: /healthz still 200")
    t.ok(srv3.stop() == 0, "exit 0 on SIGTERM", srv3.text())
finally:
    srv3.kill()

busy = free_port()
holder = socket.socket()
holder.bind(("127.0.0.1", busy))
holder.listen(1)
try:
    from deploylib import Proc, ECHO_EV
    p = Proc([ECHO_EV, "--bind", "127.0.0.1", "--port", "0", "--metrics-bind", "127.0.0.1:%d" % busy])
    rc = p.wait(10)
    p.t.join(5)  # the reader thread may not have taken the last line yet
    t.ok(rc == 1 and "Address already in use" in p.text(), "--metrics-bind on a busy port: exit 1 with the reason",
         "exit %r\n%s" % (rc, p.text()))
    p.kill()
finally:
    holder.close()
t.done()
