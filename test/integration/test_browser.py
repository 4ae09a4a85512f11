"""Headless Chromium (puppeteer-core) driving the built-in page (browser.mjs)."""

import os
import tempfile

from eevtest import Shared, check, node_results
from run import test

MODULE_TIMEOUT = 150

SRV = Shared()


def teardown():
    SRV.teardown()


@test("chromium", timeout=120)
def chromium():
    check(os.access(os.environ.get("CHROMIUM", "/usr/bin/chromium"), os.X_OK), "/usr/bin/chromium not installed")
    srv = SRV.get()
    shot = os.path.join(tempfile.gettempdir(), "echo-ev-page-%d.png" % os.getpid())
    res = node_results("browser.mjs", [str(srv.port), shot], 100)
    print("# screenshot: %s" % shot)
    srv.assert_alive()
    return res
