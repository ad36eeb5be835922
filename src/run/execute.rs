//! The part of a run between the ledger's start and finish: plan, stream into the sink, check,
//! publish. Nothing is visible to readers unless every step succeeds; one guard aborts the sink
//! on any failure or cancellation between opening it and publishing.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::heartbeat::Heartbeat;
use super::record::Recorder;
use super::{RunContext, RunRequest, check_pin};
use crate::db::Database;
use crate::db::lock::OutputLock;
use crate::failure::Failure;
use crate::ledger::{self, Ledger};
use crate::pipeline;
use crate::plan::RunPlan;
use crate::shard::ShardSpec;
use crate::shard::coordination::{self, AttemptState};
use crate::sink::parts::PartBody;
use crate::sink::{self, Output};

/// The drift baseline, read in the background while the run streams.
type BaselineRead =
    tokio::task::JoinHandle<Result<Option<crate::drift::Baseline>, crate::db::DbError>>;

/// The part of a run between the ledger's start and finish.
pub(super) struct Work<'a> {
    pub(super) ctx: &'a RunContext,
    pub(super) req: &'a RunRequest,
    pub(super) db: &'a Database,
    pub(super) run_id: Uuid,
    /// The output kind that writes the run's rows.
    pub(super) target: Arc<dyn Output>,
    /// The output as the ledger and the date's lock name it.
    pub(super) output: String,
    /// What this run locked: the output, or the output and shard.
    pub(super) subject: String,
    pub(super) lock: &'a Arc<Mutex<Box<dyn OutputLock>>>,
    pub(super) cancel: CancellationToken,
    /// Rows the date's last successful run wrote, if any.
    pub(super) previous_rows: Option<u64>,
}

impl Work<'_> {
    /// Executes the run with its heartbeat beside it; a lock the heartbeat found lost turns the
    /// cancellation it caused into `LockLost`.
    pub(super) async fn supervised(
        &self,
        ledger: &Arc<dyn Ledger>,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let heartbeat = Heartbeat::spawn(
            Arc::clone(ledger),
            Arc::clone(self.lock),
            self.run_id,
            self.ctx.heartbeat_every,
            self.cancel.clone(),
        );
        let outcome = self.execute(rec).await;
        match (outcome, heartbeat.stop().await) {
            (Err(Failure::Cancelled), Some(lost)) => Err(Failure::LockLost(lost)),
            (outcome, _) => outcome,
        }
    }

    /// Plans, streams into the sink, checks, publishes. Nothing is visible to readers unless
    /// every step succeeds; on any failure or cancellation the sink's staging is removed.
    async fn execute(&self, rec: &mut Recorder) -> Result<(), Failure> {
        let t_plan = Instant::now();
        // The drift baseline is read while the run goes, not on the way to publishing.
        let baseline = self.req.shard.is_none().then(|| {
            let ledger = ledger::for_database(self.db);
            let job = self.req.job.name.clone();
            tokio::spawn(async move { ledger.baseline(&job).await }.in_current_span())
        });
        let Some((plan, attempt)) = self.plan(rec, t_plan).await? else {
            return Ok(());
        };
        let adopted = self.resume(&plan).await?;
        let spec = self.sink_spec(&plan, adopted.as_ref(), attempt.is_some());
        let mut sink = self.target.open(spec).await?;
        let done = Arc::new(std::sync::atomic::AtomicU64::new(
            adopted.as_ref().map_or(0, |a| a.rows_read),
        ));
        let progress = crate::progress::Progress::start(
            self.ctx.progress,
            &self.req.job.name,
            plan.input.total_rows,
            Arc::clone(&done),
        );
        let streamed =
            pipeline::stream(&plan, sink.as_mut(), &self.cancel, adopted.as_ref(), &done).await;
        progress.finish().await;
        rec.streamed(&streamed.reports);
        let ids = match (&attempt, &streamed.ids) {
            (Some(_), Some(ids)) => ids.digest(),
            _ => None,
        };
        let mut rejected = streamed.rejected;
        if let Some(a) = adopted {
            rec.adopted(&a);
            rejected.splice(0..0, a.rejected);
        }
        let t_commit = Instant::now();
        async {
            // The one abort guard: from the stream's end to publishing, any failure throws the
            // staged rows away.
            let checked = self
                .ready_to_publish(sink.as_mut(), streamed.result, baseline, &attempt, rec)
                .await;
            let staged = match checked {
                Ok(staged) => staged,
                Err(f) => {
                    sink.abort().await;
                    return Err(f);
                }
            };
            if let Some((shard, attempt)) = &attempt {
                let part = PartBody {
                    rows_read: rec.rows_read,
                    rejected,
                    ids,
                    ..PartBody::default()
                };
                let outcome = self
                    .stage_part(&plan, sink, *shard, attempt, staged, part, rec)
                    .await;
                rec.stage("commit", t_commit);
                return outcome;
            }
            // From here the swap (or manifest commit) runs to its end: a signal now lets it commit
            // or roll back as a whole, never leaves half.
            let mut lock = self.lock.lock().await;
            sink.publish(lock.as_mut(), &rejected)
                .await
                .map_err(crate::failure::publish_failure)?;
            drop(lock);
            rec.rows_written = staged;
            rec.stage("commit", t_commit);
            crate::resume::forget(self.db, self.run_id).await;
            Ok(())
        }
        .instrument(crate::telemetry::stage_span("commit"))
        .await
    }

    /// What the sink needs of this run: the plan's spec, where a table output commits its
    /// resume checkpoints (numbered after the adopted ones), the rows adopted, whether a shard.
    fn sink_spec(
        &self,
        plan: &RunPlan,
        adopted: Option<&crate::resume::Adopted>,
        sharded: bool,
    ) -> sink::SinkSpec {
        let mut spec = plan.sink_spec(self.run_id);
        if self.target.staging_table().is_some() {
            let first = adopted.map_or(0, |a| a.next_seq);
            spec.checkpoints = Some(crate::sink::checkpoint::CheckpointTarget::new(
                self.run_id,
                first,
            ));
        }
        spec.adopted_rows = adopted.map(|a| a.rows_scored);
        spec.sharded = sharded;
        spec
    }

    /// Plans the run (cancellable), checks a pinned run against its record, and starts a shard
    /// run's attempt with its share of the input. `None`: a shard with nothing to stage.
    async fn plan(
        &self,
        rec: &mut Recorder,
        t_plan: Instant,
    ) -> Result<Option<(RunPlan, Option<(ShardSpec, String)>)>, Failure> {
        let input_counters = Arc::default();
        rec.watch_stores(&input_counters, self.target.as_ref());
        let mut plan = tokio::select! {
            plan = RunPlan::build(
                &self.req.job,
                self.req.date,
                &self.ctx.models,
                self.req.device,
                input_counters,
            ).instrument(crate::telemetry::stage_span("plan")) => plan?,
            () = self.cancel.cancelled() => return Err(Failure::Cancelled),
        };
        if let Some(pin) = &self.req.pin {
            rec.planned(&plan);
            check_pin(&plan, pin)?;
        }
        let attempt = match self.req.shard {
            Some(shard) => match self.shard_start(&plan, shard, rec).await? {
                Some(attempt) => {
                    plan.input = crate::shard::split(&plan.input, shard);
                    Some((shard, attempt))
                }
                None => {
                    rec.stage("plan", t_plan);
                    return Ok(None);
                }
            },
            None => None,
        };
        rec.planned(&plan);
        rec.stage("plan", t_plan);
        tracing::info!(
            objects = plan.input.objects.len(),
            rows = plan.input.total_rows,
            "input planned"
        );
        Ok(Some((plan, attempt)))
    }

    /// Everything between the stream's end and publishing that can fail: the stream itself, the
    /// sink's finish, the counts and row guards, drift, and a shard's attempt still open. The
    /// rows staged, or the failure on which `execute` aborts the sink.
    async fn ready_to_publish(
        &self,
        sink: &mut dyn sink::Sink,
        streamed: Result<(), Failure>,
        baseline: Option<BaselineRead>,
        attempt: &Option<(ShardSpec, String)>,
        rec: &mut Recorder,
    ) -> Result<u64, Failure> {
        streamed?;
        let staged = sink.finish().await?;
        self.check_before_publish(staged, rec)?;
        self.check_drift(baseline, rec).await?;
        if let Some((shard, attempt)) = attempt
            && let AttemptState::Superseded(by) = coordination::state(self.db, attempt).await?
        {
            return Err(Failure::Superseded {
                shard: shard.to_string(),
                attempt: attempt.to_string(),
                by,
            });
        }
        Ok(staged)
    }

    /// For a table output: adopts the staged rows of an earlier run of this job and date that
    /// died with the same model and input, then registers this run so that a later one can
    /// resume it in turn. Parquet output is not resumed.
    async fn resume(&self, plan: &RunPlan) -> Result<Option<crate::resume::Adopted>, Failure> {
        let Some(table) = self.target.staging_table() else {
            return Ok(None);
        };
        let key = crate::resume::ResumeKey {
            job: self.req.job.name.clone(),
            date: self.req.date,
            output: self.subject.clone(),
            model_sha256: plan.model.sha256.clone(),
            inputs_digest: crate::resume::inputs_digest(&plan.input.objects),
        };
        let adopted = crate::resume::settle(self.db, table, self.run_id, &key).await?;
        crate::resume::register(self.db, table, self.run_id, &key).await?;
        Ok(adopted)
    }

    /// The scores' and inputs' PSI against the job's previous successful run, recorded; past
    /// `drift.max_psi` a warning, or under `on_drift = "fail"` the run's failure. Shards are not
    /// checked (each scores a share, not the date's distribution); a run with no baseline has
    /// nothing to compare.
    async fn check_drift(
        &self,
        baseline: Option<BaselineRead>,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let Some(baseline) = baseline else {
            return Ok(());
        };
        if rec.rows_scored == 0 {
            return Ok(());
        }
        let baseline = match baseline.await {
            Ok(Ok(Some(b))) => b,
            Ok(Ok(None)) => return Ok(()),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the drift baseline; drift is not checked");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "reading the drift baseline failed; drift is not checked");
                return Ok(());
            }
        };
        let spec = &self.req.job.drift;
        let report = crate::drift::compare(&rec.score_stats, &rec.feature_stats, &baseline, spec);
        if let Some((name, psi)) = &report.worst {
            tracing::info!(worst = %name, psi, baseline = %baseline.run_id, "drift against the previous successful run");
        }
        let verdict = match report.action {
            Some(crate::drift::DriftAction::Fail) => Err(Failure::Drift(report.describe())),
            Some(crate::drift::DriftAction::Warn) => {
                tracing::warn!(
                    "{}; publishing (drift.on_drift = \"warn\")",
                    report.describe()
                );
                Ok(())
            }
            None => Ok(()),
        };
        rec.drift = Some(report);
        verdict
    }

    /// The last checks before anything becomes visible: not cancelled, every scored row
    /// staged, no more rows rejected than the job allows, and the row guards.
    fn check_before_publish(&self, staged: u64, rec: &Recorder) -> Result<(), Failure> {
        if self.cancel.is_cancelled() {
            return Err(Failure::Cancelled);
        }
        let scored = rec.rows_scored;
        if staged != scored {
            return Err(Failure::Internal(format!(
                "staged {staged} rows but scored {scored}; nothing was published"
            )));
        }
        let allowed = self.req.job.input.max_rejected_fraction;
        if rec.rows_read > 0 && rec.rows_rejected as f64 > allowed * rec.rows_read as f64 {
            return Err(Failure::TooManyRejected(format!(
                "{} of the {} input rows ({:.1}%) were rejected (null ids, or nulls and NaN \
                 under `skip`), more than input.max_rejected_fraction = {allowed}",
                rec.rows_rejected,
                rec.rows_read,
                100.0 * rec.rows_rejected as f64 / rec.rows_read as f64
            )));
        }
        // A shard's rows are a share of the date's: the guards apply to all shards' at publish.
        if self.req.shard.is_some() {
            return Ok(());
        }
        match crate::guards::check_row_guards(
            &self.req.job.output.shared,
            staged,
            self.previous_rows,
        ) {
            Err(f) if self.req.allow_row_drop => {
                tracing::warn!(reason = %f, "row guard overridden by --allow-row-drop; publishing");
                Ok(())
            }
            other => other,
        }
    }
}
