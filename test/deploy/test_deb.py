#!/usr/bin/env python3
"""The Debian package (debian/): `dpkg-buildpackage -us -uc -b` on a copy of
the source tree (DEB_BUILD_OPTIONS=nocheck noddebs, parallel) builds echo-ev, libeev0
and libeev-dev; lintian reports no errors; `dpkg -i` installs them on this
machine; /usr/bin/echo-ev --version runs; systemd-analyze verify passes on the
installed units and none is enabled (the documented choice); `dpkg --purge`
leaves nothing behind. Needs root and dpkg-dev/debhelper; skips otherwise, and
when the packages are already installed (never touches an admin's copy)."""

import fcntl
import glob
import os
import re
import shutil
import subprocess
import time

from deploylib import SRC, Tap, check, rmtree, tmpdir

PKGS = ("echo-ev", "libeev0", "libeev-dev")
# Where the packages could leave something: compared before install and after purge.
WATCH = ("/etc", "/lib/systemd", "/usr/lib/systemd", "/var/lib/systemd", "/usr/share/doc", "/usr/bin",
         "/usr/include", "/usr/lib/x86_64-linux-gnu", "/var/lib/dpkg/info", "/usr/share/man/man1")

t = Tap()


def run(argv, env=None, timeout=120, **kw):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout, **kw)


def installed(pkg):
    """Known to dpkg in any state but purged (installed, half-installed, config-files...)."""
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg])
    return r.returncode == 0 and r.stdout.strip() != "" and not r.stdout.strip().endswith("not-installed")


def traces():
    """Paths under WATCH whose name mentions the packages."""
    found = set()
    pat = re.compile(r"echo-ev|echo-bench|libeev|(^|/)eev(/|\.pc$)")
    for top in WATCH:
        for root, dirs, files in os.walk(top):
            for n in dirs + files:
                p = os.path.join(root, n)
                if pat.search(n) or (n == "eev" and root.endswith("include")):
                    found.add(p)
    return found


def dpkg_locked(r):
    return "lock" in r.stderr and ("dpkg" in r.stderr or "frontend" in r.stderr)


def dpkg(args, timeout=300):
    """dpkg, waiting (up to 10 min) while another apt/dpkg holds its lock."""
    deadline = time.monotonic() + 600
    while True:
        r = run(["dpkg"] + args, env={"DEBIAN_FRONTEND": "noninteractive"}, timeout=timeout)
        if r.returncode == 0 or not dpkg_locked(r) or time.monotonic() > deadline:
            return r
        time.sleep(2)


def copy_tree(dst):
    """The files of the checkout (tracked and new, not ignored ones like build/)."""
    r = run(["git", "-C", SRC, "ls-files", "-co", "--exclude-standard", "-z"])
    if r.returncode == 0 and r.stdout:
        for rel in r.stdout.split("\0"):
            if not rel or not os.path.lexists(os.path.join(SRC, rel)):
                continue
            os.makedirs(os.path.dirname(os.path.join(dst, rel)), exist_ok=True)
            shutil.copy2(os.path.join(SRC, rel), os.path.join(dst, rel), follow_symlinks=False)
    else:
        shutil.copytree(SRC, dst, symlinks=True, ignore=shutil.ignore_patterns(
            ".git", "build", "build-*", "node_modules", "__pycache__"))


missing = [p for p in ("dpkg-buildpackage", "dh", "dpkg") if not shutil.which(p)]
if os.geteuid() != 0:
    t.skip("Debian package build, install and purge", "needs root (dpkg -i)")
    t.done()
if missing:
    t.skip("Debian package build, install and purge", "missing %s (apt-get install dpkg-dev debhelper)"
           % " ".join(missing))
    t.done()
if not os.path.isfile(os.path.join(SRC, "debian", "control")):
    t.skip("Debian package build, install and purge", "no debian/ in the source tree")
    t.done()

work = tmpdir("eev-deb-")
lock = None
try:
    tree = os.path.join(work, "echo-ev")
    copy_tree(tree)
    jobs = max(1, os.cpu_count() or 1)
    t0 = time.monotonic()
    r = run(["dpkg-buildpackage", "-us", "-uc", "-b"], cwd=tree, timeout=900,
            env={"DEB_BUILD_OPTIONS": "nocheck noddebs parallel=%d" % jobs, "LC_ALL": "C.UTF-8"})
    debs = {p: glob.glob(os.path.join(work, "%s_*.deb" % p)) for p in PKGS}
    if not t.ok(r.returncode == 0 and all(debs.values()),
                "dpkg-buildpackage -us -uc -b builds echo-ev, libeev0 and libeev-dev (%.0f s)"
                % (time.monotonic() - t0), r.stdout[-3000:] + r.stderr[-3000:]):
        t.done()
    debs = [d[0] for d in debs.values()]

    def contents():
        listing = {os.path.basename(d): run(["dpkg-deb", "-c", d]).stdout for d in debs}
        want = {"echo-ev": ["./usr/bin/echo-ev", "./usr/bin/echo-bench", "./lib/systemd/system/echo-ev.service",
                            "./lib/systemd/system/echo-ev.socket", "./lib/systemd/system/echo-ev@.service",
                            "./usr/share/man/man1/echo-ev.1.gz", "./usr/share/man/man1/echo-bench.1.gz"],
                "libeev0": ["./usr/lib/x86_64-linux-gnu/libeev.so.0"],
                "libeev-dev": ["./usr/include/eev/driver.h", "/pkgconfig/eev.pc", "/libeev.so "]}
        for name, text in listing.items():
            pkg = name.split("_")[0]
            for w in want.get(pkg, []):
                check(w in text, "%s lacks %s" % (name, w.strip()), text)
    t.run("each package holds its files (server, units, man pages; library; header, eev.pc)", contents)

    lintian = shutil.which("lintian")
    if lintian:
        changes = glob.glob(os.path.join(work, "*.changes"))
        r = run([lintian, "--allow-root", "--no-cfg", "-I"] + changes, timeout=300)
        tags = [ln for ln in r.stdout.splitlines() if re.match(r"^[EWI]: ", ln)]
        errors = [ln for ln in tags if ln.startswith("E: ")]
        if tags:
            t.diag("lintian:\n" + "\n".join(tags))
        t.ok(not errors and r.returncode in (0, 1) and "E: " not in r.stderr, "lintian: no errors",
             r.stdout[-3000:] + r.stderr[-2000:])
    else:
        t.skip("lintian: no errors", "lintian not installed")

    # One install at a time on this machine (several checkouts may run this suite).
    lock = open("/run/lock/echo-ev-deb-test.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    already = [p for p in PKGS if installed(p)]
    if already:
        t.skip("dpkg -i / --version / verify / purge", "already installed here: %s" % " ".join(already))
        t.done()
    before = traces()
    r = dpkg(["-i"] + debs)
    if not t.ok(r.returncode == 0, "dpkg -i echo-ev libeev0 libeev-dev", r.stdout[-3000:] + r.stderr[-3000:]):
        t.done()
    try:
        def version():
            v = run(["/usr/bin/echo-ev", "--version"])
            pkgver = run(["dpkg-query", "-W", "-f=${Version}", "echo-ev"]).stdout
            check(v.returncode == 0 and v.stdout.strip() == "echo-ev " + pkgver.split("-")[0],
                  "--version: %r (package %s)" % (v.stdout + v.stderr, pkgver))
        t.run("/usr/bin/echo-ev --version runs and matches the package version", version)

        units = [ln for ln in run(["dpkg", "-L", "echo-ev"]).stdout.splitlines()
                 if re.search(r"/systemd/system/[^/]+\.(service|socket)$", ln)]

        def verify():
            check(len(units) == 5, "installed units: %s" % units)  # echo-ev, -tls, -activated, @, .socket
            sa = shutil.which("systemd-analyze")
            check(sa, "systemd-analyze not installed")
            # A template is verified through an instance.
            args = [u.replace("@.service", "@test.service") for u in units]
            r = run([sa, "verify"] + args, env={"SYSTEMD_LOG_LEVEL": "notice"}, timeout=120)
            check(r.returncode == 0 and not r.stderr.strip(), "systemd-analyze verify: %s" % r.stderr[-2000:])
        t.run("systemd-analyze verify on the installed units", verify)

        def not_enabled():
            wants = glob.glob("/etc/systemd/system/*.wants/echo-ev*")
            check(not wants, "enabled on install: %s" % wants)
        t.run("no unit is enabled on installation (README.Debian: the admin enables it)", not_enabled)

        def pkgconfig():
            r = run(["pkg-config", "--cflags", "--libs", "eev"])
            check(r.returncode == 0 and "-leev" in r.stdout, "pkg-config eev: %s" % (r.stdout + r.stderr))
        t.run("pkg-config finds the installed eev", pkgconfig)
    finally:
        r = dpkg(["--purge"] + list(PKGS))
        t.ok(r.returncode == 0, "dpkg --purge echo-ev libeev0 libeev-dev", r.stdout[-2000:] + r.stderr[-2000:])

    def clean():
        known = [p for p in PKGS if installed(p)]
        check(not known, "dpkg still knows %s" % known)
        left = sorted(traces() - before)
        check(not left, "left behind after purge: %s" % left)
    t.run("nothing left behind after the purge", clean)
finally:
    if lock:
        lock.close()
    rmtree(work)
t.done()
