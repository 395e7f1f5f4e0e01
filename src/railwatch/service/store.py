"""The event store: every run, event and job of the service, in SQLite or PostgreSQL.

A *run* is one pass of a module (fasteners, surface, vibration, intrusion) over one input; it
produces *events* (a fastener verdict, a surface defect, a scored DAS section, an intrusion
alert), each with a key that is unique within its run, so storing the same event twice stores
it once. A *job* is a queued request to make a run.

Guarantees:

- ``add_events`` stores a batch in one transaction: all of it or nothing. A service that stops
  in the middle of a batch leaves no part of it behind, and running the batch again (the job is
  queued again by ``requeue_interrupted``) stores each event exactly once.
- SQLite runs in WAL mode with a busy timeout, and every write transaction takes the write lock
  when it begins (``BEGIN IMMEDIATE``), so threads and processes writing at once wait for each
  other instead of failing.
- Times are stored and returned as UTC; the dicts returned hold only JSON types (times as ISO
  8601 strings ending in ``+00:00``).

The schema is made by the Alembic migrations in ``migrations/`` (``migrate(url)``); there is no
``alembic.ini``: ``alembic_config()`` builds the configuration in code.

Example:
    >>> store = EventStore("sqlite://")
    >>> run_id = store.create_run("fasteners", "crops/")
    >>> store.add_events(run_id, [{"key": "crop_0007", "level": 1, "label": "missing_bolt"}])
    1
    >>> store.add_events(run_id, [{"key": "crop_0007", "level": 1, "label": "missing_bolt"}])
    0
    >>> store.events(level_min=1)[0]["label"]
    'missing_bolt'
    >>> store.close()
"""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

from railwatch.errors import InputError

__all__ = [
    "EVENT_FIELDS",
    "JOB_STATUSES",
    "MODULES",
    "RUN_STATUSES",
    "Base",
    "Event",
    "EventStore",
    "Job",
    "Run",
    "alembic_config",
    "default_url",
    "head_revision",
    "migrate",
]

MODULES = ("fasteners", "surface", "vibration", "intrusion")
RUN_STATUSES = ("running", "done", "failed")
JOB_STATUSES = ("queued", "running", "done", "failed")
#: the event kind a module's events get when the event dict names none
DEFAULT_KINDS = {
    "fasteners": "fastener_verdict",
    "surface": "surface_defect",
    "vibration": "das_section",
    "intrusion": "intrusion_alert",
}
#: the keys an event dict passed to ``add_events`` may hold (``key`` is required)
EVENT_FIELDS = (
    "key",
    "module",
    "kind",
    "time",
    "source",
    "line_id",
    "chainage_km",
    "level",
    "score",
    "label",
    "details",
    "picture",
)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000
POSTGRES_CONNECT_TIMEOUT_S = 10
_MIGRATION_LOCK_KEY = 0x7261696C  # "rail": serialises migrate() calls on one PostgreSQL database
_WRITE_OPTION = "railwatch_write"
_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    Naive datetimes are taken as UTC; aware ones are converted to UTC. SQLite keeps no zone,
    so the value is stored as naive UTC there and made aware again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = _as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return _as_utc(value)


def _as_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Run(Base):
    """One pass of a module over one input."""

    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    module: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String)
    line_id: Mapped[str | None] = mapped_column(String)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    report_path: Mapped[str | None] = mapped_column(String)


class Event(Base):
    """One finding of a run; ``key`` is unique within the run."""

    __tablename__ = "events"
    __table_args__ = (UniqueConstraint("run_id", "key"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(String(32), ForeignKey("runs.id"), index=True)
    key: Mapped[str] = mapped_column(String)
    module: Mapped[str] = mapped_column(String(16), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    source: Mapped[str] = mapped_column(String)
    line_id: Mapped[str | None] = mapped_column(String, index=True)
    chainage_km: Mapped[float | None] = mapped_column(Float, index=True)
    level: Mapped[int | None] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    picture: Mapped[str | None] = mapped_column(String)


class Job(Base):
    """A queued request to run a module on an input below the data folder."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    module: Mapped[str] = mapped_column(String(16))
    input_path: Mapped[str] = mapped_column(String)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    run_id: Mapped[str | None] = mapped_column(String(32), ForeignKey("runs.id"))
    line_id: Mapped[str | None] = mapped_column(String)
    chainage_km: Mapped[float | None] = mapped_column(Float)


RUNS = Run.__table__
EVENTS = Event.__table__
JOBS = Job.__table__


# ---------------------------------------------------------------------------------------------
# URLs, engines and migrations


def default_url(data_dir: Path) -> str:
    """The SQLite database of a service data folder: ``sqlite:///<data_dir>/railwatch.db``."""
    return f"sqlite:///{(Path(data_dir).expanduser().resolve() / 'railwatch.db').as_posix()}"


def _mask(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not even parseable: mask what looks like user:password@
        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1***@", url)


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's boilerplate."""
    inner = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(inner).splitlines() if line.strip()]
    return lines[0] if lines else type(inner).__name__


def _open_error(url: str, reason: str) -> InputError:
    return InputError(f"cannot open database {_mask(url)}: {reason}")


def _make_engine(url: str) -> Engine:
    """An engine for ``url`` (SQLite or PostgreSQL), set up for the store; InputError if the URL is bad."""
    if not isinstance(url, str) or not url.strip():
        raise InputError(f"database URL must be a non-empty string, got {url!r}")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise _open_error(url, "not a database URL (use sqlite:///path/to/file.db or postgresql+psycopg://user@host/db)") from None
    backend = parsed.get_backend_name()
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver railwatch installs
        backend = "postgresql"
    if backend not in ("sqlite", "postgresql"):
        raise _open_error(url, f"unsupported database kind {parsed.drivername!r} (use sqlite or postgresql+psycopg)")

    kwargs: dict[str, Any] = {}
    if backend == "sqlite":
        database = parsed.database or ""
        kwargs["connect_args"] = {"check_same_thread": False}
        if database in ("", ":memory:"):
            kwargs["poolclass"] = StaticPool  # one shared in-memory database for every thread
        elif not database.startswith("file:"):
            parent = Path(database).expanduser().absolute().parent
            if not parent.is_dir():
                raise _open_error(url, f"folder {parent} does not exist")
    else:
        if "connect_timeout" not in parsed.query:
            kwargs["connect_args"] = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S}
        kwargs["pool_pre_ping"] = True
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise _open_error(url, _reason(exc)) from None
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
        immediate = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def alembic_config():
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


def _current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def _upgrade(engine: Engine) -> None:
    from alembic import command

    config = alembic_config()
    with engine.execution_options(**{_WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def migrate(url: str) -> None:
    """Bring the database at ``url`` to the newest schema (Alembic ``upgrade head``); idempotent."""
    engine = _make_engine(url)
    try:
        _upgrade(engine)
    except (DBAPIError, ArgumentError, ImportError) as exc:
        raise _open_error(url, _reason(exc)) from None
    finally:
        engine.dispose()


# ---------------------------------------------------------------------------------------------
# validation


def _check_module(module: Any, what: str = "module") -> str:
    if module not in MODULES:
        raise InputError(f"{what} {module!r} is not one of {', '.join(MODULES)}")
    return module


def _check_text(value: Any, what: str, *, optional: bool = False, empty: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}")
    if not empty and not value:
        raise InputError(f"{what} must not be empty")
    if "\x00" in value:
        raise InputError(f"{what} {value!r} holds a NUL character")
    return value


def _check_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be a number or None, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{what} must be finite, got {value!r}")
    return number


def _check_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be an integer or None, got {value!r}")
    return int(value)


def _check_json(value: Any, what: str) -> dict[str, Any]:
    """A dict of plain JSON types (numpy values made plain, NaN and infinities made None)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must be a dict, got {type(value).__name__}")
    try:
        return _finite(json.loads(json.dumps(dict(value), default=_json_default)))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} cannot be stored as JSON: {exc}") from None


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    """JSON for the values results often hold: numpy scalars and arrays, paths, datetimes."""
    if isinstance(value, datetime):
        return _as_utc(value).isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _check_relative_path(value: Any, what: str, *, optional: bool = True) -> str | None:
    """A path relative to the service data folder, as a POSIX string; no absolute paths, no '..'."""
    if value is None and optional:
        return None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise InputError(f"{what} must be a path string, got {type(value).__name__}")
    posix = value.replace("\\", "/")
    path = PurePosixPath(posix)
    if not path.parts or "\x00" in posix:
        raise InputError(f"{what} {value!r} is not a file path")
    if path.is_absolute() or re.match(r"^[A-Za-z]:", posix):
        raise InputError(f"{what} {value!r} must be relative to the data folder, not absolute")
    if ".." in path.parts:
        raise InputError(f"{what} {value!r} must stay inside the data folder (no '..')")
    return path.as_posix()


def _check_time(value: Any, what: str) -> datetime | None:
    """A datetime (naive = UTC) or an ISO 8601 string, as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InputError(f"{what} {value!r} is not an ISO 8601 time") from None
    if not isinstance(value, datetime):
        raise InputError(f"{what} must be a datetime or an ISO 8601 string, got {type(value).__name__}")
    return _as_utc(value)


def _check_limit(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def _new_id() -> str:
    return uuid.uuid4().hex


def _iso(value: datetime | None) -> str | None:
    return None if value is None else _as_utc(value).isoformat()


def _run_dict(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "module": row.module,
        "source": row.source,
        "line_id": row.line_id,
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "status": row.status,
        "summary": dict(row.summary or {}),
        "report_path": row.report_path,
    }


def _event_dict(row) -> dict[str, Any]:
    return {
        "id": int(row.id),
        "run_id": row.run_id,
        "key": row.key,
        "module": row.module,
        "kind": row.kind,
        "time": _iso(row.time),
        "source": row.source,
        "line_id": row.line_id,
        "chainage_km": row.chainage_km,
        "level": row.level,
        "score": row.score,
        "label": row.label,
        "details": dict(row.details or {}),
        "picture": row.picture,
    }


def _job_dict(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "module": row.module,
        "input_path": row.input_path,
        "options": dict(row.options or {}),
        "status": row.status,
        "error": row.error,
        "created_at": _iso(row.created_at),
        "started_at": _iso(row.started_at),
        "finished_at": _iso(row.finished_at),
        "run_id": row.run_id,
        "line_id": row.line_id,
        "chainage_km": row.chainage_km,
    }


# ---------------------------------------------------------------------------------------------
# the store


class EventStore:
    """Runs, events and jobs in the database at ``url`` (SQLite or PostgreSQL).

    Args:
        url: a SQLAlchemy URL, e.g. ``default_url(data_dir)`` or
            ``postgresql+psycopg://user:password@host/db``.
        migrate_schema: bring the schema to the newest revision first (default); when False the
            schema must already be there.

    Raises:
        InputError: the URL is bad, the server cannot be reached, or (``migrate_schema=False``)
            the schema is missing or old; one line naming the URL (password masked) and why.

    Safe to share between threads. Every method opens its own short transaction.
    """

    #: rows per INSERT statement in ``add_events`` (all statements of a batch share one transaction)
    insert_chunk_rows = 500

    def __init__(self, url: str, migrate_schema: bool = True) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._write_engine = self.engine.execution_options(**{_WRITE_OPTION: True})
        self._read_session = sessionmaker(self.engine, expire_on_commit=False)
        self._write_session = sessionmaker(self._write_engine, expire_on_commit=False)
        try:
            if migrate_schema:
                _upgrade(self.engine)
            else:
                current, head = _current_revision(self.engine), head_revision()
                if current != head:
                    self.engine.dispose()
                    raise InputError(
                        f"database {_mask(url)} has schema revision {current or 'none'}, expected {head}; "
                        "run railwatch.service.store.migrate(url) first"
                    )
        except (DBAPIError, ArgumentError, ImportError) as exc:
            self.engine.dispose()
            raise _open_error(url, _reason(exc)) from None
        self._insert = sqlite_dialect.insert if self.engine.dialect.name == "sqlite" else pg_dialect.insert

    def __repr__(self) -> str:
        return f"EventStore({_mask(self.url)!r})"

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        module: str,
        source: str,
        line_id: str | None = None,
        summary: dict | None = None,
        run_id: str | None = None,
    ) -> str:
        """Start a run (status ``running``) and return its id.

        ``run_id`` (optional, up to 32 letters, digits, ``_``, ``-`` or ``.``) chooses the id,
        e.g. the id of the job that makes the run. When a run of the same module with that id
        exists already (the job was queued again after the service stopped), that run is
        re-opened (status ``running`` again, ``summary`` merged into its summary) and the events
        stored into it again are each stored once.
        """
        _check_module(module)
        _check_text(source, "run source")
        _check_text(line_id, "line_id", optional=True)
        summary = _check_json(summary, "run summary")
        if run_id is not None and (not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id)):
            raise InputError(f"run id {run_id!r} must be 1 to 32 letters, digits, '_', '-' or '.'")
        with self._write_session() as session, session.begin():
            if run_id is not None:
                old = session.execute(select(RUNS.c.module, RUNS.c.summary).where(RUNS.c.id == run_id).with_for_update()).first()
                if old is not None:
                    if old.module != module:
                        raise InputError(f"run {run_id!r} exists already, for module {old.module!r}, not {module!r}")
                    session.execute(
                        update(RUNS)
                        .where(RUNS.c.id == run_id)
                        .values(status="running", finished_at=None, summary={**(old.summary or {}), **summary})
                    )
                    return run_id
            run_id = run_id or _new_id()
            session.execute(
                RUNS.insert().values(
                    id=run_id,
                    module=module,
                    source=source,
                    line_id=line_id,
                    started_at=_utcnow(),
                    finished_at=None,
                    status="running",
                    summary=summary,
                    report_path=None,
                )
            )
        return run_id

    def finish_run(self, run_id: str, status: str = "done", summary: dict | None = None, report_path: str | None = None) -> None:
        """Mark a run done (or failed); ``summary`` is merged into the run's summary."""
        if status not in RUN_STATUSES:
            raise InputError(f"run status {status!r} is not one of {', '.join(RUN_STATUSES)}")
        summary = _check_json(summary, "run summary")
        _check_text(report_path, "report_path", optional=True)
        with self._write_session() as session, session.begin():
            # FOR UPDATE: on PostgreSQL two finishers at once must not lose each other's summary
            row = session.execute(select(RUNS.c.summary).where(RUNS.c.id == run_id).with_for_update()).first()
            if row is None:
                raise InputError(f"run {run_id!r} does not exist")
            values: dict[str, Any] = {
                "status": status,
                "finished_at": None if status == "running" else _utcnow(),
                "summary": {**(row.summary or {}), **summary},
            }
            if report_path is not None:
                values["report_path"] = report_path
            session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))

    def get_run(self, run_id: str) -> dict | None:
        """The run as a dict, or None."""
        with self._read_session() as session:
            row = session.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
        return None if row is None else _run_dict(row)

    def runs(self, module: str | None = None, limit: int = 100) -> list[dict]:
        """The newest runs first, of one module or all."""
        query = select(RUNS)
        if module is not None:
            query = query.where(RUNS.c.module == _check_module(module))
        query = query.order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(_check_limit(limit, "limit"))
        with self._read_session() as session:
            return [_run_dict(row) for row in session.execute(query)]

    # -- events -------------------------------------------------------------------------------

    def _validate_event(self, index: int, raw: Any, run) -> dict[str, Any]:
        if not isinstance(raw, Mapping):
            raise InputError(f"event {index} must be a dict, got {type(raw).__name__}")
        unknown = sorted(set(raw) - set(EVENT_FIELDS), key=str)
        key = raw.get("key")
        where = f"event {index}" if not isinstance(key, str) else f"event {index} ({key!r})"
        if unknown:
            raise InputError(f"{where}: unknown field {unknown[0]!r} (allowed: {', '.join(EVENT_FIELDS)})")
        if "key" not in raw:
            raise InputError(f"{where}: no 'key' (a name unique within the run, e.g. 'crop_0007')")
        _check_text(key, f"{where}: key", empty=False)
        module = raw.get("module", run.module)
        _check_module(module, f"{where}: module")
        time = _check_time(raw.get("time"), f"{where}: time") or _utcnow()
        kind = raw.get("kind")
        kind = DEFAULT_KINDS[module] if kind is None else _check_text(kind, f"{where}: kind", empty=False)
        source = raw.get("source")
        source = run.source if source is None else _check_text(source, f"{where}: source")
        return {
            "run_id": run.id,
            "key": key,
            "module": module,
            "kind": kind,
            "time": time,
            "source": source,
            "line_id": _check_text(raw.get("line_id", run.line_id), f"{where}: line_id", optional=True),
            "chainage_km": _check_float(raw.get("chainage_km"), f"{where}: chainage_km"),
            "level": _check_int(raw.get("level"), f"{where}: level"),
            "score": _check_float(raw.get("score"), f"{where}: score"),
            "label": _check_text(raw.get("label", ""), f"{where}: label"),
            "details": _check_json(raw.get("details"), f"{where}: details"),
            "picture": _check_relative_path(raw.get("picture"), f"{where}: picture"),
        }

    def _insert_chunk(self, session: Session, rows: list[dict[str, Any]]) -> int:
        """Insert rows, skipping those whose (run_id, key) is stored already; how many were new."""
        statement = (
            self._insert(EVENTS).values(rows).on_conflict_do_nothing(index_elements=["run_id", "key"]).returning(EVENTS.c.id)
        )
        return len(session.execute(statement).all())

    def add_events(self, run_id: str, events: Iterable[dict]) -> int:
        """Store a batch of events of a run in one transaction: all of it or none.

        Each dict holds Event columns except ``id``/``run_id``: ``key`` (required, unique
        within the run), ``module`` (default: the run's), ``kind`` (default: the module's usual
        kind), ``time`` (datetime or ISO string; default: now, UTC), ``source`` and ``line_id``
        (default: the run's), ``chainage_km``, ``level`` (int), ``score``, ``label``,
        ``details`` (dict), ``picture`` (path relative to the data folder).

        Events whose key the run has already stored, or that repeat a key earlier in the batch,
        are skipped. Returns how many events were newly stored.

        Raises:
            InputError: the run does not exist or an event is invalid (nothing is stored).
        """
        with self._read_session() as session:
            run = session.execute(select(RUNS.c.id, RUNS.c.module, RUNS.c.source, RUNS.c.line_id).where(RUNS.c.id == run_id)).first()
        if run is None:
            raise InputError(f"run {run_id!r} does not exist")
        # read and check the whole batch before the transaction: a slow or failing iterator
        # neither holds the write lock nor leaves part of the batch behind
        rows: dict[str, dict[str, Any]] = {}
        for index, raw in enumerate(events):
            row = self._validate_event(index, raw, run)
            rows.setdefault(row["key"], row)  # a key repeated in the batch: the first one counts
        if not rows:
            return 0
        batch = list(rows.values())
        chunk = max(1, int(self.insert_chunk_rows))
        stored = 0
        with self._write_session() as session, session.begin():
            for start in range(0, len(batch), chunk):
                stored += self._insert_chunk(session, batch[start : start + chunk])
        return stored

    def _event_query(self, query, module, run_id, level_min, since, until, line_id):
        if module is not None:
            query = query.where(EVENTS.c.module == _check_module(module))
        if run_id is not None:
            query = query.where(EVENTS.c.run_id == run_id)
        if level_min is not None:
            query = query.where(EVENTS.c.level >= _check_int(level_min, "level_min"))
        if since is not None:
            query = query.where(EVENTS.c.time >= _check_time(since, "since"))
        if until is not None:
            query = query.where(EVENTS.c.time < _check_time(until, "until"))
        if line_id is not None:
            query = query.where(EVENTS.c.line_id == line_id)
        return query

    def events(
        self,
        module: str | None = None,
        run_id: str | None = None,
        level_min: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        line_id: str | None = None,
        limit: int = 500,
        offset: int = 0,
    ) -> list[dict]:
        """Events matching every filter given, oldest first (by time, then id).

        ``level_min`` keeps events with a level at least that (events without a level are left
        out); ``since`` is inclusive and ``until`` exclusive (datetimes, naive = UTC, or ISO
        strings).
        """
        query = self._event_query(select(EVENTS), module, run_id, level_min, since, until, line_id)
        query = (
            query.order_by(EVENTS.c.time, EVENTS.c.id).limit(_check_limit(limit, "limit")).offset(_check_limit(offset, "offset"))
        )
        with self._read_session() as session:
            return [_event_dict(row) for row in session.execute(query)]

    def count_events(
        self,
        module: str | None = None,
        run_id: str | None = None,
        level_min: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        line_id: str | None = None,
    ) -> int:
        """How many events match the filters (the same as ``events``, without limit/offset)."""
        query = self._event_query(select(func.count()).select_from(EVENTS), module, run_id, level_min, since, until, line_id)
        with self._read_session() as session:
            return int(session.execute(query).scalar_one())

    # -- jobs ---------------------------------------------------------------------------------

    def create_job(
        self,
        module: str,
        input_path: str,
        options: dict | None = None,
        line_id: str | None = None,
        chainage_km: float | None = None,
    ) -> str:
        """Queue a job; ``input_path`` is relative to the data folder. Returns the job id."""
        _check_module(module)
        input_path = _check_relative_path(input_path, "input_path", optional=False)
        options = _check_json(options, "job options")
        _check_text(line_id, "line_id", optional=True)
        chainage_km = _check_float(chainage_km, "chainage_km")
        job_id = _new_id()
        with self._write_session() as session, session.begin():
            session.execute(
                JOBS.insert().values(
                    id=job_id,
                    module=module,
                    input_path=input_path,
                    options=options,
                    status="queued",
                    error=None,
                    created_at=_utcnow(),
                    started_at=None,
                    finished_at=None,
                    run_id=None,
                    line_id=line_id,
                    chainage_km=chainage_km,
                )
            )
        return job_id

    def claim_job(self, job_id: str) -> bool:
        """Move a queued job to ``running``, atomically; False if it is not queued (someone took it)."""
        with self._write_session() as session, session.begin():
            result = session.execute(
                update(JOBS).where(JOBS.c.id == job_id, JOBS.c.status == "queued").values(status="running", started_at=_utcnow())
            )
            return result.rowcount == 1

    def finish_job(self, job_id: str, status: str, run_id: str | None = None, error: str | None = None) -> None:
        """Mark a job done or failed, with the run it made and/or the error."""
        if status not in ("done", "failed"):
            raise InputError(f"job status {status!r} must be 'done' or 'failed'")
        _check_text(error, "job error", optional=True)
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": _utcnow()}
        if run_id is not None:
            values["run_id"] = run_id
        with self._write_session() as session, session.begin():
            if run_id is not None and session.execute(select(RUNS.c.id).where(RUNS.c.id == run_id)).first() is None:
                raise InputError(f"run {run_id!r} does not exist")
            result = session.execute(update(JOBS).where(JOBS.c.id == job_id).values(**values))
            if result.rowcount != 1:
                raise InputError(f"job {job_id!r} does not exist")

    def get_job(self, job_id: str) -> dict | None:
        """The job as a dict, or None."""
        with self._read_session() as session:
            row = session.execute(select(JOBS).where(JOBS.c.id == job_id)).first()
        return None if row is None else _job_dict(row)

    def jobs(self, status: str | None = None, limit: int = 100) -> list[dict]:
        """The newest jobs first, of one status or all."""
        query = select(JOBS)
        if status is not None:
            if status not in JOB_STATUSES:
                raise InputError(f"job status {status!r} is not one of {', '.join(JOB_STATUSES)}")
            query = query.where(JOBS.c.status == status)
        query = query.order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(_check_limit(limit, "limit"))
        with self._read_session() as session:
            return [_job_dict(row) for row in session.execute(query)]

    def requeue_interrupted(self) -> list[str]:
        """Queue again the jobs left ``running`` by a service that stopped; their ids, oldest first.

        Call it when the service starts, before it runs jobs (with several services on one
        database it would also re-queue jobs the others are running). A job run again should
        make its run with ``create_run(..., run_id=<job id>)``: that re-opens the run of the
        first attempt, and the events stored again are each stored once.
        """
        with self._write_session() as session, session.begin():
            rows = session.execute(
                update(JOBS)
                .where(JOBS.c.status == "running")
                .values(status="queued", started_at=None)
                .returning(JOBS.c.id, JOBS.c.created_at)
            ).all()
        return [row.id for row in sorted(rows, key=lambda row: (row.created_at, row.id))]
