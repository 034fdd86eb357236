"""The built-in tools. They register through the ``magray.tools`` entry-point group
(see this package's pyproject.toml), exactly like third-party plugins do."""

from magray.tools.builtin._classify import Verdict, classify
from magray.tools.builtin._files import FileEdit, FileRead, FileWrite
from magray.tools.builtin._git import (
    GitAdd,
    GitBranch,
    GitCommit,
    GitDiff,
    GitLog,
    GitShow,
    GitStatus,
)
from magray.tools.builtin._search import (
    PROVIDER_GROUP,
    DuckDuckGoProvider,
    SearchHit,
    SearchProvider,
    WebSearch,
    load_provider,
)
from magray.tools.builtin._shell import ShellRun
from magray.tools.builtin._tree import FileGlob, FileGrep, FileList
from magray.tools.builtin._web import WebFetch, check_url

__all__ = [
    # files
    "FileEdit",
    "FileGlob",
    "FileGrep",
    "FileList",
    "FileRead",
    "FileWrite",
    # git
    "GitAdd",
    "GitBranch",
    "GitCommit",
    "GitDiff",
    "GitLog",
    "GitShow",
    "GitStatus",
    # web
    "WebFetch",
    "WebSearch",
    "check_url",
    "PROVIDER_GROUP",
    "DuckDuckGoProvider",
    "SearchHit",
    "SearchProvider",
    "load_provider",
    # shell
    "ShellRun",
    "Verdict",
    "classify",
]
