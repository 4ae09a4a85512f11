#!/usr/bin/env python3
"""Regenerates the seed corpus: corpus/{handshake,frames}/<sha256 of content>.

Input layout (see fuzz_util.h): flags byte, split-seed byte, then the stream.
Existing files are kept (fuzzers may have added some); run from anywhere.
"""
import hashlib
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(b0, payload, masked=True, length=None):
    n = len(payload) if length is None else length
    m = 0x80 if masked else 0
    if n < 126:
        h = bytes([b0, m | n])
    elif n <= 0xFFFF:
        h = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        h = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not masked:
        return h + payload
    return h + KEY + bytes(c ^ KEY[i & 3] for i, c in enumerate(payload))


def write(kind, blobs):
    d = os.path.join(HERE, "corpus", kind)
    os.makedirs(d, exist_ok=True)
    for b in blobs:
        with open(os.path.join(d, hashlib.sha256(b).hexdigest()), "wb") as f:
            f.write(b)


UPGRADE = (b"GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n"
           b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           b"Origin: http://example.com\r\nSec-WebSocket-Version: 13\r\n\r\n")
HELLO_MASKED = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
HELLO = bytes([0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F])

handshake = [
    b"\x00\x00" + UPGRADE,
    b"\x00\x07" + UPGRADE,
    b"\x01\x00" + UPGRADE.replace(b"\r\n\r\n", b"\r\nSec-WebSocket-Protocol: soap, chat\r\n\r\n"),
    b"\x00\x00" + UPGRADE + HELLO_MASKED + frame(0x89, b"ping") + frame(0x88, b"\x03\xe8"),
    b"\x08\x03" + UPGRADE + frame(0x01, b"Hel") + frame(0x80, b"lo"),
    b"\x00\x00" + UPGRADE.replace(b"Version: 13", b"Version: 8"),
    b"\x00\x00" + UPGRADE.replace(b"dGhlIHNhbXBsZSBub25jZQ==", b"AQIDBAUGBwgJCgsMDQ4P"),
    b"\x00\x00" + UPGRADE.replace(b"GET", b"POST"),
    b"\x00\x00" + UPGRADE.replace(b"HTTP/1.1", b"HTTP/1.0"),
    b"\x00\x00" + UPGRADE.replace(b"Connection: Upgrade", b"Connection: keep-alive, Upgrade")
                             .replace(b"Upgrade: websocket", b"upgrade: WebSocket"),
    b"\x04\x00GET /index.html?x=1 HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"\x04\x05GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    b"\x04\x00GET / HTTP/1.1\r\nHost: x\r\n\r\n" + UPGRADE + HELLO_MASKED,
    b"\x02\x00GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 400 + b"\r\n\r\n",
    b"\x10\x09GET / HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n",
    b"\x00\x00\r\n\r\n",
    b"\x00\x02GET /chat HTTP/1.1\nHost: x\nUpgrade: websocket\nConnection: Upgrade\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\nSec-WebSocket-Version: 13\n\n",
]

big = bytes(range(256))
frames = [
    b"\x00\x00" + HELLO_MASKED,                                   # RFC: masked Hello
    b"\x00\x00" + HELLO,                                          # unmasked to server: 1002
    b"\x01\x00" + HELLO,                                          # client role: accepted
    b"\x01\x03" + bytes([0x01, 0x03, 0x48, 0x65, 0x6C, 0x80, 0x02, 0x6C, 0x6F]),  # Hel + lo
    b"\x01\x00" + bytes([0x89, 0x05]) + b"Hello",                 # unmasked ping
    b"\x00\x00" + bytes([0x8A, 0x85]) + HELLO_MASKED[2:],         # masked pong
    b"\x03\x11" + frame(0x82, big, masked=False),                 # 256 bytes, 0x7E 0x0100
    b"\x02\x00" + frame(0x82, big * 256),                         # 64 KiB, 0x7F
    b"\x02\x05" + frame(0x01, b"Hel") + frame(0x89, b"x") + frame(0x80, b"lo"),
    b"\x00\x00" + frame(0x81, "κόσμε €𝄞".encode()),
    b"\x00\x00" + frame(0x81, b"\xed\xa0\x80"),                  # surrogate: 1007
    b"\x00\x00" + frame(0x01, b"ab\xf0\x9f") + frame(0x80, b"\x98\xba"),
    b"\x08\x00" + frame(0x82, b"", length=1 << 40)[:14],          # 1009 from the header
    b"\x00\x00" + frame(0xC1, b"rsv"),                            # RSV bits: 1002
    b"\x00\x00" + frame(0x83, b"op3"),                            # reserved opcode
    b"\x00\x00" + frame(0x88, b"\x03\xe8bye"),                   # close 1000
    b"\x00\x00" + frame(0x88, b"\x03"),                           # 1-byte close
    b"\x10\x00" + frame(0x81, b"x") + frame(0x88, b"\x03\xe8"),  # we close, peer replies
    b"\x24\x01" + frame(0x89, b"") + frame(0x80, b"lo"),
    b"\x41\x00" + frame(0x01, b"part", masked=False),
]

# permessage-deflate (flag bit 7; the split seed's low 2 bits pick the offer)
def deflated(data, z=None):
    z = z or zlib.compressobj(6, zlib.DEFLATED, -15)
    return (z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH))[:-4]


HELLO_Z = bytes([0xF2, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00])            # RFC 7692 §7.2.3.1
ctx = zlib.compressobj(6, zlib.DEFLATED, -15)
two = frame(0xC1, deflated(b"context " * 20, ctx)) + frame(0xC1, deflated(b"context " * 20, ctx))
frames += [
    b"\x82\x00" + frame(0xC1, HELLO_Z),                                  # echo: passed through
    b"\x80\x04" + frame(0x41, HELLO_Z[:3]) + frame(0x80, HELLO_Z[3:]),   # fragmented Hello
    b"\x82\x00" + two,                                                    # window shared
    b"\x82\x01" + two,                                                    # ... but no context takeover: 1007
    b"\x81\x00" + frame(0xC1, HELLO_Z, masked=False),                    # client role
    b"\x81\x02" + frame(0xC2, deflated(bytes(range(256)) * 8), masked=False),
    b"\x8a\x03" + frame(0xC2, deflated(b"\0" * 200000)),                 # bomb vs 1024: 1009
    b"\x82\x05" + frame(0xC2, deflated(b"\0" * 50000)) * 3,              # over the per-call budget
    b"\x80\x00" + frame(0xC1, bytes([0xF3, 0x48, 0xCD, 0xC9, 0xC9, 0x07, 0x00, 0x00])),  # BFINAL
    b"\x80\x00" + frame(0xC1, b"\xff\xff"),                               # corrupt: 1007
    b"\x80\x00" + frame(0x41, HELLO_Z[:3]) + frame(0xC0, HELLO_Z[3:]),   # RSV1 on continuation: 1002
    b"\x80\x00" + frame(0xC9, b""),                                      # RSV1 on ping: 1002
    b"\x82\x00" + frame(0xC1, deflated(b"ab\xff" * 100)),                # invalid UTF-8 inside: 1007
    b"\x82\x00" + frame(0xC1, b"\x00") + frame(0x81, b"plain"),           # empty compressed, then plain
]

# eev_driver_recv_echo with borrow_input (echo flag, split seed bit 2)
frames += [
    b"\x02\x04" + frame(0x82, b"abc") + frame(0x81, b"hello") + frame(0x82, b"") + frame(0x82, big)
    + frame(0x89, b"p") + frame(0x82, b"x" * 3000) + frame(0x82, b"z"),
    b"\x02\x0c" + frame(0x81, b"ok") + frame(0x81, b"\xc3\x28") + frame(0x82, b"after"),     # 1007
    b"\x0a\x04" + frame(0x82, b"ab") + frame(0x82, b"y" * 2000),                          # 1009
    b"\x12\x05" + frame(0x82, b"one") + frame(0x82, b"two") + frame(0x88, b"\x03\xe8"),   # we close
    b"\x22\x04" + frame(0x82, b"behind our own") + frame(0x01, b"fr") + frame(0x80, b"ag"),
]

write("handshake", handshake)
write("frames", frames)
