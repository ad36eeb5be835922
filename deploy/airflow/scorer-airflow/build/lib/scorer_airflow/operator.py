"""``ScorerOperator``: one ``scorer run`` per task instance, its exit code mapped to retries.

scorer's exit codes are stable (README, "CLI reference"): 0 success; 1 internal, 2 configuration
and 3 data errors, which another try cannot fix; 4 transient, 5 already running and 6 cancelled,
which another try can. The operator raises ``AirflowFailException`` for the first kind (the task
fails at once, whatever its ``retries``) and ``AirflowException`` for the second (the task is
retried while it has tries left).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

#: scorer's exit codes worth another try (README, "CLI reference").
RETRYABLE = frozenset({4, 5, 6})

#: What each exit code means, for the task's error message.
MEANING = {
    1: "internal error",
    2: "configuration error",
    3: "data error",
    4: "transient error",
    5: "a run of this output and date is in progress",
    6: "cancelled",
}


def raise_for_exit(rc: int, job: str, date: str) -> None:
    """Returns on 0; raises ``AirflowException`` for a retryable exit code, else
    ``AirflowFailException`` (module doc)."""
    if rc == 0:
        return
    meaning = f"killed by signal {-rc}" if rc < 0 else MEANING.get(rc, "unknown exit code")
    if rc in RETRYABLE:
        raise AirflowException(f"scorer exited with {rc} ({meaning}, retryable): {job} {date}")
    raise AirflowFailException(
        f"scorer exited with {rc} ({meaning}, not retryable): fix the job or the data for {job} {date}"
    )


class ScorerOperator(BaseOperator):
    """Runs ``scorer run JOB --date DATE`` (the DAG run's logical date by default).

    ``shard``/``shards`` run one shard of a sharded date (``--shard I/N``), with the DAG run's id as
    the attempt, so a retried or cleared task joins its DAG run's attempt. ``extra_args`` go after
    the date; ``env`` is added to the worker's environment (e.g. ``DATABASE_URL`` from a
    connection). ``scorer_bin`` is the binary, ``scorer`` on the PATH by default.

    When Airflow kills the task (timeout, mark failed), the operator sends scorer SIGTERM, which
    cleans up and exits 6 within its grace; the date keeps its previous rows.
    """

    template_fields: Sequence[str] = ("job", "date", "attempt", "extra_args", "env")
    ui_color = "#dbe8f6"

    def __init__(
        self,
        *,
        job: str,
        date: str = "{{ ds }}",
        shard: int | None = None,
        shards: int | None = None,
        attempt: str = "{{ run_id }}",
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        scorer_bin: str = "scorer",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (shard is None) != (shards is None):
            raise ValueError("ScorerOperator: give both shard and shards, or neither")
        if shard is not None and shards is not None and not 0 <= shard < shards:
            raise ValueError(f"ScorerOperator: shard {shard} is not in 0..{shards}")
        self.job = job
        self.date = date
        self.shard = shard
        self.shards = shards
        self.attempt = attempt
        self.extra_args = list(extra_args)
        self.env = dict(env or {})
        self.scorer_bin = scorer_bin
        self._process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        """The scorer command line this task instance runs (after templating)."""
        argv = [self.scorer_bin, "run", self.job, "--date", self.date]
        if self.shard is not None:
            argv += ["--shard", f"{self.shard}/{self.shards}", "--attempt", self.attempt]
        return argv + list(self.extra_args)

    def execute(self, context: Any) -> None:
        """Runs scorer, streaming its output into the task log; raises by exit code."""
        argv = self.command()
        self.log.info("running %s", " ".join(argv))
        env = {**os.environ, **self.env}
        try:
            self._process = subprocess.Popen(
                argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except FileNotFoundError as e:
            raise AirflowFailException(
                f"scorer binary not found: {self.scorer_bin} (put it on the worker's PATH or set scorer_bin)"
            ) from e
        for line in self._process.stdout or ():
            self.log.info("%s", line.decode("utf-8", "replace").rstrip())
        rc = self._process.wait()
        self._process = None
        raise_for_exit(rc, self.job, self.date)

    def on_kill(self) -> None:
        """SIGTERM to scorer: it stops, removes what it staged and exits 6."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self._process.kill()
