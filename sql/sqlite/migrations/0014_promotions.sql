-- As sql/postgres/migrations/0014: `scorer promote`'s record, timestamps and JSON as text.
CREATE TABLE scorer_promotions (
    promoted_at   TEXT NOT NULL,
    job           TEXT NOT NULL,
    model         TEXT NOT NULL,
    from_version  TEXT,
    to_version    TEXT NOT NULL,
    action        TEXT NOT NULL,
    reason        TEXT NOT NULL,
    os_user       TEXT,
    host          TEXT NOT NULL,
    comparison    TEXT
);
CREATE INDEX scorer_promotions_job ON scorer_promotions (job, promoted_at);
