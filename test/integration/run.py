#!/usr/bin/python3
"""echo-ev integration suite runner.

Usage: /usr/bin/python3 test/integration/run.py [BINARY] [-k SUBSTRING]...
BINARY defaults to $ECHO_EV, then build/src/echo-ev/echo-ev.

Each test_*.py module runs in its own child process with a time budget
(MODULE_TIMEOUT in the module); each test in it has its own timeout.
Prints "ok N name" / "not ok N name" lines and ends with
"integration: N passed, N failed". Exit status 1 when anything failed.
"""

import asyncio
import importlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass


# ---------------------------------------------------------------------------
# Registry used by the test modules

_REGISTRY = []


def test(name=None, timeout=30.0):
    """Decorator: registers a sync or async test function."""
    def deco(fn):
        _REGISTRY.append((name or fn.__name__, fn, timeout))
        return fn
    return deco


def register(name, fn, timeout=30.0):
    _REGISTRY.append((name, fn, timeout))


# ---------------------------------------------------------------------------
# Child: runs one module, emits one JSON line per result on fd 3 (stdout).


def _run_one(fn, timeout):
    """Runs fn with a timeout; returns (ok, detail, subresults)."""
    import eevtest
    timeout = timeout * eevtest.slow_factor()
    box = {}

    def target():
        try:
            if asyncio.iscoroutinefunction(fn):
                box["ret"] = asyncio.run(asyncio.wait_for(fn(), timeout))
            else:
                box["ret"] = fn()
        except BaseException as e:  # noqa: B902 - report everything
            box["exc"] = e
            box["tb"] = traceback.format_exc()

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout + 5)
    if t.is_alive():
        return False, "timed out after %.0fs" % timeout, None
    if "exc" in box:
        e = box["exc"]
        if isinstance(e, (asyncio.TimeoutError,)):
            return False, "timed out after %.0fs\n%s" % (timeout, box["tb"]), None
        return False, box["tb"], None
    ret = box.get("ret")
    if isinstance(ret, list):
        return True, "", ret
    return True, "", None


def child(modname, filters):
    raise_nofile()
    sys.modules["run"] = sys.modules[__name__]
    out = os.fdopen(os.dup(1), "w", buffering=1)
    # Tests and libraries must not write into the result stream.
    os.dup2(2, 1)

    def emit(name, ok, detail=""):
        out.write(json.dumps({"name": name, "ok": ok, "detail": detail}) + "\n")
        out.flush()

    try:
        mod = importlib.import_module(modname)
    except Exception:
        emit(modname + ": import", False, traceback.format_exc())
        return
    ran = 0
    for name, fn, timeout in list(_REGISTRY):
        full = "%s: %s" % (modname[5:], name)
        if filters and not any(f in full for f in filters):
            continue
        ran += 1
        ok, detail, subs = _run_one(fn, timeout)
        if subs is not None:
            for sname, sok, sdetail in subs:
                emit("%s: %s" % (full, sname), bool(sok), sdetail or "")
        else:
            emit(full, ok, detail)
    fin = getattr(mod, "teardown", None)
    if fin and ran:
        ok, detail, _ = _run_one(fin, 60)
        emit("%s: teardown (server exit 0, no sanitizer report)" % modname[5:], ok, detail)


# ---------------------------------------------------------------------------
# Parent


def module_timeout(path):
    with open(path) as f:
        m = re.search(r"^MODULE_TIMEOUT\s*=\s*(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 180


def main(argv):
    filters = []
    args = []
    i = 0
    while i < len(argv):
        if argv[i] == "-k" and i + 1 < len(argv):
            filters.append(argv[i + 1])
            i += 2
            continue
        args.append(argv[i])
        i += 1
    if args:
        os.environ["ECHO_EV"] = os.path.abspath(args[0])
    import eevtest
    exe = eevtest.binary()
    if not os.access(exe, os.X_OK):
        print("not ok 1 integration: server binary %s not found or not executable" % exe)
        print("integration: 0 passed, 1 failed")
        return 1
    raise_nofile()
    slow = eevtest.slow_factor()
    modules = sorted(f[:-3] for f in os.listdir(HERE) if re.match(r"test_\w+\.py$", f))
    n = passed = failed = 0
    t0 = time.monotonic()
    print("# echo-ev integration suite: %s%s" % (exe, " (sanitized)" if eevtest.sanitized() else ""), flush=True)
    for mod in modules:
        budget = module_timeout(os.path.join(HERE, mod + ".py")) * slow
        m0 = time.monotonic()
        p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", mod] + sum((["-k", f] for f in filters), []),
                             stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True, cwd=HERE)
        timer = threading.Timer(budget, lambda: os.killpg(p.pid, signal.SIGKILL))
        timer.start()
        got = 0
        for raw in p.stdout:
            try:
                r = json.loads(raw)
            except ValueError:
                continue
            n += 1
            got += 1
            if r["ok"]:
                passed += 1
                print("ok %d %s" % (n, r["name"]), flush=True)
            else:
                failed += 1
                print("not ok %d %s" % (n, r["name"]), flush=True)
                for ln in (r["detail"] or "").rstrip().splitlines()[-40:]:
                    print("#   " + ln)
                sys.stdout.flush()
        rc = p.wait()
        timed_out = not timer.is_alive() and rc == -signal.SIGKILL
        timer.cancel()
        try:
            os.killpg(p.pid, signal.SIGKILL)  # stray clients/servers of that module
        except (ProcessLookupError, PermissionError):
            pass
        if timed_out or rc != 0:
            n += 1
            failed += 1
            why = ("exceeded its %.0fs budget" % budget) if timed_out else ("child exited %d" % rc)
            print("not ok %d %s: module %s" % (n, mod[5:], why), flush=True)
        print("# %s: %d results in %.1fs" % (mod, got, time.monotonic() - m0), flush=True)
    print("# integration total %.1fs" % (time.monotonic() - t0))
    print("integration: %d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed or n == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        rest = sys.argv[3:]
        flt = [rest[i + 1] for i in range(len(rest) - 1) if rest[i] == "-k"]
        child(sys.argv[2], flt)
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))
