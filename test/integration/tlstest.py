"""TLS helpers for the integration suite: certificates made with the
`openssl` command, a server with a wss:// port, and clients (Python ssl,
websockets, openssl s_client, a hand-driven TLS record layer)."""

import base64
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from eevtest import Server, check, frame, close_payload, slow_factor, ws_key, read_response, Conn

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"


def openssl(*args, stdin=None):
    p = subprocess.run([OPENSSL, *args], input=stdin, capture_output=True, timeout=60)
    check(p.returncode == 0, "openssl %s failed: %s" % (" ".join(args), p.stderr.decode()[-1000:]))
    return p.stdout


class Pki:
    """A test CA and leaf certificates for 127.0.0.1/localhost, in a temp dir."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="echo-ev-tls-")
        self.ca = self.path("ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                "-keyout", self.path("ca.key"), "-out", self.ca, "-days", "2", "-subj", "/CN=echo-ev test CA")
        with open(self.path("leaf.ext"), "w") as f:
            f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")

    def path(self, name):
        return os.path.join(self.dir, name)

    def leaf(self, name, serial, rsa=False):
        """Makes NAME.pem (leaf then CA: a chain) and NAME.key; returns their paths."""
        key, csr, pem = self.path(name + ".key"), self.path(name + ".csr"), self.path(name + ".pem")
        alg = ["-newkey", "rsa:2048"] if rsa else ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]
        openssl("req", *alg, "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=localhost")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.path("ca.key"), "-set_serial",
                str(serial), "-days", "2", "-extfile", self.path("leaf.ext"), "-out", pem)
        with open(pem, "a") as out, open(self.ca) as ca:
            out.write(ca.read())
        return pem, key

    def spki_hash(self, pem):
        """base64(sha256(SubjectPublicKeyInfo)), for chromium's --ignore-certificate-errors-spki-list."""
        pub = openssl("x509", "-in", pem, "-pubkey", "-noout")
        der = openssl("pkey", "-pubin", "-outform", "der", stdin=pub)
        import hashlib
        return base64.b64encode(hashlib.sha256(der).digest()).decode()

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


TLS_LISTEN_RE = r"listening on \[?[0-9a-fA-F.:]+?\]?:(\d+) \(tls\)"


class TlsServer(Server):
    """echo-ev with a plain port (self.port, unless --port off) and a TLS one (self.tls_port)."""

    def __init__(self, cert, key, *args, plain=True, **kw):
        extra = ["--tls-port", "0", "--tls-cert", cert, "--tls-key", key] + list(args)
        if not plain:
            extra = ["--port", "off"] + extra
        super().__init__(*extra, port=0 if plain else None, **kw)

    def start(self):
        super().start()
        m = re.search(TLS_LISTEN_RE, self.wait_log(TLS_LISTEN_RE, 5))
        self.tls_port = int(m.group(1))
        return self

    @property
    def wss(self):
        return "wss://127.0.0.1:%d/" % self.tls_port


def client_ctx(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def peer_serial(port, ca, timeout=5.0):
    """The serial number (int) of the certificate the server presents now."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        with client_ctx(ca).wrap_socket(s, server_hostname="127.0.0.1") as t:
            return int(t.getpeercert()["serialNumber"], 16)


def metric(port, name):
    from eevtest import metrics
    return metrics(port).get(name, 0.0)


class TlsRaw(Conn):
    """A TLS client over memory BIOs: sends exactly the records we choose
    (a truncated one, for instance) on a raw socket."""

    def __init__(self, port, ca, timeout=5.0, connect=True):
        super().__init__(socket.create_connection(("127.0.0.1", port), timeout=timeout) if connect else None)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = client_ctx(ca).wrap_bio(self.inc, self.out, server_hostname="127.0.0.1")
        self.plain = bytearray()

    def client_hello(self):
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return self.out.read()

    def handshake(self, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.obj.do_handshake()
                self.sock.sendall(self.out.read())
                return
            except ssl.SSLWantReadError:
                self.sock.sendall(self.out.read())
                self.sock.settimeout(max(0.01, deadline - time.monotonic()))
                data = self.sock.recv(65536)
                check(data, "server closed during the handshake")
                self.inc.write(data)

    def seal(self, data):
        """Encrypts data; returns the TLS records without sending them."""
        self.obj.write(data)
        return self.out.read()

    def _fill(self, deadline):
        while True:
            try:
                got = self.obj.read(1 << 20)
                if not got:
                    raise EOFError("close_notify")
                self.buf += got
                return
            except ssl.SSLWantReadError:
                pass
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("deadline")
            self.sock.settimeout(left)
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("peer closed")
            self.inc.write(data)

    def sendall(self, data):
        self.sock.sendall(self.seal(data))

    def wait_eof(self, timeout):
        """True when the server closes within timeout (an alert counts)."""
        try:
            return super().wait_eof(timeout)
        except ssl.SSLError:
            return True

    def upgrade(self, port):
        key = ws_key()
        req = ("GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (port, key)).encode()
        self.sendall(req)
        r = read_response(self)
        check(r.status == 101, "upgrade over TLS: %r" % r)


def s_client(port, *args, stdin=b"", timeout=10.0):
    """Runs openssl s_client; returns (exit status, stdout+stderr text)."""
    p = subprocess.run([OPENSSL, "s_client", "-connect", "127.0.0.1:%d" % port, "-servername", "localhost",
                        *args], input=stdin, capture_output=True, timeout=timeout * slow_factor())
    return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")


async def wss_echo(url, ca, payloads, **kw):
    import websockets
    async with websockets.connect(url, ssl=client_ctx(ca), max_size=None, compression=None, **kw) as ws:
        for p in payloads:
            await ws.send(p)
            got = await ws.recv()
            check(got == p, "wss echo differs (%d bytes)" % len(p))
        await ws.close(1000)
        check(ws.close_code == 1000, "close code %r" % ws.close_code)


def assert_tls_served(srv, ca, timeout=10.0):
    """A fresh wss:// client still gets echoes."""
    import asyncio
    asyncio.run(asyncio.wait_for(wss_echo(srv.wss, ca, ["still served over TLS", os.urandom(3000)]),
                                 timeout * slow_factor()))
