"""The ``railwatch report`` command: an HTML inspection report over stored runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from railwatch.cli_support import console, one_line_errors
from railwatch.errors import InputError

ALL_RUNS_LIMIT = 1_000_000
"""Runs that ``all`` asks the store for: every run, in practice."""


def select_runs(store: Any, words: list[str]) -> list[str]:
    """Run ids for the command's ``RUN...`` arguments, in order and without repeats.

    ``all`` stands for every run, ``latest`` for the newest run of each module; any other word
    is a run id (checked later, when the report is written).

    Raises:
        InputError: ``all`` or ``latest`` found no run in the store.
    """
    from railwatch.service.report import MODULES

    ids: list[str] = []
    for word in words:
        if word == "all":
            found = [run["id"] for run in reversed(store.runs(limit=ALL_RUNS_LIMIT))]
        elif word == "latest":
            found = [runs[0]["id"] for module in MODULES if (runs := store.runs(module=module, limit=1))]
        else:
            found = [word]
        if not found:
            raise InputError(f"'{word}' matches no run: the event store holds no runs yet")
        ids.extend(run_id for run_id in found if run_id not in ids)
    return ids


def report(
    runs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN",
            help="Run ids, or 'all' for every run, or 'latest' for the newest run of each module.",
            show_default=False,
        ),
    ],
    data: Annotated[Path, typer.Option("--data", help="The service data folder (pictures, database).")] = Path(
        "railwatch_data"
    ),
    db: Annotated[
        Optional[str], typer.Option("--db", help="Event store URL (default: the database in --data).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option("--out", help="HTML file to write (default: <data>/reports/report.html).")
    ] = None,
    max_pictures: Annotated[int, typer.Option("--max-pictures", min=0, help="Pictures shown per module.")] = 12,
) -> None:
    """Write one self-contained HTML inspection report over stored runs.

    Per module: a strip chart of its events, a table of them and their most severe pictures.
    Everything is embedded in the one file: it opens offline and can be mailed.
    """
    from railwatch.service.report import write_report
    from railwatch.service.store import EventStore, default_url

    if db is None and not data.is_dir():
        raise InputError(f"{data}: data folder not found (pass --data, or --db with a store URL)")
    with EventStore(db or default_url(data)) as store:
        run_ids = select_runs(store, runs)
        path = write_report(store, data, run_ids, out or data / "reports" / "report.html", max_pictures=max_pictures)
    console.print(f"report over {len(run_ids)} run(s): {path}", highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add the ``report`` command to ``app`` (the ``railwatch`` command)."""
    app.command("report")(one_line_errors(report))
