"""The sandbox policy: one object that every tool call is checked against.

A :class:`Policy` holds the read and write roots, the allow/deny/ask rules,
the network allowlist, private networks that are allowed anyway, the per-call
timeout and output cap, and the list of env vars that may pass to children.
Build it with :meth:`Policy.from_settings` (settings plus an optional TOML
policy file) or directly in tests.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magray.common.errors import ConfigError
from magray.tools._model import Action
from magray.tools._rules import Rule, load_policy_file
from magray.tools.errors import PolicyDeniedError

if TYPE_CHECKING:
    from magray.common.settings import ToolsSettings
    from magray.tools._sandbox import Mechanism, Mode

__all__ = ["IPNetwork", "Policy", "is_secret_env"]

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Directory names inside a write root that tools never write into: a write to
# .git/hooks or .git/config would run code on the next git command.
PROTECTED_DIRS = frozenset({".git"})

# Cloud metadata endpoints: blocked even when their network is allowed.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254")
)


def _networks(values: Iterable[str], source: str) -> tuple[IPNetwork, ...]:
    out = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ConfigError(
                f"{source}: {value!r} is not an IP network",
                hint="write CIDRs such as '127.0.0.1/32' or '10.0.0.0/8'",
                code="config.policy",
            ) from None
    return tuple(out)


def _resolve_root(path: Path) -> Path:
    return Path(os.path.expanduser(path)).resolve()


# Env var names (split on '_') containing one of these words are treated as secrets.
_SECRET_WORDS = frozenset(
    {
        "KEY", "APIKEY", "TOKEN", "SECRET", "SECRETS", "PASSWORD", "PASSWD", "PASS",
        "PASSPHRASE", "CREDENTIAL", "CREDENTIALS", "AUTH", "COOKIE", "PRIVATE",
        "DSN", "PAT", "SIGNATURE", "BEARER", "JWT",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD")
_SECRET_VALUE = re.compile(
    r"^(sk-|sk_live_|rk_live_|ghp_|gho_|ghs_|ghu_|github_pat_|glpat-|xox[abprs]-|AKIA[0-9A-Z]{12}"
    r"|AIza[0-9A-Za-z_-]{20}|hf_[A-Za-z0-9]{20}|eyJ[A-Za-z0-9_-]{10,}\.)"
    r"|://[^/\s:@]+:[^/\s@]+@"  # credentials inside a URL
)


def is_secret_env(name: str, value: str) -> bool:
    """Whether an env var looks like it holds a key, token or password."""
    upper = name.upper()
    if upper in {"PWD", "OLDPWD"}:
        return False
    words = set(re.split(r"[_\W]+", upper))
    if words & _SECRET_WORDS or upper.endswith(_SECRET_SUFFIXES):
        return True
    return bool(_SECRET_VALUE.search(value))


@dataclass(frozen=True)
class Policy:
    """What tools may touch. Immutable; build a new one to change it.

    Attributes:
        write_roots: Directories tools may write in (and read).
        read_roots: Extra directories tools may only read.
        rules: allow/deny/ask rules, checked in order, last match wins.
        network_allowlist: Hosts reachable without asking (``"*"``, ``"*.x.org"``, ``"x.org"``).
        allow_private_networks: Non-public networks web tools may reach anyway.
        timeout: Seconds per call.
        max_output_bytes: Cap on a result's content and captured output.
        allow_shell: Whether the shell tool may run commands through ``/bin/sh -c``.
        sandbox: OS confinement of child processes (``read-only``, ``workspace-write``, ``full``).
        sandbox_mechanism: ``auto``, ``bwrap``, ``landlock``, ``seatbelt`` or ``none``.
        sandbox_network: Whether confined children keep the network.
        allow_overwrite: file_write replaces existing files without asking.
        allow_commit: git_commit runs without asking.
        assume_yes: Approve ``ask`` verdicts without the confirmation callback.
        disabled: Tool names (globs) that are not offered.
        env_passthrough: Env var names (globs) children get besides the base allow-list.
        search_provider: Entry-point name of the web search provider.
        ca_bundle: Extra PEM CA certificates web tools trust (besides the system store).
    """

    write_roots: tuple[Path, ...]
    read_roots: tuple[Path, ...] = ()
    rules: tuple[Rule, ...] = ()
    network_allowlist: tuple[str, ...] = ()
    allow_private_networks: tuple[IPNetwork, ...] = ()
    timeout: float = 30.0
    max_output_bytes: int = 64_000
    allow_shell: bool = False
    sandbox: Mode = "workspace-write"
    sandbox_mechanism: str = "auto"
    sandbox_network: bool = False
    allow_overwrite: bool = False
    allow_commit: bool = False
    assume_yes: bool = False
    disabled: tuple[str, ...] = ()
    env_passthrough: tuple[str, ...] = ()
    search_provider: str = "duckduckgo"
    ca_bundle: Path | None = None

    def __post_init__(self) -> None:
        if not self.write_roots:
            raise ConfigError("a policy needs at least one workspace root", code="config.policy")
        object.__setattr__(self, "write_roots", tuple(_resolve_root(p) for p in self.write_roots))
        object.__setattr__(self, "read_roots", tuple(_resolve_root(p) for p in self.read_roots))

    # ------------------------------------------------------------------ building
    @classmethod
    def for_workspace(cls, root: Path, **options: Any) -> Policy:
        """A policy whose only root is ``root`` (handy in scripts and tests)."""
        nets = options.pop("allow_private_networks", ())
        return cls(
            write_roots=(Path(root),),
            allow_private_networks=_networks(nets, "allow_private_networks"),
            **options,
        )

    @classmethod
    def from_settings(
        cls,
        settings: ToolsSettings,
        *,
        cwd: Path | None = None,
        assume_yes: bool | None = None,
    ) -> Policy:
        """Build the policy from the ``[tools]`` settings and its policy file.

        Rules from settings come first, then the policy file's, so the file's
        rules win where both match (last match wins).
        """
        roots = list(settings.workspace) or [cwd or Path.cwd()]
        read_only = list(settings.read_only)
        allow = list(settings.network_allowlist)
        private = list(settings.allow_private_networks)
        passthrough = list(settings.env_passthrough)
        rules = [
            Rule(r.tool, Action(r.action), dict(r.args), r.reason, source="settings")
            for r in settings.rules
        ]
        if settings.policy_file is not None:
            data = load_policy_file(Path(os.path.expanduser(settings.policy_file)))
            read_only += data.read_only
            allow += data.network_allowlist
            private += data.allow_private_networks
            passthrough += data.env_passthrough
            rules += data.rules
        return cls(
            write_roots=tuple(roots),
            read_roots=tuple(read_only),
            rules=tuple(rules),
            network_allowlist=tuple(allow),
            allow_private_networks=_networks(private, "tools.allow_private_networks"),
            timeout=settings.timeout,
            max_output_bytes=settings.max_output_bytes,
            allow_shell=settings.allow_shell,
            sandbox=settings.sandbox,
            sandbox_mechanism=settings.sandbox_mechanism,
            sandbox_network=settings.sandbox_network,
            allow_overwrite=settings.allow_overwrite,
            allow_commit=settings.allow_commit,
            assume_yes=settings.assume_yes if assume_yes is None else assume_yes,
            disabled=tuple(settings.disabled),
            env_passthrough=tuple(passthrough),
            search_provider=settings.search_provider,
            ca_bundle=(
                Path(os.path.expanduser(settings.ca_bundle)) if settings.ca_bundle else None
            ),
        )

    # ------------------------------------------------------------------ paths
    @property
    def primary_root(self) -> Path:
        """The first write root: where relative paths start."""
        return self.write_roots[0]

    @property
    def all_read_roots(self) -> tuple[Path, ...]:
        return self.write_roots + self.read_roots

    def resolve(self, raw: str | os.PathLike[str], *, cwd: Path | None = None) -> Path:
        """Absolute path with ``~``, ``..`` and every existing symlink resolved.

        Raises:
            PolicyDeniedError: The path is empty, has a NUL byte or cannot be resolved.
        """
        text = os.fspath(raw)
        if "\x00" in text:
            raise PolicyDeniedError(
                "path contains a NUL byte", hint="pass a plain path", details={"path": text}
            )
        if not text.strip():
            raise PolicyDeniedError("path is empty", hint="pass a path inside the workspace")
        path = Path(os.path.expanduser(text))
        if not path.is_absolute():
            path = (cwd or self.primary_root) / path
        try:
            return path.resolve(strict=False)
        except (OSError, RuntimeError) as exc:  # symlink loops raise RuntimeError on 3.11
            raise PolicyDeniedError(
                f"cannot resolve path {text!r}: {exc}",
                hint="symlink loops and unreadable parents are refused",
                details={"path": text},
            ) from None

    def check_read(self, raw: str | os.PathLike[str], *, cwd: Path | None = None) -> Path:
        """The resolved path if it lies inside a read or write root.

        Raises:
            PolicyDeniedError: It does not (after resolving symlinks and ``..``).
        """
        path = self.resolve(raw, cwd=cwd)
        if any(path.is_relative_to(root) for root in self.all_read_roots):
            return path
        raise PolicyDeniedError(
            f"{os.fspath(raw)!r} resolves to {path}, outside the readable roots",
            hint=f"roots: {', '.join(map(str, self.all_read_roots))}; "
            "add one with tools.workspace or tools.read_only",
            details={"path": str(path)},
        )

    def check_write(self, raw: str | os.PathLike[str], *, cwd: Path | None = None) -> Path:
        """The resolved path if it lies inside a write root and outside protected dirs.

        Raises:
            PolicyDeniedError: It does not.
        """
        path = self.resolve(raw, cwd=cwd)
        for root in self.write_roots:
            if path.is_relative_to(root):
                inside = path.relative_to(root).parts
                # Case and trailing dots/spaces are ignored: '.GIT' is '.git' on
                # case-insensitive file systems (macOS, Windows).
                hit = next((p for p in inside if p.lower().rstrip(". ") in PROTECTED_DIRS), None)
                if hit is not None:
                    raise PolicyDeniedError(
                        f"{os.fspath(raw)!r} is inside a protected {hit} directory",
                        hint="use the git tools to change repository state",
                        details={"path": str(path)},
                    )
                return path
        raise PolicyDeniedError(
            f"{os.fspath(raw)!r} resolves to {path}, outside the writable roots",
            hint=f"writable roots: {', '.join(map(str, self.write_roots))}; "
            "add one with tools.workspace",
            details={"path": str(path)},
        )

    # ------------------------------------------------------------------ rules
    def match_rule(
        self,
        tool: str,
        values: Mapping[str, Sequence[str]],
        every: Mapping[str, Sequence[str]] | None = None,
    ) -> Rule | None:
        """The last rule matching ``tool`` and the argument ``values``, if any."""
        found = None
        for rule in self.rules:
            if rule.matches(tool, values, every):
                found = rule
        return found

    def path_rule(self, tool: str, path: Path) -> Rule | None:
        """The last *path rule* (a rule whose only argument is ``path``) matching ``path``.

        Path rules apply to every path a tool touches, not only its ``path``
        argument: files a walk meets (file_list, file_glob, file_grep) and the
        files a shell command names. ``path`` is matched as given and resolved.
        """
        forms = [str(path)]
        try:
            resolved = str(path.resolve(strict=False))
        except (OSError, RuntimeError):
            resolved = str(path)
        if resolved not in forms:
            forms.append(resolved)
        found = None
        for rule in self.rules:
            if set(rule.args) == {"path"} and rule.matches(tool, {"path": forms}):
                found = rule
        return found

    def path_rule_blocks(self, tool: str, path: Path) -> bool:
        """Whether a path rule denies or asks for ``path`` (walks leave such paths out)."""
        rule = self.path_rule(tool, path)
        return rule is not None and rule.action is not Action.ALLOW

    def is_disabled(self, tool: str) -> bool:
        return any(fnmatchcase(tool, pattern) for pattern in self.disabled)

    # ------------------------------------------------------------------ network
    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` is on the allowlist (so reaching it needs no confirmation)."""
        host = host.lower().rstrip(".")
        for raw in self.network_allowlist:
            entry = raw.lower().rstrip(".")
            if entry in {"*", host}:
                return True
            if entry.startswith("*.") and host.endswith(entry[1:]):
                return True
        return False

    def address_allowed(self, address: IPAddress) -> tuple[bool, str]:
        """``(allowed, reason)`` for one resolved address (the SSRF check)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            for embedded in (address.ipv4_mapped, address.sixtofour):
                if embedded is not None:
                    candidates.append(embedded)
            if address.teredo is not None:
                candidates.extend(address.teredo)
        for ip in candidates:
            if ip in METADATA_ADDRESSES:
                return False, f"{address} is a cloud metadata address"
        if any(ip in net for net in self.allow_private_networks for ip in [address]):
            return True, "explicitly allowed network"
        for ip in reversed(candidates):  # an embedded IPv4 address names the real target
            if not ip.is_global or ip.is_multicast:
                kind = _address_kind(ip)
                article = "an" if kind[0] in "aeiou" else "a"
                via = f" (embedding {ip})" if ip != address else ""
                return False, f"{address}{via} is {article} {kind} address"
        return True, "public address"

    # ------------------------------------------------------------------ sandbox
    def mechanism(self) -> Mechanism:
        """How child processes are confined under this policy (probed once per process)."""
        from magray.tools._sandbox import detect_mechanism

        return detect_mechanism(self.sandbox_mechanism)

    def confined(self, mode: Mode | None = None) -> bool:
        """Whether children run with file-system confinement in ``mode``."""
        return (mode or self.sandbox) != "full" and self.mechanism().confines


def _address_kind(ip: IPAddress) -> str:
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_private:
        return "private"
    if ip.is_reserved:
        return "reserved"
    return "non-public"
