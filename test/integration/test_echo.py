"""Echo semantics through the Python websockets client (and a raw socket where
websockets would not send the bytes we need)."""

import asyncio
import base64
import os
import re
import resource
import signal
import socket
import struct
import time

import websockets

from eevtest import RawWS, Server, Shared, assert_served, check, close_payload, poll
from run import register, test

MODULE_TIMEOUT = 240

SRV = Shared()
SIZES = [0, 1, 125, 126, 65535, 65536, 1 << 20, 16 << 20]


def teardown():
    SRV.teardown()


def connect(srv, **kw):
    opts = dict(max_size=None, compression=None, ping_interval=None, close_timeout=5, open_timeout=10)
    opts.update(kw)
    return websockets.connect(srv.url, **opts)


def text_of(n):
    """A str whose UTF-8 encoding is exactly n bytes, with multi-byte characters when n >= 8."""
    if n < 8:
        return "a" * n
    ascii_part = base64.b64encode(os.urandom(n))[: n - 8].decode()
    return "\U0001F600\u2713x" + ascii_part  # 4 + 3 + 1 bytes


def label(n):
    return "%d MiB" % (n >> 20) if n >= (1 << 20) and n % (1 << 20) == 0 else "%d B" % n


def make_echo_test(kind, n):
    async def t():
        srv = SRV.get()
        msg = text_of(n) if kind == "text" else os.urandom(n)
        if kind == "text":
            check(len(msg.encode()) == n, "generator bug")
        async with connect(srv) as ws:
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 30)
            check(type(got) is type(msg), "echo type %s, sent %s" % (type(got).__name__, type(msg).__name__))
            check(len(got) == len(msg), "echo length %d, sent %d" % (len(got), len(msg)))
            check(got == msg, "echo bytes differ")
            # and again on the same connection: the first must not leave state behind
            await ws.send(msg)
            got = await asyncio.wait_for(ws.recv(), 30)
            check(got == msg, "second echo differs")
    return t


for _kind in ("text", "binary"):
    for _n in SIZES:
        register("%s echo %s" % (_kind, label(_n)), make_echo_test(_kind, _n), timeout=60)


@test("all sizes pipelined on one connection, order kept", timeout=90)
async def pipelined():
    srv = SRV.get()
    msgs = []
    for n in SIZES:
        msgs.append(text_of(n))
        msgs.append(os.urandom(n))
    async with connect(srv) as ws:
        async def sender():
            for m in msgs:
                await ws.send(m)
        st = asyncio.ensure_future(sender())
        for i, m in enumerate(msgs):
            got = await asyncio.wait_for(ws.recv(), 60)
            check(type(got) is type(m) and got == m, "message %d (%s %d bytes) echoed wrong" % (i, type(m).__name__, len(m)))
        await st


@test("client offering permessage-deflate still gets exact echoes")
async def deflate_offer():
    srv = SRV.get()
    async with websockets.connect(srv.url, max_size=None, open_timeout=10) as ws:  # default: offers deflate
        for m in ("hello " * 100, os.urandom(70000), ""):
            await ws.send(m)
            got = await asyncio.wait_for(ws.recv(), 10)
            check(got == m, "echo differs for %d-byte %s" % (len(m), type(m).__name__))


@test("fragmented text message (3 fragments) is echoed whole")
async def frag_text():
    srv = SRV.get()
    parts = ["Hello, ", "fragmented \u2713 ", "world" * 1000]
    async with connect(srv) as ws:
        await ws.send(parts)
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == "".join(parts), "fragmented text echoed as %r..." % got[:40])


@test("fragmented binary message (4 x 1 MiB fragments) is echoed whole")
async def frag_binary():
    srv = SRV.get()
    parts = [os.urandom(1 << 20) for _ in range(4)]
    async with connect(srv) as ws:
        await ws.send(parts)
        got = await asyncio.wait_for(ws.recv(), 30)
        check(isinstance(got, bytes) and got == b"".join(parts), "fragmented binary echo differs")


@test("1000 one-byte fragments, then an empty message, via async iterator")
async def frag_many():
    srv = SRV.get()

    async def gen():
        for i in range(1000):
            yield bytes([i & 0xFF])
    async with connect(srv) as ws:
        await ws.send(gen())
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == bytes(i & 0xFF for i in range(1000)), "1000-fragment echo differs")
        await ws.send(b"")
        got = await asyncio.wait_for(ws.recv(), 10)
        check(got == b"", "empty echo differs")


@test("text split inside a multi-byte UTF-8 character across fragments")
def frag_utf8_split():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        data = "\u2713\U0001F600".encode()  # 3 + 4 bytes
        c.send(0x1, data[:2], fin=False)
        c.send(0x0, data[2:5], fin=False)
        c.send(0x0, data[5:], fin=True)
        op, got = c.recv_message()
        check(op == 0x1 and got == data, "echo %r %r" % (op, got))
    finally:
        c.close()


@test("ping is answered with a pong (websockets)")
async def ping():
    srv = SRV.get()
    async with connect(srv) as ws:
        for payload in (b"", b"x", b"p" * 125):
            waiter = await ws.ping(payload)
            await asyncio.wait_for(waiter, 5)
        await ws.send("after pings")
        check(await asyncio.wait_for(ws.recv(), 5) == "after pings", "echo after pings")


@test("pong carries the ping's payload; ping between fragments (raw)")
def ping_raw():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        pay = os.urandom(125)
        c.send(0x9, pay)
        fin, op, p, masked = c.recv_frame()
        check(op == 0xA and p == pay and not masked, "want unmasked pong with the payload, got op %#x len %d" % (op, len(p)))
        c.send(0x2, b"first-", fin=False)
        c.send(0x9, b"mid")
        c.send(0x0, b"second", fin=True)
        fin, op, p, _ = c.recv_frame()
        check(op == 0xA and p == b"mid", "pong for interleaved ping: op %#x %r" % (op, p))
        op, got = c.recv_message()
        check(op == 0x2 and got == b"first-second", "echo of interrupted message %r" % (got,))
        c.send(0xA, b"unsolicited pong")  # must be ignored
        c.send(0x1, b"ok")
        op, got = c.recv_message()
        check((op, got) == (0x1, b"ok"), "echo after unsolicited pong")
    finally:
        c.close()


def make_close_test(code):
    async def t():
        srv = SRV.get()
        ws = await connect(srv)
        await ws.send("bye")
        await asyncio.wait_for(ws.recv(), 5)
        await asyncio.wait_for(ws.close(code=code, reason="done"), 10)
        check(ws.close_code == code, "server answered close %d with %s" % (code, ws.close_code))
    return t


for _code in (1000, 3000, 4999):
    register("close %d is echoed" % _code, make_close_test(_code), timeout=20)


@test("close 1000 is logged with the peer address and code")
async def close_logged():
    srv = SRV.get()
    ws = await connect(srv)
    lport = ws.local_address[1]
    await ws.close(code=1000)
    srv.wait_log(r"127\.0\.0\.1\]?:%d\b.*open" % lport)
    srv.wait_log(r"127\.0\.0\.1\]?:%d\b.*closed code=1000" % lport)


def make_bad_close_test(desc, payload):
    def t():
        srv = SRV.get()
        c = RawWS.open(srv.port)
        try:
            c.send(0x8, payload)
            code, _ = c.expect_close()
            check(code == 1002, "%s: server closed with %d, want 1002" % (desc, code))
        finally:
            c.close()
        assert_served(srv.port)
    return t


for _desc, _payload in (("code 1005", close_payload(1005)), ("code 1006", close_payload(1006)),
                        ("code 999", close_payload(999)), ("code 5000", close_payload(5000)),
                        ("code 1015", close_payload(1015)), ("1-byte payload", b"\x03")):
    register("close with invalid %s -> 1002" % _desc, make_bad_close_test(_desc, _payload))


@test("close without a code is answered (no 1002)")
def close_empty():
    srv = SRV.get()
    c = RawWS.open(srv.port)
    try:
        c.send(0x8, b"")
        fin, op, p, _ = c.recv_frame()
        check(op == 0x8, "want Close, got op %#x" % op)
        check(len(p) == 0 or p[:2] in (b"\x03\xe8",), "empty close answered with %r" % p)
    finally:
        c.close()


@test("1000 concurrent clients, 5 messages each", timeout=120)
async def thousand():
    srv = SRV.get()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    check(soft >= 2200, "RLIMIT_NOFILE soft limit %d too low for the test" % soft)
    N, M = 1000, 5
    sem = asyncio.Semaphore(200)

    async def open_one(i):
        async with sem:
            return await connect(srv, open_timeout=30)
    t0 = time.monotonic()
    conns = await asyncio.gather(*(open_one(i) for i in range(N)), return_exceptions=True)
    errs = [c for c in conns if isinstance(c, BaseException)]
    good = [c for c in conns if not isinstance(c, BaseException)]
    try:
        check(not errs, "%d of %d connects failed, first: %r" % (len(errs), N, errs[:1]))
        # all N are open at once now
        m = srv  # noqa
        async def talk(i, ws):
            for j in range(M):
                msg = ("client %d message %d " % (i, j)) * (1 + j * 20)
                await ws.send(msg)
                got = await asyncio.wait_for(ws.recv(), 30)
                if got != msg:
                    raise AssertionError("client %d message %d echoed wrong" % (i, j))
                b = os.urandom(j * 100)
                await ws.send(b)
                if await asyncio.wait_for(ws.recv(), 30) != b:
                    raise AssertionError("client %d binary %d echoed wrong" % (i, j))
            return True
        res = await asyncio.gather(*(talk(i, ws) for i, ws in enumerate(good)), return_exceptions=True)
        bad = [r for r in res if r is not True]
        check(not bad, "%d clients failed, first: %r" % (len(bad), bad[:1]))
    finally:
        await asyncio.gather(*(ws.close() for ws in good), return_exceptions=True)
    codes = [ws.close_code for ws in good]
    check(all(c == 1000 for c in codes), "close codes: %r" % sorted(set(codes)))
    print("# 1000 clients in %.1fs" % (time.monotonic() - t0))


SO_TIMESTAMPNS = 35  # Linux; the socket module lacks the name


@test("after a stall, connections are served in the order their messages arrived")
def served_in_arrival_order():
    # libev calls a round's watchers back newest first; the server serves
    # them in epoll's order instead, so the oldest message does not wait
    # for the whole batch. The server is stopped while 40 clients send, one
    # after the other, then resumed: the kernel's receive timestamps of the
    # echoes give the order it served them in.
    n = 40  # one epoll round: libev asks for 64 events at first
    with Server() as srv:
        conns = [RawWS.open(srv.port) for _ in range(n)]
        try:
            for c in conns:
                c.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            # Stop it asleep in epoll_wait, where it has let go of every
            # socket it served (a socket epoll reported lately stays on its
            # ready list until the next epoll_wait looks at it again).
            wchan = "/proc/%d/wchan" % srv.proc.pid
            check(poll(lambda: open(wchan).read().strip() == "do_epoll_wait", 5),
                  "server not waiting in epoll_wait: %s" % open(wchan).read())
            srv.signal(signal.SIGSTOP)
            try:
                for i, c in enumerate(conns):
                    c.send(0x2, b"%02d" % i)
                    time.sleep(0.002)  # each arrives clearly after the last
            finally:
                srv.signal(signal.SIGCONT)
            stamps = []
            for i, c in enumerate(conns):
                c.sock.settimeout(5)
                data, anc, _, _ = c.sock.recvmsg(64, 64)
                check(data == b"\x82\x02%02d" % i, "echo %d: %r" % (i, data))
                ts = [struct.unpack("qq", d[:16]) for lvl, typ, d in anc
                      if lvl == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS]
                check(ts, "no receive timestamp on connection %d" % i)
                stamps.append(ts[0][0] * 10**9 + ts[0][1])
            order = sorted(range(n), key=lambda i: stamps[i])
            check(order == list(range(n)), "served in the order %r, want 0..%d" % (order, n - 1))
        finally:
            for c in conns:
                c.close()
