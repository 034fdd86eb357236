"""An example magray tool plugin: ``word_count`` counts lines, words and characters of a file.

It shows the three things a plugin does:

1. subclass :class:`magray.tools.Tool` with a name, an LLM-facing description,
   a pydantic args model and a risk level;
2. check every path through the policy it is given (``ctx.policy.check_read``),
   so the sandbox covers the plugin exactly as it covers built-ins;
3. advertise the class in the ``magray.tools`` entry-point group (pyproject.toml).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from magray.common.errors import InvalidInputError, NotFoundError
from magray.tools import Assessment, Risk, Tool, ToolContext, ToolResult

__all__ = ["WordCount", "WordCountArgs"]

_MAX_BYTES = 50 * 1024 * 1024


class WordCountArgs(BaseModel):
    """Arguments of ``word_count``."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="Text file inside the workspace.")


class WordCount(Tool[WordCountArgs]):
    """Count lines, words and characters of a UTF-8 text file (like ``wc``)."""

    name = "word_count"
    description = "Count the lines, words and characters of a text file in the workspace."
    args_model = WordCountArgs
    risk = Risk.READ
    path_args = ("path",)

    def assess(self, args: WordCountArgs, ctx: ToolContext) -> Assessment:
        ctx.policy.check_read(args.path, cwd=ctx.workspace)  # raises PolicyDeniedError
        return Assessment.allow()

    def run(self, args: WordCountArgs, ctx: ToolContext) -> ToolResult:
        path = ctx.policy.check_read(args.path, cwd=ctx.workspace)
        if not path.is_file():
            raise NotFoundError(f"no file {args.path}", hint="pass a file inside the workspace")
        if path.stat().st_size > _MAX_BYTES:
            raise InvalidInputError(f"{args.path} is larger than {_MAX_BYTES} bytes")
        text = path.read_text(encoding="utf-8", errors="replace")
        counts = {
            "lines": text.count("\n"),
            "words": len(text.split()),
            "chars": len(text),
        }
        return ToolResult(
            content=f"{counts['lines']} lines, {counts['words']} words, "
            f"{counts['chars']} characters in {args.path}",
            data=counts,
        )
