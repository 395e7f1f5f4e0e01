"""Exceptions that railwatch raises for bad input.

Every error here carries a message meant for a person: one line that names the file or value
and says what is wrong. The CLI prints it as ``error: <message>`` and exits with status 2,
instead of a traceback.
"""

from __future__ import annotations


class RailwatchError(Exception):
    """Base class of every error railwatch raises on purpose."""

    exit_code: int = 2


class InputError(RailwatchError, ValueError):
    """An input value or file is missing, unreadable or out of range."""


class ConfigError(RailwatchError, ValueError):
    """A configuration file or setting is invalid."""


class NoRailsFoundError(RailwatchError):
    """A rail mask holds no rail that can be fitted."""


class GeometryError(RailwatchError, ValueError):
    """A point cannot be placed against the track (no ego track, row outside the rails)."""
