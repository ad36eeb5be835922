#!/usr/bin/env python3
"""The scheduler over months, compressed: one `scorer schedule` process over 50 job files on
second-level schedules against a throwaway PostgreSQL, for at least --firings firings (default
1,000). A few jobs fail on purpose (a model version that does not exist: exit 2, firing failed),
and a few job files are edited while it runs (schedule and a comment changed, so hot reload
replaces them). Every 100 firings it records the scheduler's RSS, open file descriptors and
threads, the PostgreSQL backends connected, the claims outstanding (`claimed`), the staging tables
and the `running` ledger rows, each sampled between runs (none running or claimed); at the end it stops the scheduler with SIGTERM (exit 0 expected)
and checks nothing was left behind (benches/README.md, "Soak").

  python3 benches/soak.py --bin DIR --pg PGINSTALL [--firings 1000] [--jobs 50] [--failing 3]

DIR holds release `scorer` and `scorer-datagen`; PGINSTALL is any PostgreSQL install with
bin/initdb, bin/pg_ctl and bin/psql (Debian's: /usr/lib/postgresql/15). Prints the table, and
whether each measure stayed within 10 % after warm-up (the first 200 firings); writes the same to
$OUT/soak.txt when OUT is set.
"""

import argparse
import datetime
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from many_core import psql, start_pg, stop_pg  # noqa: E402

WORK = "/tmp/scorer-soak"
ROWS = 2000
WARM_UP = 200


def log(msg):
    print(f"soak: {msg}", file=sys.stderr, flush=True)


def proc_status(pid):
    """(RSS MB, threads, open fds) of process pid."""
    rss, threads = 0.0, 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads, len(os.listdir(f"/proc/{pid}/fd"))


def job_text(i, failing, edit=0):
    """Job soak_NN: every 20 s at second NN mod 20 (every 30 s once edited an odd number of
    times). 50 jobs then fire 2.5 times a second, below what 2 cores score (about 4 runs a
    second of 2,000 rows), so the scheduler keeps up and a backlog is not mistaken for a leak."""
    every = 30 if edit % 2 else 20
    version = "404" if i < failing else "1"
    return f"""# soak job {i}{f' (edited {edit} times)' if edit else ''}
name = "soak_{i:02d}"
schedule = "{i % 20}/{every} * * * * *"

[input]
url = "{WORK}/data/dt={{{{ ds }}}}/*.parquet"
id_column = "id"
features = ["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7"]
on_null = "fill:0.0"

[model]
name = "quickstart_mlp"
version = "{version}"

[output]
table = "soak.scores_{i:02d}"
columns = {{ score = "score" }}
"""


def prepare(bin_dir, jobs, failing):
    shutil.rmtree(WORK, ignore_errors=True)
    os.makedirs(f"{WORK}/jobs")
    shutil.copytree("models", f"{WORK}/models")
    today = datetime.datetime.now(datetime.timezone.utc).date()
    # Today's and tomorrow's inputs, so a soak that crosses midnight (UTC) still finds its date.
    for d in (today, today + datetime.timedelta(days=1)):
        subprocess.run(
            [f"{bin_dir}/scorer-datagen", "input", "--out", f"{WORK}/data/dt={d}", "--date", str(d),
             "--rows", str(ROWS), "--files", "1", "--features", "8", "--null-feature", "3",
             "--null-fraction", "0.01"],
            check=True, stdout=subprocess.DEVNULL,
        )
    for i in range(jobs):
        with open(f"{WORK}/jobs/soak_{i:02d}.toml", "w") as f:
            f.write(job_text(i, failing))


def query(pg, url, sql):
    return psql(pg, url, sql).strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with release scorer and scorer-datagen")
    ap.add_argument("--pg", required=True, help="PostgreSQL install (bin/initdb, bin/pg_ctl, bin/psql)")
    ap.add_argument("--firings", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=50)
    ap.add_argument("--failing", type=int, default=3, help="jobs that fail on purpose")
    ap.add_argument("--max-concurrent", type=int, default=2)
    args = ap.parse_args()
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    prepare(args.bin, args.jobs, args.failing)
    url = start_pg(args.pg)
    sched = None
    try:
        query(args.pg, url, "CREATE SCHEMA soak")
        env = dict(os.environ, DATABASE_URL=url, RUST_LOG="scorer=warn")
        logf = open(f"{WORK}/schedule.log", "w")
        sched = subprocess.Popen(
            [f"{args.bin}/scorer", "--models-dir", f"{WORK}/models", "schedule", "--jobs-dir", f"{WORK}/jobs",
             "--reload-every", "2s", "--max-concurrent", str(args.max_concurrent)],
            env=env, stdout=logf, stderr=subprocess.STDOUT,
        )
        started = time.monotonic()
        rows, edits, next_mark, last_edit = [], {}, 100, started
        while next_mark <= args.firings:
            time.sleep(0.5)
            if sched.poll() is not None:
                sys.exit(f"soak: the scheduler exited ({sched.returncode}); see {WORK}/schedule.log")
            # Every 20 s, three job files edited (schedule every 10 s <-> every 20 s, a comment).
            if time.monotonic() - last_edit >= 20:
                last_edit = time.monotonic()
                for k in range(3):
                    i = (len(edits) * 3 + k) % args.jobs
                    edits[i] = edits.get(i, 0) + 1
                    with open(f"{WORK}/jobs/soak_{i:02d}.toml", "w") as f:
                        f.write(job_text(i, args.failing, edits[i]))
            done = int(query(args.pg, url, "SELECT count(*) FROM scorer.claims WHERE state = 'done'"))
            if done < next_mark:
                continue
            # Sampled between runs (none running or claimed, up to 10 s of waiting), so that every sample
            # is of the same state: a run in flight holds its COPY sessions and their fds.
            for _ in range(100):
                busy = query(
                    args.pg, url,
                    "SELECT (SELECT count(*) FROM scorer.runs WHERE status = 'running') + "
                    "(SELECT count(*) FROM scorer.claims WHERE state = 'claimed')",
                )
                if busy == "0":
                    break
                time.sleep(0.1)
            rss, threads, fds = proc_status(sched.pid)
            stats = query(
                args.pg, url,
                "SELECT (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
                "AND pid <> pg_backend_pid()), "
                "(SELECT count(*) FROM scorer.claims WHERE state = 'claimed'), "
                "(SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%'), "
                "(SELECT count(*) FROM scorer.runs WHERE status = 'running'), "
                "(SELECT count(*) FROM scorer.claims WHERE state = 'done' AND outcome LIKE 'failed%')",
            )
            backends, claimed, staging, running, failed = (int(x) for x in stats.split("|"))
            rows.append((done, time.monotonic() - started, rss, fds, threads, backends, claimed, staging, running, failed))
            log(f"{done} firings: RSS {rss:.1f} MB, {fds} fds, {threads} threads, {backends} backends, "
                f"{claimed} claimed, {staging} staging, {running} running, {failed} failed")
            while next_mark <= done:
                next_mark += 100
        sched.send_signal(signal.SIGTERM)
        code = sched.wait(timeout=120)
        leftovers = query(
            args.pg, url,
            "SELECT (SELECT count(*) FROM scorer.runs WHERE status = 'running'), "
            "(SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stg\\_%'), "
            "(SELECT count(*) FROM scorer.claims WHERE state = 'claimed' AND holder <> '')",
        )
        succeeded = query(args.pg, url, "SELECT count(*) FROM scorer.runs WHERE status = 'succeeded'")
        cpu = os.cpu_count()
        lines = [
            f"{args.jobs} jobs ({args.failing} failing on purpose), second-level schedules, "
            f"--max-concurrent {args.max_concurrent}, {ROWS} rows per run, {cpu} CPUs; "
            f"{len(edits)} job files edited {sum(edits.values())} times while it ran",
            "| firings | elapsed (s) | RSS (MB) | open fds | threads | PG backends | claims outstanding | staging tables | running rows | failed firings |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in rows:
            lines.append(f"| {r[0]} | {r[1]:.0f} | {r[2]:.1f} | {r[3]} | {r[4]} | {r[5]} | {r[6]} | {r[7]} | {r[8]} | {r[9]} |")
        after = [r for r in rows if r[0] >= WARM_UP]
        for name, k in (("RSS", 2), ("open fds", 3), ("threads", 4), ("PG backends", 5)):
            lo, hi = min(r[k] for r in after), max(r[k] for r in after)
            flat = hi <= lo * 1.10 + (1 if k != 2 else 0)
            lines.append(f"{name} after {WARM_UP} firings: {lo:g} .. {hi:g} ({'flat within 10 %' if flat else 'GROWS'})")
        lines.append(
            f"SIGTERM: exit {code}; left behind (running rows, staging tables, held claims): "
            f"{leftovers.replace('|', ', ')}; succeeded runs {succeeded}"
        )
        report = "\n".join(lines)
        print(report)
        if os.environ.get("OUT"):
            with open(os.path.join(os.environ["OUT"], "soak.txt"), "w") as f:
                f.write(report + "\n")
    finally:
        if sched is not None and sched.poll() is None:
            sched.kill()
        stop_pg(args.pg)


if __name__ == "__main__":
    main()
