"""wss:// (issue 10): real clients over TLS with certificates made here by
`openssl`: Python websockets, Node ws, headless Chromium, openssl s_client;
protocol versions, ciphers, ALPN, resumption, renegotiation; certificate
rotation on SIGHUP under load; bad input on the TLS port, each followed by
a check that other clients are still served."""

import asyncio
import os
import re
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import eevtest
from eevtest import (Server, assert_served, check, close_payload, node_results, poll, slow_factor)
from run import test
from tlstest import (Pki, TlsRaw, TlsServer, assert_tls_served, client_ctx, metric, peer_serial, s_client,
                     wss_echo)

MODULE_TIMEOUT = 420

PKI = None
SRV = None


def pki():
    global PKI
    if PKI is None:
        PKI = Pki()
        PKI.ec = PKI.leaf("ec", 1001)
        PKI.rsa = PKI.leaf("rsa", 1002, rsa=True)
    return PKI


def srv():
    """The module's server: ECDSA and RSA certificates, plain and TLS ports."""
    global SRV
    if SRV is None:
        p = pki()
        SRV = TlsServer(p.ec[0], p.ec[1], "--tls-cert", p.rsa[0], "--tls-key", p.rsa[1],
                        "--handshake-timeout", "2").start()
    SRV.assert_alive()
    return SRV


def teardown():
    try:
        if SRV is not None:
            rc = SRV.stop()
            SRV.assert_clean_exit(rc)
    finally:
        if PKI is not None:
            PKI.cleanup()


def tls_errors(s, reason):
    return metric(s.port, 'echo_ev_tls_errors_total{reason="%s"}' % reason)


# ---------------------------------------------------------------------------
# Real clients


def sizes():
    return [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


@test("python websockets over wss://: text and binary, 0 B to 16 MiB", timeout=90)
async def py_sizes():
    s, p = srv(), pki()
    for n in sizes():
        text = "x" * (n - 3) + "\u2713" if n >= 3 else "x" * n  # exactly n bytes of UTF-8
        await wss_echo(s.wss, p.ca, [os.urandom(n), text])


@test("python websockets over wss://: fragments, ping, close codes", timeout=60)
async def py_frag_ping_close():
    import websockets
    s, p = srv(), pki()
    async with websockets.connect(s.wss, ssl=client_ctx(p.ca), max_size=None, compression=None) as ws:
        parts = [b"a" * 10, os.urandom(70000), b"z"]
        await ws.send(iter(parts))  # an iterable goes out as fragments
        got = await ws.recv()
        check(got == b"".join(parts), "fragmented echo differs")
        pong = await ws.ping(b"tls-ping")
        await asyncio.wait_for(pong, 5)
    for code in (1000, 3000, 4999):
        async with websockets.connect(s.wss, ssl=client_ctx(p.ca), compression=None) as ws:
            await ws.close(code, "bye")
            check(ws.close_code == code, "close %d answered with %r" % (code, ws.close_code))


@test("node ws over wss:// (text, binary, 0 B to 16 MiB, fragments, ping, close)", timeout=200)
def node_wss():
    s, p = srv(), pki()
    res = node_results("node_echo.mjs", [s.wss], 180, env={"NODE_EXTRA_CA_CERTS": p.ca})
    s.assert_alive()
    return res


@test("chromium loads https://…/ and echoes through wss://", timeout=120)
def chromium_https():
    check(os.access(os.environ.get("CHROMIUM", "/usr/bin/chromium"), os.X_OK), "/usr/bin/chromium not installed")
    s, p = srv(), pki()
    res = node_results("tls_browser.mjs", [str(s.tls_port), p.spki_hash(p.ec[0]) + "," + p.spki_hash(p.rsa[0])], 100)
    s.assert_alive()
    return res


# ---------------------------------------------------------------------------
# openssl s_client: versions, ciphers, ALPN, resumption, renegotiation


@test("TLS 1.2 and 1.3 accepted, with the ECDSA or the RSA certificate")
def versions_ok():
    s = srv()
    for args, want in ((["-tls1_3"], "TLSv1.3"), (["-tls1_2", "-sigalgs", "ECDSA+SHA256"], "ECDHE-ECDSA"),
                       (["-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256"], "ECDHE-RSA")):
        rc, out = s_client(s.tls_port, *args, "-CAfile", pki().ca, "-verify_return_error")
        check(rc == 0 and want in out and "Verify return code: 0 (ok)" in out,
              "s_client %s: exit %d, want %s:\n%s" % (args, rc, want, out[-1500:]))


@test("TLS 1.0, 1.1 and weak ciphers refused by the server")
def versions_refused():
    s = srv()
    before = metric(s.port, 'echo_ev_tls_errors_total{reason="handshake"}')
    # The client is told it may use them (SECLEVEL=0), so only the server can refuse.
    cases = [["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"], ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"],
             ["-tls1_2", "-cipher", "AES128-SHA:@SECLEVEL=0"], ["-tls1_2", "-cipher", "ECDHE-RSA-AES128-SHA:@SECLEVEL=0"]]
    for args in cases:
        rc, out = s_client(s.tls_port, *args)
        check(rc != 0 and "Cipher is (NONE)" in out, "s_client %s was not refused:\n%s" % (args, out[-1500:]))
    after = metric(s.port, 'echo_ev_tls_errors_total{reason="handshake"}')
    check(after - before >= len(cases), "handshake failures counted %d, want %d" % (after - before, len(cases)))
    assert_tls_served(s, pki().ca)


@test("ALPN: http/1.1 chosen; a client offering only h2 is refused")
def alpn():
    s = srv()
    rc, out = s_client(s.tls_port, "-alpn", "h2,http/1.1")
    check(rc == 0 and "ALPN protocol: http/1.1" in out, "ALPN h2,http/1.1:\n%s" % out[-1500:])
    rc, out = s_client(s.tls_port, "-alpn", "h2")
    check(rc != 0 and "no application protocol" in out, "ALPN h2 only was accepted:\n%s" % out[-1500:])


@test("session resumption with tickets (TLS 1.3 and 1.2)")
def resumption():
    s = srv()
    sess = os.path.join(pki().dir, "sess")
    before = metric(s.port, 'echo_ev_tls_handshakes_total{resumed="true"}')
    for v in ("-tls1_3", "-tls1_2"):
        # s_client must stay a moment to receive the TLS 1.3 ticket.
        p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.tls_port, v, "-sess_out", sess],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(0.5 * slow_factor())
        out = p.communicate(b"", timeout=10)[0].decode()
        check("New, TLS" in out, "first handshake %s:\n%s" % (v, out[-800:]))
        rc, out = s_client(s.tls_port, v, "-sess_in", sess)
        check("Reused, TLS" in out, "%s session not resumed:\n%s" % (v, out[-1500:]))
    after = metric(s.port, 'echo_ev_tls_handshakes_total{resumed="true"}')
    check(after - before == 2, "resumed handshakes counted %d, want 2" % (after - before))


@test("client-initiated renegotiation: refused, that connection closed, logged once, counted")
def renegotiation():
    s = srv()
    before = tls_errors(s, "renegotiation")
    n0 = s.nlines()
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % s.tls_port, "-tls1_2"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5 * slow_factor())
        p.stdin.write(b"R\n")
        p.stdin.flush()
        s.wait_log(r"tls: client renegotiation refused", 5, start=n0)
        check(p.wait(10 * slow_factor()) is not None, "s_client still connected")
        assert_tls_served(s, pki().ca)
    finally:
        p.kill()
        out = p.communicate()[0].decode()
    check("RENEGOTIATING" in out, "s_client did not try: %s" % out[-800:])
    check(sum("renegotiation refused" in ln for ln in s.lines[n0:]) == 1, "not logged exactly once")
    check(tls_errors(s, "renegotiation") - before == 1, "renegotiation not counted")
    assert_tls_served(s, pki().ca)


# ---------------------------------------------------------------------------
# Bad input on the TLS port


def bad_input_check(s, reason, before, n0, pattern):
    poll(lambda: tls_errors(s, reason) > before, 5)
    check(tls_errors(s, reason) - before == 1, "%s: counted %d times, want 1" % (reason, tls_errors(s, reason) - before))
    s.wait_log(re.escape(pattern), 5, start=n0)  # logging is buffered: the line may come after the count
    assert_tls_served(s, pki().ca)  # (which also gives a second line time to show up)
    hits = [ln for ln in s.lines[n0:] if pattern in ln]
    check(len(hits) == 1, "%s: %d log lines with %r, want 1:\n%s" % (reason, len(hits), pattern, "\n".join(s.lines[n0:])))
    assert_served(s.port)


@test("plain HTTP on the TLS port: 400 saying so, closed, counted")
def plain_http():
    s = srv()
    before, n0 = tls_errors(s, "plain_http"), s.nlines()
    c = eevtest.Conn(eevtest.connect(s.tls_port))
    c.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    r = eevtest.read_response(c)
    check(r.status == 400 and b"TLS port" in r.body, "answer %r" % r)
    check(c.wait_eof(5), "not closed after the 400")
    c.close()
    bad_input_check(s, "plain_http", before, n0, "plain HTTP request on the TLS port")


@test("garbage instead of a ClientHello: closed, logged once, counted")
def garbage_hello():
    s = srv()
    for junk in (bytes([0x16, 3, 1, 0, 60]) + os.urandom(60), b"\x80\x01" + os.urandom(200)):
        before, n0 = tls_errors(s, "handshake"), s.nlines()
        c = eevtest.Conn(eevtest.connect(s.tls_port))
        c.sendall(junk)
        check(c.wait_eof(5), "not closed after garbage %r" % junk[:8])
        c.close()
        bad_input_check(s, "handshake", before, n0, "tls: handshake failed")


@test("stalled handshake: dropped at --handshake-timeout, counted", timeout=40)
def stalled():
    s = srv()
    before, n0 = tls_errors(s, "handshake_timeout"), s.nlines()
    hello = TlsRaw(s.tls_port, pki().ca, connect=False).client_hello()
    c = eevtest.Conn(eevtest.connect(s.tls_port))
    c.sendall(hello[: len(hello) // 2])
    t0 = time.monotonic()
    check(c.wait_eof(10 * slow_factor()), "stalled handshake not dropped")
    took = time.monotonic() - t0
    check(took >= 1.5, "dropped after %.2fs, before --handshake-timeout 2" % took)
    c.close()
    bad_input_check(s, "handshake_timeout", before, n0, "handshake timeout")


@test("client closes mid-handshake: logged once, counted")
def eof_mid_handshake():
    s = srv()
    before, n0 = tls_errors(s, "handshake_eof"), s.nlines()
    hello = TlsRaw(s.tls_port, pki().ca, connect=False).client_hello()
    c = eevtest.connect(s.tls_port)
    c.sendall(hello[:40])
    c.shutdown(socket.SHUT_WR)
    check(eevtest.Conn(c).wait_eof(5), "not closed")
    c.close()
    bad_input_check(s, "handshake_eof", before, n0, "connection closed during the handshake")


@test("truncated record after the upgrade: that connection closed, logged once, counted")
def truncated():
    s = srv()
    before, n0 = tls_errors(s, "truncated"), s.nlines()
    t = TlsRaw(s.tls_port, pki().ca)
    t.handshake()
    t.upgrade(s.tls_port)
    rec = t.seal(eevtest.frame(0x2, os.urandom(5000)))
    t.sock.sendall(rec[: len(rec) // 2])
    t.sock.shutdown(socket.SHUT_WR)
    check(t.wait_eof(5), "not closed after a truncated record")
    t.close()
    bad_input_check(s, "truncated", before, n0, "closed in the middle of a record")
    check(any("closed code=1006" in ln for ln in s.lines[n0:]), "WebSocket close not logged as 1006")


@test("close_notify then FIN after the close handshake is a clean close, not an error")
def clean_close():
    s = srv()
    before = sum(tls_errors(s, r) for r in ("truncated", "protocol"))
    t = TlsRaw(s.tls_port, pki().ca)
    t.handshake()
    t.upgrade(s.tls_port)
    t.sendall(eevtest.frame(0x1, b"hello"))
    check(t.read_exact(7) == b"\x81\x05hello", "echo over TLS")
    t.sendall(eevtest.frame(0x8, close_payload(1000)))
    check(t.read_exact(4) == b"\x88\x02\x03\xe8", "Close 1000 echoed")
    check(t.wait_eof(5), "server did not close")
    t.close()
    check(sum(tls_errors(s, r) for r in ("truncated", "protocol")) == before, "counted as an error")


# ---------------------------------------------------------------------------
# Rotation, listeners, activation


@test("SIGHUP under load: echoes continue, new connections get the new serial, a bad key keeps it", timeout=90)
def rotation():
    p = pki()
    cert, key = p.path("live.pem"), p.path("live.key")
    first = p.leaf("first", 2001)
    second = p.leaf("second", 2002)

    def install(pair):
        for src, dst in zip(pair, (cert, key)):
            with open(src, "rb") as f, open(dst + ".tmp", "wb") as g:
                g.write(f.read())
            os.replace(dst + ".tmp", dst)

    install(first)
    with TlsServer(cert, key) as s:
        check(peer_serial(s.tls_port, p.ca) == 2001, "initial serial")
        stop = threading.Event()
        counts = [0] * 4
        errors = []

        async def loader(i):
            import websockets
            async with websockets.connect(s.wss, ssl=client_ctx(p.ca), compression=None) as ws:
                while not stop.is_set():
                    m = os.urandom(200 + i)
                    await ws.send(m)
                    check(await ws.recv() == m, "echo differs during rotation")
                    counts[i] += 1
                await ws.close()

        async def load():
            await asyncio.wait_for(asyncio.gather(*(loader(i) for i in range(4))), 60 * slow_factor())

        def run_load():
            try:
                asyncio.run(load())
            except BaseException as e:  # noqa: B902
                errors.append(e)

        th = threading.Thread(target=run_load)
        th.start()
        try:
            poll(lambda: min(counts) > 20 or errors, 10)
            n0 = s.nlines()
            install(second)
            s.signal(signal.SIGHUP)
            s.wait_log(r"tls: certificate reloaded \(serial 07D2", 5, start=n0)
            check(peer_serial(s.tls_port, p.ca) == 2002, "new connection did not get serial 2002")
            mid = list(counts)
            poll(lambda: all(c > m + 20 for c, m in zip(counts, mid)) or errors, 10)
            # A broken key: one error line, the old pair stays.
            with open(key, "w") as f:
                f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
            n1 = s.nlines()
            s.signal(signal.SIGHUP)
            s.wait_log(r"tls: reload failed, keeping the current certificate", 5, start=n1)
            check(peer_serial(s.tls_port, p.ca) == 2002, "broken key changed the certificate")
            time.sleep(0.3)
            check(len([ln for ln in s.lines[n1:] if "reload" in ln]) == 1, "reload failure not logged once")
            mid = list(counts)
            poll(lambda: all(c > m + 20 for c, m in zip(counts, mid)) or errors, 10)
        finally:
            stop.set()
            th.join(30)
        check(not errors, "load clients failed: %r" % errors)
        check(all(c > 60 for c in counts), "echo counts %r" % counts)
        assert_tls_served(s, p.ca)


@test("--port off: TLS only; both ports otherwise; bad flags refused")
def listeners():
    p = pki()
    with TlsServer(p.ec[0], p.ec[1], plain=False) as s:
        check(s.port == s.tls_port, "only the TLS port should listen")
        check(sum("listening on" in ln for ln in s.lines) == 1, "a plain listener too:\n%s" % s.log_text())
        assert_tls_served(s, p.ca)
    exe = eevtest.binary()
    for args, want in ((["--tls-port", "0"], "needs --tls-cert"),
                       (["--port", "off"], "needs --tls-port"),
                       (["--tls-port", "0", "--tls-cert", p.ec[0]], "pairs"),
                       (["--tls-port", "0", "--tls-cert", p.ec[0], "--tls-key", p.rsa[1]], "cannot use key"),
                       (["--tls-port", "0", "--tls-cert", "/nonexistent.pem", "--tls-key", p.ec[1]], "/nonexistent.pem")):
        r = subprocess.run([exe, "--bind", "127.0.0.1", "--port", "0"] + args, capture_output=True, timeout=10)
        err = r.stderr.decode()
        check(r.returncode in (1, 2) and want in err, "%s: exit %d, stderr %r" % (args, r.returncode, err))


@test("socket activation: a socket named 'tls' (FileDescriptorName=tls) serves wss://", timeout=40)
def activation():
    import shutil
    ssa = shutil.which("systemd-socket-activate")
    if not ssa:
        return [("systemd-socket-activate", True, "skipped: not installed")]
    p = pki()
    ports = []
    for _ in range(2):
        with socket.socket() as t:
            t.bind(("127.0.0.1", 0))
            ports.append(t.getsockname()[1])
    s = Server(port=None, bind=None)
    s.args = [ssa, "-l", "127.0.0.1:%d" % ports[0], "-l", "127.0.0.1:%d" % ports[1], "--fdname=web:tls",
              eevtest.binary(), "--tls-cert", p.ec[0], "--tls-key", p.ec[1]]
    s.LISTEN_RE = __import__("re").compile(r"Listening on (?P<host>127\.0\.0\.1):(?P<port>%d)" % ports[1])
    with s:
        s.port = ports[0]

        class View:
            tls_port = ports[1]
            wss = "wss://127.0.0.1:%d/" % ports[1]
        assert_tls_served(View, p.ca)
        s.wait_log(r"listening on 127\.0\.0\.1:%d \(tls\)" % ports[1], 5)
        assert_served(ports[0])


@test("half-close over TLS: close_notify + FIN after a 1 MiB message, the whole echo still comes back")
def half_close():
    s = srv()
    t = TlsRaw(s.tls_port, pki().ca)
    t.handshake()
    t.upgrade(s.tls_port)
    payload = os.urandom(1 << 20)
    t.sendall(eevtest.frame(0x2, payload))
    try:
        t.obj.unwrap()  # close_notify
    except ssl.SSLWantReadError:
        pass
    t.sock.sendall(t.out.read())
    t.sock.shutdown(socket.SHUT_WR)
    hdr = t.read_exact(10, 10)
    check(hdr == b"\x82\x7f" + (1 << 20).to_bytes(8, "big"), "echo header %r" % hdr)
    check(t.read_exact(1 << 20, 10) == payload, "echo differs")
    t.close()
    assert_tls_served(s, pki().ca)


@test("echo-bench over wss://: echoes verified with --cafile; an untrusted certificate is refused", timeout=60)
def echo_bench_wss():
    import json as _json
    exe = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(eevtest.binary()))), "tools", "echo-bench")
    if not os.access(exe, os.X_OK):
        return [("echo-bench", True, "skipped: %s not built" % exe)]
    s, p = srv(), pki()
    r = subprocess.run([exe, s.wss, "--cafile", p.ca, "-c", "4", "-s", "20000", "-i", "2", "-d", "1", "-w", "0.2",
                        "--json", "-q"], capture_output=True, timeout=30 * slow_factor())
    out = r.stdout.decode()
    check(r.returncode == 0, "echo-bench exit %d: %s %s" % (r.returncode, out, r.stderr.decode()[-500:]))
    res = _json.loads([ln for ln in out.splitlines() if ln.startswith("{")][-1])
    check(res["ok"] and res["messages"] > 0 and res["errors"]["total"] == 0, "echo-bench: %r" % res)
    r = subprocess.run([exe, s.wss, "-c", "1", "-d", "1", "-w", "0", "-q"], capture_output=True,
                       timeout=30 * slow_factor())
    check(r.returncode != 0, "echo-bench trusted a certificate no CA vouches for")
    before = metric(s.port, 'echo_ev_tls_handshakes_total{resumed="true"}')
    r = subprocess.run([exe, s.wss, "--cafile", p.ca, "--tls-resume", "--connect-rate", "-c", "2", "-d", "1",
                        "-w", "0.3", "-q"], capture_output=True, timeout=30 * slow_factor())
    check(r.returncode == 0, "connect-rate: %s" % r.stderr.decode()[-500:])
    check(metric(s.port, 'echo_ev_tls_handshakes_total{resumed="true"}') > before, "--tls-resume resumed nothing")
