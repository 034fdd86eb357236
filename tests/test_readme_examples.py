"""The README examples run, as a new user would run them.

What runs:

* Every fenced ```` ```python ```` block of every ``packages/*/README.md`` and of the root
  ``README.md``. The python blocks of one README run **in order, in one fresh interpreter**
  (``sys.executable``) and one namespace, as if concatenated: a block may continue an
  earlier one (use its imports and variables). A block preceded by
  ``<!-- example: separate -->`` starts a new interpreter instead. Tracebacks name the README
  and its line.
* Every line of a ```` ```bash ````/```` ```console ````/```` ```sh ```` block of a package
  README that starts with ``magray`` (after an optional ``$`` prompt) runs in its own process,
  without a shell (``shlex``; a trailing ``# comment`` is dropped), and must exit 0. Other
  lines (``pip install``, ``python3 scripts/build_wheels.py``, pipes) are installation or
  shell steps and are not run.
* Every ```` ```toml ```` block that is magray configuration (not ``[project...]``/``[tool...]``)
  must load with :func:`magray.common.settings.load_settings` (unknown keys are errors).

A block preceded by ``<!-- example: skip (REASON) -->`` is not run. The reason is mandatory
and is shown in pytest's ``-ra`` summary (one skipped test per block), so how many were
skipped and why is always visible. Only blank lines may stand between a marker and its fence.
Skip only what needs what a test machine does not have: an API key, a remote service,
PostgreSQL, a GPU, an interactive terminal, or minutes.

Each process gets a fresh temporary ``MAGRAY_HOME`` and working directory, no ``MAGRAY_*``
variable and no provider key from the developer's environment, and an HTTP(S) proxy on a closed
loopback port (``NO_PROXY`` = loopback): a request to the internet fails at once instead of
passing. A warning attributed to the example's own code is an error (a README must not
teach a deprecated name). ``EXPECTED`` holds what a README's comments say its examples print; the
output must contain each string, so a README whose shown output is wrong fails too.

``PENDING`` and ``KNOWN_BROKEN`` name examples in READMEs this file's author could not edit,
with the fix proposed to their owners; each entry fails the test once the README is fixed,
so it is removed then.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
MAGRAY = Path(sys.executable).parent / "magray"
TIMEOUT = 45.0
"""Seconds one example process may take (they take 0.2-8 s on 2 busy cores)."""

_MARKER = re.compile(
    r"<!--\s*example:\s*(?P<kind>skip|separate)\b\s*(?:\((?P<reason>[^)]*)\))?\s*-->"
)
_FENCE = re.compile(r"^```(?P<lang>[\w-]*)\s*$")
_SHELL_LANGS = {"bash", "console", "sh", "shell"}
_SECRET_VAR = re.compile(r"(API_KEY|API_TOKEN|_TOKEN|_SECRET)$|^(OPENAI|ANTHROPIC|AZURE|GROQ)_")

EXPECTED: dict[str, list[str]] = {
    "magray-common": ["local default", '"api_key": "***"', "\nok\n", "not_found list records"],
    "magray-ai": ["(3, 384) float32"],
    "magray-llm": ["hello\nhello\n{'a': 1}\n"],
    "magray-router": [
        "tool file_read ok:\n# demo",
        "the staging database is called orca",
        "- s1: grep TODO",
        "('s2', 'done', {'titles': ['app.py:1: # TODO: handle timeouts'",
        "tool git_log {'limit': 5}",
    ],
    "magray-todo": ["3 did report", "flowchart"],
    "magray-tools": ["permission.policy", "outside the readable roots"],
}
"""Strings each README (keyed by package folder) says its examples print (stdout + stderr)."""

PENDING: dict[tuple[str, str], str] = {}
"""Blocks (README, a snippet of their code) that need a skip marker their owner has not added
yet: treated as skipped with this reason, and an error once the marker is there."""

KNOWN_BROKEN: dict[str, str] = {}
"""Examples that fail today, in READMEs this file's author does not own (xfail, strict)."""


@dataclass
class Block:
    """One fenced block of a README."""

    readme: Path
    line: int  # 1-based line of the first code line
    lang: str
    code: str
    skip: str | None = None
    separate: bool = False

    @property
    def where(self) -> str:
        return f"{_rel(self.readme)}:{self.line}"


@dataclass
class Program:
    """Python blocks of one README that run in one interpreter."""

    readme: Path
    blocks: list[Block] = field(default_factory=list)

    @property
    def where(self) -> str:
        return self.blocks[0].where


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def parse_blocks(readme: Path, text: str | None = None) -> list[Block]:
    """Every fenced block of ``readme`` with the marker before it (and ``PENDING`` skips).

    Raises:
        ValueError: A skip marker without a reason, a marker not followed by a block,
            or an unclosed fence.
    """
    lines = (readme.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    pending: re.Match[str] | None = None
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if fence is None:
            marker = _MARKER.search(lines[i])
            if pending is not None and (marker is not None or lines[i].strip()):
                raise ValueError(f"{_rel(readme)}:{i + 1}: an example marker must precede a block")
            pending = marker or pending
            i += 1
            continue
        end = i + 1
        while end < len(lines) and not lines[end].startswith("```"):
            end += 1
        if end == len(lines):
            raise ValueError(f"{_rel(readme)}:{i + 1}: unclosed code fence")
        code = "\n".join(lines[i + 1 : end]) + "\n"
        block = Block(readme, i + 2, fence["lang"].lower(), code)
        if pending is not None:
            if pending["kind"] == "separate":
                block.separate = True
            elif not (pending["reason"] or "").strip():
                raise ValueError(f"{block.where}: `example: skip` needs a (reason)")
            else:
                block.skip = pending["reason"].strip()
        for (name, snippet), reason in PENDING.items():
            if _rel(readme) == name and snippet in code and block.lang == "python":
                if block.skip is not None:
                    raise ValueError(f"{block.where} has its marker now: remove it from PENDING")
                block.skip = f"marker missing in the README ({reason})"
        blocks.append(block)
        pending = None
        i = end + 1
    return blocks


def programs(readme: Path, blocks: list[Block]) -> list[Program]:
    """The python blocks grouped into interpreters (a ``separate`` block starts a new one)."""
    result: list[Program] = []
    for block in blocks:
        if block.lang != "python" or block.skip is not None:
            continue
        if not result or block.separate:
            result.append(Program(readme))
        result[-1].blocks.append(block)
    return result


def magray_commands(block: Block) -> list[list[str]]:
    """The ``magray ...`` command lines of a shell block, as argv lists."""
    commands = []
    for raw in block.code.splitlines():
        line = raw.strip().removeprefix("$").strip()
        if line == "magray" or line.startswith("magray "):
            commands.append(shlex.split(line, comments=True))
    return commands


def example_env(tmp: Path) -> dict[str, str]:
    """A new user's environment: a fresh MAGRAY_HOME, no keys, no internet."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MAGRAY_") and not _SECRET_VAR.search(key.upper())
    }
    home = tmp / "magray-home"
    home.mkdir(parents=True, exist_ok=True)
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens, a connect fails at once
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = dead
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(MAGRAY_HOME=str(home), PYTHONWARNINGS="error:::__main__", COLUMNS="120")
    return env


_DRIVER = """\
namespace = {"__name__": "__main__"}
for path, line, code in BLOCKS:
    exec(compile("\\n" * (line - 1) + code, path, "exec"), namespace)
"""


def _run(argv: list[str], tmp: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    cwd = tmp / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = subprocess.run(
        argv,
        cwd=cwd,
        env=example_env(tmp),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    return result, time.perf_counter() - started


def run_program(program: Program, tmp: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a program's blocks in one fresh interpreter in ``tmp/cwd``; (result, seconds)."""
    blocks = [(str(b.readme), b.line, b.code) for b in program.blocks]
    return _run([sys.executable, "-c", f"BLOCKS = {blocks!r}\n{_DRIVER}"], tmp)


def _report(what: str, result: subprocess.CompletedProcess[str], seconds: float) -> str:
    return (
        f"{what} exited {result.returncode} after {seconds:.1f} s\n"
        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-5000:]}"
    )


def _pending_command(block: Block, argv: list[str]) -> str | None:
    line = shlex.join(argv)
    for (name, snippet), reason in PENDING.items():
        if _rel(block.readme) == name and line.startswith(snippet):
            return f"marker missing in the README ({reason})"
    return None


def _collect() -> tuple[
    dict[Path, list[Program]], list[tuple[Block, list[str]]], list[tuple[str, str]], list[Block]
]:
    progs: dict[Path, list[Program]] = {}
    commands: list[tuple[Block, list[str]]] = []
    skipped: list[tuple[str, str]] = []  # (where, why)
    configs: list[Block] = []
    for readme in READMES:
        blocks = parse_blocks(readme)
        if found := programs(readme, blocks):
            progs[readme] = found
        for block in blocks:
            if block.lang in _SHELL_LANGS and readme.parent.parent.name == "packages":
                for argv in magray_commands(block):
                    pending = _pending_command(block, argv)
                    if pending is not None and block.skip is not None:
                        raise ValueError(
                            f"{block.where} has its marker now: remove it from PENDING"
                        )
                    why = block.skip or pending
                    if why is None:
                        commands.append((block, argv))
                    else:
                        skipped.append((f"{block.where}: {shlex.join(argv)}", why))
            elif block.lang == "python" and block.skip is not None:
                skipped.append((block.where, block.skip))
            elif block.lang == "toml" and not re.match(r"\s*\[(project|tool)\b", block.code):
                configs.append(block)
    return progs, commands, skipped, configs


PROGRAMS, COMMANDS, SKIPPED, CONFIGS = _collect()


@pytest.mark.parametrize("readme", list(PROGRAMS), ids=[_rel(r) for r in PROGRAMS])
def test_python_examples_run(readme: Path, tmp_path: Path) -> None:
    output = ""
    for index, program in enumerate(PROGRAMS[readme]):
        result, seconds = run_program(program, tmp_path / str(index))
        assert result.returncode == 0, _report(program.where, result, seconds)
        output += result.stdout + result.stderr
    for expected in EXPECTED.get(readme.parent.name, []):
        assert expected in output, f"{_rel(readme)} says its examples print {expected!r}:\n{output}"


def _command_param(block: Block, argv: list[str]) -> object:
    line = shlex.join(argv)
    marks = []
    if line in KNOWN_BROKEN:
        marks.append(pytest.mark.xfail(reason=KNOWN_BROKEN[line], strict=True))
    return pytest.param(block, argv, id=f"{block.where}:{line}", marks=marks)


@pytest.mark.parametrize(("block", "argv"), [_command_param(b, a) for b, a in COMMANDS])
def test_shell_example_runs(block: Block, argv: list[str], tmp_path: Path) -> None:
    result, seconds = _run([str(MAGRAY), *argv[1:]], tmp_path)
    assert result.returncode == 0, _report(f"{block.where}: {shlex.join(argv)}", result, seconds)


@pytest.mark.parametrize("block", CONFIGS, ids=[b.where for b in CONFIGS])
def test_config_example_loads(block: Block, tmp_path: Path) -> None:
    from magray.common.settings import load_settings

    path = tmp_path / "config.toml"
    path.write_text(block.code, encoding="utf-8")
    data = tomllib.loads(block.code)
    settings = load_settings(path).settings
    for section, values in data.items():
        assert getattr(settings, section) is not None, section
        for key in values:
            assert hasattr(getattr(settings, section), key), f"{block.where}: {section}.{key}"


@pytest.mark.parametrize(("where", "why"), SKIPPED, ids=[where for where, _ in SKIPPED])
def test_skipped_example(where: str, why: str) -> None:
    pytest.skip(f"{where}: {why}")


def test_every_package_readme_has_an_example_that_runs() -> None:
    """Each package README promises a runnable example: a python block or a magray line."""
    runnable = set(PROGRAMS) | {b.readme for b, _ in COMMANDS}
    missing = [_rel(r) for r in READMES[1:] if r not in runnable]
    assert missing == [], missing


def test_known_failures_still_exist() -> None:
    """PENDING and KNOWN_BROKEN name real blocks (an entry whose README changed goes)."""
    texts = {_rel(r): r.read_text(encoding="utf-8") for r in READMES}
    for name, snippet in PENDING:
        assert snippet in texts[name], (name, snippet)
    lines = {shlex.join(argv) for _, argv in COMMANDS}
    assert set(KNOWN_BROKEN) <= lines, set(KNOWN_BROKEN) - lines


# ---------------------------------------------------------------- the checker itself can fail

_SAMPLE = """\
# demo

```python
from magray.common.errors import NotFoundError
```

Continued:

```python
print(NotFoundError("x").code)
```

<!-- example: skip (needs an API key) -->

```python
raise SystemExit("never run")
```

<!-- example: separate -->
```python
print("fresh", "NotFoundError" in globals())
```
"""


def test_blocks_continue_skip_and_separate(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(_SAMPLE)
    blocks = parse_blocks(readme)
    assert [(b.skip, b.separate) for b in blocks] == [
        (None, False),
        (None, False),
        ("needs an API key", False),
        (None, True),
    ]
    first, second = programs(readme, blocks)
    assert [b.line for b in first.blocks] == [4, 10]
    assert run_program(first, tmp_path / "a")[0].stdout == "not_found\n"
    assert run_program(second, tmp_path / "b")[0].stdout == "fresh False\n"


def test_a_broken_example_fails_and_names_its_line(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(_SAMPLE.replace("NotFoundError(", "NotFound("))
    result, _ = run_program(programs(readme, parse_blocks(readme))[0], tmp_path)
    assert result.returncode != 0
    assert f'File "{readme}", line 10' in result.stderr
    assert "NameError" in result.stderr


def test_examples_get_no_internet_and_no_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = (
        "import os, urllib.request\n"
        "assert not os.environ.get('OPENAI_API_KEY'), 'a key leaked in'\n"
        "assert os.environ['MAGRAY_HOME'] != os.environ.get('HOME')\n"
        "try:\n"
        "    urllib.request.urlopen('http://example.com/', timeout=10)\n"
        "except OSError as exc:\n"
        "    print('refused', type(exc).__name__)\n"
    )
    block = Block(tmp_path / "README.md", 1, "python", code)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-developer")
    result, seconds = run_program(Program(block.readme, [block]), tmp_path)
    assert result.returncode == 0, _report("no-internet check", result, seconds)
    assert result.stdout.startswith("refused"), result.stdout
    assert seconds < 10


def test_a_deprecation_warning_in_an_example_fails(tmp_path: Path) -> None:
    code = "import warnings\nwarnings.warn('old name', DeprecationWarning)\n"
    block = Block(tmp_path / "README.md", 1, "python", code)
    result, _ = run_program(Program(block.readme, [block]), tmp_path)
    assert result.returncode != 0
    assert "DeprecationWarning: old name" in result.stderr


def test_marker_errors(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    with pytest.raises(ValueError, match="needs a"):
        parse_blocks(readme, "<!-- example: skip -->\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="must precede a block"):
        parse_blocks(readme, "<!-- example: separate -->\ntext\n```python\npass\n```\n")
    with pytest.raises(ValueError, match="unclosed"):
        parse_blocks(readme, "```python\npass\n")
    shell = parse_blocks(readme, "```console\n$ magray tools list  # all\npip install x\n```\n")
    assert magray_commands(shell[0]) == [["magray", "tools", "list"]]
