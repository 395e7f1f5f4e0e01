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

import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    func,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from railwatch.errors import InputError
from railwatch.service.database import (
    WRITE_OPTION,
    alembic_config,
    current_revision,
    default_url,
    head_revision,
    make_engine,
    mask,
    migrate,
    open_error,
    reason,
    upgrade,
)
from railwatch.service.records import (
    check_float,
    check_int,
    check_json,
    check_limit,
    check_module,
    check_relative_path,
    check_text,
    check_time,
    event_dict,
    job_dict,
    new_id,
    run_dict,
)
from railwatch.service.schema import (
    DEFAULT_KINDS,
    EVENT_FIELDS,
    EVENTS,
    JOB_STATUSES,
    JOBS,
    MODULES,
    RUN_STATUSES,
    RUNS,
    Base,
    Event,
    Job,
    Run,
    utcnow,
)

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

_RUN_ID = re.compile(r"[A-Za-z0-9_.-]{1,32}")


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
        self.engine = make_engine(url)
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self._read_session = sessionmaker(self.engine, expire_on_commit=False)
        self._write_session = sessionmaker(self._write_engine, expire_on_commit=False)
        try:
            if migrate_schema:
                upgrade(self.engine)
            else:
                current, head = current_revision(self.engine), head_revision()
                if current != head:
                    self.engine.dispose()
                    raise InputError(
                        f"database {mask(url)} has schema revision {current or 'none'}, expected {head}; "
                        "run railwatch.service.store.migrate(url) first"
                    )
        except (DBAPIError, ArgumentError, ImportError) as exc:
            self.engine.dispose()
            raise open_error(url, reason(exc)) from None
        self._insert = sqlite_dialect.insert if self.engine.dialect.name == "sqlite" else pg_dialect.insert

    def __repr__(self) -> str:
        return f"EventStore({mask(self.url)!r})"

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
        check_module(module)
        check_text(source, "run source")
        check_text(line_id, "line_id", optional=True)
        summary = check_json(summary, "run summary")
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
            run_id = run_id or new_id()
            session.execute(
                RUNS.insert().values(
                    id=run_id,
                    module=module,
                    source=source,
                    line_id=line_id,
                    started_at=utcnow(),
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
        summary = check_json(summary, "run summary")
        check_text(report_path, "report_path", optional=True)
        with self._write_session() as session, session.begin():
            # FOR UPDATE: on PostgreSQL two finishers at once must not lose each other's summary
            row = session.execute(select(RUNS.c.summary).where(RUNS.c.id == run_id).with_for_update()).first()
            if row is None:
                raise InputError(f"run {run_id!r} does not exist")
            values: dict[str, Any] = {
                "status": status,
                "finished_at": None if status == "running" else utcnow(),
                "summary": {**(row.summary or {}), **summary},
            }
            if report_path is not None:
                values["report_path"] = report_path
            session.execute(update(RUNS).where(RUNS.c.id == run_id).values(**values))

    def _one(self, table, key: str, as_dict) -> dict | None:
        """The row of ``table`` whose id is ``key``, as a dict, or None."""
        with self._read_session() as session:
            row = session.execute(select(table).where(table.c.id == key)).first()
        return None if row is None else as_dict(row)

    def get_run(self, run_id: str) -> dict | None:
        """The run as a dict, or None."""
        return self._one(RUNS, run_id, run_dict)

    def runs(self, module: str | None = None, limit: int = 100) -> list[dict]:
        """The newest runs first, of one module or all."""
        query = select(RUNS)
        if module is not None:
            query = query.where(RUNS.c.module == check_module(module))
        query = query.order_by(RUNS.c.started_at.desc(), RUNS.c.id.desc()).limit(check_limit(limit, "limit"))
        with self._read_session() as session:
            return [run_dict(row) for row in session.execute(query)]

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
        check_text(key, f"{where}: key", empty=False)
        module = raw.get("module", run.module)
        check_module(module, f"{where}: module")
        time = check_time(raw.get("time"), f"{where}: time") or utcnow()
        kind = raw.get("kind")
        kind = DEFAULT_KINDS[module] if kind is None else check_text(kind, f"{where}: kind", empty=False)
        source = raw.get("source")
        source = run.source if source is None else check_text(source, f"{where}: source")
        return {
            "run_id": run.id,
            "key": key,
            "module": module,
            "kind": kind,
            "time": time,
            "source": source,
            "line_id": check_text(raw.get("line_id", run.line_id), f"{where}: line_id", optional=True),
            "chainage_km": check_float(raw.get("chainage_km"), f"{where}: chainage_km"),
            "level": check_int(raw.get("level"), f"{where}: level"),
            "score": check_float(raw.get("score"), f"{where}: score"),
            "label": check_text(raw.get("label", ""), f"{where}: label"),
            "details": check_json(raw.get("details"), f"{where}: details"),
            "picture": check_relative_path(raw.get("picture"), f"{where}: picture"),
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
            query = query.where(EVENTS.c.module == check_module(module))
        if run_id is not None:
            query = query.where(EVENTS.c.run_id == run_id)
        if level_min is not None:
            query = query.where(EVENTS.c.level >= check_int(level_min, "level_min"))
        if since is not None:
            query = query.where(EVENTS.c.time >= check_time(since, "since"))
        if until is not None:
            query = query.where(EVENTS.c.time < check_time(until, "until"))
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
            query.order_by(EVENTS.c.time, EVENTS.c.id).limit(check_limit(limit, "limit")).offset(check_limit(offset, "offset"))
        )
        with self._read_session() as session:
            return [event_dict(row) for row in session.execute(query)]

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
        check_module(module)
        input_path = check_relative_path(input_path, "input_path", optional=False)
        options = check_json(options, "job options")
        check_text(line_id, "line_id", optional=True)
        chainage_km = check_float(chainage_km, "chainage_km")
        job_id = new_id()
        with self._write_session() as session, session.begin():
            session.execute(
                JOBS.insert().values(
                    id=job_id,
                    module=module,
                    input_path=input_path,
                    options=options,
                    status="queued",
                    error=None,
                    created_at=utcnow(),
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
                update(JOBS).where(JOBS.c.id == job_id, JOBS.c.status == "queued").values(status="running", started_at=utcnow())
            )
            return result.rowcount == 1

    def finish_job(self, job_id: str, status: str, run_id: str | None = None, error: str | None = None) -> None:
        """Mark a job done or failed, with the run it made and/or the error."""
        if status not in ("done", "failed"):
            raise InputError(f"job status {status!r} must be 'done' or 'failed'")
        check_text(error, "job error", optional=True)
        values: dict[str, Any] = {"status": status, "error": error, "finished_at": utcnow()}
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
        return self._one(JOBS, job_id, job_dict)

    def jobs(self, status: str | None = None, limit: int = 100) -> list[dict]:
        """The newest jobs first, of one status or all."""
        query = select(JOBS)
        if status is not None:
            if status not in JOB_STATUSES:
                raise InputError(f"job status {status!r} is not one of {', '.join(JOB_STATUSES)}")
            query = query.where(JOBS.c.status == status)
        query = query.order_by(JOBS.c.created_at.desc(), JOBS.c.id.desc()).limit(check_limit(limit, "limit"))
        with self._read_session() as session:
            return [job_dict(row) for row in session.execute(query)]

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

