//! `scorer schedule`, `scorer backfill` and `scorer status`: scorer as its own cron.
//!
//! - [`crate::calendar`] (below the job file, which checks schedules with it): cron expressions in
//!   a job's time zone, DST, and the one logical-date rule.
//! - [`claims`]: a claim per (job, firing) in the database with a renewed lease, so several
//!   schedulers on one PostgreSQL never run the same firing twice, and a dead one's firing is
//!   taken over.
//! - [`jobs`]: the job files of a directory, re-read when they change.
//! - [`daemon`]: the loop that fires due jobs, catches up, and stops on a signal.
//! - [`backfill`]: a range of dates, resumable.
//! - [`status`]: what the scheduler sees.

pub mod backfill;
pub mod claims;
pub mod daemon;
pub mod jobs;
pub mod status;
