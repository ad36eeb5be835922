#!/usr/bin/env python3
"""W1 as N shards on one machine against one PostgreSQL: N `scorer run --shard I/N` processes at
once (rayon threads = CPUs / N each), from launch to the last one's exit (the last shard publishes
every part), against the unsharded run and single-stream COPY-only on the same server, in the same
invocation, alternating (benches/README.md, "Sharded runs"). Self-contained like many_core.py: it
takes prebuilt binaries and any PostgreSQL install, and starts a throwaway server on loopback.

  python3 benches/shards.py --bin DIR --pg PGINSTALL [--rows 5000000] [--runs 3] [--shards 1,2,4,8]

Each measurement is a new attempt (`--attempt`), so every round publishes. Prints min / median /
max wall per N, rows/s, the ratio to COPY-only, the scorer processes' CPU seconds (summed), the
server's, the largest shard's peak RSS and the publishing shard's commit seconds; writes the same
to $OUT/shards.txt when OUT is set.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from many_core import DATA, DATE, ensure_w1, log, psql, server_cpu, settle, start_pg, stop_pg  # noqa: E402


def job_file():
    """jobs/w1.toml writing `bench.w1_shards`, one COPY stream per process."""
    with open("jobs/w1.toml") as f:
        text = f.read()
    text = text.replace('name = "w1"', 'name = "w1_shards"')
    text = text.replace('table = "bench.w1_scores"', 'table = "bench.w1_shards"\ncopy_streams = 1')
    path = "jobs/w1_shards.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


def launch(bin_dir, url, job, extra, threads, attempt):
    env = dict(
        os.environ,
        DATABASE_URL=url,
        RUST_LOG="scorer=warn",
        RAYON_NUM_THREADS=str(threads),
        SCORER_ATTEMPT=attempt,
    )
    return subprocess.Popen(
        [f"{bin_dir}/scorer", "run", job, "--date", DATE, "--quiet"] + extra,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def run_all(bin_dir, url, job, n, cpus, attempt):
    """Starts n shard processes at once (one unsharded run when n is 0); waits for all."""
    threads = max(1, cpus // max(n, 1))
    t0 = time.perf_counter()
    if n == 0:
        procs = [launch(bin_dir, url, job, [], cpus, attempt)]
    else:
        procs = [launch(bin_dir, url, job, ["--shard", f"{i}/{n}"], threads, attempt) for i in range(n)]
    cpu, rss, published = 0.0, 0.0, 0
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        out = p.stdout.read().decode(errors="replace")
        err = p.stderr.read().decode(errors="replace")
        p.stdout.close()
        p.stderr.close()
        if status != 0:
            sys.exit(f"shards: scorer failed (status {status}):\n{out}\n{err[-2000:]}")
        cpu += usage.ru_utime + usage.ru_stime
        rss = max(rss, usage.ru_maxrss / 1024)
        published += "published the date" in out
    wall = time.perf_counter() - t0
    if n > 0 and published != 1:
        sys.exit(f"shards: {published} of {n} shards say they published")
    return wall, cpu, rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with scorer and scorer-datagen")
    ap.add_argument("--pg", required=True, help="PostgreSQL install (bin/initdb, bin/pg_ctl, bin/psql)")
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shards", default="1,2,4,8")
    args = ap.parse_args()
    counts = [int(x) for x in args.shards.split(",")]
    cpus = os.cpu_count() or 1
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ensure_w1(args.bin, args.rows)
    url = start_pg(args.pg)
    job = job_file()
    try:
        log("warm-up runs (create the table, warm the page cache)")
        run_all(args.bin, url, job, 0, cpus, "warm-0")
        for n in counts:
            run_all(args.bin, url, job, n, cpus, f"warm-{n}")
        copy_file = f"{DATA}/copy-only.bin"
        psql(args.pg, url, f"COPY (SELECT * FROM bench.w1_shards WHERE ds = DATE '{DATE}') TO '{copy_file}' (FORMAT binary)")
        rows = int(psql(args.pg, url, "SELECT count(*) FROM bench.w1_shards"))
        results = {n: [] for n in [0] + counts}
        copies = []
        for i in range(args.runs):
            log(f"round {i + 1}/{args.runs}")
            for n in [0] + counts:
                settle(args.pg, url)
                cpu0 = server_cpu()
                wall, cpu, rss = run_all(args.bin, url, job, n, cpus, f"round-{i}-{n}")
                pg_cpu = server_cpu() - cpu0
                got = int(psql(args.pg, url, "SELECT count(*) FROM bench.w1_shards"))
                if got != rows:
                    sys.exit(f"shards: {n} shards published {got} rows, not {rows}")
                commit = psql(
                    args.pg,
                    url,
                    "SELECT stage_seconds->>'commit' FROM scorer.runs WHERE job = 'w1_shards' "
                    "AND (published_rows IS NOT NULL OR shard_count IS NULL) AND status = 'succeeded' "
                    "ORDER BY finished_at DESC LIMIT 1",
                )
                results[n].append((wall, cpu, pg_cpu, rss, float(commit or 0)))
            psql(args.pg, url, "DROP TABLE IF EXISTS bench.copy_only; CREATE TABLE bench.copy_only (LIKE bench.w1_shards)")
            settle(args.pg, url)
            cpu0 = server_cpu()
            t0 = time.perf_counter()
            psql(args.pg, url, f"COPY bench.copy_only FROM '{copy_file}' (FORMAT binary)")
            copies.append((time.perf_counter() - t0, server_cpu() - cpu0))
        copy_med = statistics.median(c[0] for c in copies)
        lines = [
            f"W1 {rows} rows, {cpus} CPUs, {args.runs} measured runs per configuration, alternating",
            f"COPY-only (1 stream, file -> fresh unindexed table): min/median/max "
            f"{min(c[0] for c in copies):.2f} / {copy_med:.2f} / {max(c[0] for c in copies):.2f} s, "
            f"{rows / copy_med / 1e6:.2f} M rows/s, server {statistics.median(c[1] for c in copies):.2f} CPU-s",
            "| shards | rayon threads each | wall min / median / max (s) | M rows/s | × COPY-only | scorer CPU-s (all) | server CPU-s | peak RSS per process (MB) | publishing commit (s) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for n in [0] + counts:
            r = results[n]
            walls = [x[0] for x in r]
            med = statistics.median(walls)
            lines.append(
                f"| {'unsharded' if n == 0 else n} | {cpus if n == 0 else max(1, cpus // n)} | "
                f"{min(walls):.2f} / {med:.2f} / {max(walls):.2f} | {rows / med / 1e6:.2f} | "
                f"{copy_med / med:.2f} | {statistics.median(x[1] for x in r):.2f} | "
                f"{statistics.median(x[2] for x in r):.2f} | {max(x[3] for x in r):.0f} | "
                f"{statistics.median(x[4] for x in r):.2f} |"
            )
        report = "\n".join(lines)
        print(report)
        if os.environ.get("OUT"):
            with open(os.path.join(os.environ["OUT"], "shards.txt"), "w") as f:
                f.write(report + "\n")
    finally:
        os.remove(job)
        stop_pg(args.pg)


if __name__ == "__main__":
    main()
