"""permessage-deflate with the Node `ws` client (perMessageDeflate, every
offer it can make) and headless Chromium (which always offers it)."""

import os

from eevtest import Shared, check, node_results
from run import test

MODULE_TIMEOUT = 200

SRV = Shared()


def teardown():
    SRV.teardown()


@test("node ws perMessageDeflate", timeout=120)
def node_ws_deflate():
    srv = SRV.get()
    res = node_results("node_deflate.mjs", [srv.url], 100)
    srv.assert_alive()
    return res


@test("chromium: deflate negotiated, 0 B..1 MiB echoes", timeout=120)
def chromium_deflate():
    check(os.access(os.environ.get("CHROMIUM", "/usr/bin/chromium"), os.X_OK), "/usr/bin/chromium not installed")
    srv = SRV.get()
    res = node_results("browser_deflate.mjs", [str(srv.port)], 100)
    srv.assert_alive()
    check("permessage-deflate server_bits=15 client_bits=15 passthrough" in srv.log_text(),
          "Chromium's connection did not negotiate the passthrough echo")
    return res
