"""HTTP/1.1 conformance of the plain-HTTP side (RFC 9110, RFC 9112): Host,
Content-Length and HEAD. Each test ends by checking a WebSocket client is
still served."""

from eevtest import Conn, Shared, assert_served, check, connect, read_response
from run import test

MODULE_TIMEOUT = 60

SRV = Shared()


def teardown():
    SRV.teardown()


def raw(port, head):
    """Sends a raw request head; returns (response, conn)."""
    c = Conn(connect(port))
    c.sendall(head.encode("latin-1"))
    return read_response(c), c


@test("two differing Content-Length headers -> 400; identical ones are accepted")
def two_content_lengths():
    srv = SRV.get()
    r, c = raw(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")
    check(r.status == 400, "differing Content-Length: status %d, want 400" % r.status)
    check(c.wait_eof(5), "connection not closed after the 400")
    c.close()
    r, c = raw(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n")
    check(r.status == 200, "identical Content-Length: status %d, want 200" % r.status)
    c.close()
    r, c = raw(srv.port, "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    check(r.status == 400, "Content-Length -1: status %d, want 400" % r.status)
    c.close()
    assert_served(srv.port)


@test("HTTP/1.1 without Host -> 400, with two Host lines -> 400; HTTP/1.0 without Host is fine")
def host_header():
    srv = SRV.get()
    r, c = raw(srv.port, "GET /healthz HTTP/1.1\r\n\r\n")
    check(r.status == 400, "no Host: status %d, want 400" % r.status)
    c.close()
    r, c = raw(srv.port, "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
    check(r.status == 400, "two Host lines: status %d, want 400" % r.status)
    c.close()
    r, c = raw(srv.port, "GET /healthz HTTP/1.0\r\n\r\n")
    check(r.status == 200, "HTTP/1.0 without Host: status %d, want 200" % r.status)
    c.close()
    assert_served(srv.port)


@test("HEAD / and HEAD /healthz: 200 with GET's Content-Length and no body; other HEADs carry no body either")
def head_requests():
    srv = SRV.get()
    c = Conn(connect(srv.port))
    for path in ("/", "/healthz"):
        c.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        get = read_response(c)
        c.sendall(("HEAD %s HTTP/1.1\r\nHost: x\r\n\r\n" % path).encode())
        head = read_response(c, head_only=True)
        check(head.status == 200, "HEAD %s: status %d, want 200" % (path, head.status))
        check(head.header("content-length") == str(len(get.body)),
              "HEAD %s: Content-Length %r, GET's body is %d bytes" % (path, head.header("content-length"), len(get.body)))
        check(head.header("content-type") == get.header("content-type"), "HEAD %s: Content-Type differs" % path)
    # a 404 to HEAD has no body either: the next response follows the head at once
    c.sendall(b"HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    r = read_response(c, head_only=True)
    check(r.status == 404, "HEAD /nope: status %d" % r.status)
    r = read_response(c)
    check(r.status == 200 and r.body == b"ok\n", "the response after a HEAD 404 is %r: the HEAD carried a body" % r)
    c.close()
    assert_served(srv.port)
