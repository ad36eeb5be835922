"""Score one job per day with scorer from Airflow.

Each DAG run calls ``scorer run JOB --date {{ ds }}`` for its logical date through
``ScorerOperator`` (the ``scorer-airflow`` package beside this file), so a backfill
(``airflow backfill create --dag-id scorer_churn_daily --from-date ... --to-date ...``) replaces
exactly the dates it covers, each atomically. scorer's exit codes decide retries (README, "CLI
reference"): 4 (transient), 5 (the date is being scored by another run) and 6 (cancelled) are
retried; 1, 2 and 3 (internal, configuration, data) fail the task at once, since retrying cannot
fix them.

The worker needs ``pip install deploy/airflow/scorer-airflow``, the ``scorer`` binary on its PATH
and ``DATABASE_URL`` (and any cloud credentials) in its environment, e.g. from an Airflow
connection exported by the deployment. ``SCORER_AIRFLOW_RETRY_DELAY_SECONDS`` (default 300) sets
the first retry's delay; later ones back off exponentially.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG
from scorer_airflow import ScorerOperator

#: Shards of the sharded DAG: one mapped task each.
SHARDS = 4

#: The first retry's delay (exponential backoff after it).
RETRY_DELAY = timedelta(seconds=float(os.environ.get("SCORER_AIRFLOW_RETRY_DELAY_SECONDS", "300")))

RETRIES = {"retries": 3, "retry_delay": RETRY_DELAY, "retry_exponential_backoff": True}

with DAG(
    dag_id="scorer_churn_daily",
    description="Nightly churn scores into scores.churn_daily, one atomic partition per day",
    schedule="0 2 * * *",
    start_date=datetime(2026, 11, 1),
    catchup=True,
    max_active_runs=4,
    tags=["scorer"],
) as dag:
    ScorerOperator(task_id="score", job="churn_daily", **RETRIES)


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
    ScorerOperator.partial(task_id="score_shard", job="churn_daily", shards=SHARDS, **RETRIES).expand(
        shard=list(range(SHARDS))
    )
