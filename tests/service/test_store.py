"""The event store, on SQLite and on a real PostgreSQL server (``store_url`` runs each test on both)."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from railwatch.errors import InputError
from railwatch.service import store as store_module
from railwatch.service.store import Base, EventStore, default_url, head_revision, migrate

T0 = datetime(2024, 5, 1, 8, 0, tzinfo=timezone.utc)
KILL_BATCH = 20


@pytest.fixture
def store(store_url):
    s = EventStore(store_url)
    yield s
    s.close()


def _events(prefix: str, n: int, **extra) -> list[dict]:
    return [{"key": f"{prefix}_{i:04d}", "time": T0 + timedelta(seconds=i), "level": i % 4, **extra} for i in range(n)]


# --- migrations -------------------------------------------------------------------------------


def test_migrate_creates_tables_twice_and_is_at_head(store_url):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    migrate(store_url)
    migrate(store_url)  # a second time changes nothing
    engine = create_engine(store_url)
    try:
        assert {"runs", "events", "jobs", "alembic_version"} <= set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            versions = [row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version"))]
            assert versions == [head_revision()] == ["0001"]
            # the migration makes exactly the tables the models describe
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
        unique = inspect(engine).get_unique_constraints("events")
        assert [sorted(u["column_names"]) for u in unique] == [["key", "run_id"]]
    finally:
        engine.dispose()
    # a store opened without migrating accepts the migrated database
    EventStore(store_url, migrate_schema=False).close()


def test_store_without_migration_refuses_empty_database(store_url):
    with pytest.raises(InputError, match="schema revision none, expected 0001"):
        EventStore(store_url, migrate_schema=False)


# --- runs and events --------------------------------------------------------------------------


def test_round_trip(store):
    run_id = store.create_run("intrusion", "cab.mp4", line_id="L1", summary={"fps": 25})
    run = store.get_run(run_id)
    assert run["status"] == "running" and run["module"] == "intrusion" and run["finished_at"] is None
    assert run["started_at"].endswith("+00:00") and run["summary"] == {"fps": 25}

    stored = store.add_events(
        run_id,
        [
            {
                "key": "frame_12_track_3_level_2",
                "time": datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
                "chainage_km": 12.345,
                "level": 2,
                "score": 0.75,
                "label": "person",
                "details": {"track": 3, "distance_m": 41.5, "boxes": [[1, 2, 3, 4]]},
                "picture": "runs/abc/frame_12.jpg",
            },
            {"key": "frame_13_track_4_level_5", "time": "2024-05-01T10:00:01Z", "level": 5, "kind": "intrusion_alert"},
        ],
    )
    assert stored == 2
    first, second = store.events(run_id=run_id)
    assert first == {
        "id": first["id"],
        "run_id": run_id,
        "key": "frame_12_track_3_level_2",
        "module": "intrusion",
        "kind": "intrusion_alert",
        "time": "2024-05-01T10:00:00+00:00",  # 12:00 at +02:00, returned in UTC
        "source": "cab.mp4",
        "line_id": "L1",
        "chainage_km": 12.345,
        "level": 2,
        "score": 0.75,
        "label": "person",
        "details": {"track": 3, "distance_m": 41.5, "boxes": [[1, 2, 3, 4]]},
        "picture": "runs/abc/frame_12.jpg",
    }
    assert second["time"] == "2024-05-01T10:00:01+00:00" and second["level"] == 5 and second["picture"] is None
    json.dumps(store.events())  # plain JSON types only

    store.finish_run(run_id, summary={"alerts": 2}, report_path="reports/run.html")
    run = store.get_run(run_id)
    assert run["status"] == "done" and run["report_path"] == "reports/run.html"
    assert run["summary"] == {"fps": 25, "alerts": 2}
    assert datetime.fromisoformat(run["finished_at"]) >= datetime.fromisoformat(run["started_at"])
    assert store.get_run("nope") is None
    with pytest.raises(InputError, match="does not exist"):
        store.finish_run("nope")
    with pytest.raises(InputError, match="does not exist"):
        store.add_events("nope", [{"key": "a"}])


def test_event_defaults_come_from_the_run(store):
    run_id = store.create_run("vibration", "das.h5", line_id="L7")
    before = datetime.now(timezone.utc)
    store.add_events(run_id, [{"key": "section_3", "level": 2, "label": "FFI 2"}])
    (event,) = store.events()
    assert (event["module"], event["kind"], event["source"], event["line_id"]) == ("vibration", "das_section", "das.h5", "L7")
    assert event["details"] == {} and event["label"] == "FFI 2"
    assert before - timedelta(seconds=1) <= datetime.fromisoformat(event["time"]) <= datetime.now(timezone.utc)


def test_details_of_numpy_values_are_stored_as_plain_json(store):
    np = pytest.importorskip("numpy")
    run_id = store.create_run("vibration", "das.h5")
    details = {"ffi": np.float32(1.5), "channels": np.arange(3), "ok": np.bool_(True), "gap": float("nan"), "file": Path("a/b.h5")}
    store.add_events(run_id, [{"key": "s1", "level": np.int64(2), "score": np.float64(0.5), "details": details}])
    (event,) = store.events()
    assert event["level"] == 2 and type(event["level"]) is int and event["score"] == 0.5
    assert event["details"] == {"ffi": 1.5, "channels": [0, 1, 2], "ok": True, "gap": None, "file": "a/b.h5"}


def test_filters_ordering_limit_offset_and_count(store):
    fasteners = store.create_run("fasteners", "crops/", line_id="L1")
    surface = store.create_run("surface", "rail.png", line_id="L2")
    # inserted out of time order: the events come back ordered by time
    store.add_events(fasteners, [{"key": f"crop_{i:04d}", "time": T0 + timedelta(minutes=10 - i), "level": i % 2} for i in range(10)])
    store.add_events(surface, [{"key": f"defect_{i}", "time": T0 + timedelta(minutes=i, seconds=30), "level": None} for i in range(5)])
    store.add_events(surface, [{"key": "defect_L3", "time": T0, "line_id": "L3", "level": 3}])

    everything = store.events()
    assert len(everything) == 16 == store.count_events()
    assert [(e["time"], e["id"]) for e in everything] == sorted((e["time"], e["id"]) for e in everything)

    assert {e["module"] for e in store.events(module="fasteners")} == {"fasteners"}
    assert store.count_events(module="fasteners") == 10 and store.count_events(module="surface") == 6
    assert store.count_events(module="vibration") == 0
    assert store.count_events(run_id=surface) == 6 and {e["run_id"] for e in store.events(run_id=surface)} == {surface}
    # level_min: levels >= 1; events without a level are left out
    assert sorted(e["key"] for e in store.events(level_min=1)) == sorted(
        [f"crop_{i:04d}" for i in range(1, 10, 2)] + ["defect_L3"]
    )
    assert store.count_events(level_min=3) == 1
    # since inclusive, until exclusive; naive datetimes are UTC, ISO strings work too
    since, until = T0 + timedelta(minutes=2), T0 + timedelta(minutes=4)
    window = store.events(since=since, until=until)
    assert [e["key"] for e in window] == ["crop_0008", "defect_2", "crop_0007", "defect_3"]
    assert store.count_events(since=since.replace(tzinfo=None), until=until.isoformat()) == 4
    assert store.count_events(since=since.astimezone(timezone(timedelta(hours=-5))), until=until) == 4
    assert store.count_events(line_id="L2") == 5 and store.count_events(line_id="L3") == 1
    assert store.count_events(line_id="L1", level_min=1) == 5
    # limit and offset page through the same order
    pages = [store.events(limit=5, offset=o) for o in (0, 5, 10, 15)]
    assert [len(p) for p in pages] == [5, 5, 5, 1]
    assert [e["id"] for p in pages for e in p] == [e["id"] for e in everything]
    assert store.events(limit=0) == []
    with pytest.raises(InputError, match="limit"):
        store.events(limit=-1)
    with pytest.raises(InputError, match="module"):
        store.events(module="bridges")

    # runs: newest first, by module
    assert [r["id"] for r in store.runs()] == [surface, fasteners]
    assert [r["id"] for r in store.runs(module="fasteners")] == [fasteners]
    assert len(store.runs(limit=1)) == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"key": "x", "picture": "../etc/passwd"}, "no '..'"),
        ({"key": "x", "picture": "/etc/passwd"}, "not absolute"),
        ({"key": "x", "picture": "a\\..\\..\\b.png"}, "no '..'"),
        ({"label": "no key"}, "no 'key'"),
        ({"key": ""}, "must not be empty"),
        ({"key": "x", "module": "bridges"}, "module 'bridges'"),
        ({"key": "x", "level": 2.5}, "level must be an integer"),
        ({"key": "x", "level": "high"}, "level must be an integer"),
        ({"key": "x", "score": float("nan")}, "score must be finite"),
        ({"key": "x", "run_id": "other"}, "unknown field 'run_id'"),
        ({"key": "x", "time": "yesterday"}, "not an ISO 8601 time"),
        ({"key": "x", "details": {"a": object()}}, "cannot be stored as JSON"),
        ({"key": "x", "chainage_km": "12+300"}, "chainage_km must be a number"),
        ("not a dict", "must be a dict"),
    ],
)
def test_add_events_is_all_or_nothing(store, bad, message):
    run_id = store.create_run("fasteners", "crops/")
    batch = [*_events("ok", 5), bad, *_events("later", 3)]
    with pytest.raises(InputError, match=message) as caught:
        store.add_events(run_id, batch)
    assert "\n" not in str(caught.value) and "event 5" in str(caught.value)
    assert store.count_events() == 0


def test_duplicates_are_stored_once(store):
    run_id = store.create_run("fasteners", "crops/")
    batch = _events("crop", 6)
    assert store.add_events(run_id, batch + [dict(batch[0], label="repeat")]) == 6  # repeated in the batch
    assert store.add_events(run_id, batch) == 0  # stored already
    assert store.add_events(run_id, _events("crop", 8)) == 2  # only the 2 new ones
    assert store.count_events() == 8
    assert store.events(run_id=run_id)[0]["label"] == ""  # the first one of the batch counts
    other = store.create_run("fasteners", "crops/")
    assert store.add_events(other, batch) == 6  # keys are unique per run, not overall
    assert store.add_events(run_id, []) == 0


# --- no event lost when the service stops -----------------------------------------------------


def test_crash_while_reading_the_batch_stores_nothing_and_the_rerun_stores_all_once(store):
    run_id = store.create_run("surface", "rail.png")
    batch = _events("defect", 10)

    def crashing():
        for i, item in enumerate(batch):
            if i == 3:
                raise KeyboardInterrupt("service stopped")
            yield item

    with pytest.raises(KeyboardInterrupt):
        store.add_events(run_id, crashing())
    assert store.count_events() == 0
    assert store.add_events(run_id, iter(batch)) == 10
    assert store.add_events(run_id, iter(batch)) == 0
    assert store.count_events() == 10


def test_crash_inside_the_transaction_rolls_back_the_statements_already_run(store, monkeypatch):
    run_id = store.create_run("surface", "rail.png")
    store.add_events(run_id, _events("defect", 4))  # an earlier batch, complete
    batch = _events("defect", 12)  # 4 stored already, 8 new
    store.insert_chunk_rows = 3  # 4 INSERT statements in the one transaction
    original = EventStore._insert_chunk
    calls = []

    def dying(self, session, rows):
        calls.append(len(rows))
        if len(calls) == 3:
            raise SystemExit("service stopped mid-write")
        return original(self, session, rows)

    monkeypatch.setattr(EventStore, "_insert_chunk", dying)
    with pytest.raises(SystemExit):
        store.add_events(run_id, batch)
    assert calls == [3, 3, 3]  # two statements had run inside the transaction
    assert store.count_events() == 4  # ... and were rolled back
    monkeypatch.setattr(EventStore, "_insert_chunk", original)
    assert store.add_events(run_id, batch) == 8
    assert sorted(e["key"] for e in store.events()) == sorted(e["key"] for e in batch)


def _write_batches_forever(url: str, run_id: str) -> None:
    """Child process: store batches of KILL_BATCH events in a loop until killed."""
    writer = EventStore(url, migrate_schema=False)
    writer.insert_chunk_rows = 3  # several statements per transaction, to be killed between them
    n = 0
    while True:
        batch = [{"key": f"b{n:06d}_{i:02d}", "level": i % 4, "details": {"pad": "x" * 500}} for i in range(KILL_BATCH)]
        writer.add_events(run_id, batch)
        n += 1


def test_killed_writer_leaves_only_complete_batches(store_url):
    store = EventStore(store_url)
    run_id = store.create_run("vibration", "das.h5")
    child = multiprocessing.get_context("spawn").Process(target=_write_batches_forever, args=(store_url, run_id), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + 60
        while store.count_events(run_id=run_id) < 10 * KILL_BATCH:
            assert child.is_alive(), f"the writer process died by itself (exit code {child.exitcode})"
            assert time.monotonic() < deadline, "the writer process stored too little in 60 s"
            time.sleep(0.02)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
    assert child.exitcode == -signal.SIGKILL
    store.close()

    reopened = EventStore(store_url)
    try:
        total = reopened.count_events(run_id=run_id)
        assert total >= 10 * KILL_BATCH and total % KILL_BATCH == 0
        per_batch: dict[str, int] = {}
        for e in reopened.events(run_id=run_id, limit=total + 1):
            per_batch[e["key"].split("_")[0]] = per_batch.get(e["key"].split("_")[0], 0) + 1
        assert set(per_batch.values()) == {KILL_BATCH}
        if reopened.engine.dialect.name == "sqlite":
            with reopened.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert reopened.add_events(run_id, _events("after", 3)) == 3  # still writable
    finally:
        reopened.close()


# --- jobs -------------------------------------------------------------------------------------


def test_jobs_claim_finish_and_requeue(store):
    first = store.create_job("fasteners", "uploads/crops", options={"threshold": 0.5}, line_id="L1", chainage_km=3.2)
    second = store.create_job("intrusion", "uploads/cab.mp4")
    job = store.get_job(first)
    assert job["status"] == "queued" and job["options"] == {"threshold": 0.5} and job["input_path"] == "uploads/crops"
    assert (job["line_id"], job["chainage_km"], job["run_id"], job["started_at"]) == ("L1", 3.2, None, None)
    assert [j["id"] for j in store.jobs()] == [second, first]  # newest first
    assert [j["id"] for j in store.jobs(status="queued", limit=1)] == [second]

    assert store.claim_job(first) is True
    assert store.claim_job(first) is False  # taken already
    assert store.get_job(first)["status"] == "running" and store.get_job(first)["started_at"] is not None
    assert store.claim_job("no-such-job") is False

    run_id = store.create_run("fasteners", "uploads/crops", run_id=first)
    assert run_id == first
    store.finish_job(first, "done", run_id=run_id)
    assert store.get_job(first)["run_id"] == run_id
    job = store.get_job(first)
    assert job["status"] == "done" and job["finished_at"] is not None and job["error"] is None

    assert store.claim_job(second)
    store.finish_job(second, "failed", error="cab.mp4: not a video")
    assert store.get_job(second)["error"] == "cab.mp4: not a video"
    assert store.jobs(status="failed")[0]["id"] == second
    assert store.requeue_interrupted() == []  # nothing was left running

    with pytest.raises(InputError, match="does not exist"):
        store.finish_job("no-such-job", "done")
    with pytest.raises(InputError, match="'done' or 'failed'"):
        store.finish_job(first, "paused")
    with pytest.raises(InputError, match="inside the data folder"):
        store.create_job("surface", "../outside.png")
    with pytest.raises(InputError, match="module 'bridges'"):
        store.create_job("bridges", "x")


def test_requeued_job_reruns_into_the_same_run_and_stores_each_event_once(store):
    job_id = store.create_job("surface", "uploads/rail.png")
    assert store.claim_job(job_id)
    run_id = store.create_run("surface", "rail.png", run_id=job_id)  # the run takes the job's id
    store.add_events(run_id, _events("defect", 5))  # the first batches were stored ...
    # ... then the service stopped. At the next start:
    assert store.requeue_interrupted() == [job_id]
    assert store.get_job(job_id)["status"] == "queued"
    assert store.requeue_interrupted() == []
    assert store.claim_job(job_id)
    rerun = store.create_run("surface", "rail.png", summary={"attempt": 2}, run_id=job_id)
    assert rerun == run_id and store.get_run(run_id)["status"] == "running"
    assert store.get_run(run_id)["summary"] == {"attempt": 2}
    assert store.add_events(rerun, _events("defect", 9)) == 4
    store.finish_run(rerun)
    store.finish_job(job_id, "done", run_id=rerun)
    assert store.count_events() == 9 and len(store.runs()) == 1
    with pytest.raises(InputError, match="for module 'surface'"):
        store.create_run("vibration", "das.h5", run_id=job_id)
    with pytest.raises(InputError, match="run id"):
        store.create_run("vibration", "das.h5", run_id="x" * 33)


def test_one_claim_wins_among_threads(store):
    job_id = store.create_job("vibration", "uploads/das.h5")
    barrier = threading.Barrier(8)
    results: list[bool] = []

    def claim():
        barrier.wait()
        results.append(store.claim_job(job_id))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]


# --- concurrency ------------------------------------------------------------------------------


def test_eight_threads_write_at_once(store):
    run_id = store.create_run("intrusion", "cab.mp4")
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def write(t: int) -> None:
        try:
            barrier.wait()
            for b in range(5):
                assert store.add_events(run_id, _events(f"t{t}_b{b}", 20)) == 20
                store.count_events(run_id=run_id)  # readers and writers interleave
                store.finish_run(run_id, "running", summary={f"t{t}": b})  # read, then write, in one transaction
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_events(run_id=run_id) == 8 * 5 * 20
    assert store.get_run(run_id)["summary"] == {f"t{t}": 4 for t in range(8)}  # no update lost


# --- bad URLs ---------------------------------------------------------------------------------


def test_unreachable_server_is_one_line_input_error():
    with pytest.raises(InputError) as caught:
        EventStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    message = str(caught.value)
    assert "\n" not in message and message.startswith("cannot open database postgresql+psycopg://nobody:***@127.0.0.1:1/x: ")
    assert "secret" not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__  # no chained traceback
    with pytest.raises(InputError, match="127.0.0.1:1"):
        migrate("postgresql+psycopg://nobody@127.0.0.1:1/x")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("nonsense://", "unsupported database kind 'nonsense'"),
        ("not a url at all", "not a database URL"),
        ("mysql://u:pw@host/db", "unsupported database kind 'mysql'"),
        ("", "non-empty"),
    ],
)
def test_bad_urls_are_input_errors(url, message):
    with pytest.raises(InputError, match=message) as caught:
        EventStore(url)
    assert "\n" not in str(caught.value) and "pw" not in str(caught.value)


def test_sqlite_file_in_missing_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        EventStore(f"sqlite:///{tmp_path}/missing/railwatch.db")


def test_default_url_is_absolute_sqlite_in_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = default_url(Path("data"))
    assert url == f"sqlite:///{(tmp_path / 'data' / 'railwatch.db').resolve().as_posix()}"
    (tmp_path / "data").mkdir()
    with EventStore(url) as s:
        assert s.url == url and s.count_events() == 0
    assert (tmp_path / "data" / "railwatch.db").is_file()
    assert store_module.MODULES == ("fasteners", "surface", "vibration", "intrusion")
