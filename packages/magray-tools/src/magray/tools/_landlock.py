"""Landlock through ctypes, and the supervisor that confines one command.

When bubblewrap cannot be used, the launcher starts the command through
:class:`Supervised`, a ``preexec_fn`` that runs in the forked child before the
exec (no second Python to start: that re-exec cost ~50 ms a call). The forked
child becomes the **supervisor**: it asks for ``SIGKILL`` when magray dies (and
exits if magray is already gone), becomes a child subreaper, closes every
descriptor it inherited besides stdin/stdout/stderr, and forks the command. The
command asks to die with the supervisor, sets ``no_new_privs``, restricts itself
with a Landlock ruleset (read/execute beneath the read paths and its own
``/proc`` entry, everything beneath the write paths, TCP bind/connect refused
unless the network is allowed, and from ABI 6 signals and abstract Unix sockets
scoped to the sandbox) and returns to :mod:`subprocess`, which execs it.
``/proc`` beyond its own entry is not granted, so ``/proc/<magray>/environ`` is
refused (Landlock's ptrace scoping refuses it as well: a process inside a domain
may not inspect one outside it). The supervisor waits, then kills whatever the
command left behind; it never returns into the caller's code.

Only the standard library is used, and nothing is imported or loaded (no
``dlopen``) after the fork: the C library handle and the ABI are looked up
before it.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
import os
import signal
import sys
from collections.abc import Sequence

__all__ = ["Supervised", "abi_version", "restrict"]

_SYS_CREATE_RULESET = 444  # the same number on every architecture (asm-generic)
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_CHILD_SUBREAPER = 36

# File-system rights (include/uapi/linux/landlock.h).
_EXECUTE = 1 << 0
_WRITE_FILE = 1 << 1
_READ_FILE = 1 << 2
_READ_DIR = 1 << 3
_TRUNCATE = 1 << 14
_IOCTL_DEV = 1 << 15
_FILE_ONLY = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
_READ = _EXECUTE | _READ_FILE | _READ_DIR
_NET_BIND_TCP = 1 << 0
_NET_CONNECT_TCP = 1 << 1
_SCOPE_ABSTRACT_UNIX = 1 << 0
_SCOPE_SIGNAL = 1 << 1
_PROC_FILES = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "filesystems", "sys")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    ]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


@functools.cache
def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    # Looked up here, in magray: after a fork, dlsym could wait forever on a loader lock
    # that another thread of magray held at the fork.
    libc.syscall.restype = ctypes.c_long
    libc.prctl.restype = ctypes.c_int
    return libc


@functools.cache
def abi_version() -> int:
    """The kernel's Landlock ABI (0 when Landlock is missing or disabled; asked once)."""
    if not sys.platform.startswith("linux"):
        return 0
    abi = _libc().syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), _CREATE_RULESET_VERSION)
    return max(int(abi), 0)


def _fs_rights(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= 1 << 13  # REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def restrict(read: Sequence[str], write: Sequence[str], *, network: bool) -> int:
    """Confine the calling process (and its future children) for good.

    Args:
        read: Paths (directories or files) whose content may be read and executed.
        write: Paths beneath which everything is allowed.
        network: Whether TCP bind/connect stay allowed.

    Returns:
        The ABI that was applied.

    Raises:
        OSError: Landlock is unavailable or a call failed.
    """
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available (kernel 5.13+ with the LSM enabled)")
    libc = _libc()
    handled = _fs_rights(abi)
    attr = _RulesetAttr(handled, 0, 0)
    size = 8
    if abi >= 4:
        size = 16
        attr.handled_access_net = 0 if network else _NET_BIND_TCP | _NET_CONNECT_TCP
    if abi >= 6:
        size = 24
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
    fd = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, rights in ((read, _READ & handled), (write, handled)):
            for path in paths:
                _add_path(libc, int(fd), path, rights)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, int(fd), 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(int(fd))
    return abi


def _add_path(libc: ctypes.CDLL, ruleset: int, path: str, rights: int) -> None:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a missing path grants nothing
    try:
        if not os.path.isdir(path):
            rights &= _FILE_ONLY
        rule = _PathBeneathAttr(rights, pfd)
        if libc.syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(pfd)


def _reap_all() -> None:
    """Reap every child that has exited (non-blocking)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _kill_descendants() -> None:
    """SIGKILL every process the command left behind (setsid'd or daemonised ones too).

    The helper is a child subreaper, so orphans of the command become its
    children; they are listed from ``/proc`` and killed until none are left.
    """
    task_dir = f"/proc/{os.getpid()}/task"
    for _ in range(50):
        _reap_all()
        children: list[int] = []
        try:
            for tid in os.listdir(task_dir):
                with open(f"{task_dir}/{tid}/children", "rb") as handle:  # no codec lookup
                    children += [int(p) for p in handle.read().split()]
        except OSError:
            pass
        if not children:
            return
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


_WATCHED = (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Supervised:
    """A ``preexec_fn`` that confines the command with Landlock under a supervisor.

    Made in magray (the C library and the ABI are looked up there, not after the
    fork); called by :mod:`subprocess` in the forked child, see the module
    docstring. The supervisor exits with the command's exit code (``128 + N``
    when signal ``N`` killed it); when it is asked to stop (SIGTERM, SIGINT,
    SIGHUP) it kills every process the command left behind and exits ``128 + N``.

    Args:
        read: Paths whose content the command may read and execute.
        write: Paths beneath which the command may do anything.
        network: Whether TCP bind/connect stay allowed.
    """

    def __init__(self, read: Sequence[str], write: Sequence[str], *, network: bool) -> None:
        self.read = tuple(read)
        self.write = tuple(write)
        self.network = network
        self.parent = os.getpid()
        self.libc = _libc()
        if abi_version() < 1:
            raise OSError("Landlock is not available (kernel 5.13+ with the LSM enabled)")

    def __call__(self) -> None:
        """In the forked child: supervise (never returns) or, in the command, confine."""
        # No collection in this copy of magray: a finaliser could wait on a lock that
        # another thread held at the fork.
        gc.disable()
        self.libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != self.parent:
            os._exit(137)  # magray died before the flag was set: do not run orphaned
        self.libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        # A SIGCHLD ignored by magray would reap the command before the supervisor
        # sees it: the default action, and the signals taken synchronously below.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WATCHED)
        supervisor = os.getpid()
        command = os.fork()
        if command == 0:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self._confine(supervisor)
            return  # subprocess closes the other descriptors and execs the command
        code = 126
        try:
            os.closerange(3, _max_fd())  # the exec-error pipe and magray's files
            code = _supervise(command)
        finally:
            os._exit(code)

    def _confine(self, supervisor: int) -> None:
        self.libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != supervisor:
            os._exit(137)
        # /proc as a whole would show other processes' environments (magray's own with its
        # API keys): only this process's entry and the system-wide files are readable.
        read = [*self.read, f"/proc/{os.getpid()}", *(f"/proc/{n}" for n in _PROC_FILES)]
        try:
            restrict(read, self.write, network=self.network)
        except OSError as exc:
            os.write(2, f"magray sandbox: Landlock: {exc.strerror or exc}\n".encode())
            os._exit(126)


def _max_fd() -> int:
    try:
        return os.sysconf("SC_OPEN_MAX")
    except (OSError, ValueError):
        return 65536


def _supervise(command: int) -> int:
    """Wait for ``command`` or a stop signal; kill what is left; the exit code to use."""
    while True:
        info = signal.sigwaitinfo(_WATCHED)
        if info.si_signo != signal.SIGCHLD:
            _kill_descendants()
            return 128 + info.si_signo
        try:
            pid, status = os.waitpid(command, os.WNOHANG)
        except ChildProcessError:  # reaped already (cannot happen with SIGCHLD default)
            _kill_descendants()
            return 126
        if pid == command:
            _kill_descendants()
            code = os.waitstatus_to_exitcode(status)
            return 128 - code if code < 0 else code
