"""Connection strings shown to people: the password never is."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact_dsn"]


def redact_dsn(dsn: str) -> str:
    """The DSN without its password (for logs, stats and errors).

    Example:
        >>> redact_dsn("postgresql://me:s3cret@db:5432/app")
        'postgresql://me:***@db:5432/app'
    """
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
