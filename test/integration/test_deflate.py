"""permessage-deflate (RFC 7692) with real clients: Python websockets (which
compresses every message), a raw socket for bombs and odd offers, the
server's flags and its /metrics. Node ws and Chromium are in
test_deflate_node.py."""

import asyncio
import os
import re
import zlib

import websockets
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from eevtest import RawWS, Server, Shared, assert_served, check, close_payload, frame, metrics, poll
from run import test

MODULE_TIMEOUT = 280

SRV = Shared()
SIZES = [0, 1, 125, 126, 4096, 65535, 65536, 1 << 20]


def teardown():
    SRV.teardown()


def payloads(n):
    """Compressible and random, as text and as binary."""
    rnd = os.urandom(n)
    words = (b"the quick brown fox jumps over the lazy dog " * (n // 44 + 1))[:n]
    return [("compressible binary", words), ("random binary", rnd),
            ("compressible text", words.decode()), ("random text", rnd.hex()[:n])]


def pmd(**kw):
    return ClientPerMessageDeflateFactory(**kw)


async def echo_all(url, factory, sizes=SIZES):
    async with websockets.connect(url, max_size=None, compression=None, extensions=[factory],
                                  ping_interval=None, open_timeout=10, close_timeout=5) as ws:
        ext = ws.response_headers.get("Sec-WebSocket-Extensions", "")
        check(ext.startswith("permessage-deflate"), "not negotiated: %r" % ext)
        for n in sizes:
            for what, p in payloads(n):
                await ws.send(p)
                got = await asyncio.wait_for(ws.recv(), 30)
                check(got == p, "%s of %d bytes: echo differs (%r...)" % (what, n, got[:20]))
        return ext


OFFERS = [
    ("default offer", {}),
    ("client_no_context_takeover", dict(client_no_context_takeover=True)),
    ("server_no_context_takeover", dict(server_no_context_takeover=True)),
    ("both no_context_takeover", dict(server_no_context_takeover=True, client_no_context_takeover=True)),
    ("server_max_window_bits=10, client window not offered",
     dict(server_max_window_bits=10, client_max_window_bits=None)),
    ("server 10 + client_max_window_bits offered", dict(server_max_window_bits=10, client_max_window_bits=True)),
    ("client_max_window_bits=9", dict(client_max_window_bits=9)),
    ("server 9, client 12, no takeover", dict(server_max_window_bits=9, client_max_window_bits=12,
                                              server_no_context_takeover=True)),
]


@test("websockets: every offer, 0 B..1 MiB, text+binary, compressible+random", timeout=200)
async def websockets_offers():
    srv = SRV.get()
    seen = []
    for i, (name, kw) in enumerate(OFFERS):
        try:
            ext = await echo_all(srv.url, pmd(**kw), sizes=SIZES if i < 3 else [0, 1, 125, 4096, 65536])
        except Exception as e:
            raise AssertionError("%s: %s" % (name, e)) from e
        seen.append(ext)
    # The server's log says which echoes pass compressed bytes through.
    check(re.search(r"permessage-deflate server_bits=15 client_bits=15 passthrough", srv.log_text()),
          "no passthrough connection logged")
    check(re.search(r"server_bits=10 client_bits=15$", srv.log_text(), re.M),
          "server_max_window_bits=10 without client_max_window_bits must compress again (no passthrough)")
    assert_served(srv.port)


@test("server modes: --deflate-context-takeover off, --deflate-window-bits 10, --deflate-level 1", timeout=120)
async def server_modes():
    for args, want in ((["--deflate-context-takeover", "off"],
                        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                        "client_max_window_bits=15"),
                       (["--deflate-window-bits", "10"], "permessage-deflate; client_max_window_bits=10"),
                       (["--deflate-level", "1", "--deflate-window-bits", "12"],
                        "permessage-deflate; client_max_window_bits=12")):
        with Server(*args) as srv:
            for name, kw in OFFERS[:6]:
                ext = await echo_all(srv.url, pmd(**kw), sizes=[0, 5, 300, 70000])
                if name == "default offer":
                    # websockets always offers client_max_window_bits
                    check(ext == want, "%s: response %r, want %r" % (" ".join(args), ext, want))
            assert_served(srv.port)


@test("--permessage-deflate off declines; RSV1 then fails with 1002")
def deflate_off():
    with Server("--permessage-deflate", "off") as srv:
        c = RawWS.open(srv.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
        try:
            check(c.response.header("sec-websocket-extensions") is None, "extension accepted while off")
            c.send(0x1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", rsv=4)
            code, _ = c.expect_close()
            check(code == 1002, "RSV1 without the extension: close %d, want 1002" % code)
        finally:
            c.close()
        assert_served(srv.port)


def deflate_raw(data, nct_stream=None):
    z = nct_stream or zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    check(out.endswith(b"\x00\x00\xff\xff"), "sync flush tail")
    return out[:-4]


@test("raw: RFC 7692 samples echo back byte for byte (passthrough)")
def raw_samples():
    srv = SRV.get()
    c = RawWS.open(srv.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
    try:
        check(c.response.header("sec-websocket-extensions") == "permessage-deflate", "negotiated plainly")
        hello = b"\xf2\x48\xcd\xc9\xc9\x07\x00"
        c.send(0x1, hello, rsv=4)
        c.send(0x1, b"\xf2\x00\x11\x00\x00", rsv=4)  # §7.2.3.2: refers to the first
        for want in (hello, b"\xf2\x00\x11\x00\x00"):
            b = c.read_exact(2, 5)
            check(b[0] == 0xC1 and b[1] == len(want), "header %r: want FIN|RSV1|text, %d bytes" % (b, len(want)))
            got = c.read_exact(len(want), 5)
            check(got == want, "payload %r, want %r" % (got, want))
        # Fragmented compressed message: one frame back, same bytes.
        body = deflate_raw(b"fragmented " * 100)
        c.send(0x2, body[:10], fin=False, rsv=4)
        c.send(0x9, b"between")
        c.send(0x0, body[10:])
        seen = []
        while len(seen) < 2:
            fin, op, p, _ = c.recv_frame(5)
            seen.append((op, p))
        check((0xA, b"between") in seen and (0x2, body) in seen, "pong and one compressed frame: %r" % seen[:1])
        c.send(0x8, close_payload(1000))
        check(c.expect_close()[0] == 1000, "clean close")
    finally:
        c.close()


@test("bomb (1000:1) while another client is served: 1009, no growth, others fine", timeout=90)
async def bomb_while_served():
    with Server("--max-message-size", "1M") as srv:
        async with websockets.connect(srv.url, max_size=None, extensions=[pmd()], ping_interval=None) as good:
            rss0 = srv.rss_kib()
            bombs = []
            body = deflate_raw(b"\0" * (32 << 20))  # 32 MiB of zeros in ~32 KiB
            check(len(body) * 1000 < 32 << 20, "ratio at least 1000:1 (%d bytes)" % len(body))
            for i in range(20):
                c = RawWS.open(srv.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate")])
                if i % 3 == 2:  # fragmented: the limit holds across frames
                    c.send(0x2, body[:1000], fin=False, rsv=4)
                    c.send(0x0, body[1000:20000], fin=False)
                    c.send(0x0, body[20000:])
                else:
                    c.send(0x2 if i % 2 else 0x1, body, rsv=4)
                bombs.append(c)
                await good.send("still echoing %d" % i)
                check(await asyncio.wait_for(good.recv(), 10) == "still echoing %d" % i, "good client echo")
            for c in bombs:
                code, reason = c.expect_close(10)
                check(code == 1009, "bomb closed with %d, want 1009" % code)
                c.close()
            grown = srv.rss_kib() - rss0
            check(grown < 32 << 10, "RSS grew by %d KiB for 20 bombs of 32 MiB (limit 1 MiB)" % grown)
            await good.send(os.urandom(100000))
            await asyncio.wait_for(good.recv(), 10)
        srv.wait_log(r"failed 1009: message too big")
        assert_served(srv.port)


@test("1000 concurrent deflate clients", timeout=150)
async def thousand_clients():
    srv = SRV.get()
    n = 1000
    sem = asyncio.Semaphore(200)  # bound the handshakes in flight, not the connections

    async def one(i):
        async with sem:
            ws = await websockets.connect(srv.url, extensions=[pmd(client_no_context_takeover=bool(i % 2))],
                                          compression=None, ping_interval=None, open_timeout=60, close_timeout=30)
        return ws

    conns = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(n))), 120)
    try:
        check(all(ws.response_headers.get("Sec-WebSocket-Extensions", "").startswith("permessage-deflate")
                  for ws in conns), "every client negotiated deflate")
        m = metrics(srv.port)
        check(m.get("echo_ev_deflate_connections", 0) >= n,
              "deflate connections gauge %r, want >= %d" % (m.get("echo_ev_deflate_connections"), n))
        for rnd in range(2):
            msgs = ["client %d round %d %s" % (i, rnd, "x" * (i % 300)) for i in range(n)]
            await asyncio.gather(*(ws.send(msgs[i]) for i, ws in enumerate(conns)))
            got = await asyncio.wait_for(asyncio.gather(*(ws.recv() for ws in conns)), 60)
            check(got == msgs, "every echo exact in round %d" % rnd)
    finally:
        await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True), 60)
    m = metrics(srv.port)
    comp = m.get("echo_ev_deflate_compressed_bytes_total", 0)
    unc = m.get("echo_ev_deflate_uncompressed_bytes_total", 0)
    check(0 < comp < unc, "metrics: compressed %d < uncompressed %d bytes" % (comp, unc))
    check(poll(lambda: metrics(srv.port).get("echo_ev_deflate_connections", -1) == 0, 10),
          "deflate connections gauge back to 0 after they closed")


@test("bad offers are declined, the handshake still succeeds")
def bad_offers():
    srv = SRV.get()
    for offer in ("permessage-deflate; foo", "permessage-deflate; server_max_window_bits=16",
                  "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                  "permessage-deflate; client_max_window_bits=\"1 0\""):
        c = RawWS.open(srv.port, extra=[("Sec-WebSocket-Extensions", offer)])
        try:
            check(c.response.header("sec-websocket-extensions") is None, "%r accepted" % offer)
            c.send(0x1, b"plain")
            check(c.recv_message() == (0x1, b"plain"), "plain echo after a declined offer")
        finally:
            c.close()
    assert_served(srv.port)


@test("one read that inflates past the per-call budget: the rest waits a turn, all echoed in order")
def budget_across_turns():
    srv = SRV.get()
    c = RawWS.open(srv.port, extra=[("Sec-WebSocket-Extensions", "permessage-deflate; client_no_context_takeover")])
    try:
        bodies = [deflate_raw(bytes([i]) * (1 << 20)) for i in range(24)]  # 24 MiB inflated in ~24 KB
        c.sendall(b"".join(frame(0x2, b, rsv=4) for b in bodies))
        for i, b in enumerate(bodies):
            fin, op, p, _ = c.recv_frame(10)
            check(op == 0x2 and p == b, "echo %d: op %d, %d bytes (want the %d compressed bytes)" % (i, op, len(p), len(b)))
        assert_served(srv.port)
    finally:
        c.close()
