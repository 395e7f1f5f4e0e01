"""Shared pieces of the command line: one-line errors, config loading, JSON output."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Optional, TypeVar

import typer
from rich.console import Console

from railwatch.config import RailwatchConfig, load_config, override
from railwatch.errors import RailwatchError

console = Console()
error_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

CONFIG_HELP = "YAML settings file (see `railwatch config show`); flags override it."
ConfigOption = Annotated[Optional[Path], typer.Option("--config", help=CONFIG_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def one_line_errors(command: F) -> F:
    """Turn railwatch's own errors into ``error: <message>`` on stderr and exit status 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RailwatchError as err:
            error_console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None

    return wrapper  # type: ignore[return-value]


def settings(config_path: Path | None, overrides: dict[str, Any] | None = None) -> RailwatchConfig:
    """Settings from ``--config`` (or defaults), with flag values on top."""
    return override(load_config(config_path), overrides or {})


def print_json(data: Any) -> None:
    """Print one JSON document on stdout, nothing else."""
    typer.echo(json.dumps(data, indent=2))
