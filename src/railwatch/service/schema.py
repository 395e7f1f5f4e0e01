"""The event store's schema: runs, events and jobs as SQLAlchemy tables (the migrations make them).

Times are stored as UTC (:class:`UtcDateTime` gives them back time-zone aware on SQLite too).
"""

from __future__ import annotations

from datetime import datetime, timezone
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
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

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


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s_%(column_1_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}



def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UtcDateTime(TypeDecorator):
    """A timezone-aware UTC datetime on every backend.

    Naive datetimes are taken as UTC; aware ones are converted to UTC. SQLite keeps no zone,
    so the value is stored as naive UTC there and made aware again when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        value = as_utc(value)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return as_utc(value)


def as_utc(value: datetime) -> datetime:
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

