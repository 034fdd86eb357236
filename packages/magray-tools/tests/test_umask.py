"""What commands and file_write create in the workspace gets the user's umask, not magray's.

The CLI runs with a private umask (077) so its own data is 0600/0700; a user's
files must not become private because a tool made them.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from magray.common import fs
from magray.tools import Policy, ToolContext, ToolRegistry


@pytest.fixture
def private_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process runs as the CLI does: umask 077, the user's umask remembered as 022."""
    monkeypatch.setattr(fs, "_user_umask", 0o022)
    old = os.umask(fs.PRIVATE_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_shell_commands_create_files_with_the_users_umask(
    registry: ToolRegistry, workspace: Path, private_process: None
) -> None:
    ctx = ToolContext(policy=Policy.for_workspace(workspace), confirm=lambda _req: True)
    result = registry.call("shell_run", {"command": "touch made.txt"}, ctx)
    assert result.ok, result.error
    assert mode(workspace / "made.txt") == 0o644


def test_file_write_uses_the_users_umask_for_files_and_parents(
    registry: ToolRegistry, workspace: Path, private_process: None
) -> None:
    ctx = ToolContext(policy=Policy.for_workspace(workspace), confirm=lambda _req: True)
    result = registry.call(
        "file_write", {"path": "a/b/new.txt", "content": "x", "create_parents": True}, ctx
    )
    assert result.ok, result.error
    assert mode(workspace / "a" / "b" / "new.txt") == 0o644
    assert mode(workspace / "a") == 0o755
    assert mode(workspace / "a" / "b") == 0o755
