"""Fixtures of the service tests: a SQLite file per test, and a real throw-away PostgreSQL server.

``postgres_url`` starts a PostgreSQL server from its binaries (``initdb``, ``pg_ctl``,
``postgres`` on PATH or in /usr/lib/postgresql/*/bin) in a temporary folder, once per test
session, and stops it at the end; the tests that need it are skipped when the binaries are not
there. PostgreSQL refuses to run as root, so as root the server runs as ``nobody``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

PG_USER = "railwatch"
PG_RUN_AS = "nobody"  # the unprivileged user the server runs as when the tests run as root


def _postgres_bin_dir() -> Path | None:
    """A folder holding initdb, pg_ctl and postgres, or None."""
    needed = ("initdb", "pg_ctl", "postgres")
    candidates = []
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).parent)
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for folder in candidates:
        if all((folder / name).is_file() and os.access(folder / name, os.X_OK) for name in needed):
            return folder
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(argv: list[str]) -> list[str]:
    """``argv`` run as an unprivileged user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("runuser"):
        return ["runuser", "-u", PG_RUN_AS, "--", *argv]
    if shutil.which("su"):
        import shlex

        return ["su", PG_RUN_AS, "-s", "/bin/sh", "-c", shlex.join(argv)]
    pytest.skip("running as root and neither runuser nor su is there to start PostgreSQL as another user")


def _run(argv: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_server_user(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-2000:]
        if log is not None and log.exists():
            tail += "\n--- server log ---\n" + log.read_text(errors="replace")[-2000:]
        pytest.fail(f"{what} failed (exit {done.returncode}):\n{tail}")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite database file in the test's temporary folder."""
    return f"sqlite:///{(tmp_path / 'railwatch.db').as_posix()}"


@pytest.fixture(scope="session")
def postgres_url():
    """``postgresql+psycopg://railwatch@127.0.0.1:PORT/railwatch`` on a throw-away server."""
    bin_dir = _postgres_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not found")
    import psycopg

    root = Path(tempfile.mkdtemp(prefix="railwatch-pg-", dir="/tmp" if os.path.isdir("/tmp") else None))
    data, sockets, log = root / "data", root / "sock", root / "server.log"
    sockets.mkdir()
    if os.geteuid() == 0:
        import pwd

        user = pwd.getpwnam(PG_RUN_AS)
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    port = _free_port()
    pg_ctl = str(bin_dir / "pg_ctl")
    started = False
    try:
        _run(
            [str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--locale=C", "-N"],
            "initdb",
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        _run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], "pg_ctl start", log)
        started = True
        with psycopg.connect(f"postgresql://{PG_USER}@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{PG_USER}"')
        yield f"postgresql+psycopg://{PG_USER}@127.0.0.1:{port}/{PG_USER}"
    finally:
        if started:
            subprocess.run(_as_server_user([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request):
    """An empty database of each kind: a SQLite file, and a fresh database on the PostgreSQL server."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_url")
        return
    import psycopg

    base = request.getfixturevalue("postgres_url")
    admin = base.replace("postgresql+psycopg://", "postgresql://")
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield base.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
