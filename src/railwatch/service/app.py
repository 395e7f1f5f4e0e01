"""``railwatch serve``: the HTTP API and dashboard over the event store.

Submit an image, a crop folder (several files), a video or a DAS file for a module; a bounded
pool runs it in the background; poll the job; list and filter events; fetch their pictures. The
OpenAPI spec is at ``/openapi.json`` (and ``/docs``). Uploads are limited in size, inputs are
validated with 4xx errors that say what is wrong, an optional token guards ``/api``, and files
are only ever served from inside the data folder.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from railwatch.errors import RailwatchError
from railwatch.service.jobs import JobPool, QueueFull
from railwatch.service.runners import RUNNERS, ServiceModels
from railwatch.service.store import EventStore, default_url

DASHBOARD = Path(__file__).parent / "static" / "dashboard.html"
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,200}$")
CHUNK = 1 << 20
SINGLE_FILE = ("surface", "vibration")
"""Modules whose job reads one file (a rail image, a DAS recording); the others take one or more."""


def _safe_name(name: str | None) -> str:
    """An uploaded file's base name, or a 400 when it could reach outside its folder."""
    base = name or ""
    if "/" in base or "\\" in base or ".." in base or not SAFE_NAME.match(base):
        raise HTTPException(400, f"bad file name {name!r}: use letters, digits, '.', '_', '-' and spaces")
    return base


async def _save_uploads(files: list[UploadFile], names: list[str], folder: Path, limit: int, limit_mb: float) -> None:
    """Write the uploads into ``folder`` in chunks; a 413 as soon as they pass ``limit`` bytes together."""
    total = 0
    for upload, name in zip(files, names):
        with open(folder / name, "wb") as handle:
            while chunk := await upload.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise HTTPException(413, f"upload larger than {limit_mb:g} MB")
                handle.write(chunk)


def _found(row: dict[str, Any] | None, what: str, row_id: str) -> dict[str, Any]:
    """``row``, or a 404 naming the ``what`` that has no row ``row_id``."""
    if row is None:
        raise HTTPException(404, f"no {what} {row_id!r}")
    return row


def create_app(
    data_dir: Path,
    db_url: str | None = None,
    token: str | None = None,
    models: ServiceModels | None = None,
    workers: int = 2,
    max_upload_mb: float = 200.0,
    max_queued: int = 64,
) -> FastAPI:
    """The service over ``data_dir`` (uploads, results, pictures) and the store at ``db_url`` (SQLite there by default)."""
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    store = EventStore(db_url or default_url(data_dir))
    pool = JobPool(store, data_dir, models or ServiceModels(), workers=workers, max_queued=max_queued)
    limit = int(max_upload_mb * (1 << 20))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.resume()  # jobs a stopped service left unfinished run again
        yield
        pool.shutdown()
        store.close()

    app = FastAPI(title="railwatch", version="1", description=__doc__, lifespan=lifespan)
    app.state.store, app.state.pool, app.state.data_dir = store, pool, data_dir

    def authorised(authorization: Annotated[str | None, Header()] = None) -> None:
        if token is not None and authorization != f"Bearer {token}":
            raise HTTPException(401, "missing or wrong API token (Authorization: Bearer <token>)")

    api = [Depends(authorised)]

    @app.middleware("http")
    async def refuse_large_bodies(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        """Refuse a body by its declared length before it is read; undeclared lengths are counted as uploads are saved."""
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return JSONResponse({"detail": f"upload larger than {max_upload_mb:g} MB"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RailwatchError)
    async def _input_error(request: Request, err: RailwatchError) -> JSONResponse:
        status = 503 if isinstance(err, QueueFull) else 400
        return JSONResponse({"detail": str(err)}, status_code=status)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(DASHBOARD.read_text(encoding="utf-8"))

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "modules": list(RUNNERS)}

    @app.post("/api/jobs", status_code=202, dependencies=api)
    async def submit(
        module: Annotated[str, Form(description="fasteners, surface, vibration or intrusion")],
        files: Annotated[list[UploadFile], File(description="an image, the crops of a folder, a video or a DAS file")],
        line_id: Annotated[str | None, Form(max_length=64)] = None,
        chainage_km: Annotated[float | None, Form(ge=0)] = None,
        options: Annotated[str, Form(description="JSON object of module options")] = "{}",
    ) -> dict[str, Any]:
        if module not in RUNNERS:
            raise HTTPException(422, f"unknown module {module!r}; known: {', '.join(RUNNERS)}")
        try:
            parsed = json.loads(options)
        except json.JSONDecodeError as err:
            raise HTTPException(422, f"options is not JSON: {err.msg}") from None
        if not isinstance(parsed, dict):
            raise HTTPException(422, "options must be a JSON object")
        names = [_safe_name(f.filename) for f in files]
        if len(set(names)) != len(names):
            raise HTTPException(400, "two uploaded files have the same name")
        if module in SINGLE_FILE and len(names) != 1:
            raise HTTPException(422, f"{module} takes one file, got {len(names)}")
        folder = data_dir / "uploads" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        try:
            await _save_uploads(files, names, folder, limit, max_upload_mb)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)  # nothing half-written stays behind
            raise
        target = folder / names[0] if len(names) == 1 and module != "fasteners" else folder
        job_id = pool.submit(module, target.relative_to(data_dir).as_posix(), parsed, line_id, chainage_km)
        return {"job": job_id, "status": "queued", "poll": f"/api/jobs/{job_id}"}

    @app.get("/api/jobs/{job_id}", dependencies=api)
    def job(job_id: str) -> dict[str, Any]:
        return _found(store.get_job(job_id), "job", job_id)

    @app.get("/api/jobs", dependencies=api)
    def jobs(status: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"jobs": store.jobs(status=status, limit=limit)}

    @app.get("/api/events", dependencies=api)
    def events(
        module: str | None = None,
        run_id: str | None = None,
        level_min: int | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        line_id: str | None = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> dict[str, Any]:
        if module is not None and module not in RUNNERS:
            raise HTTPException(422, f"unknown module {module!r}; known: {', '.join(RUNNERS)}")
        filters = {"module": module, "run_id": run_id, "level_min": level_min, "since": since, "until": until, "line_id": line_id}
        return {"events": store.events(**filters, limit=limit, offset=offset), "total": store.count_events(**filters)}

    @app.get("/api/runs", dependencies=api)
    def runs(module: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        return {"runs": store.runs(module=module, limit=limit)}

    @app.get("/api/runs/{run_id}", dependencies=api)
    def run(run_id: str) -> dict[str, Any]:
        return _found(store.get_run(run_id), "run", run_id)

    @app.get("/api/pictures/{picture:path}", dependencies=api)
    def picture(picture: str) -> FileResponse:
        path = (data_dir / picture).resolve()
        if not path.is_relative_to(data_dir) or not path.is_file():
            raise HTTPException(404, f"no picture {picture!r}")
        return FileResponse(path)

    return app


def serve(app: FastAPI, host: str, port: int) -> None:
    """Run ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info")


