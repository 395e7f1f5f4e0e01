"""A bounded pool of workers that runs submitted jobs and stores their events.

Jobs live in the database (:class:`~railwatch.service.store.EventStore`), not in memory: a job is
claimed atomically before it runs, its run and events are stored in one transaction each, and a
service that stops mid-job finds the job 'running' at its next start and runs it again. Events
are keyed within their run and a re-run re-uses the job's run, so every event is stored once.
"""

from __future__ import annotations

import traceback
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from threading import Lock

from railwatch.errors import InputError, RailwatchError
from railwatch.service.runners import RUNNERS, JobContext, ServiceModels
from railwatch.service.store import EventStore


class QueueFull(RailwatchError):
    """More jobs are waiting than the service takes."""


class JobPool:
    """Runs jobs on at most ``workers`` threads; refuses new ones when ``max_queued`` are waiting."""

    def __init__(self, store: EventStore, data_dir: Path, models: ServiceModels, workers: int = 2, max_queued: int = 64) -> None:
        self.store, self.data_dir, self.models = store, data_dir, models
        self.max_queued = max_queued
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="railwatch-job")
        self._pending: dict[str, Future] = {}
        self._lock = Lock()

    def resume(self) -> list[str]:
        """Queue again the jobs a stopped service left running or queued; returns their ids."""
        self.store.requeue_interrupted()
        waiting = [job["id"] for job in self.store.jobs(status="queued", limit=10_000)]
        for job_id in waiting:
            self._start(job_id)
        return waiting

    def submit(self, module: str, input_path: str, options: dict, line_id: str | None, chainage_km: float | None) -> str:
        """Store a job and start it when a worker is free; :class:`QueueFull` when too many wait."""
        if module not in RUNNERS:
            raise InputError(f"unknown module {module!r}; known: {', '.join(RUNNERS)}")
        with self._lock:
            if sum(not f.done() for f in self._pending.values()) >= self.max_queued:
                raise QueueFull(f"{self.max_queued} jobs are already waiting; try again later")
        job_id = self.store.create_job(module, input_path, options, line_id=line_id, chainage_km=chainage_km)
        self._start(job_id)
        return job_id

    def _start(self, job_id: str) -> None:
        with self._lock:
            self._pending[job_id] = self._executor.submit(self._run, job_id)

    def wait(self, timeout: float | None = None) -> None:
        """Block until every job submitted so far has finished (tests, the demo)."""
        for future in list(self._pending.values()):
            future.result(timeout=timeout)

    def _run(self, job_id: str) -> None:
        if not self.store.claim_job(job_id):
            return
        job = self.store.get_job(job_id)
        run_id = None
        try:
            context = JobContext(
                data_dir=self.data_dir, input_path=self.data_dir / job["input_path"], out_dir=self.data_dir / "results" / job_id,
                models=self.models, options=job["options"] or {}, line_id=job["line_id"], chainage_km=job["chainage_km"],
            )  # fmt: skip
            context.out_dir.mkdir(parents=True, exist_ok=True)
            # the run takes the job's id, so a job run again after a stop fills the same run
            run_id = self.store.create_run(job["module"], Path(job["input_path"]).name, job["line_id"], run_id=job_id)
            events, summary = RUNNERS[job["module"]](context)
            self.store.add_events(run_id, events)
            self.store.finish_run(run_id, "done", summary)
            self.store.finish_job(job_id, "done", run_id=run_id)
        except Exception as err:  # a job's failure is stored with the job; the worker goes on
            message = str(err) if isinstance(err, RailwatchError) else f"{type(err).__name__}: {err}"
            if run_id is not None:
                self.store.finish_run(run_id, "failed", {"error": message})
            self.store.finish_job(job_id, "failed", run_id=run_id, error=message)
            if not isinstance(err, RailwatchError):
                traceback.print_exc()

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
