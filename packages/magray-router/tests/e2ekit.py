"""Helpers for the end-to-end tests in the repository's tests/ folder.

They run the installed ``magray`` console script in subprocesses (or in a
pseudo-terminal for the REPL) against a :mod:`loopback` LLM server.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PtySession", "llm_env", "magray_script", "run_magray", "strip_ansi"]

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


def magray_script() -> str:
    """The installed console script next to this interpreter (or on PATH)."""
    candidate = Path(sys.executable).parent / "magray"
    found = str(candidate) if candidate.exists() else shutil.which("magray")
    if not found:
        raise RuntimeError("the magray console script is not installed")
    return found


def llm_env(api_base: str, *, fallback: bool = False, timeout: float = 5.0) -> dict[str, str]:
    """Env vars that point magray's LLM at the loopback server."""
    env = {
        "MAGRAY_LLM__MODEL": "openai/test-model",
        "MAGRAY_LLM__API_BASE": api_base,
        "MAGRAY_LLM__TIMEOUT": str(timeout),
        "MAGRAY_LLM__MAX_RETRIES": "1",
        "MAGRAY_LLM__RETRY_BASE_DELAY": "0",
        "MAGRAY_LLM__STRUCTURED_MODE": "json_schema",
        "OPENAI_API_KEY": "sk-test-dummy",
    }
    if fallback:
        env["MAGRAY_LLM__FALLBACKS"] = json.dumps(["openai/backup"])
        env["MAGRAY_LLM__MODELS"] = json.dumps(
            {"openai/backup": {"api_base": api_base, "api_key": "sk-test-dummy"}}
        )
    return env


def run_magray(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``magray ARGS`` with the test's environment plus ``env``; stdin is not a TTY."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_LLM")}
    full.update(env or {})
    full.setdefault("MAGRAY_TOOLS__WORKSPACE", json.dumps([str(cwd)]))
    return subprocess.run(
        [magray_script(), *args],
        cwd=cwd,
        env=full,
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


_SPAWN = """
import os, sys
os.setsid()
fd = os.open(sys.argv[1], os.O_RDWR)  # the first tty a session leader opens becomes its terminal
for target in (0, 1, 2):
    os.dup2(fd, target)
os.close(fd)
os.execv(sys.argv[2], sys.argv[2:])
"""


class PtySession:
    """``magray ARGS`` on a pseudo-terminal: type lines, press Ctrl-C, wait for output."""

    def __init__(self, *args: str, cwd: Path, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        full = {k: v for k, v in os.environ.items() if not k.startswith("MAGRAY_LLM")}
        full.update(env)
        full.setdefault("MAGRAY_TOOLS__WORKSPACE", json.dumps([str(cwd)]))
        full.update({"TERM": "xterm-256color", "PROMPT_TOOLKIT_NO_CPR": "1", "COLUMNS": "100"})
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _SPAWN, os.ttyname(slave), magray_script(), *args],
            cwd=cwd,
            env=full,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(slave,),
        )
        os.close(slave)
        self.master = master
        self.output = ""

    def send(self, text: str) -> None:
        os.write(self.master, text.encode())

    def line(self, text: str) -> None:
        self.send(text + "\r")

    def expect(self, needle: str, *, timeout: float = 60.0, after: int = 0) -> str:
        """Read until ``needle`` shows up in the (ANSI-stripped) output past position
        ``after`` (see :meth:`mark`); returns all output."""
        deadline = time.monotonic() + timeout
        while needle not in strip_ansi(self.output)[after:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"{needle!r} did not appear; output so far:\n{strip_ansi(self.output)[-3000:]}"
                )
            ready, _, _ = select.select([self.master], [], [], min(left, 1.0))
            if ready:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # the child closed the terminal
                    chunk = b""
                if not chunk:
                    if needle in strip_ansi(self.output)[after:]:
                        break
                    raise AssertionError(
                        f"magray exited before {needle!r}; output:\n"
                        f"{strip_ansi(self.output)[-3000:]}"
                    )
                self.output += chunk.decode(errors="replace")
        return strip_ansi(self.output)

    def mark(self) -> int:
        """The current output length (to look only at what comes after)."""
        return len(strip_ansi(self.output))

    def since(self, mark: int) -> str:
        return strip_ansi(self.output)[mark:]

    def close(self, timeout: float = 20) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            os.close(self.master)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
