"""Score one job per day with scorer from Airflow.

Each DAG run calls ``scorer run JOB --date {{ ds }}`` for its logical date, so a backfill
(``airflow backfill create --dag-id scorer_churn_daily --from-date ... --to-date ...``) replaces
exactly the dates it covers, each atomically. scorer's exit codes decide retries (README, "CLI
reference"): 4 (transient), 5 (the date is being scored by another run) and 6 (cancelled) are
retried; 1, 2 and 3 (internal, configuration, data) fail the task at once, since retrying cannot
fix them.

The worker needs the ``scorer`` binary on its PATH and ``DATABASE_URL`` (and any cloud
credentials) in its environment, e.g. from an Airflow connection exported by the deployment.
"""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk import DAG, task

#: scorer's exit codes worth another try (README, "CLI reference").
RETRYABLE = {4, 5, 6}


#: Shards of the sharded DAG: one mapped task each.
SHARDS = 4


def run_scorer(job: str, ds: str, scorer: str = "scorer", extra: list[str] | None = None) -> None:
    """Runs ``scorer run JOB --date DS [EXTRA]``; raises for Airflow by exit code (module doc)."""
    rc = subprocess.run([scorer, "run", job, "--date", ds, *(extra or [])], check=False).returncode
    if rc == 0:
        return
    if rc in RETRYABLE:
        raise AirflowException(f"scorer exited with {rc} (retryable): {job} {ds}")
    raise AirflowFailException(f"scorer exited with {rc} (not retryable): fix the job or the data for {job} {ds}")


with DAG(
    dag_id="scorer_churn_daily",
    description="Nightly churn scores into scores.churn_daily, one atomic partition per day",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=True,
    max_active_runs=4,
    tags=["scorer"],
) as dag:

    @task(retries=3, retry_delay=timedelta(minutes=5), retry_exponential_backoff=True)
    def score(ds: str | None = None) -> None:
        """Scores the DAG run's logical date."""
        if ds is None:
            raise AirflowFailException("no logical date in the task context")
        run_scorer("churn_daily", ds)

    score()


def shard_args(index: int, run_id: str) -> list[str]:
    """scorer's arguments for shard ``index`` of ``SHARDS`` of the DAG run ``run_id``."""
    return ["--shard", f"{index}/{SHARDS}", "--attempt", run_id]


# The sharded form: SHARDS mapped tasks, each scoring its share of the date's input. Each stages
# its rows; the last to finish publishes the date, so readers see the previous rows until all
# shards are done. The DAG run's id is the attempt: a retried task joins it (a shard that staged
# already does nothing), and a cleared DAG run scores only what changed since. Run this DAG or
# the one above, not both (it is created paused).
with DAG(
    dag_id="scorer_churn_daily_sharded",
    description="Nightly churn scores in 4 shards, published at once when all are staged",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=True,
    max_active_runs=2,
    is_paused_upon_creation=True,
    tags=["scorer"],
) as sharded_dag:

    @task(retries=3, retry_delay=timedelta(minutes=5), retry_exponential_backoff=True)
    def score_shard(index: int, ds: str | None = None, run_id: str | None = None) -> None:
        """Scores shard ``index`` of the DAG run's logical date."""
        if ds is None or run_id is None:
            raise AirflowFailException("no logical date or run id in the task context")
        run_scorer("churn_daily", ds, extra=shard_args(index, run_id))

    score_shard.expand(index=list(range(SHARDS)))
