//! The scheduler loop behind `scorer schedule`.
//!
//! Every tick it looks at each scheduled job whose next firing is due (or whose claims it has not
//! looked at for half a lease), works out the firings to run — claimed firings whose holder died
//! or whose retry is due, then the missed firings since the job's newest claimed one (all of
//! them up to `max_catchup` with `catchup`, else the latest) — and claims them oldest first. A
//! claimed firing runs in this process through the run library, at most `max_concurrent` at
//! once, its lease renewed beside it. The job directory is re-read every `reload_every`.
//!
//! Outcomes: success and failures that retrying cannot fix (configuration, data) mark the
//! firing done; retryable failures (transient infrastructure, the output locked by another run)
//! give it back for another attempt after `retry_delay`, up to `max_attempts`. On SIGTERM or
//! SIGINT the loop stops claiming, running runs get `grace` to finish, then are cancelled (ledger
//! `cancelled`, nothing half-published) and their firings given back for the next scheduler.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::calendar::Calendar;
use crate::db::Database;
use crate::failure::{Failure, RunError};
use crate::ledger::{self, Ledger};
use crate::run::signals::Stop;
use crate::run::{self, RunContext, RunRequest};
use crate::schedule::claims::{self, Claim, Claims, Firing};
use crate::schedule::jobs::{JobDir, ScheduledJob};

/// How often the loop wakes to look for due firings.
const TICK: Duration = Duration::from_millis(200);
/// After the grace period, how long cancelled runs get to clean up before the scheduler exits
/// anyway (their leftovers are swept by the next run).
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// `scorer schedule`'s settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Most runs at once in this process.
    pub max_concurrent: usize,
    /// How long a claim lives without renewal; a dead scheduler's firing is taken over after it.
    pub lease: Duration,
    /// How often the jobs directory is re-read.
    pub reload_every: Duration,
    /// After the first signal, how long running runs may take before they are cancelled.
    pub grace: Duration,
    /// Wait before a retryable failure is attempted again.
    pub retry_delay: Duration,
    /// Attempts of one firing before a retryable failure counts as failed.
    pub max_attempts: u32,
}

/// What the scheduler did, for its last log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub runs: u64,
    pub succeeded: u64,
    pub failed: u64,
    pub retried: u64,
    pub skipped: u64,
}

/// This scheduler's name in the claims table: host, process and a random suffix.
pub fn holder_id() -> String {
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    let id = Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[..8])
}

/// What the loop remembers of a job between ticks.
#[derive(Debug)]
struct JobState {
    /// When this scheduler first saw the job: a job with no claims and no `start_date` starts
    /// with its first firing after this.
    seen_at: DateTime<Utc>,
    running: bool,
    /// When its claims were last read, and the newest fire time they had.
    checked: Option<(Instant, Option<DateTime<Utc>>)>,
}

/// How one firing ended, as the task reports it.
#[derive(Debug)]
enum Ended {
    Succeeded,
    Failed,
    Retried,
    Skipped,
    /// Cancelled by the scheduler's stop, or the claim was lost: given back or not ours.
    Interrupted,
}

/// Shortest lease: renewals every third of it must reach the database in time.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

impl Options {
    /// Every problem with the options, at once.
    pub fn check(&self) -> Result<(), Failure> {
        let mut problems = Vec::new();
        if self.max_concurrent == 0 {
            problems.push("--max-concurrent must be at least 1".to_string());
        }
        if self.lease < MIN_LEASE {
            problems.push(format!(
                "--lease must be at least {}",
                humantime::format_duration(MIN_LEASE)
            ));
        }
        if self.reload_every.is_zero() {
            problems.push("--reload-every must be more than 0s".to_string());
        }
        if self.max_attempts == 0 {
            problems.push("--max-attempts must be at least 1".to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Failure::Many {
                problems,
                code: crate::error::exit::CONFIG,
            })
        }
    }
}

/// Runs the scheduler until `stop` fires; see the module documentation.
pub async fn serve(ctx: RunContext, opts: Options, stop: Stop) -> Result<Summary, Failure> {
    opts.check()?;
    let db = Database::open(&ctx.db).await?;
    let claims: Arc<dyn Claims> = Arc::from(claims::for_database(&db));
    let ledger: Arc<dyn Ledger> = Arc::from(ledger::for_database(&db));
    let holder = holder_id();
    tracing::info!(%holder, jobs_dir = %ctx.jobs_dir.display(), db = db.target(), max_concurrent = opts.max_concurrent, "scheduler started");
    let mut dir = JobDir::new(&ctx.jobs_dir);
    let mut reloaded: Option<Instant> = None;
    let mut states: BTreeMap<String, JobState> = BTreeMap::new();
    let permits = Arc::new(Semaphore::new(opts.max_concurrent.max(1)));
    let mut tasks: JoinSet<(String, Ended)> = JoinSet::new();
    let cancel_runs = CancellationToken::new();
    let mut summary = Summary::default();
    let shared = Arc::new(Shared {
        ctx,
        opts: opts.clone(),
        claims: Arc::clone(&claims),
        ledger,
        holder,
    });

    while !stop.first.is_cancelled() {
        if reloaded.is_none_or(|t| t.elapsed() >= opts.reload_every) {
            reload(&mut dir, &mut states);
            reloaded = Some(Instant::now());
        }
        let now = Utc::now();
        for (name, sj) in &dir.current().scheduled {
            let Some(state) = states.get_mut(name) else {
                continue;
            };
            if state.running
                || permits.available_permits() == 0
                || !needs_look(sj, state, now, &opts)
            {
                continue;
            }
            let looked = next_firing(sj, state, now, claims.as_ref(), &shared.holder, &opts).await;
            match looked {
                Ok(Some((firing, attempt))) => {
                    let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
                        // Not reachable (checked above, one loop); give it straight back.
                        let _ = claims
                            .release(&firing, &shared.holder, "no slot free", Duration::ZERO)
                            .await;
                        continue;
                    };
                    state.running = true;
                    summary.runs += 1;
                    let shared = Arc::clone(&shared);
                    let job = sj.job.clone();
                    let cancel = cancel_runs.child_token();
                    tasks.spawn(async move {
                        let name = job.name.clone();
                        let ended = shared.fire(job, firing, attempt, cancel).await;
                        drop(permit);
                        (name, ended)
                    });
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(job = %name, error = %e, "reading the job's claims failed; trying again")
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TICK) => {}
            () = stop.first.cancelled() => {}
            Some(joined) = tasks.join_next(), if !tasks.is_empty() => {
                settle(joined, &mut states, &mut summary);
            }
        }
    }

    shut_down(
        &mut tasks,
        &opts,
        &stop,
        &cancel_runs,
        &mut states,
        &mut summary,
    )
    .await;
    tracing::info!(?summary, "scheduler stopped");
    Ok(summary)
}

/// Records a finished task: its job may fire again, and its claims are read on the next tick
/// (a catch-up goes on at once).
fn settle(
    joined: Result<(String, Ended), tokio::task::JoinError>,
    states: &mut BTreeMap<String, JobState>,
    summary: &mut Summary,
) {
    let (name, ended) = match joined {
        Ok(done) => done,
        Err(e) => {
            // A panicking run task: its claim's lease runs out and another attempt takes it.
            tracing::error!(error = %e, "a run task failed; its firing is retried after its lease");
            summary.failed += 1;
            for s in states.values_mut().filter(|s| s.running) {
                s.checked = None;
            }
            return;
        }
    };
    match ended {
        Ended::Succeeded => summary.succeeded += 1,
        Ended::Failed => summary.failed += 1,
        Ended::Retried => summary.retried += 1,
        Ended::Skipped => summary.skipped += 1,
        Ended::Interrupted => {}
    }
    if let Some(s) = states.get_mut(&name) {
        s.running = false;
        s.checked = None;
    }
}

/// Re-reads the jobs directory and logs what changed.
fn reload(dir: &mut JobDir, states: &mut BTreeMap<String, JobState>) {
    let changes = match dir.rescan() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "cannot read the jobs directory; keeping the jobs read before");
            return;
        }
    };
    for name in &changes.added {
        tracing::info!(job = %name, "job added");
    }
    for name in &changes.changed {
        tracing::info!(job = %name, "job changed");
    }
    for name in &changes.removed {
        tracing::info!(job = %name, "job removed; it fires no more");
    }
    for (path, why) in &changes.invalid {
        tracing::error!(file = %path.display(), error = %why, "invalid job file skipped; the other jobs keep running");
    }
    let now = Utc::now();
    for name in dir.current().scheduled.keys() {
        states.entry(name.clone()).or_insert(JobState {
            seen_at: now,
            running: false,
            checked: None,
        });
    }
    for name in &changes.changed {
        if let Some(s) = states.get_mut(name) {
            s.checked = None;
        }
    }
}

/// Whether the job's claims are worth reading now: never read, a firing is due after the newest
/// known one, or half a lease passed (a dead holder's firing may be free).
fn needs_look(sj: &ScheduledJob, state: &JobState, now: DateTime<Utc>, opts: &Options) -> bool {
    let Some((at, latest)) = state.checked else {
        return true;
    };
    if at.elapsed() >= opts.lease / 2 {
        return true;
    }
    let from = latest.unwrap_or_else(|| anchor_without_claims(sj, state));
    sj.calendar.next_after(from).is_some_and(|next| next <= now)
}

/// Where a job with no claims starts: its `start_date` with catch-up, else when it was seen.
fn anchor_without_claims(sj: &ScheduledJob, state: &JobState) -> DateTime<Utc> {
    match (sj.job.catchup, sj.job.start_date) {
        (true, Some(day)) => start_of_day(&sj.calendar, day),
        _ => state.seen_at,
    }
}

/// The first instant of `day` in the calendar's zone (a firing at midnight of `day` counts).
fn start_of_day(calendar: &Calendar, day: chrono::NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    calendar
        .zone()
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(
            || Utc.from_utc_datetime(&midnight),
            |t| t.with_timezone(&Utc),
        )
        - chrono::Duration::milliseconds(1)
}

/// The firings the job should run now, oldest first: claimed ones nobody holds (a dead holder's,
/// or a retry that is due), then the missed ones after its newest claim.
async fn candidates(
    sj: &ScheduledJob,
    state: &mut JobState,
    now: DateTime<Utc>,
    claims: &dyn Claims,
) -> Result<Vec<Firing>, crate::db::DbError> {
    let name = &sj.job.name;
    let mut out = claims.due(name).await?;
    let latest = claims.latest(name).await?;
    state.checked = Some((Instant::now(), latest));
    let from = latest.unwrap_or_else(|| anchor_without_claims(sj, state));
    let limit = if sj.job.catchup {
        sj.job.max_catchup
    } else {
        1
    };
    out.extend(
        sj.calendar
            .fires_between(from, now, limit)
            .into_iter()
            .map(|fire_at| Firing {
                job: name.clone(),
                fire_at,
                logical_date: sj.calendar.logical_date(fire_at),
            }),
    );
    Ok(out)
}

/// Claims the job's oldest firing to run, if any is free.
async fn next_firing(
    sj: &ScheduledJob,
    state: &mut JobState,
    now: DateTime<Utc>,
    claims: &dyn Claims,
    holder: &str,
    opts: &Options,
) -> Result<Option<(Firing, u32)>, crate::db::DbError> {
    for firing in candidates(sj, state, now, claims).await? {
        match claims.claim(&firing, holder, opts.lease).await? {
            Claim::Taken { attempt } => return Ok(Some((firing, attempt))),
            Claim::Done => continue,
            // Held elsewhere, or an older firing of the job goes first.
            Claim::Busy => return Ok(None),
        }
    }
    Ok(None)
}

/// What every firing task shares.
struct Shared {
    ctx: RunContext,
    opts: Options,
    claims: Arc<dyn Claims>,
    ledger: Arc<dyn Ledger>,
    holder: String,
}

impl Shared {
    /// Runs one claimed firing to its end and records the outcome on its claim.
    async fn fire(
        &self,
        job: crate::job::Job,
        firing: Firing,
        attempt: u32,
        cancel: CancellationToken,
    ) -> Ended {
        let (name, date) = (firing.job.clone(), firing.logical_date);
        if let Some(run_id) = self.scored_since(&firing).await {
            let note = format!(
                "skipped: run {run_id} (started after this firing was due) already scored {date}"
            );
            tracing::info!(job = %name, %date, %run_id, "firing skipped: the date was already scored after it was due");
            self.finish(&firing, &note, Some(run_id)).await;
            return Ended::Skipped;
        }
        tracing::info!(job = %name, %date, fire_at = %firing.fire_at, attempt, "firing");
        let request = RunRequest {
            job,
            date,
            device: None,
            allow_row_drop: false,
            pin: None,
            shard: None,
            attempt_label: String::new(),
        };
        let (result, lost) = self.run_with_lease(&request, &firing, &cancel).await;
        if lost {
            // Another scheduler owns the firing now; its record is theirs to write.
            tracing::warn!(job = %name, %date, "the claim was lost while running; the run was cancelled");
            return Ended::Interrupted;
        }
        match result {
            Ok(report) => {
                let note = format!("succeeded: {} rows", report.rows_written);
                self.finish(&firing, &note, Some(report.run_id)).await;
                Ended::Succeeded
            }
            Err(e) if cancel.is_cancelled() => {
                // The scheduler is stopping: give the firing back for whoever runs next.
                tracing::warn!(job = %name, %date, error = %e, "run cancelled by the scheduler's stop; firing given back");
                self.release(
                    &firing,
                    "the scheduler stopped during the run",
                    Duration::ZERO,
                )
                .await;
                Ended::Interrupted
            }
            Err(e) => self.failed(&firing, attempt, &e).await,
        }
    }

    /// A failed run: given back for a retry when retrying may help and attempts remain, else
    /// done as failed.
    async fn failed(&self, firing: &Firing, attempt: u32, e: &RunError) -> Ended {
        let code = e.exit_code();
        let retryable = e.failure().is_some_and(Failure::is_retryable);
        if retryable && attempt < self.opts.max_attempts {
            let note = format!(
                "attempt {attempt} failed (exit {code}), retrying after {}: {e}",
                humantime::format_duration(self.opts.retry_delay)
            );
            tracing::warn!(job = %firing.job, date = %firing.logical_date, attempt, code, error = %e, "run failed; will retry");
            self.release(firing, &note, self.opts.retry_delay).await;
            return Ended::Retried;
        }
        tracing::error!(job = %firing.job, date = %firing.logical_date, attempt, code, error = %e, "run failed");
        self.finish(firing, &format!("failed (exit {code}): {e}"), None)
            .await;
        Ended::Failed
    }

    /// Runs the request while a task of its own renews the firing's lease; `true` beside the
    /// result when the claim was found lost (the run was then cancelled). The renewal must not
    /// share the run's task: on SQLite it waits for the write lock, which the run may hold
    /// (its swap) and release only if it is polled.
    async fn run_with_lease(
        &self,
        request: &RunRequest,
        firing: &Firing,
        cancel: &CancellationToken,
    ) -> (Result<run::RunOutcome, RunError>, bool) {
        let run_cancel = cancel.child_token();
        let lost = CancellationToken::new();
        let renewer = tokio::spawn(renew_lease(
            Arc::clone(&self.claims),
            firing.clone(),
            self.holder.clone(),
            self.opts.lease,
            run_cancel.clone(),
            lost.clone(),
        ));
        let result = run::run(&self.ctx, request, run_cancel).await;
        renewer.abort();
        (result, lost.is_cancelled())
    }

    /// A run of the firing's job and date that succeeded after the firing was due, if any: the
    /// date is already scored with data at least as new (cron or a person ran it).
    async fn scored_since(&self, firing: &Firing) -> Option<Uuid> {
        match self
            .ledger
            .last_succeeded(&firing.job, firing.logical_date)
            .await
        {
            Ok(last) => last
                .filter(|r| r.started_at >= firing.fire_at)
                .map(|r| r.run_id),
            Err(e) => {
                tracing::warn!(job = %firing.job, error = %e, "reading the ledger failed; running the firing");
                None
            }
        }
    }

    async fn finish(&self, firing: &Firing, note: &str, run_id: Option<Uuid>) {
        match self.claims.finish(firing, &self.holder, note, run_id).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(job = %firing.job, "the claim was taken over before it was finished")
            }
            Err(e) => {
                tracing::error!(job = %firing.job, error = %e, "recording the firing's outcome failed; it is retried after its lease")
            }
        }
    }

    async fn release(&self, firing: &Firing, note: &str, after: Duration) {
        if let Err(e) = self.claims.release(firing, &self.holder, note, after).await {
            tracing::error!(job = %firing.job, error = %e, "giving the firing back failed; it is taken over after its lease");
        }
    }
}

/// Renews `firing`'s lease every third of it until aborted; a claim found to be someone else's
/// cancels `lost` and the run.
async fn renew_lease(
    claims: Arc<dyn Claims>,
    firing: Firing,
    holder: String,
    lease: Duration,
    run_cancel: CancellationToken,
    lost: CancellationToken,
) {
    loop {
        tokio::time::sleep(lease / 3).await;
        match claims.renew(&firing, &holder, lease).await {
            Ok(true) => {}
            Ok(false) => {
                lost.cancel();
                run_cancel.cancel();
                return;
            }
            // The database is away: keep running; the output lock still guards the date, and
            // the claim is checked again next time.
            Err(e) => tracing::warn!(job = %firing.job, error = %e, "renewing the claim failed"),
        }
    }
}

/// Stops: waits up to the grace period for running runs, then cancels them and waits for their
/// clean-up (bounded; a further signal exits at once).
async fn shut_down(
    tasks: &mut JoinSet<(String, Ended)>,
    opts: &Options,
    stop: &Stop,
    cancel_runs: &CancellationToken,
    states: &mut BTreeMap<String, JobState>,
    summary: &mut Summary,
) {
    if tasks.is_empty() {
        return;
    }
    tracing::warn!(
        runs = tasks.len(),
        grace_s = opts.grace.as_secs_f64(),
        "stopping: waiting for running runs (a second signal cancels them now)"
    );
    let grace = tokio::time::sleep(opts.grace);
    tokio::pin!(grace);
    while !tasks.is_empty() {
        tokio::select! {
            Some(joined) = tasks.join_next() => settle(joined, states, summary),
            () = &mut grace => break,
            () = stop.second.cancelled() => break,
        }
    }
    if tasks.is_empty() {
        return;
    }
    tracing::warn!(runs = tasks.len(), "cancelling running runs");
    cancel_runs.cancel();
    let bound = tokio::time::sleep(CANCEL_WAIT);
    tokio::pin!(bound);
    while !tasks.is_empty() {
        tokio::select! {
            Some(joined) = tasks.join_next() => settle(joined, states, summary),
            () = &mut bound => {
                tracing::error!(runs = tasks.len(), "runs did not finish cancelling; exiting (the next run or `scorer gc` sweeps what they leave)");
                tasks.abort_all();
                return;
            }
        }
    }
}
