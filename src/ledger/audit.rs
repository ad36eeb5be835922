//! Who and where a run ran, for the ledger's audit fields (`host`, `os_user`): read from the
//! operating system when the run starts.

/// The process's user as `name (uid N)`: the real uid from `/proc/self/status`, its name from
/// `/etc/passwd` when listed there (containers often run a uid with no name). Linux only.
pub fn os_user() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid: u32 = status
        .lines()
        .find(|l| l.starts_with("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        });
    Some(match name {
        Some(n) => format!("{n} (uid {uid})"),
        None => format!("uid {uid}"),
    })
}

/// The machine's host name, as the ledger records it.
pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}
