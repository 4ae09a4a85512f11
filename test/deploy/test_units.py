#!/usr/bin/env python3
"""systemd units: `systemd-analyze verify` and `systemd-analyze security
--offline=yes` exposure thresholds, on the units meson generated (build/dist)
with ExecStart pointed at the built binary so that the path exists.

Works without systemd as PID 1 (both verbs run offline)."""

import os
import re
import shutil
import subprocess

from deploylib import DIST_BUILD, ECHO_EV, Tap, check, rmtree, tmpdir

# Highest acceptable `systemd-analyze security` exposure (0.0 safest .. 10.0).
THRESHOLDS = {
    "echo-ev.service": 1.2,
    "echo-ev-tls.service": 1.2,
    "echo-ev@.service": 1.2,
    "echo-ev-activated.service": 0.5,
}
UNITS = ["echo-ev.service", "echo-ev-tls.service", "echo-ev-activated.service", "echo-ev.socket", "echo-ev@.service"]

t = Tap()
sa = shutil.which("systemd-analyze")
if not sa:
    t.skip("systemd-analyze", "systemd-analyze not installed")
    t.done()

work = tmpdir()
try:
    # The generated units, ExecStart pointing at the build tree.
    for u in UNITS:
        src = os.path.join(DIST_BUILD, u)
        t.ok(os.path.exists(src), "meson generated %s" % u)
        if not os.path.exists(src):
            continue
        text = open(src).read()
        t.ok("@bindir@" not in text and re.search(r"^ExecStart=/\S+/echo-ev\b", text, re.M) or u.endswith(".socket"),
             "%s: @bindir@ substituted with an absolute path" % u)
        text = re.sub(r"^(ExecStart=)\S+/echo-ev\b", lambda m: m.group(1) + ECHO_EV, text, flags=re.M)
        with open(os.path.join(work, u), "w") as f:
            f.write(text)
    # An instance of the template, as systemctl would load it.
    shutil.copy(os.path.join(work, "echo-ev@.service"), os.path.join(work, "echo-ev@9001.service"))

    def content(u):
        return open(os.path.join(work, u)).read()

    def setting(text, key):
        return re.findall(r"^%s=(.*)$" % re.escape(key), text, re.M)

    # What the deployment relies on (a regression here would still verify).
    def units_contract():
        for u in ("echo-ev.service", "echo-ev-tls.service", "echo-ev-activated.service", "echo-ev@.service"):
            c = content(u)
            check(setting(c, "Type") == ["notify"], "%s: Type=notify" % u)
            check(setting(c, "WatchdogSec"), "%s: WatchdogSec=" % u)
            check(setting(c, "DynamicUser") == ["yes"], "%s: DynamicUser=yes" % u)
            check(setting(c, "CapabilityBoundingSet") == [""], "%s: empty CapabilityBoundingSet=" % u)
            check(setting(c, "Restart") == ["on-failure"], "%s: Restart=on-failure" % u)
            check(setting(c, "ExecReload") == ["/bin/kill -HUP $MAINPID"], "%s: ExecReload= sends SIGHUP" % u)
            nofile = int(setting(c, "LimitNOFILE")[0])
            m = re.search(r"--max-connections (\d+)", setting(c, "ExecStart")[0])
            check(m and int(m.group(1)) < nofile, "%s: --max-connections below LimitNOFILE" % u)
        a = content("echo-ev-activated.service")
        check(setting(a, "PrivateNetwork") == ["yes"], "activated: PrivateNetwork=yes")
        check(setting(a, "RestrictAddressFamilies") == ["AF_UNIX"], "activated: AF_UNIX only")
        check("--port" not in setting(a, "ExecStart")[0], "activated: no --port (LISTEN_FDS)")
        s = content("echo-ev.socket")
        check(setting(s, "Service") == ["echo-ev-activated.service"], "socket: Service=")
        check(setting(s, "ListenStream"), "socket: ListenStream=")
        check("--reuse-port" in setting(content("echo-ev@.service"), "ExecStart")[0], "template: --reuse-port")
        tls = content("echo-ev-tls.service")
        start = setting(tls, "ExecStart")[0]
        creds = dict(v.split(":", 1) for v in setting(tls, "LoadCredential"))
        check(set(creds) == {"tls-cert.pem", "tls-key.pem"}, "tls: LoadCredential= for the chain and the key")
        check("--tls-cert %d/tls-cert.pem" in start and "--tls-key %d/tls-key.pem" in start,
              "tls: --tls-cert/--tls-key from the credentials directory")
        rf = setting(content("echo-ev.service"), "RestrictAddressFamilies")[0].split()
        check({"AF_INET", "AF_INET6", "AF_UNIX"} == set(rf), "echo-ev.service: serves the network")
    t.run("units carry the settings the deployment relies on", units_contract)

    env = dict(os.environ, SYSTEMD_UNIT_PATH=work + ":", SYSTEMD_LOG_COLOR="0", SYSTEMD_PAGER="cat")
    for u in ["echo-ev.service", "echo-ev-tls.service", "echo-ev-activated.service", "echo-ev.socket", "echo-ev@9001.service"]:
        r = subprocess.run([sa, "verify", "--man=no", os.path.join(work, u)], env=env,
                           capture_output=True, text=True, timeout=60)
        ours = [line for line in (r.stdout + r.stderr).splitlines() if "echo-ev" in line]
        t.ok(r.returncode == 0 and not ours, "systemd-analyze verify %s" % u,
             "exit %d\n%s%s" % (r.returncode, r.stdout, r.stderr))

    def exposure(path):
        r = subprocess.run([sa, "security", "--offline=yes", "--no-pager", path], env=env,
                           capture_output=True, text=True, timeout=60)
        m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout + r.stderr)
        return (float(m.group(1)) if m else None), r.stdout + r.stderr

    for u, limit in THRESHOLDS.items():
        score, out = exposure(os.path.join(work, u))
        t.ok(score is not None and score <= limit,
             "systemd-analyze security %s: exposure %s <= %.1f" % (u, score, limit),
             "\n".join(line for line in out.splitlines() if line.startswith("✗") or "Overall" in line))
        t.diag("exposure %s = %s" % (u, score))

    # Control: the parser sees a bad score for an unhardened unit.
    bare = os.path.join(work, "bare.service")
    with open(bare, "w") as f:
        f.write("[Service]\nExecStart=%s\n" % ECHO_EV)
    score, out = exposure(bare)
    t.ok(score is not None and score > 5.0, "control: an unhardened unit scores %s > 5.0" % score, out)
finally:
    rmtree(work)
t.done()
