"""The macOS Seatbelt (``sandbox-exec``) profile with the launcher's rules.

Generated as SBPL text and unit-tested for that text; it cannot run in CI
(Linux). The rules mirror bubblewrap's: deny by default, reads of the system
directories, ``PATH``, the roots and the private dir, writes beneath the write
roots (``.git`` excluded) and the private dir, the network only when allowed.
"""

from __future__ import annotations

from pathlib import Path

from magray.tools._sandbox import _DEFAULT_PATH, Confinement, _path_dirs

__all__ = ["seatbelt_profile"]

MACOS_SYSTEM_DIRS = (
    "/usr", "/bin", "/sbin", "/System", "/Library", "/Applications", "/opt", "/etc",
    "/private/etc", "/var/db/timezone", "/dev",
)  # fmt: skip


def _sb_quote(path: str | Path) -> str:
    text = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def seatbelt_profile(conf: Confinement, *, private: Path, path_var: str = _DEFAULT_PATH) -> str:
    """The ``sandbox-exec`` (SBPL) profile with the rules of ``conf``.

    Deny by default; allow process fork/exec, signals within the sandbox,
    sysctl reads and the mach services programs need; reads of the system
    directories, PATH, the roots and the private dir; writes beneath the write
    roots (``workspace-write``, their ``.git`` excluded) and the private dir;
    the network only when allowed.
    """
    lines = [
        "(version 1)",
        "(deny default)",
        "(allow process-exec)",
        "(allow process-fork)",
        "(allow signal (target same-sandbox))",
        "(allow sysctl-read)",
        '(allow mach-lookup (global-name "com.apple.system.opendirectoryd.libinfo"))',
        "(allow ipc-posix-sem)",
        "(allow file-read-metadata)",
        '(allow file-write-data (literal "/dev/null"))',
    ]
    if conf.mode == "full":
        lines += ["(allow file-read*)", "(allow file-write*)"]
    else:
        reads = [*MACOS_SYSTEM_DIRS, *map(str, _path_dirs(path_var, existing=False)), str(private)]
        reads += [str(p) for p in (*conf.extra_read, *conf.read_roots, *conf.write_roots)]
        lines.append("(allow file-read*")
        lines += [f"  (subpath {_sb_quote(p)})" for p in reads]
        lines.append(")")
        writes = [f"  (subpath {_sb_quote(private)})"]
        if conf.mode == "workspace-write":
            for root in conf.write_roots:
                if conf.git_writable:
                    writes.append(f"  (subpath {_sb_quote(root)})")
                else:
                    writes.append(
                        f"  (require-all (subpath {_sb_quote(root)}) "
                        f"(require-not (subpath {_sb_quote(root / '.git')})))"
                    )
        lines += ["(allow file-write*", *writes, ")"]
    if conf.network:
        lines += ["(allow network-outbound)", "(allow network-inbound)", "(allow system-socket)"]
    return "\n".join(lines) + "\n"
