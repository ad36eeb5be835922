"""Runs the repository's DAGs with ``airflow dags test`` against a real PostgreSQL and checks what
they did: the rows, scorer's ledger and Airflow's task states.

Four DAG runs, each for its own logical date, with the real scorer binary on the PATH:
1. the daily DAG, scored in one try;
2. the sharded DAG: four mapped tasks, the last publishes the date;
3. the daily DAG while PostgreSQL is unreachable: scorer exits 4, the task goes up for retry, the
   database comes back (a TCP forwarder starts on the port the job's URL names) and the retry
   scores the date;
4. the daily DAG for a date with no input: scorer exits 3 and the task fails without a retry.

Run by ``scripts/airflow-check.sh`` (part of the test command), in the Airflow virtualenv, with
``SCORER_TEST_DATABASE_URL`` (scripts/pg-env.sh) and ``SCORER_BIN_DIR`` (scorer and
scorer-datagen) set.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[3]
DB_URL = os.environ["SCORER_TEST_DATABASE_URL"]
BIN_DIR = Path(os.environ["SCORER_BIN_DIR"])
TABLE = "airflow_check.churn_daily"
DAILY, SHARDED = "scorer_churn_daily", "scorer_churn_daily_sharded"


def log(msg: str) -> None:
    print(f"airflow-check: {msg}", flush=True)


def fail(msg: str) -> None:
    sys.exit(f"airflow-check: FAILED: {msg}")


def psql(sql: str) -> list[list[str]]:
    out = subprocess.run(
        ["psql", DB_URL, "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{parts.username + '@' if parts.username else ''}{host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


class Forwarder:
    """A TCP forwarder from a loopback port to PostgreSQL, started when the test says the database
    is back."""

    def __init__(self, listen: int, target: tuple[str, int]) -> None:
        self.listen, self.target = listen, target
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def start(self) -> None:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", self.listen), self.loop
        ).result(timeout=10)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


def airflow(env: dict[str, str], *args: str, background: bool = False):
    argv = [str(Path(sys.executable).parent / "airflow"), *args]
    if background:
        return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(argv, env=env, capture_output=True, text=True)


def task_states(home: Path, dag_id: str, date: str) -> list[tuple[str, int, str, int]]:
    """(task_id, map_index, state, try_number) of the DAG run for ``date``, from Airflow's
    metadata database."""
    db = sqlite3.connect(home / "airflow.db", timeout=30)
    try:
        return db.execute(
            "SELECT ti.task_id, ti.map_index, ti.state, ti.try_number FROM task_instance ti "
            "JOIN dag_run dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id "
            "WHERE ti.dag_id = ? AND date(dr.logical_date) = ? ORDER BY ti.map_index",
            (dag_id, date),
        ).fetchall()
    finally:
        db.close()


def dags_test(env: dict[str, str], dag_id: str, date: str, want_rc: int) -> None:
    t0 = time.monotonic()
    run = airflow(env, "dags", "test", dag_id, date)
    secs = time.monotonic() - t0
    if (run.returncode == 0) != (want_rc == 0):
        sys.stdout.write(run.stdout[-6000:] + run.stderr[-6000:])
        fail(f"airflow dags test {dag_id} {date} exited {run.returncode}")
    log(f"airflow dags test {dag_id} {date}: exit {run.returncode} in {secs:.1f} s")


def check_rows(date: str, want: int) -> None:
    got = int(psql(f"SELECT count(*) FROM {TABLE} WHERE ds = '{date}'")[0][0])
    if got != want:
        fail(f"{TABLE} has {got} rows for {date}, expected {want}")


def ledger(date: str, since: str) -> list[list[str]]:
    """(status, rows_written) of this test's runs of ``date``, oldest first."""
    return psql(
        "SELECT status, coalesce(rows_written, 0) FROM scorer.runs "
        f"WHERE job = 'churn_daily' AND logical_date = '{date}' AND started_at >= '{since}' ORDER BY started_at"
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="scorer-airflow-"))
    home = work / "airflow-home"
    jobs = work / "jobs"
    jobs.mkdir()
    rows = 20000
    dates = {"daily": "2026-11-24", "sharded": "2026-11-25", "retry": "2026-11-26", "no_input": "2026-11-27"}
    for name in ("daily", "sharded", "retry"):
        subprocess.run(
            [BIN_DIR / "scorer-datagen", "input", "--out", work / "input" / f"dt={dates[name]}",
             "--date", dates[name], "--rows", str(rows), "--files", "4", "--row-group-rows", "2048",
             "--features", "8"],
            check=True, capture_output=True,
        )
    (jobs / "churn_daily.toml").write_text(
        f"""name = "churn_daily"
schedule = "0 2 * * *"

[input]
url = "{work}/input/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
features = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"]

[model]
name = "quickstart_mlp"
version = "1"

[output]
table = "{TABLE}"
columns = {{ score = "score" }}
"""
    )
    psql("DROP SCHEMA IF EXISTS airflow_check CASCADE; CREATE SCHEMA airflow_check")
    since = psql("SELECT now()")[0][0]
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "deploy" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}",
        "SCORER_JOBS_DIR": str(jobs),
        "SCORER_MODELS_DIR": str(REPO / "models"),
        "SCORER_AIRFLOW_RETRY_DELAY_SECONDS": "2",
        "DATABASE_URL": DB_URL,
    }
    t0 = time.monotonic()
    migrate = airflow(env, "db", "migrate")
    if migrate.returncode != 0:
        sys.stdout.write(migrate.stdout[-4000:] + migrate.stderr[-4000:])
        fail("airflow db migrate")
    log(f"airflow db migrate (SQLite metadata) in {time.monotonic() - t0:.1f} s")

    # 1. The daily DAG.
    date = dates["daily"]
    dags_test(env, DAILY, date, 0)
    check_rows(date, rows)
    states = task_states(home, DAILY, date)
    if states != [("score", -1, "success", 1)]:
        fail(f"daily DAG task states {states}")
    if [r[:2] for r in ledger(date, since)] != [["succeeded", str(rows)]]:
        fail(f"ledger for {date}: {ledger(date, since)}")
    log(f"daily DAG {date}: {rows} rows, ledger succeeded, task states {states}")

    # 2. The sharded DAG: four shards, one publication.
    date = dates["sharded"]
    dags_test(env, SHARDED, date, 0)
    check_rows(date, rows)
    states = task_states(home, SHARDED, date)
    if states != [("score_shard", i, "success", 1) for i in range(4)]:
        fail(f"sharded DAG task states {states}")
    runs = ledger(date, since)
    if len(runs) != 4 or any(r[0] != "succeeded" for r in runs) or sum(int(r[1]) for r in runs) != rows:
        fail(f"sharded ledger for {date}: {runs}")
    log(f"sharded DAG {date}: {rows} rows from 4 shard runs {[int(r[1]) for r in runs]}, task states {states}")

    # 3. PostgreSQL unreachable on the first try: exit 4, retried once it is back.
    date = dates["retry"]
    port = free_port()
    pg = urlsplit(DB_URL)
    env_retry = {**env, "DATABASE_URL": with_port(DB_URL, port)}
    proc = airflow(env_retry, "dags", "test", DAILY, date, background=True)
    deadline = time.monotonic() + 120
    while True:
        states = task_states(home, DAILY, date) if (home / "airflow.db").exists() else []
        if states and states[0][2] == "up_for_retry":
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            fail(f"the task did not go up for retry: states {states}, output {proc.communicate()[0][-4000:]}")
        time.sleep(0.2)
    log(f"retry DAG {date}: first try failed with PostgreSQL unreachable, task {states[0][2]}")
    forwarder = Forwarder(port, (pg.hostname or "127.0.0.1", pg.port or 5432))
    forwarder.start()
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        forwarder.stop()
    if proc.returncode != 0:
        sys.stdout.write(out[-6000:])
        fail(f"retry DAG exited {proc.returncode}")
    if "exited with 4 (transient error, retryable)" not in out:
        sys.stdout.write(out[-6000:])
        fail("the first try's log does not say scorer exited with 4")
    states = task_states(home, DAILY, date)
    if states != [("score", -1, "success", 2)]:
        fail(f"retry DAG task states {states}")
    check_rows(date, rows)
    # The first try never reached the database, so the ledger has the second's run alone.
    if ledger(date, since) != [["succeeded", str(rows)]]:
        fail(f"retry ledger for {date}: {ledger(date, since)}")
    log(f"retry DAG {date}: scorer exited 4, retried, second try succeeded: {rows} rows, task states {states}")

    # 4. No input for the date: exit 3, failed at once.
    date = dates["no_input"]
    t0 = time.monotonic()
    run = airflow(env, "dags", "test", DAILY, date)
    states = task_states(home, DAILY, date)
    if states != [("score", -1, "failed", 1)]:
        sys.stdout.write(run.stdout[-6000:] + run.stderr[-6000:])
        fail(f"no-input DAG task states {states}")
    if "exited with 3 (data error, not retryable)" not in run.stdout + run.stderr:
        sys.stdout.write(run.stdout[-6000:] + run.stderr[-6000:])
        fail("the no-input run's log does not say scorer exited with 3")
    check_rows(date, 0)
    if [r[0] for r in ledger(date, since)] != ["failed"]:
        fail(f"no-input ledger for {date}: {ledger(date, since)}")
    log(
        f"no-input DAG {date}: scorer exited 3, task failed without retry (exit {run.returncode}, "
        f"{time.monotonic() - t0:.1f} s), task states {states}"
    )
    psql("DROP SCHEMA airflow_check CASCADE")
    shutil.rmtree(work)
    log("both DAGs ran with airflow dags test: rows, ledger and task states as expected")


if __name__ == "__main__":
    main()
