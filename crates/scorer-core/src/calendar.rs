//! When a job fires and which date each firing scores.
//!
//! A job's `schedule` is a cron expression (five fields, or six with seconds first) read in the
//! job's `timezone` (UTC unless set). The expression is evaluated on the wall clock, then each
//! wall-clock time is placed on the time line:
//! - a time that does not exist (the hour skipped when daylight-saving time starts) fires when
//!   the clock jumps past it, once;
//! - a time that occurs twice (the hour repeated when it ends) fires the first time only.
//!
//! The logical date is Airflow's data interval: a firing scores the interval that ends at it, and
//! the interval is named by its start, the previous firing. A daily job firing on the 25th at
//! 02:00 scores the 24th; an hourly one firing at 01:00 scores the date of 00:00. This rule is
//! implemented here only.

use std::str::FromStr;

use chrono::{DateTime, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Wall-clock times to look at before giving up on finding a firing: a schedule of seconds
/// crosses up to 3600 of them in a skipped hour, and 3 hours of them (10 800) searching back
/// across a change of offset.
const MAX_SCAN: usize = 20_000;

/// Parses a job's `schedule`; the error names the expression and what was wrong.
pub fn parse_expr(expr: &str) -> Result<cron::Schedule, String> {
    let fields = expr.split_whitespace().count();
    let full = if fields == 5 {
        format!("0 {expr}")
    } else {
        expr.to_string()
    };
    cron::Schedule::from_str(&full).map_err(|e| format!("schedule `{expr}`: {e}"))
}

/// Parses an IANA time zone name; the error says what is expected.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!("timezone `{name}` is not an IANA time zone name (like UTC or Europe/Berlin)")
    })
}

/// A job's schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    schedule: cron::Schedule,
    zone: Tz,
}

impl Calendar {
    /// The calendar of `expr` in `zone` (UTC when `None`).
    pub fn new(expr: &str, zone: Option<&str>) -> Result<Self, String> {
        Ok(Self {
            schedule: parse_expr(expr)?,
            zone: zone.map(parse_zone).transpose()?.unwrap_or(Tz::UTC),
        })
    }

    /// The time zone the schedule is read in.
    pub fn zone(&self) -> Tz {
        self.zone
    }

    /// The wall-clock time of `t` in the job's zone.
    fn wall(&self, t: DateTime<Utc>) -> NaiveDateTime {
        t.with_timezone(&self.zone).naive_local()
    }

    /// Where a wall-clock time falls on the time line: its only instant, the first of two, or
    /// for a skipped time the instant the clock jumped past it.
    fn place(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        match self.zone.from_local_datetime(&wall) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => self.end_of_gap(wall),
        }
    }

    /// The instant a skipped wall-clock time's gap ends: the first minute after it that exists,
    /// moved back to the transition (gaps start and end on whole minutes in every zone).
    fn end_of_gap(&self, wall: NaiveDateTime) -> DateTime<Utc> {
        let mut probe = wall;
        for _ in 0..(26 * 60) {
            probe += chrono::Duration::minutes(1);
            if let Some(after) = self.zone.from_local_datetime(&probe).earliest() {
                // The transition is at most a minute before the first existing probe.
                let after = after.with_timezone(&Utc);
                let mut t = after - chrono::Duration::minutes(1);
                while t < after {
                    if self.wall(t) > wall {
                        return t;
                    }
                    t += chrono::Duration::seconds(1);
                }
                return after;
            }
        }
        // No zone skips more than a day; treat the time as UTC rather than fail.
        Utc.from_utc_datetime(&wall)
    }

    /// The first firing strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // A wall time at or before `t`'s never places after `t` (a skipped one places at its
        // jump, which comes after `t` only when `t` is before the gap); later ones placed in the
        // past (the first pass of a repeated hour, when `t` is in the second) are passed over.
        let start = Utc.from_utc_datetime(&self.wall(t));
        self.schedule
            .after(&start)
            .take(MAX_SCAN)
            .map(|w| self.place(w.naive_utc()))
            .find(|&fire| fire > t)
    }

    /// The longest gap between consecutive firings among the first `firings` after `from`: what
    /// an alert on a job that stopped running waits for (a weekday job's weekend, not its day).
    pub fn longest_gap(&self, from: DateTime<Utc>, firings: usize) -> Option<chrono::Duration> {
        let mut last = self.next_after(from)?;
        let mut longest: Option<chrono::Duration> = None;
        for _ in 1..firings {
            let Some(next) = self.next_after(last) else {
                break;
            };
            let gap = next - last;
            longest = Some(longest.map_or(gap, |l| l.max(gap)));
            last = next;
        }
        longest
    }

    /// The last firing strictly before `t`.
    pub fn prev_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Near a change of offset, a wall time after `t`'s can place before `t` (the first pass
        // of a repeated hour): start past the change. Elsewhere start at `t`'s wall time.
        let margin = if self.offset_changes_near(t) {
            chrono::Duration::hours(3)
        } else {
            chrono::Duration::seconds(1)
        };
        let start = Utc.from_utc_datetime(&(self.wall(t) + margin));
        self.schedule
            .after(&start)
            .rev()
            .take(MAX_SCAN)
            .map(|w| self.place(w.naive_utc()))
            .find(|&fire| fire < t)
    }

    /// Whether the zone's UTC offset differs three hours either side of `t` (no zone moves its
    /// clock by more than two hours, or twice within six).
    fn offset_changes_near(&self, t: DateTime<Utc>) -> bool {
        use chrono::Offset;
        let offset = |t: DateTime<Utc>| t.with_timezone(&self.zone).offset().fix();
        let span = chrono::Duration::hours(3);
        offset(t - span) != offset(t + span)
    }

    /// The logical date a firing at `fire` scores: the date, in the job's zone, of the firing
    /// before it (the start of its data interval).
    pub fn logical_date(&self, fire: DateTime<Utc>) -> NaiveDate {
        let start = self.prev_before(fire).unwrap_or(fire);
        self.wall(start).date()
    }

    /// The firings in `(after, until]`, oldest first, at most `limit` of them (the newest ones
    /// when there are more). Found backwards from `until`, so a job whose `start_date` is long
    /// ago costs `limit` steps, not one per firing since then.
    pub fn fires_between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        limit: usize,
    ) -> Vec<DateTime<Utc>> {
        let mut fires = Vec::new();
        let mut t = until + chrono::Duration::milliseconds(1);
        while fires.len() < limit {
            match self.prev_before(t) {
                Some(fire) if fire > after => {
                    fires.push(fire);
                    t = fire;
                }
                _ => break,
            }
        }
        fires.reverse();
        fires
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_and_six_fields() {
        assert!(parse_expr("0 2 * * *").is_ok());
        assert!(parse_expr("30 0 2 * * *").is_ok());
        assert!(parse_expr("61 * * * *").is_err());
        assert!(parse_expr("whenever").is_err());
        assert!(parse_zone("Europe/Berlin").is_ok());
        let e = parse_zone("Mars/Olympus").unwrap_err();
        assert!(e.contains("IANA"), "{e}");
    }

    #[test]
    fn a_daily_run_firing_on_the_25th_scores_the_24th() {
        let c = Calendar::new("0 2 * * *", None).unwrap();
        let fire = c.next_after(utc("2026-11-25T00:00:00Z")).unwrap();
        assert_eq!(fire, utc("2026-11-25T02:00:00Z"));
        assert_eq!(
            c.logical_date(fire),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
        assert_eq!(c.prev_before(fire), Some(utc("2026-11-24T02:00:00Z")));
        // Hourly: the 01:00 firing scores the interval from 00:00, the same date.
        let h = Calendar::new("0 * * * *", None).unwrap();
        assert_eq!(
            h.logical_date(utc("2026-11-25T01:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
        );
        assert_eq!(
            h.logical_date(utc("2026-11-25T00:00:00Z")),
            NaiveDate::from_ymd_opt(2026, 11, 24).unwrap()
        );
    }

    #[test]
    fn fires_between_keeps_the_newest_and_orders_oldest_first() {
        let c = Calendar::new("0 2 * * *", None).unwrap();
        let all = c.fires_between(utc("2026-11-20T02:00:00Z"), utc("2026-11-25T03:00:00Z"), 10);
        assert_eq!(all.len(), 5);
        assert_eq!(all[0], utc("2026-11-21T02:00:00Z"));
        let last2 = c.fires_between(utc("2026-11-20T02:00:00Z"), utc("2026-11-25T03:00:00Z"), 2);
        assert_eq!(
            last2,
            vec![utc("2026-11-24T02:00:00Z"), utc("2026-11-25T02:00:00Z")]
        );
    }

    #[test]
    fn a_catch_up_from_long_ago_costs_only_the_firings_it_keeps() {
        // Every second for a year is 31.5 M firings; the newest three are found backwards.
        let c = Calendar::new("* * * * * *", None).unwrap();
        let fires = c.fires_between(utc("2025-11-26T00:00:00Z"), utc("2026-11-26T00:00:00Z"), 3);
        assert_eq!(
            fires,
            vec![
                utc("2026-11-25T23:59:58Z"),
                utc("2026-11-25T23:59:59Z"),
                utc("2026-11-26T00:00:00Z"),
            ]
        );
    }

    /// Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST; 2026-10-25 03:00 CEST falls back
    /// to 02:00 CET.
    #[test]
    fn daylight_saving_gaps_fire_once_at_the_jump_and_repeats_fire_once() {
        let c = Calendar::new("30 2 * * *", Some("Europe/Berlin")).unwrap();
        // Spring: 02:30 does not exist on the 29th; the firing is at the jump (01:00 UTC).
        let fires = c.fires_between(utc("2026-03-27T12:00:00Z"), utc("2026-03-31T12:00:00Z"), 10);
        assert_eq!(
            fires,
            vec![
                utc("2026-03-28T01:30:00Z"), // 02:30 CET
                utc("2026-03-29T01:00:00Z"), // the jump, 03:00 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
                utc("2026-03-31T00:30:00Z"),
            ]
        );
        // Each firing scores the local date before it, DST or not.
        let dates: Vec<String> = fires
            .iter()
            .map(|f| c.logical_date(*f).to_string())
            .collect();
        assert_eq!(
            dates,
            ["2026-03-27", "2026-03-28", "2026-03-29", "2026-03-30"]
        );
        // Autumn: 02:30 happens twice on the 25th; it fires at the first one only.
        let fires = c.fires_between(utc("2026-10-24T12:00:00Z"), utc("2026-10-26T12:00:00Z"), 10);
        assert_eq!(
            fires,
            vec![
                utc("2026-10-25T00:30:00Z"), // 02:30 CEST
                utc("2026-10-26T01:30:00Z"), // 02:30 CET
            ]
        );
        // From inside the repeated hour (02:45 CET, the second time round) the next firing is
        // the next day's, not the 02:30 that already fired.
        assert_eq!(
            c.next_after(utc("2026-10-25T01:45:00Z")),
            Some(utc("2026-10-26T01:30:00Z"))
        );
    }

    #[test]
    fn a_schedule_of_seconds_in_a_skipped_hour_fires_once_at_the_jump() {
        let c = Calendar::new("*/20 * 2 * * *", Some("Europe/Berlin")).unwrap();
        let fires = c.fires_between(
            utc("2026-03-29T00:59:00Z"),
            utc("2026-03-29T01:00:30Z"),
            100,
        );
        // Every 02:xx:xx wall time (180 of them) maps to the jump: one firing there.
        assert_eq!(fires, vec![utc("2026-03-29T01:00:00Z")]);
        // A firing every second, searched back across the change.
        let every = Calendar::new("* * * * * *", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            every.prev_before(utc("2026-10-25T01:00:00Z")),
            Some(utc("2026-10-25T00:59:59Z"))
        );
        // 01:00:00Z is 02:00:00 CET, the second pass of the repeated hour: its wall times
        // already fired on the first pass, so the next firing is at 03:00:00 CET.
        assert_eq!(
            every.next_after(utc("2026-10-25T01:00:00Z")),
            Some(utc("2026-10-25T02:00:00Z"))
        );
        // And the next is the next day's 02:00:00 CEST.
        assert_eq!(
            c.next_after(utc("2026-03-29T01:00:00Z")),
            Some(utc("2026-03-30T00:00:00Z"))
        );
    }

    #[test]
    fn the_longest_gap_is_a_weekday_jobs_weekend() {
        let from = Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0).unwrap();
        let daily = Calendar::new("0 2 * * *", None).unwrap();
        assert_eq!(daily.longest_gap(from, 10), Some(chrono::Duration::days(1)));
        let weekdays = Calendar::new("0 2 * * 1-5", Some("Europe/Berlin")).unwrap();
        assert_eq!(
            weekdays.longest_gap(from, 12),
            Some(chrono::Duration::days(3))
        );
        let every_second = Calendar::new("* * * * * *", None).unwrap();
        assert_eq!(
            every_second.longest_gap(from, 5),
            Some(chrono::Duration::seconds(1))
        );
    }
}
