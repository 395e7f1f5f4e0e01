"""``railwatch serve``: the inspection service with its dashboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from railwatch.cli_support import console, one_line_errors

ModelOption = Optional[Path]


def register(app: typer.Typer) -> None:
    """Add ``serve`` to ``app``."""

    @app.command()
    @one_line_errors
    def serve(
        data: Annotated[Path, typer.Option("--data", help="Data folder: uploads, results, pictures, and the SQLite database.")] = Path(
            "railwatch_data"
        ),
        db: Annotated[Optional[str], typer.Option("--db", help="Database URL, e.g. postgresql+psycopg://user@host/db (default: SQLite in --data).")] = None,
        host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
        port: Annotated[int, typer.Option("--port", help="Port to listen on.", min=1, max=65535)] = 8000,
        workers: Annotated[int, typer.Option("--workers", help="Jobs run at the same time.", min=1)] = 2,
        token: Annotated[Optional[str], typer.Option("--token", help="API token; requests must send 'Authorization: Bearer TOKEN'.")] = None,
        max_upload_mb: Annotated[float, typer.Option("--max-upload-mb", help="Largest upload accepted, MB.")] = 200.0,
        fasteners_model: Annotated[ModelOption, typer.Option("--fasteners-model", help="Checkpoint of `fasteners train`.")] = None,
        surface_model: Annotated[ModelOption, typer.Option("--surface-model", help="Checkpoint of `surface train`.")] = None,
        vibration_model: Annotated[ModelOption, typer.Option("--vibration-model", help="DAS checkpoint of `vibration train`.")] = None,
        camera: Annotated[ModelOption, typer.Option("--camera", help="Camera YAML for intrusion videos.")] = None,
    ) -> None:
        """Serve the API (submit, poll, list events, pictures) and the dashboard at http://HOST:PORT/.

        Jobs run in a bounded pool of --workers; jobs a stopped service left unfinished run again
        at the next start. The OpenAPI spec is at /openapi.json, interactive docs at /docs.
        """
        from railwatch.service.app import create_app
        from railwatch.service.app import serve as run_server
        from railwatch.service.runners import ServiceModels

        models = ServiceModels(fasteners_model, surface_model, vibration_model, camera)
        app_ = create_app(data, db, token=token, models=models, workers=workers, max_upload_mb=max_upload_mb)
        console.print(f"railwatch service on http://{host}:{port}/ (data {data.resolve()}, database {app_.state.store.url})")
        run_server(app_, host, port)
