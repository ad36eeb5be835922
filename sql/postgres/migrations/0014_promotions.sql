-- `scorer promote`: which model version a job scores as champion, changed by whom, when and why.
-- `comparison` holds what the decision was based on (challenger comparisons, when the job has
-- them); NULL otherwise.
CREATE TABLE scorer.promotions (
    promoted_at   timestamptz NOT NULL,
    job           text NOT NULL,
    model         text NOT NULL,
    from_version  text,
    to_version    text NOT NULL,
    action        text NOT NULL,
    reason        text NOT NULL,
    os_user       text,
    host          text NOT NULL,
    comparison    jsonb
);
CREATE INDEX promotions_job ON scorer.promotions (job, promoted_at);
