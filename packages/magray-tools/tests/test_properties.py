"""Property tests: no path spelling escapes the roots; no command text crashes the classifier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from magray.tools import Action, Policy, PolicyDeniedError
from magray.tools.builtin import classify

SEGMENTS = ["..", ".", "a", "b", "in_link", "out_link", "loop", "", "~", "wsx", "ws", "\x00", " "]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("prop")
    ws, out = base / "ws", base / "wsx"
    (ws / "a" / "b").mkdir(parents=True)
    out.mkdir()
    (ws / "in_link").symlink_to(ws / "a")
    (ws / "a" / "out_link").symlink_to(out)
    (ws / "out_link").symlink_to(base)
    (ws / "loop").symlink_to(ws / "loop")
    return ws, out


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=8), absolute=st.booleans())
def test_no_path_spelling_escapes(
    sandbox: tuple[Path, Path], parts: list[str], absolute: bool
) -> None:
    ws, _ = sandbox
    policy = Policy.for_workspace(ws)
    raw = "/".join(parts)
    if absolute:
        raw = str(ws) + "/" + raw
    for check in (policy.check_read, policy.check_write):
        try:
            path = check(raw)
        except PolicyDeniedError:
            continue
        real = Path(os.path.realpath(path))
        assert real.is_relative_to(ws.resolve()), (raw, path, real)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=80))
def test_classifier_never_crashes_on_arbitrary_text(command: str) -> None:
    verdict = classify(command)
    assert verdict.action in set(Action)
    assert verdict.reason or verdict.action is Action.ALLOW


# No backslash: a trailing one would join the next line (``ls \<newline>rm -rf /`` is ``ls``).
SHELL_BITS = ["rm", "-rf", "/", "~", "ls", "|", "&&", ";", "sh", "-c", "'", '"', "$(", ")",
              "`", "curl", "x", "sudo", "env", "xargs", "(", "#", ">", "/etc/passwd"]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(SHELL_BITS), min_size=1, max_size=10))
def test_destructive_tail_is_never_allowed(bits: list[str]) -> None:
    # Whatever comes before it, a command ending in '; rm -rf /' must not be allowed.
    verdict = classify(" ".join(bits) + "\nrm -rf /")
    assert verdict.action is not Action.ALLOW, verdict
