"""``railwatch vibration inspect|monitor``: real DAS files through DASCore."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the DAS-file commands to ``app``."""
