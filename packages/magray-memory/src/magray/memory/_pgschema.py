"""What a postgres store is made of: its DSN, its schema's tables and their migrations.

One store is one PostgreSQL schema (``magray`` by default; ``?schema=NAME`` in the DSN
or ``memory.pg_schema`` picks another). ``MIGRATIONS[i]`` moves a store from schema
version ``i`` to ``i + 1``; the backend runs them under the store's advisory lock.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from magray.common.errors import DependencyMissingError, InvalidInputError

__all__ = [
    "BULK_ROWS",
    "COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "import_driver",
    "is_dsn",
    "one_line",
    "split_dsn",
]

SCHEMA_VERSION = 1
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
COLUMNS = (
    "label, id, layer, text, metadata_text, content_hash, created_at, updated_at, "
    "last_access, access_count, importance, expires_at, pinned, model_id, dim"
)
# An insert of at least this many rows, and at least as many as the store holds, drops the
# HNSW index, loads the rows and rebuilds the index in bulk.
BULK_ROWS = 2_000


def is_dsn(value: object) -> bool:
    """Whether ``value`` is a PostgreSQL URL (``postgres://`` or ``postgresql://``)."""
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def split_dsn(dsn: str, default_schema: str = "magray") -> tuple[str, str]:
    """``(libpq dsn, schema)``: the ``schema`` query parameter is ours, not libpq's."""
    parts = urlsplit(dsn)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = default_schema
    kept = []
    for key, value in query:
        if key == "schema":
            schema = value
        else:
            kept.append((key, value))
    if not _SCHEMA_NAME.match(schema):
        raise InvalidInputError(
            f"invalid store schema name {schema!r}",
            hint="use lower-case letters, digits and _ (at most 63), e.g. ?schema=team_memory",
        )
    return urlunsplit(parts._replace(query=urlencode(kept))), schema


def one_line(exc: BaseException) -> str:
    """libpq's multi-line messages on one line (the CLI prints errors as one line)."""
    return " ".join(str(exc).split())


def import_driver() -> tuple[Any, Any, Any]:
    try:
        import psycopg
        import psycopg_pool
        from pgvector.psycopg import register_vector
    except ImportError as exc:
        raise DependencyMissingError(
            f"the postgres memory backend needs psycopg, psycopg_pool and pgvector ({exc})",
            hint='pip install "magray-memory[postgres]"',
        ) from None
    return psycopg, psycopg_pool, register_vector


def _migration_1(schema: str) -> list[str]:
    s = f'"{schema}"'
    return [
        f"CREATE TABLE IF NOT EXISTS {s}.meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"CREATE SEQUENCE IF NOT EXISTS {s}.labels",
        f"""CREATE TABLE IF NOT EXISTS {s}.records (
            label BIGINT NOT NULL UNIQUE DEFAULT nextval('{schema}.labels'),
            id TEXT PRIMARY KEY,
            layer TEXT NOT NULL,
            text TEXT NOT NULL,
            metadata JSONB NOT NULL DEFAULT '{{}}',
            metadata_text TEXT NOT NULL DEFAULT '{{}}',
            content_hash TEXT NOT NULL,
            created_at DOUBLE PRECISION NOT NULL,
            updated_at DOUBLE PRECISION NOT NULL,
            last_access DOUBLE PRECISION NOT NULL,
            access_count BIGINT NOT NULL DEFAULT 0,
            importance DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            expires_at DOUBLE PRECISION,
            pinned SMALLINT NOT NULL DEFAULT 0,
            model_id TEXT NOT NULL,
            dim INTEGER NOT NULL,
            embedding vector NOT NULL
        )""",
        f"CREATE INDEX IF NOT EXISTS records_layer_hash ON {s}.records (layer, content_hash)",
        f"CREATE INDEX IF NOT EXISTS records_expires ON {s}.records (expires_at) "
        "WHERE expires_at IS NOT NULL",
        f"CREATE INDEX IF NOT EXISTS records_metadata ON {s}.records USING gin (metadata)",
        f"""CREATE TABLE IF NOT EXISTS {s}.history (
            seq BIGSERIAL PRIMARY KEY,
            record_id TEXT NOT NULL,
            event TEXT NOT NULL,
            at DOUBLE PRECISION NOT NULL,
            layer TEXT,
            details TEXT NOT NULL DEFAULT '{{}}'
        )""",
        f"CREATE INDEX IF NOT EXISTS history_record ON {s}.history (record_id, seq)",
        f"""CREATE TABLE IF NOT EXISTS {s}.embed_cache (
            model_id TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BYTEA NOT NULL,
            PRIMARY KEY (model_id, text_hash)
        )""",
    ]


# MIGRATIONS[i] moves a store schema from version i to i + 1.
MIGRATIONS: list[Callable[[str], list[str]]] = [_migration_1]
