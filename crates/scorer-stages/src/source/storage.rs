//! `[input.storage]`: how to reach the input's object store (endpoint, region, timeouts, retries,
//! and credentials as references to environment variables). Credentials normally come from the
//! standard `AWS_*`, `GOOGLE_*` and `AZURE_*` variables that object_store reads; these options are
//! for what differs per job. A secret never lives in a job file: a credential option must be a
//! `${ENV_VAR}` reference, and a literal value is a validation error.

use serde::Deserialize;

/// Connection settings for one job's object store. Every string value may contain `${ENV_VAR}`
/// references, expanded when the run starts.
/// Most retries a job may ask for; beyond this a failing store only delays the failure.
pub const MAX_RETRIES: usize = 100;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StorageOptions {
    /// Service URL instead of the cloud's own (S3-compatible servers, Azurite, a GCS proxy).
    pub endpoint: Option<String>,
    /// S3 region (`us-east-1`); s3:// only.
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints (emulators, in-cluster gateways).
    pub allow_http: Option<bool>,
    /// Whole-request timeout, e.g. `30s`, `2m`.
    pub timeout: Option<String>,
    /// Connection timeout, e.g. `5s`.
    pub connect_timeout: Option<String>,
    /// Retries of a failed request (5xx, timeouts) before the run fails; object_store's default 10.
    pub max_retries: Option<usize>,
    /// Give up retrying a request after this long, e.g. `3m`.
    pub retry_timeout: Option<String>,
    /// First wait before a retry, doubled on each further one (object_store's default `100ms`).
    pub retry_backoff: Option<String>,
    /// Longest wait between retries (object_store's default `15s`).
    pub retry_max_backoff: Option<String>,
    /// S3 access key id: `${ENV_VAR}` only.
    pub access_key_id: Option<String>,
    /// S3 secret access key: `${ENV_VAR}` only.
    pub secret_access_key: Option<String>,
    /// S3 session token: `${ENV_VAR}` only.
    pub session_token: Option<String>,
    /// Azure storage account name (not a secret).
    pub account: Option<String>,
    /// Azure storage account key: `${ENV_VAR}` only.
    pub account_key: Option<String>,
    /// GCS or Azure bearer token: `${ENV_VAR}` only.
    pub bearer_token: Option<String>,
    /// GCS service account key JSON: `${ENV_VAR}` only.
    pub service_account_key: Option<String>,
    /// Path of a GCS service account key file (not a secret itself).
    pub service_account_path: Option<String>,
}

impl StorageOptions {
    /// The credential options, which must be `${ENV_VAR}` references.
    pub fn secrets(&self) -> [(&'static str, &Option<String>); 6] {
        [
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
            ("session_token", &self.session_token),
            ("account_key", &self.account_key),
            ("bearer_token", &self.bearer_token),
            ("service_account_key", &self.service_account_key),
        ]
    }

    /// The options each kind of store maps to a setting of its own (the rest, `allow_http`,
    /// timeouts and retries, are common to all): a store that has no setting for one that is set
    /// refuses it.
    pub fn store_settings(&self) -> [(&'static str, &Option<String>); 10] {
        [
            ("endpoint", &self.endpoint),
            ("region", &self.region),
            ("access_key_id", &self.access_key_id),
            ("secret_access_key", &self.secret_access_key),
            ("session_token", &self.session_token),
            ("account", &self.account),
            ("account_key", &self.account_key),
            ("bearer_token", &self.bearer_token),
            ("service_account_key", &self.service_account_key),
            ("service_account_path", &self.service_account_path),
        ]
    }

    /// Every string option with its key.
    fn strings(&self) -> Vec<(&'static str, &Option<String>)> {
        let mut all = vec![
            ("endpoint", &self.endpoint),
            ("region", &self.region),
            ("timeout", &self.timeout),
            ("connect_timeout", &self.connect_timeout),
            ("retry_timeout", &self.retry_timeout),
            ("retry_backoff", &self.retry_backoff),
            ("retry_max_backoff", &self.retry_max_backoff),
            ("account", &self.account),
            ("service_account_path", &self.service_account_path),
        ];
        all.extend(self.secrets());
        all
    }

    /// Problems found without the environment: literal secrets, malformed references, bad
    /// durations. Each names its key as `<section>.<key>` (`input.storage.endpoint`).
    pub fn problems(&self, section: &str) -> Vec<String> {
        let mut p = Vec::new();
        for (key, value) in self.secrets() {
            if let Some(v) = value
                && env_reference(v).is_none()
            {
                p.push(format!(
                    "{section}.{key}: a credential must not be written in a job file; \
                     reference an environment variable instead, e.g. {key} = \"${{MY_{}}}\"",
                    key.to_ascii_uppercase()
                ));
            }
        }
        for (key, value) in self.strings() {
            if let Some(v) = value
                && let Err(e) = check_references(v)
            {
                p.push(format!("{section}.{key}: {e}"));
            }
        }
        for (key, value) in [
            ("timeout", &self.timeout),
            ("connect_timeout", &self.connect_timeout),
            ("retry_timeout", &self.retry_timeout),
            ("retry_backoff", &self.retry_backoff),
            ("retry_max_backoff", &self.retry_max_backoff),
        ] {
            if let Some(v) = value
                && !v.contains("${")
                && let Err(e) = humantime::parse_duration(v)
            {
                p.push(format!(
                    "{section}.{key}: `{v}` is not a duration like 30s or 2m ({e})"
                ));
            }
        }
        if let Some(n) = self.max_retries
            && n > MAX_RETRIES
        {
            p.push(format!(
                "{section}.max_retries must be between 0 and {MAX_RETRIES}, got {n}"
            ));
        }
        p
    }

    /// A copy with every `${ENV_VAR}` replaced by its value; an unset variable is an error naming
    /// the key and the variable.
    pub fn expand(
        &self,
        section: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let mut out = self.clone();
        let fields: [(&str, &mut Option<String>); 15] = [
            ("endpoint", &mut out.endpoint),
            ("region", &mut out.region),
            ("timeout", &mut out.timeout),
            ("connect_timeout", &mut out.connect_timeout),
            ("retry_timeout", &mut out.retry_timeout),
            ("retry_backoff", &mut out.retry_backoff),
            ("retry_max_backoff", &mut out.retry_max_backoff),
            ("access_key_id", &mut out.access_key_id),
            ("secret_access_key", &mut out.secret_access_key),
            ("session_token", &mut out.session_token),
            ("account", &mut out.account),
            ("account_key", &mut out.account_key),
            ("bearer_token", &mut out.bearer_token),
            ("service_account_key", &mut out.service_account_key),
            ("service_account_path", &mut out.service_account_path),
        ];
        for (key, value) in fields {
            if let Some(v) = value {
                *v = expand_references(v, &env).map_err(|var| {
                    format!("{section}.{key}: environment variable {var} is not set")
                })?;
            }
        }
        Ok(out)
    }
}

/// `Some(NAME)` when `value` is exactly one `${NAME}` reference.
fn env_reference(value: &str) -> Option<&str> {
    let name = value.strip_prefix("${")?.strip_suffix('}')?;
    valid_name(name).then_some(name)
}

/// Whether `name` is usable as an environment variable name (letters, digits, `_`, not a digit first).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Checks that every `${` opens a well-formed reference.
fn check_references(value: &str) -> Result<(), String> {
    expand_references(value, |_| Some(String::new()))
        .map(|_| ())
        .map_err(|e| e.trim_start_matches('!').to_string())
}

/// Replaces each `${NAME}`; returns the name of the first unset variable as the error, or a
/// message starting with `!` for a malformed reference.
fn expand_references(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!("!`{value}` has a `${{` without its closing `}}`"));
        };
        let name = &after[..end];
        if !valid_name(name) {
            return Err(format!(
                "!`${{{name}}}` is not an environment variable name (letters, digits, _)"
            ));
        }
        out.push_str(&env(name).ok_or_else(|| name.to_string())?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(toml_text: &str) -> StorageOptions {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn literal_secrets_are_refused_and_references_accepted() {
        let o =
            opts("secret_access_key = \"wJalrXUtnFEMI/K7MDENG\"\naccess_key_id = \"${AWS_KEY}\"");
        let p = o.problems("input.storage");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].contains("input.storage.secret_access_key"), "{p:?}");
        assert!(p[0].contains("must not be written in a job file"), "{p:?}");
        // The literal value is never echoed back.
        assert!(!p[0].contains("wJalr"), "{p:?}");
        let o = opts("account_key = \"${A}${B}\"");
        assert_eq!(o.problems("input.storage").len(), 1);
    }

    #[test]
    fn durations_and_references_are_checked() {
        let o = opts("timeout = \"soon\"\nendpoint = \"http://${HOST\"\nregion = \"${1X}\"");
        let p = o.problems("input.storage").join("\n");
        assert!(
            p.contains("input.storage.timeout: `soon` is not a duration"),
            "{p}"
        );
        assert!(p.contains("input.storage.endpoint"), "{p}");
        assert!(
            p.contains("`${1X}` is not an environment variable name"),
            "{p}"
        );
        assert!(
            opts("timeout = \"30s\"\nretry_timeout = \"${T}\"")
                .problems("output.storage")
                .is_empty()
        );
    }

    #[test]
    fn expands_from_the_environment_and_names_what_is_missing() {
        let o = opts("endpoint = \"http://${HOST}:${PORT}\"\naccess_key_id = \"${KEY}\"");
        let env = |k: &str| match k {
            "HOST" => Some("127.0.0.1".to_string()),
            "PORT" => Some("9000".to_string()),
            _ => None,
        };
        let err = o.expand("input.storage", env).unwrap_err();
        assert_eq!(
            err,
            "input.storage.access_key_id: environment variable KEY is not set"
        );
        let o = opts("endpoint = \"http://${HOST}:${PORT}\"");
        assert_eq!(
            o.expand("output.storage", env).unwrap().endpoint.as_deref(),
            Some("http://127.0.0.1:9000")
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = toml::from_str::<StorageOptions>("secret = \"x\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `secret`"), "{err}");
        assert!(err.contains("secret_access_key"), "{err}");
    }
}
