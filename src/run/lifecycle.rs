//! A run's lifecycle around its work: resolve the output, lock it, sweep what dead runs left,
//! record the run as `running`, execute it beside its heartbeat, record how it ended, unlock.

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::execute::Work;
use super::record::Recorder;
use super::{RunContext, RunOutcome, RunRequest, after_publish, sweep};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::failure::Failure;
use crate::ledger::{self, Ledger, RecentQuery, RunStart};
use crate::plan;
use crate::shard::coordination;
use crate::sink::Output;

/// The whole run of `req`, its failure not yet attached to the job's name.
pub(super) async fn lifecycle(
    ctx: &RunContext,
    req: &RunRequest,
    cancel: CancellationToken,
) -> Result<RunOutcome, Failure> {
    let started = Instant::now();
    let Locked {
        db,
        target,
        output,
        subject,
        lock,
    } = lock_output(ctx, req).await?;
    let ledger: Arc<dyn Ledger> = Arc::from(ledger::for_database(&db));
    let previous_rows =
        before_start(ctx, req, &db, ledger.as_ref(), target.as_ref(), &subject).await;
    let run_id = Uuid::now_v7();
    tracing::Span::current().record("run_id", tracing::field::display(run_id));
    if let Err(e) = ledger.start(&run_start(req, run_id, &output)).await {
        lock.release().await;
        return Err(e.into());
    }
    tracing::info!(%run_id, job = %req.job.name, date = %req.date, db = db.target(), %output, "run started");
    let lock = Arc::new(Mutex::new(lock));
    let work = Work {
        ctx,
        req,
        db: &db,
        run_id,
        target: Arc::clone(&target),
        output,
        subject,
        lock: &lock,
        // The run stops on the caller's token, or on its own when its lock is found lost.
        cancel: cancel.child_token(),
        previous_rows,
    };
    let mut rec = Recorder::default();
    rec.cpu_at_start = crate::metrics::process_cpu_seconds();
    let _active = ActiveRun::start();
    let outcome = work.supervised(&ledger, &mut rec).await;
    // A failed run whose staging is gone (the usual case) has nothing to resume.
    if outcome.is_err()
        && let Some(table) = target.staging_table()
        && !crate::resume::staging_exists(&db, table, run_id)
            .await
            .unwrap_or(true)
    {
        crate::resume::forget(&db, run_id).await;
    }
    rec.stage("total", started);
    if outcome.is_ok() {
        after_publish::after_success(ledger.as_ref(), req, target.as_ref(), &mut rec).await;
    }
    let finish = rec.finish_of(&outcome);
    let ledger_result = ledger.finish(run_id, &finish).await;
    // A shard that ended `staged` while another shard published: its row follows the attempt.
    if let (Some(attempt), crate::ledger::RunStatus::Staged) = (&rec.attempt, finish.status)
        && let Err(e) = coordination::settle_run(&db, attempt, run_id).await
    {
        tracing::warn!(error = %e, "cannot settle the shard run's ledger row");
    }
    match Arc::try_unwrap(lock) {
        Ok(lock) => lock.into_inner().release().await,
        Err(_) => tracing::warn!("the output lock is still shared; it ends with its connection"),
    }
    after_publish::export_metrics(ctx, &req.job, &finish).await;
    outcome?;
    ledger_result?;
    tracing::info!(%run_id, rows = rec.rows_written, seconds = started.elapsed().as_secs_f64(), "run succeeded");
    Ok(report(req, run_id, target, &db, rec))
}

/// A run's output, resolved and locked, with the database its ledger (and table) are in.
struct Locked {
    db: Database,
    /// The output kind that writes the run's rows.
    target: Arc<dyn Output>,
    /// The output as the ledger and the date's lock name it.
    output: String,
    /// What the run locked: the output, or the output and shard.
    subject: String,
    lock: Box<dyn OutputLock>,
}

/// Resolves the run's output, opens its database and takes the (output, date) lock, or says
/// another run holds it.
async fn lock_output(ctx: &RunContext, req: &RunRequest) -> Result<Locked, Failure> {
    let destination = plan::destination(&req.job, req.date)?;
    let output = destination.to_string();
    // Opened side by side: the lock's connection, the ledger's, the drift baseline's read
    // (while the input streams), and one per COPY stream.
    let db = Database::open_with_sessions(&ctx.db, 3 + destination.database_sessions()).await?;
    let target = destination.open(&db)?;
    if req.shard.is_some()
        && let Some(why) = target.refuses_shards()
    {
        return Err(Failure::Config(why));
    }
    // A shard locks its own share: the N shards of a date run side by side, and each is
    // exclusive with its own retry. Publishing takes the date's lock.
    let subject = crate::shard::lock_subject(&output, req.shard);
    let lock = db
        .try_lock_output(&subject, req.date)
        .await?
        .ok_or_else(|| Failure::AlreadyRunning {
            output: subject.clone(),
            date: req.date.to_string(),
        })?;
    Ok(Locked {
        db,
        target,
        output,
        subject,
        lock,
    })
}

/// Holding the lock, before the run starts: sweeps what dead runs left, removes what failed
/// runs of the date could not, and reads the rows the date's last successful run wrote (for the
/// row-drop guard).
async fn before_start(
    ctx: &RunContext,
    req: &RunRequest,
    db: &Database,
    ledger: &dyn Ledger,
    target: &dyn Output,
    subject: &str,
) -> Option<u64> {
    let scope = sweep::Scope {
        job: None,
        stale_after: ctx.stale_after,
        jobs_dir: &ctx.jobs_dir,
        held: Some((subject, req.date)),
    };
    if let Err(e) = sweep::sweep(db, ledger, &scope).await {
        tracing::warn!(error = %e, "sweeping what dead runs left failed; going on");
    }
    clear_unfinished_cleanups(db, ledger, req, target).await;
    previous_rows(ledger, req).await
}

/// What `scorer run` reports of a successful run.
fn report(
    req: &RunRequest,
    run_id: Uuid,
    target: Arc<dyn Output>,
    db: &Database,
    rec: Recorder,
) -> RunOutcome {
    RunOutcome {
        run_id,
        job: req.job.name.clone(),
        date: req.date,
        rows_read: rec.rows_read,
        rows_written: rec.rows_written,
        rows_rejected: rec.rows_rejected,
        objects: rec.objects(),
        output: target,
        db: db.target().to_string(),
        stage_seconds: rec.stage_seconds,
        shard: req
            .shard
            .zip(rec.shard_outcome.as_ref())
            .map(|(s, o)| format!("shard {s}: {}", o.describe())),
    }
}

/// Runs in progress in this process. The first to start begins a new peak of the large-block
/// cache; the last to end gives its held blocks back, so a scheduler between runs holds none.
static ACTIVE_RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

struct ActiveRun;

impl ActiveRun {
    fn start() -> Self {
        if ACTIVE_RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0 {
            crate::large_alloc::reset_peak();
        }
        Self
    }
}

impl Drop for ActiveRun {
    fn drop(&mut self) {
        if ACTIVE_RUNS.fetch_sub(1, std::sync::atomic::Ordering::SeqCst) == 1 {
            crate::large_alloc::release_all();
        }
    }
}

/// Runs of this job and date that failed or were cancelled but could not remove their staging
/// (the database went away as they failed): holding the date's lock, this run removes it.
async fn clear_unfinished_cleanups(
    db: &Database,
    ledger: &dyn Ledger,
    req: &RunRequest,
    target: &dyn Output,
) {
    let q = RecentQuery {
        job: &req.job.name,
        date: Some(req.date),
        status: None,
        limit: 10,
    };
    let Ok(runs) = ledger.recent(&q).await else {
        return;
    };
    for r in runs
        .iter()
        .filter(|r| matches!(r.status.as_str(), "failed" | "cancelled"))
    {
        // A run registered for resume is this run's to adopt or discard once it has planned.
        if crate::resume::is_registered(db, r.run_id).await {
            continue;
        }
        match target.remove_leftovers(r.run_id, r.logical_date).await {
            Ok(removed) if !removed.is_empty() => {
                tracing::warn!(run_id = %r.run_id, removed = %removed.join(", "), "removed what a failed run could not");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(run_id = %r.run_id, error = %e, "cannot remove what a failed run left; going on")
            }
        }
    }
}

/// The rows the date's last successful run wrote, for the row-drop guard; a ledger that cannot be
/// read leaves the guard to `min_rows` alone.
async fn previous_rows(ledger: &dyn Ledger, req: &RunRequest) -> Option<u64> {
    match ledger.last_succeeded(&req.job.name, req.date).await {
        Ok(last) => last.map(|r| u64::try_from(r.date_rows).unwrap_or(0)),
        Err(e) => {
            tracing::warn!(error = %e, "reading the date's previous run failed; the row-drop guard is off for this run");
            None
        }
    }
}

/// The ledger's `running` row of a run.
fn run_start(req: &RunRequest, run_id: Uuid, output: &str) -> RunStart {
    RunStart {
        run_id,
        job: req.job.name.clone(),
        logical_date: req.date,
        started_at: Utc::now(),
        output_table: output.to_string(),
        scorer_version: env!("CARGO_PKG_VERSION").to_string(),
        host: ledger::audit::host(),
        os_user: ledger::audit::os_user(),
        job_sha256: Some(req.job.text_sha256.clone()).filter(|s| !s.is_empty()),
        shard: req.shard,
    }
}
