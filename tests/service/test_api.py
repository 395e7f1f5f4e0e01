"""The service's API: submit, poll, list, pictures; bad inputs; a job left running by a stop; a bounded load test."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from railwatch.config import VibrationModelConfig, VibrationTrainConfig
from railwatch.service.app import create_app
from railwatch.service.runners import ServiceModels
from railwatch.service.store import EventStore, default_url
from railwatch.vibration.data import spectra_set
from railwatch.vibration.simulate import simulate_hammer_tests
from railwatch.vibration.stream import SimulatedFibre
from railwatch.vibration.train import train_vibration

TINY = VibrationModelConfig(conv_channels=(16, 16, 16), heads=2, feedforward=32, transformer_blocks=1, dense=(16, 8))


@pytest.fixture(scope="module")
def das_model(tmp_path_factory) -> Path:
    """A small DAS FFI model, trained for a few epochs on simulated hammer tests."""
    out = tmp_path_factory.mktemp("model")
    data = spectra_set(simulate_hammer_tests(repeats=4, seed=1))
    cfg = VibrationTrainConfig(modality="das", epochs=3, accelerator="cpu", arch=TINY)
    return train_vibration(data, cfg, out, progress=False).checkpoint


def das_file(path: Path, impacts: int = 1) -> Path:
    """A DASDAE recording DASCore reads: 2 m channels from 100 m, 500 us samples, ``impacts`` hammer blows."""
    import dascore

    blows = simulate_hammer_tests(repeats=1, seed=3).das
    fibre = SimulatedFibre(duration_s=1.0 + 0.9 * impacts, length_m=120.0, dx=2.0, chunk_s=10.0, noise_std=0.05, hum_amplitude=0.0)
    for k in range(impacts):
        fibre.plant(0.9 + 0.9 * k, 10 + 8 * k, blows[k % len(blows)] / np.abs(blows[k % len(blows)]).max() * 20)
    data = next(fibre.chunks()).data
    times = dascore.to_datetime64("2026-11-21T08:00:00") + np.arange(data.shape[0]) * np.timedelta64(500, "us")
    patch = dascore.Patch(data=data, coords={"time": times, "distance": 100.0 + 2.0 * np.arange(data.shape[1])}, dims=("time", "distance"))
    patch.io.write(path, "dasdae")
    return path


def wait_for(client: TestClient, job: str, headers: dict | None = None, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/jobs/{job}", headers=headers or {}).json()
        if state["status"] in ("done", "failed"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job} did not finish")


def submit(client: TestClient, path: Path, module: str = "vibration", headers: dict | None = None, **form) -> dict:
    with open(path, "rb") as handle:
        response = client.post("/api/jobs", data={"module": module, **form}, files=[("files", (path.name, handle.read()))], headers=headers or {})
    return response


def test_submit_poll_and_list_events(tmp_path, das_model):
    app = create_app(tmp_path / "data", models=ServiceModels(vibration=das_model))
    with TestClient(app) as client:
        response = submit(client, das_file(tmp_path / "fibre.h5"), line_id="L1", chainage_km="12.5")
        assert response.status_code == 202, response.text
        state = wait_for(client, response.json()["job"])
        assert state["status"] == "done", state
        events = client.get("/api/events", params={"module": "vibration"}).json()
        assert events["total"] == 1
        (event,) = events["events"]
        assert event["kind"] == "das_section" and event["line_id"] == "L1" and event["run_id"] == state["run_id"]
        assert event["chainage_km"] == pytest.approx(12.5 + 0.120, abs=0.003)  # channel 10 at 100 + 2 x 10 m
        assert event["time"].startswith("2026-11-21T08:00:00.9") and 0 <= event["score"] <= 3
        run = client.get(f"/api/runs/{state['run_id']}").json()
        assert run["status"] == "done" and run["module"] == "vibration"
        assert client.get("/api/events", params={"module": "surface"}).json()["total"] == 0
        spec = client.get("/openapi.json").json()
        assert {"/api/jobs", "/api/events", "/api/runs", "/api/pictures/{picture}"} <= set(spec["paths"])


def test_bad_requests_get_clear_4xx(tmp_path, das_model):
    app = create_app(tmp_path / "data", models=ServiceModels(vibration=das_model), max_upload_mb=0.05)
    path = das_file(tmp_path / "fibre.h5")
    small = tmp_path / "small.h5"
    small.write_bytes(b"x" * 10)
    with TestClient(app) as client:
        assert submit(client, small, module="radar").status_code == 422
        assert submit(client, small, options="{not json").status_code == 422
        assert submit(client, small, options="[1]").json()["detail"] == "options must be a JSON object"
        too_big = submit(client, path)
        assert too_big.status_code == 413 and "larger than 0.05 MB" in too_big.json()["detail"]
        uploads = client.app.state.data_dir / "uploads"
        assert not uploads.exists() or not any(uploads.iterdir())  # the refused upload left nothing behind
        two = [("files", ("a.h5", b"x")), ("files", ("b.h5", b"y"))]
        assert client.post("/api/jobs", data={"module": "vibration"}, files=two).json()["detail"] == "vibration takes one file, got 2"
        bad = client.post("/api/jobs", data={"module": "vibration"}, files=[("files", ("../../etc/x.h5", b"x"))])
        assert bad.status_code == 400 and "bad file name" in bad.json()["detail"]
        assert client.get("/api/jobs/nope").status_code == 404
        assert client.get("/api/pictures/../../etc/passwd").status_code == 404
        assert client.get("/api/pictures/%2e%2e/%2e%2e/etc/passwd").status_code == 404
        assert client.get("/api/events", params={"module": "radar"}).status_code == 422
        assert client.get("/api/events", params={"limit": 0}).status_code == 422
        failed = wait_for(client, submit(client, small).json()["job"])
        assert failed["status"] == "failed" and "small.h5" in failed["error"]


def test_token_guards_the_api(tmp_path):
    with TestClient(create_app(tmp_path / "data", token="s3cret")) as client:
        assert client.get("/api/events").status_code == 401
        assert client.get("/api/events", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/api/events", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/health").status_code == 200


def test_a_job_left_running_by_a_stop_runs_again_and_stores_its_events_once(tmp_path, das_model):
    data = tmp_path / "data"
    data.mkdir()
    store = EventStore(default_url(data))
    upload = data / "uploads" / "x"
    upload.mkdir(parents=True)
    das_file(upload / "fibre.h5")
    job = store.create_job("vibration", "uploads/x/fibre.h5", {})
    assert store.claim_job(job)  # a service took it, then stopped before finishing
    run = store.create_run("vibration", "fibre.h5", run_id=job)
    store.close()
    with TestClient(create_app(data, models=ServiceModels(vibration=das_model))) as client:
        client.app.state.pool.wait(timeout=60)
        assert client.get(f"/api/jobs/{job}").json()["status"] == "done"
        assert client.get("/api/events", params={"run_id": run}).json()["total"] == 1


def test_load_concurrent_submissions_all_finish_and_store_each_event_once(tmp_path, das_model):
    """N clients submit at once over real HTTP on loopback; every job finishes, every event is stored once."""
    import httpx
    import uvicorn

    app = create_app(tmp_path / "data", models=ServiceModels(vibration=das_model), workers=2)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    path = das_file(tmp_path / "fibre.h5", impacts=2)
    n = 12

    def one(i: int) -> str:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            files = [("files", (f"fibre_{i}.h5", path.read_bytes()))]
            response = client.post("/api/jobs", data={"module": "vibration", "chainage_km": str(i)}, files=files)
            assert response.status_code == 202, response.text
            return response.json()["job"]

    try:
        with ThreadPoolExecutor(n) as clients:
            jobs = list(clients.map(one, range(n)))
        app.state.pool.wait(timeout=120)
        store = app.state.store
        assert all(store.get_job(j)["status"] == "done" for j in jobs)
        events = store.events(limit=1000)
        assert len(events) == 2 * n
        assert len({(e["run_id"], e["key"]) for e in events}) == 2 * n
        assert sorted({round(e["chainage_km"]) for e in events}) == list(range(n))
    finally:
        server.should_exit = True
        thread.join(10)
