"""The event store's databases: URLs, engines (SQLite in WAL mode, PostgreSQL) and Alembic migrations.

There is no ``alembic.ini``: :func:`alembic_config` builds the configuration in code.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    create_engine,
    event,
    text,
)
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import StaticPool

from railwatch.errors import InputError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
_MIGRATION_LOCK_KEY = 0x7261696C  # "rail": serialises migrate() calls on one PostgreSQL database
WRITE_OPTION = "railwatch_write"


# ---------------------------------------------------------------------------------------------
# URLs, engines and migrations


def default_url(data_dir: Path) -> str:
    """The SQLite database of a service data folder: ``sqlite:///<data_dir>/railwatch.db``."""
    return f"sqlite:///{(Path(data_dir).expanduser().resolve() / 'railwatch.db').as_posix()}"


def mask(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: mask what looks like user:password@
        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)


def reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's boilerplate."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def open_error(url: str, reason: str) -> InputError:
    return InputError(f"cannot open database {mask(url)}: {reason}")


def make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL), set up for the store; InputError if the URL is bad."""
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"database URL must be a non-empty string, got {url!r}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise open_error(url, "not a database URL (use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)") from None
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver railwatch installs
        backend = "postgresql"
    if backend not in ("sqlite", "postgresql"):
        raise open_error(url, f"unsupported database kind {parsed.drivername!r} (use sqlite or postgresql+psycopg)")

    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        kwargs["connect_args"] = {"check_same_thread": False}
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database for every thread
        elif not database.startswith("file:"):
            parent = Path(database).expanduser().absolute().parent
            if not parent.is_dir():
                raise open_error(url, f"folder {parent} does not exist")
    else:
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise open_error(url, reason(exc)) from None
    if backend == "sqlite":
        _setup_sqlite(engine)
    return engine


def _setup_sqlite(engine: Engine) -> None:
    """WAL, foreign keys, busy timeout, and real transactions (BEGIN IMMEDIATE for writes)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, connection_record) -> None:
        # take transaction control from the sqlite3 module, which would BEGIN only before DML
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn) -> None:
        # a writer takes the write lock at once, waiting up to the busy timeout for it; a
        # deferred BEGIN would fail at once when its read snapshot went stale before the write
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config() -> Config:
    """The Alembic configuration of the store (no ``alembic.ini``): script location and logging off."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR.as_posix())
    return config


def head_revision() -> str:
    """The newest migration revision."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    from alembic import command

    config = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``); idempotent."""
    engine = make_engine(url)
    try:
        upgrade(engine)
    except (DBAPIError, ArgumentError, ImportError) as exc:
        raise open_error(url, reason(exc)) from None
    finally:
        engine.dispose()


