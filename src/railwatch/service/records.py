"""Checking what goes into the event store, and turning rows into JSON-able dicts."""

from __future__ import annotations

import json
import math
import numbers
import os
import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy.engine import Row

from railwatch.errors import InputError
from railwatch.service.schema import (
    MODULES,
    as_utc,
)

# ---------------------------------------------------------------------------------------------
# validation


def check_module(module: Any, what: str = "module") -> str:
    if module not in MODULES:
        raise InputError(f"{what} {module!r} is not one of {', '.join(MODULES)}")
    return module


def check_text(value: Any, what: str, *, optional: bool = False, empty: bool = True) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise InputError(f"{what} must be a string, got {type(value).__name__}")
    if not empty and not value:
        raise InputError(f"{what} must not be empty")
    if "\x00" in value:
        raise InputError(f"{what} {value!r} holds a NUL character")
    return value


def check_float(value: Any, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be a number or None, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{what} must be finite, got {value!r}")
    return number


def check_int(value: Any, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be an integer or None, got {value!r}")
    return int(value)


def check_json(value: Any, what: str) -> dict[str, Any]:
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
        return as_utc(value).isoformat()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if type(value).__module__ == "numpy":
        if hasattr(value, "tolist"):
            return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def check_relative_path(value: Any, what: str, *, optional: bool = True) -> str | None:
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


def check_time(value: Any, what: str) -> datetime | None:
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
    return as_utc(value)


def check_limit(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise InputError(f"{what} must be a non-negative integer, got {value!r}")
    return int(value)


def new_id() -> str:
    return uuid.uuid4().hex


def _iso(value: datetime | None) -> str | None:
    return None if value is None else as_utc(value).isoformat()


def run_dict(row: Row) -> dict[str, Any]:
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


def event_dict(row: Row) -> dict[str, Any]:
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


def job_dict(row: Row) -> dict[str, Any]:
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


