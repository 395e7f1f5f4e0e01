"""``railwatch surface``: rail running-surface defect segmentation (paper 002)."""

from __future__ import annotations

import typer
from rich.table import Table

from railwatch.cli_support import JsonOption, console, one_line_errors, print_json

app = typer.Typer(help="Rail running-surface defects (paper 002).", no_args_is_help=True)


@app.command()
@one_line_errors
def models(as_json: JsonOption = False) -> None:
    """List the surface networks with their parameter counts (--json: [{name, description, params}])."""
    from railwatch.surface.models import list_surface_models

    infos = list_surface_models()
    if as_json:
        print_json([info.to_dict() for info in infos])
        return
    table = Table(title="surface models")
    for column in ("name", "params", "description"):
        table.add_column(column)
    for info in infos:
        table.add_row(info.name, f"{info.params:,}", info.description)
    console.print(table)
