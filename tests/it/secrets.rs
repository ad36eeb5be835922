//! Secrets in `DATABASE_URL` never reach the output: neither the userinfo password nor a
//! `?password=` parameter, in a run that succeeds or in one that fails. (The security issue
//! extends this to every place a secret can be given.)

use crate::common::{DATE, ModelOpts, Project, admin_url, text};

const SECRET: &str = "hunter2-not-for-logs";

fn project() -> Project {
    let p = Project::new();
    p.add_model(&ModelOpts::mlp(8));
    p.add_input("events", DATE, 2_000, 8, None);
    p.add_job("daily", "events", "m", "daily", "");
    p
}

fn assert_no_secret(out: &std::process::Output) {
    let all = text(out);
    assert!(!all.contains(SECRET), "the password leaked:\n{all}");
}

#[test]
fn a_password_in_the_database_url_is_never_printed() {
    let p = project();
    // The test server trusts loopback connections, so the password is accepted and ignored.
    let admin = admin_url();
    let (base, db) = admin.rsplit_once('/').unwrap();
    let as_param = format!("{base}/{db}?password={SECRET}&application_name=scorer-test");
    let ok = p.scorer(&["run", "daily", "--date", DATE], Some(&as_param));
    assert!(ok.status.success(), "{}", text(&ok));
    assert_no_secret(&ok);
    assert!(text(&ok).contains("password=***"), "{}", text(&ok));

    // A run that fails at once (no such database): the message names it, not the secret.
    for url in [
        {
            let mut u = url::Url::parse(&format!("{base}/no_such_db")).unwrap();
            u.set_password(Some(SECRET)).unwrap();
            u.to_string()
        },
        format!("{base}/no_such_db?password={SECRET}"),
    ] {
        let failed = p.scorer(&["run", "daily", "--date", DATE], Some(&url));
        assert_eq!(failed.status.code(), Some(2), "{}", text(&failed));
        assert_no_secret(&failed);
        assert!(text(&failed).contains("no_such_db"), "{}", text(&failed));
    }
}
