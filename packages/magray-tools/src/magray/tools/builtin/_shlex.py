"""A small POSIX-shell tokenizer that keeps what the classifier needs to know.

It does quote removal like the shell (``'r'm`` and ``r\\m`` both become ``rm``)
but remembers, per word, whether it contains an unquoted ``$`` expansion, a
command substitution (its text is kept for separate judgement), or unquoted
glob characters. Operators (``;``, ``&&``, ``||``, ``|``, ``&``, ``(``, ``)``,
redirections, newlines) come out as separate tokens. Anything it cannot parse
(an unclosed quote) raises :class:`ShellSyntaxError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Op", "ShellSyntaxError", "Word", "tokenize"]

_OPERATORS = (
    "&&", "||", ";;", "|&", "&>>", "&>", ">>", ">|", ">&", "<<<", "<<", "<&", "<>",
    ";", "&", "|", "(", ")", ">", "<", "\n",
)  # fmt: skip
REDIRECTIONS = frozenset({">", ">>", ">|", "&>", "&>>", ">&", "<", "<<", "<<<", "<&", "<>"})
SEPARATORS = frozenset({";", "&", "&&", "||", "|", "|&", "(", ")", "\n", ";;"})


class ShellSyntaxError(ValueError):
    """The command cannot be tokenized (unclosed quote or substitution)."""


@dataclass
class Word:
    """A word after quote removal."""

    text: str = ""
    expansion: bool = False  # an unquoted or double-quoted $VAR / ${...} / $((...))
    glob: bool = False  # unquoted * ? [
    quoted: bool = False
    substitutions: list[str] = field(default_factory=list)  # bodies of $(...) and `...`

    @property
    def dynamic(self) -> bool:
        """True when the shell would compute this word at run time."""
        return self.expansion or bool(self.substitutions)


@dataclass(frozen=True)
class Op:
    """An operator token."""

    text: str


def _closing_paren(s: str, i: int) -> int:
    """Index just past the ``)`` matching the ``(`` at ``s[i]``, honouring quotes."""
    depth = 0
    quote = ""
    while i < len(s):
        c = s[i]
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "'\"":
            quote = c
        elif c == "\\":
            i += 2
            continue
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ShellSyntaxError("unclosed $( ... )")


def tokenize(command: str) -> list[Word | Op]:
    """Split ``command`` into words and operators.

    Raises:
        ShellSyntaxError: Unbalanced quotes or substitutions.
    """
    tokens: list[Word | Op] = []
    word: Word | None = None
    i, n = 0, len(command)

    def flush() -> None:
        nonlocal word
        if word is not None:
            tokens.append(word)
            word = None

    def cur() -> Word:
        nonlocal word
        if word is None:
            word = Word()
        return word

    while i < n:
        c = command[i]
        if c in " \t\r":
            flush()
            i += 1
            continue
        if c == "#" and word is None:  # comment to end of line
            end = command.find("\n", i)
            i = n if end == -1 else end
            continue
        op = next((o for o in _OPERATORS if command.startswith(o, i)), None)
        if op is not None:
            # "2>file": a word of digits right before a redirection is its fd number.
            if op in REDIRECTIONS and word is not None and word.text.isdigit() and not word.quoted:
                word = None
            flush()
            tokens.append(Op(op))
            i += len(op)
            continue
        if c == "\\":
            if i + 1 < n and command[i + 1] == "\n":
                i += 2
                continue
            cur().text += command[i + 1] if i + 1 < n else ""
            cur().quoted = True
            i += 2
            continue
        if c == "'":
            end = command.find("'", i + 1)
            if end == -1:
                raise ShellSyntaxError("unclosed single quote")
            w = cur()
            w.text += command[i + 1 : end]
            w.quoted = True
            i = end + 1
            continue
        if c == '"':
            i = _double_quoted(command, i + 1, cur())
            continue
        if c == "$":
            i = _dollar(command, i, cur())
            continue
        if c == "`":
            end = command.find("`", i + 1)
            if end == -1:
                raise ShellSyntaxError("unclosed backquote")
            w = cur()
            w.substitutions.append(command[i + 1 : end])
            w.text += "`...`"
            i = end + 1
            continue
        w = cur()
        if c in "*?[":
            w.glob = True
        w.text += c
        i += 1
    flush()
    return _process_substitutions(tokens)


def _double_quoted(s: str, i: int, word: Word) -> int:
    word.quoted = True
    while i < len(s):
        c = s[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < len(s) and s[i + 1] in '$`"\\\n':
            word.text += s[i + 1]
            i += 2
            continue
        if c == "$":
            i = _dollar(s, i, word)
            continue
        if c == "`":
            end = s.find("`", i + 1)
            if end == -1:
                raise ShellSyntaxError("unclosed backquote")
            word.substitutions.append(s[i + 1 : end])
            word.text += "`...`"
            i = end + 1
            continue
        word.text += c
        i += 1
    raise ShellSyntaxError("unclosed double quote")


def _dollar(s: str, i: int, word: Word) -> int:
    nxt = s[i + 1] if i + 1 < len(s) else ""
    if s.startswith("$((", i):
        end = _closing_paren(s, i + 1)
        word.expansion = True
        word.text += s[i:end]
        return end
    if nxt == "(":
        end = _closing_paren(s, i + 1)
        word.substitutions.append(s[i + 2 : end - 1])
        word.text += s[i:end]
        return end
    if nxt == "{":
        end = s.find("}", i + 2)
        if end == -1:
            raise ShellSyntaxError("unclosed ${")
        word.expansion = True
        word.text += s[i : end + 1]
        return end + 1
    if nxt == "'":  # $'...' ANSI-C quoting: the text is not what it looks like
        end = s.find("'", i + 2)
        if end == -1:
            raise ShellSyntaxError("unclosed $'")
        word.expansion = True
        word.text += s[i : end + 1]
        return end + 1
    if nxt and (nxt.isalnum() or nxt in "_@*#?$!-"):
        j = i + 2
        if nxt.isalpha() or nxt == "_":
            while j < len(s) and (s[j].isalnum() or s[j] == "_"):
                j += 1
        word.expansion = True
        word.text += s[i:j]
        return j
    word.text += "$"
    return i + 1


def _process_substitutions(tokens: list[Word | Op]) -> list[Word | Op]:
    """Turn ``<(cmd)`` / ``>(cmd)`` (tokenized as ``<`` ``(`` ... ``)``) into substitution words."""
    out: list[Word | Op] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if isinstance(tok, Op) and tok.text in {"<", ">"} and nxt == Op("("):
            depth, j, body = 0, i + 1, []
            while j < len(tokens):
                t = tokens[j]
                if t == Op("("):
                    depth += 1
                elif t == Op(")"):
                    depth -= 1
                    if depth == 0:
                        break
                if j > i + 1:
                    body.append(t.text)
                j += 1
            out.append(Word(text=f"{tok.text}(...)", substitutions=[" ".join(body)]))
            i = j + 1
            continue
        out.append(tok)
        i += 1
    return out
