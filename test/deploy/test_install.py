#!/usr/bin/env python3
"""`meson install --destdir` of the build tree, then: the layout (binary,
libeev, header, eev.pc, systemd units, man page), the installed binary runs
(no RUNPATH into the build tree), the installed units verify with
Documentation=man:echo-ev(1) resolved against the installed page, `man -l`
renders the page and it documents every option of `echo-ev --help`, libeev
exports exactly the functions of eev/driver.h, and test/deploy/embed.c builds
against the installed library with pkg-config and echoes through it."""

import glob
import os
import re
import shutil
import subprocess

from deploylib import BUILD, HERE, Tap, check, rmtree, tmpdir

t = Tap()
meson = shutil.which("meson")
if not meson:
    t.skip("install", "meson not found")
    t.done()

dest = tmpdir("eev-install-")


def run(argv, env=None, timeout=120, **kw):
    e = dict(os.environ)
    if env:
        e.update(env)
    return subprocess.run(argv, env=e, capture_output=True, text=True, timeout=timeout, **kw)


def one(pattern, what):
    hits = sorted(glob.glob(os.path.join(dest, pattern), recursive=True))
    check(hits, "no %s (%s) under DESTDIR" % (what, pattern))
    return hits[0]


try:
    # Without --no-rebuild: `meson test` builds only what tests depend on, and
    # install needs everything (this test runs alone: is_parallel false).
    r = run([meson, "install", "-C", BUILD, "--destdir", dest], timeout=240)
    if not t.ok(r.returncode == 0, "meson install --destdir", r.stdout[-3000:] + r.stderr[-3000:]):
        t.done()

    paths = {}

    def layout():
        paths["bin"] = one("**/bin/echo-ev", "bin/echo-ev")
        check(os.access(paths["bin"], os.X_OK), "bin/echo-ev is not executable")
        paths["so"] = one("**/lib*/**/libeev.so", "lib*/libeev.so (development link)")
        one("**/lib*/**/libeev.so.*", "lib*/libeev.so.N (runtime)")
        paths["hdr"] = one("**/include/eev/driver.h", "include/eev/driver.h")
        paths["pc"] = one("**/pkgconfig/eev.pc", "pkgconfig/eev.pc")
        for u in ("echo-ev.service", "echo-ev.socket", "echo-ev-activated.service", "echo-ev@.service"):
            paths[u] = one("**/lib/systemd/system/" + u, "systemd unit " + u)
        paths["unitdir"] = os.path.dirname(paths["echo-ev.service"])
    t.run("layout: bin/echo-ev, libeev, eev/driver.h, eev.pc, 4 systemd units", layout)
    if "unitdir" not in paths:
        t.done()
    libdir = os.path.dirname(paths["so"])

    man_built = os.environ.get("EEV_MAN_BUILT", "1") == "1"
    if man_built:
        t.run("man1/echo-ev.1 installed",
              lambda: paths.__setitem__("man", one("**/share/man/man1/echo-ev.1", "man1/echo-ev.1")))
    else:
        t.skip("man1/echo-ev.1 installed", "scdoc not found at configure time")

    def runs():
        r = run([paths["bin"], "--version"], env={"LD_LIBRARY_PATH": libdir})
        check(r.returncode == 0 and r.stdout.strip(), "installed echo-ev --version: %d %r" % (r.returncode, r.stderr))
        if shutil.which("readelf"):
            d = run(["readelf", "-d", paths["bin"]]).stdout + run(["readelf", "-d", paths["so"]]).stdout
            check(os.path.realpath(BUILD) not in d and BUILD not in d, "RUNPATH into the build tree", d)
    t.run("the installed binary runs; no RUNPATH into the build tree", runs)

    def units_point_at_binary():
        for u in ("echo-ev.service", "echo-ev-activated.service", "echo-ev@.service"):
            m = re.search(r"^ExecStart=(\S+)", open(paths[u]).read(), re.M)
            check(m and os.path.isabs(m.group(1)), "%s: ExecStart not absolute" % u)
            check(os.path.exists(dest + m.group(1)), "%s: ExecStart=%s not installed" % (u, m.group(1)))
    t.run("installed units' ExecStart= is the installed binary", units_point_at_binary)

    sa = shutil.which("systemd-analyze")
    if sa:
        def verify_installed():
            work = tmpdir()
            try:
                for u in ("echo-ev.service", "echo-ev.socket", "echo-ev-activated.service", "echo-ev@.service"):
                    text = re.sub(r"^(ExecStart=)(\S+)", lambda m: m.group(1) + dest + m.group(2),
                                  open(paths[u]).read(), flags=re.M)
                    with open(os.path.join(work, u.replace("@.", "@a.")), "w") as f:
                        f.write(text)
                env = {"SYSTEMD_UNIT_PATH": work + ":", "SYSTEMD_LOG_COLOR": "0"}
                man = []
                if "man" in paths:
                    env["MANPATH"] = os.path.dirname(os.path.dirname(paths["man"]))
                else:
                    man = ["--man=no"]
                for u in sorted(os.listdir(work)):
                    r = run([sa, "verify"] + man + [os.path.join(work, u)], env=env, timeout=60)
                    ours = [line for line in (r.stdout + r.stderr).splitlines() if "echo-ev" in line]
                    check(r.returncode == 0 and not ours, "verify %s" % u, r.stdout + r.stderr)
            finally:
                rmtree(work)
        t.run("systemd-analyze verify on the installed units (Documentation=man:echo-ev(1) found)", verify_installed)
    else:
        t.skip("systemd-analyze verify on the installed units", "no systemd-analyze")

    if "man" in paths and shutil.which("man"):
        def man_renders():
            r = run(["man", "-l", paths["man"]], env={"MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0",
                                                     "PAGER": "cat", "MANPAGER": "cat"})
            check(r.returncode == 0, "man -l failed: %s" % r.stderr)
            text = re.sub(r".\x08", "", r.stdout)
            for sec in ("NAME", "SYNOPSIS", "OPTIONS", "ENDPOINTS", "SIGNALS", "ENVIRONMENT", "EXIT STATUS"):
                check(re.search(r"^%s$" % sec, text, re.M), "no %s section" % sec)
            for word in ("LISTEN_FDS", "NOTIFY_SOCKET", "JOURNAL_STREAM", "WATCHDOG_USEC", "SIGTERM", "SIGHUP",
                         "/healthz", "/metrics"):
                check(word in text, "the page does not mention %s" % word)
            w = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", paths["man"]],
                    env={"MANROFFSEQ": "", "MANWIDTH": "80", "LC_ALL": "C.UTF-8"})
            check(w.returncode == 0 and not w.stderr.strip(), "groff warnings: %s" % w.stderr[:2000])
            paths["mantext"] = text
        t.run("man -l renders echo-ev.1 with every section", man_renders)

        def man_has_every_option():
            h = run([paths["bin"], "--help"], env={"LD_LIBRARY_PATH": libdir})
            opts = sorted(set(re.findall(r"^\s+(--[a-z][a-z-]+)", h.stdout, re.M)))
            check(len(opts) >= 10, "could not read options from --help: %r" % h.stdout[:200])
            text = paths.get("mantext", "")
            missing = [o for o in opts if not re.search(r"(?<![a-z-])%s(?![a-z-])" % re.escape(o), text)]
            check(not missing, "options of --help missing from the man page: %s" % missing)
        t.run("the man page documents every option that --help lists", man_has_every_option)

        def man_files_match_units():
            roff = open(paths["man"], encoding="utf-8").read().replace("\\&", "")
            for u in ("echo-ev.service", "echo-ev.socket", "echo-ev-activated.service", "echo-ev@.service"):
                installed = "/" + os.path.relpath(paths[u], dest)
                check(installed in roff, "FILES does not name %s where it is installed" % installed)
        t.run("the man page's FILES name the units where they are installed", man_files_match_units)

        def bench_man_page():
            bench = glob.glob(os.path.join(dest, "**/bin/echo-bench"), recursive=True)
            if not bench:
                return  # built with -Dtools=false: nothing to document
            page = one("**/share/man/man1/echo-bench.1", "man1/echo-bench.1 next to bin/echo-bench")
            r = run(["man", "-l", page], env={"MANWIDTH": "100", "PAGER": "cat", "MANPAGER": "cat"})
            check(r.returncode == 0 and "--connect-rate" in r.stdout.replace("\u2010", "-"),
                  "man -l echo-bench.1: %s" % r.stderr[:500])
        t.run("echo-bench is installed with its man page", bench_man_page)
    else:
        t.skip("man -l renders echo-ev.1", "no man page or no man")

    def exports_match_header():
        if not shutil.which("nm"):
            return
        decl = set(re.findall(r"\b(eev_[a-z0-9_]+)\s*\(", open(paths["hdr"]).read()))
        nm = run(["nm", "-D", "--defined-only", paths["so"]]).stdout
        exported = {line.split()[-1].split("@")[0] for line in nm.splitlines() if " T " in line}
        check(decl == exported, "header-only: %s; exported-only: %s" % (sorted(decl - exported),
                                                                           sorted(exported - decl)))
    t.run("libeev exports exactly the functions declared in eev/driver.h", exports_match_header)

    pkgconf = shutil.which("pkg-config")
    cc = shutil.which("cc") or shutil.which("gcc")
    if pkgconf and cc:
        def embed():
            env = {"PKG_CONFIG_PATH": os.path.dirname(paths["pc"]), "PKG_CONFIG_SYSROOT_DIR": dest,
                   "PKG_CONFIG_LIBDIR": os.path.dirname(paths["pc"]) + ":/usr/lib/x86_64-linux-gnu/pkgconfig:"
                                        "/usr/lib/pkgconfig:/usr/share/pkgconfig"}
            r = run([pkgconf, "--cflags", "--libs", "eev"], env=env)
            check(r.returncode == 0, "pkg-config --cflags --libs eev: %s" % r.stderr)
            flags = r.stdout.split()
            check(any(f.startswith("-I" + dest) for f in flags), "cflags do not point into DESTDIR: %s" % flags)
            check("-leev" in flags, "no -leev: %s" % flags)
            r = run([pkgconf, "--modversion", "eev"], env=env)
            check(r.returncode == 0 and re.match(r"\d+\.\d+", r.stdout), "modversion %r" % r.stdout)
            exe = os.path.join(dest, "embed")
            r = run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", "-o", exe, os.path.join(HERE, "embed.c")] + flags)
            check(r.returncode == 0, "cc embed.c failed", r.stdout + r.stderr)
            r = run([exe], env={"LD_LIBRARY_PATH": libdir}, timeout=30)
            check(r.returncode == 0 and r.stdout.startswith("ok"), "embed: exit %d" % r.returncode,
                  r.stdout + r.stderr)
            ldd = run(["ldd", exe], env={"LD_LIBRARY_PATH": libdir}).stdout
            check(os.path.realpath(libdir) in ldd or libdir in ldd, "embed did not load the installed libeev", ldd)
        t.run("embed.c builds with pkg-config against the installed libeev and echoes through it", embed)
    else:
        t.skip("embed.c against the installed libeev", "needs pkg-config and cc")
finally:
    rmtree(dest)
t.done()
