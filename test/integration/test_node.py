"""The same echo checks through the Node `ws` client (node_echo.mjs)."""

from eevtest import Shared, node_results
from run import test

MODULE_TIMEOUT = 240

SRV = Shared()


def teardown():
    SRV.teardown()


@test("node ws", timeout=200)
def node_ws():
    srv = SRV.get()
    res = node_results("node_echo.mjs", [srv.url], 180)
    srv.assert_alive()
    return res
