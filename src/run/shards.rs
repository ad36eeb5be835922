//! A shard run's side of a sharded run (`crate::shard`): it names and records its attempt,
//! records its staged part, and publishes the attempt when its part is the last.

use super::execute::Work;
use super::record::Recorder;
use crate::failure::Failure;
use crate::plan::RunPlan;
use crate::shard::coordination::{self, AttemptState};
use crate::shard::publish::{Published, Publisher, ShardOutcome};
use crate::shard::{AttemptKey, ShardSpec};
use crate::sink;
use crate::sink::parts::{Part, PartBody};

impl Work<'_> {
    /// A shard run, planned: names its attempt and records it. `None` when there is nothing
    /// for it to stage: the attempt is published, or this shard's part is staged already (then
    /// it publishes the attempt if every part is there and nobody has).
    pub(super) async fn shard_start(
        &self,
        plan: &RunPlan,
        shard: ShardSpec,
        rec: &mut Recorder,
    ) -> Result<Option<String>, Failure> {
        let job = &self.req.job;
        let output = &self.output;
        let inputs_digest = crate::resume::inputs_digest(&plan.input.objects);
        let key = AttemptKey {
            job: &job.name,
            job_sha256: &job.text_sha256,
            date: self.req.date,
            output,
            count: shard.count,
            model_sha256: &plan.model.sha256,
            inputs_digest: &inputs_digest,
            label: &self.req.attempt_label,
        };
        let attempt = key.id();
        tracing::info!(%shard, attempt, "shard of a sharded run");
        rec.attempt = Some(attempt.clone());
        match coordination::open(self.db, &attempt, &key).await? {
            AttemptState::Open => {}
            AttemptState::Published(by) => {
                rec.shard_outcome = Some(ShardOutcome::Skipped(format!(
                    "attempt {attempt} was published by run {by}"
                )));
                return Ok(None);
            }
            AttemptState::Superseded(by) => {
                return Err(Failure::Superseded {
                    shard: shard.to_string(),
                    attempt,
                    by,
                });
            }
        }
        let Some(staged_by) = coordination::part_of(self.db, &attempt, shard.index).await? else {
            return Ok(Some(attempt));
        };
        let outcome = match self
            .publisher(plan, &attempt, shard)
            .publish_if_complete(&self.cancel)
            .await?
        {
            Published::Now { rows, shards } => ShardOutcome::Published { rows, shards },
            Published::Already(by) => ShardOutcome::Skipped(format!(
                "shard {shard} of attempt {attempt} was staged by run {staged_by}, and run {by} \
                 published the attempt"
            )),
            Published::Waiting { staged } => ShardOutcome::Skipped(format!(
                "shard {shard} of attempt {attempt} was staged by run {staged_by}; {staged} of \
                 {} shards have staged theirs",
                shard.count
            )),
        };
        rec.shard_outcome = Some(outcome);
        Ok(None)
    }

    /// A shard's staged rows, finished and checked: recorded as its part of the attempt (its
    /// staging no longer resumable, it belongs to the attempt), then published with the others
    /// if it is the last.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn stage_part(
        &self,
        plan: &RunPlan,
        sink: Box<dyn sink::Sink>,
        shard: ShardSpec,
        attempt: &str,
        staged: u64,
        mut body: PartBody,
        rec: &mut Recorder,
    ) -> Result<(), Failure> {
        let superseded = |by: String| Failure::Superseded {
            shard: shard.to_string(),
            attempt: attempt.to_string(),
            by,
        };
        let kept = sink.keep().await?;
        body.run_ids = kept.run_ids;
        body.staging = kept.staging;
        body.files = kept.files;
        let part = Part {
            index: shard.index,
            run_id: self.run_id,
            rows: staged,
            body,
        };
        // Killed between these two, the staging is a dead run's (the sweep removes it, a retry
        // scores the shard again); after both, it is the attempt's.
        crate::resume::forget(self.db, self.run_id).await;
        coordination::record(self.db, attempt, &part).await?;
        rec.part_recorded = true;
        rec.rows_written = staged;
        if let AttemptState::Superseded(by) = coordination::state(self.db, attempt).await? {
            self.target.remove_part(&part).await;
            rec.part_recorded = false;
            return Err(superseded(by));
        }
        let outcome = match self
            .publisher(plan, attempt, shard)
            .publish_if_complete(&self.cancel)
            .await?
        {
            Published::Now { rows, shards } => ShardOutcome::Published { rows, shards },
            Published::Already(_) => ShardOutcome::Staged {
                staged: shard.count,
                of: shard.count,
            },
            Published::Waiting { staged } => ShardOutcome::Staged {
                staged,
                of: shard.count,
            },
        };
        rec.shard_outcome = Some(outcome);
        Ok(())
    }

    fn publisher<'b>(
        &'b self,
        plan: &RunPlan,
        attempt: &'b str,
        shard: ShardSpec,
    ) -> Publisher<'b> {
        Publisher {
            db: self.db,
            target: self.target.as_ref(),
            output: &self.output,
            date: self.req.date,
            attempt,
            count: shard.count,
            spec: plan.sink_spec(self.run_id),
            output_spec: &self.req.job.output.shared,
            previous_rows: self.previous_rows,
            allow_row_drop: self.req.allow_row_drop,
        }
    }
}
