#!/usr/bin/env python3
"""sandbox_exec.py UNIT -- PROGRAM [ARGS...]

Runs PROGRAM (by exec: same pid, so LISTEN_PID / WATCHDOG_PID still match)
under an approximation of UNIT's sandbox, without systemd:
  - SystemCallFilter= (allow list and ~deny lists, groups expanded with
    `systemd-analyze syscall-filter`), SystemCallErrorNumber=,
    SystemCallArchitectures=native -> a seccomp filter (python3-seccomp)
  - RestrictAddressFamilies= -> socket() of another family fails with
    EAFNOSUPPORT
  - MemoryDenyWriteExecute=yes -> no writable+executable mmap, no PROT_EXEC
    mprotect
  - DynamicUser=yes -> runs as nobody (65534) without supplementary groups,
    so no capabilities; NoNewPrivileges=yes
  - PrivateNetwork=yes -> a new, empty network namespace
Exit status 77 (skip) when python3-seccomp or systemd-analyze is missing or
the kernel refuses; 1 on bad usage.
"""

import ctypes
import errno
import os
import re
import subprocess
import sys

SKIP = 77


def unit_settings(path):
    s = {}
    for line in open(path):
        m = re.match(r"^([A-Za-z]+)=(.*)$", line.strip())
        if m:
            s.setdefault(m.group(1), []).append(m.group(2).strip())
    return s


def syscall_groups():
    out = subprocess.run(["systemd-analyze", "syscall-filter", "--no-pager"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    groups, cur = {}, None
    for line in out.splitlines():
        if line.startswith("@"):
            cur = groups.setdefault(line.strip(), [])
        elif line.strip() and not line.strip().startswith("#") and cur is not None and line.startswith(" "):
            cur.append(line.strip())
        elif not line.strip():
            cur = None
    return groups


def expand(names, groups, seen=None):
    seen = set() if seen is None else seen
    out = set()
    for n in names:
        if n.startswith("@"):
            if n in seen:
                continue
            seen.add(n)
            out |= expand(groups.get(n, []), groups, seen)
        else:
            out.add(n)
    return out


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 1
    unit, argv = sys.argv[1], sys.argv[3:]
    try:
        import seccomp
    except ImportError:
        print("sandbox_exec: python3-seccomp missing", file=sys.stderr)
        return SKIP
    st = unit_settings(unit)
    try:
        groups = syscall_groups()
    except (OSError, subprocess.SubprocessError) as e:
        print("sandbox_exec: systemd-analyze syscall-filter: %s" % e, file=sys.stderr)
        return SKIP

    # SystemCallFilter= semantics: the first non-~ list is an allow list; ~ lists remove from it.
    allowed = set()
    for v in st.get("SystemCallFilter", []):
        if v.startswith("~"):
            allowed -= expand(v[1:].split(), groups)
        else:
            allowed |= expand(v.split(), groups)
    errno_name = (st.get("SystemCallErrorNumber") or ["EPERM"])[-1]
    deny_errno = getattr(errno, errno_name, errno.EPERM)
    families = None
    if st.get("RestrictAddressFamilies"):
        families = set()
        for v in st["RestrictAddressFamilies"]:
            for f in v.split():
                families.add(int(getattr(__import__("socket"), f)))
    mdwe = (st.get("MemoryDenyWriteExecute") or ["no"])[-1] == "yes"

    if (st.get("PrivateNetwork") or ["no"])[-1] == "yes":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(0x40000000) != 0:  # CLONE_NEWNET
            print("sandbox_exec: unshare(CLONE_NEWNET): %s" % os.strerror(ctypes.get_errno()), file=sys.stderr)
            return SKIP
    if (st.get("DynamicUser") or ["no"])[-1] == "yes" and os.geteuid() == 0:
        os.setgroups([])
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)

    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(deny_errno))
    W, X = 0x2, 0x4  # PROT_WRITE, PROT_EXEC
    special = {"socket", "mmap", "mmap2", "mprotect", "pkey_mprotect"}
    for name in sorted(allowed):
        if name in special:
            continue
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # not a syscall on this architecture
    A = seccomp.Arg
    for name in ("mmap", "mmap2"):
        if name in allowed:
            try:
                if mdwe:
                    for ok in (0, W, X):
                        f.add_rule(seccomp.ALLOW, name, A(2, seccomp.MASKED_EQ, W | X, ok))
                else:
                    f.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError, OSError):
                pass
    for name in ("mprotect", "pkey_mprotect"):
        if name in allowed:
            try:
                if mdwe:
                    f.add_rule(seccomp.ALLOW, name, A(2, seccomp.MASKED_EQ, X, 0))
                else:
                    f.add_rule(seccomp.ALLOW, name)
            except (RuntimeError, ValueError, OSError):
                pass
    if "socket" in allowed:
        if families is None:
            f.add_rule(seccomp.ALLOW, "socket")
        else:
            for fam in range(0, 64):
                if fam in families:
                    f.add_rule(seccomp.ALLOW, "socket", A(0, seccomp.EQ, fam))
                else:
                    f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket", A(0, seccomp.EQ, fam))
    f.set_attr(seccomp.Attr.CTL_NNP, 1)
    try:
        f.load()
    except OSError as e:
        print("sandbox_exec: loading the seccomp filter: %s" % e, file=sys.stderr)
        return SKIP
    os.execv(argv[0], argv)


if __name__ == "__main__":
    sys.exit(main())
