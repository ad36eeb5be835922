//! The one redaction point: every line scorer prints (log events, the final error, command output,
//! panics) and every error message it stores in the ledger passes through [`redact`], which
//! removes
//!
//! - every secret value the process knows of: credentials in the environment (`DATABASE_URL`'s
//!   password, `AWS_SECRET_ACCESS_KEY`, `AZURE_STORAGE_ACCOUNT_KEY`, a service-account key, any
//!   variable named like a password, secret, token or key), the values of a job's `${VAR}`
//!   credential options, and the HMAC key of `output.hash_columns`, registered with [`register`]
//!   as they are read;
//! - secrets by their shape, for the ones nobody registered: a URL's userinfo password,
//!   `password=`, SAS and presigned-URL signatures (`sig=`, `X-Amz-Signature=`), `AccountKey=`
//!   in connection strings, `"private_key": "…"` in key files, and bearer tokens.
//!
//! A registered value is replaced wherever it appears, also percent-encoded and JSON-escaped, so
//! a password that a driver quotes back, or a key inside a URL, is caught too.

use std::borrow::Cow;
use std::io::Write;
use std::sync::{LazyLock, RwLock};

use regex::Regex;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Shorter values are not registered: replacing every `1` or `true` in the output would make it
/// unreadable and protect nothing (such values are not secrets).
pub const MIN_SECRET_LEN: usize = 6;

/// Known secret values, longest first (so a secret containing another is masked whole).
static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Secrets recognised by their shape: (pattern, replacement).
static SHAPES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // scheme://user:password@host
        (r"([A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*):[^@/\s]+@", "${1}:***@"),
        // key=value in URLs, DSNs and connection strings
        (
            r"(?i)\b(password|passwd|pwd|sslpassword|sig|signature|x-amz-signature|x-amz-security-token|x-goog-signature|x-goog-credential|accountkey|sharedaccesssignature|access_token|client_secret|secret)=[^&;\s'\x22]+",
            "${1}=***",
        ),
        // "private_key": "-----BEGIN ...", in a service-account key file
        (
            r#"(?i)("private_key(?:_id)?"\s*:\s*)"(?:[^"\\]|\\.)*""#,
            "${1}\"***\"",
        ),
        (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[^-]*-----END [A-Z ]*PRIVATE KEY-----", "***"),
        (r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "${1} ***"),
    ]
    .into_iter()
    .filter_map(|(pattern, with)| Regex::new(pattern).ok().map(|re| (re, with)))
    .collect()
});

/// Adds a secret value (and its percent-encoded and JSON-escaped forms) to the ones masked from
/// now on. Values shorter than [`MIN_SECRET_LEN`] are ignored.
pub fn register(secret: &str) {
    let secret = secret.trim();
    if secret.chars().count() < MIN_SECRET_LEN {
        return;
    }
    let mut forms = vec![secret.to_string()];
    let encoded: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    forms.push(encoded);
    forms.push(
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
    );
    if let Ok(json) = serde_json::to_string(secret) {
        forms.push(json.trim_matches('"').to_string());
    }
    let Ok(mut known) = SECRETS.write() else {
        return;
    };
    for form in forms {
        if !known.contains(&form) {
            known.push(form);
        }
    }
    known.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// Registers the secrets a value carries: the whole value and what [`register_parts`] finds.
pub fn register_value(value: &str) {
    register(value);
    register_parts(value);
}

/// Registers the secrets inside a value without the value itself: a URL's password (userinfo
/// and `password=`-like parameters), a connection string's `AccountKey=` and `SharedAccessSignature=`,
/// a JSON key file's `private_key` and `private_key_id`.
pub fn register_parts(value: &str) {
    if let Ok(url) = url::Url::parse(value) {
        if let Some(password) = url.password() {
            register(password);
            if let Ok(decoded) = percent_encoding::percent_decode_str(password).decode_utf8() {
                register(&decoded);
            }
        }
        for (key, v) in url.query_pairs() {
            if is_secret_name(&key) || key.eq_ignore_ascii_case("sig") {
                register(&v);
            }
        }
    }
    if value.contains(';') {
        for part in value.split(';') {
            if let Some((k, v)) = part.split_once('=')
                && (is_secret_name(k) || k.eq_ignore_ascii_case("AccountKey"))
            {
                register(v);
            }
        }
    }
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(value) {
        for key in [
            "private_key",
            "private_key_id",
            "client_secret",
            "refresh_token",
        ] {
            if let Some(serde_json::Value::String(v)) = fields.get(key) {
                register(v);
            }
        }
    }
}

/// Whether an environment variable or parameter of this name holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    [
        "PASSWORD",
        "PASSWD",
        "SECRET",
        "TOKEN",
        "_KEY",
        "SAS",
        "ACCOUNTKEY",
    ]
    .iter()
    .any(|part| n.contains(part))
        || n == "KEY"
}

/// Registers the secrets of this process's environment: every variable named like a secret
/// ([`is_secret_name`]) whole, and the secrets inside every other variable ([`register_parts`]:
/// `DATABASE_URL`'s password, a connection string's key). Called once at start.
pub fn register_environment() {
    for (name, value) in std::env::vars_os() {
        let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
            continue;
        };
        if is_secret_name(name) {
            register_value(value);
        } else {
            register_parts(value);
        }
    }
}

/// `text` with every known secret and every secret-shaped part replaced by [`MASK`].
pub fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    if let Ok(known) = SECRETS.read() {
        for secret in known.iter() {
            if out.contains(secret.as_str()) {
                out = Cow::Owned(out.replace(secret.as_str(), MASK));
            }
        }
    }
    for (re, with) in SHAPES.iter() {
        if re.is_match(&out) {
            out = Cow::Owned(re.replace_all(&out, *with).into_owned());
        }
    }
    out
}

/// `eprintln!` through [`redact`].
pub fn eprint_line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{}", redact(text));
}

/// `println!` through [`redact`].
pub fn print_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", redact(text));
}

/// Prints panics through [`redact`] (a panic message can quote a value that holds a secret).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let backtrace = std::backtrace::Backtrace::capture();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("<unnamed>");
        let mut text = format!("thread '{name}' {info}");
        if backtrace.status() == std::backtrace::BacktraceStatus::Captured {
            text.push_str(&format!("\nstack backtrace:\n{backtrace}"));
        }
        eprint_line(&text);
    }));
}

/// A `tracing` writer to stderr that redacts each event before it is written: an event is
/// collected whole, then redacted and written in one call when the writer is dropped.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedactedStderr;

/// One event's bytes on their way to stderr.
#[derive(Debug, Default)]
pub struct RedactedEvent {
    buf: Vec<u8>,
}

impl Write for RedactedEvent {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedEvent {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.buf);
        let _ = std::io::stderr().lock().write_all(redact(&text).as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedEvent;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedEvent::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_masked_without_registration() {
        let cases = [
            ("postgres://u:pw-shape-1@h/db", "postgres://u:***@h/db"),
            (
                "postgres://h/db?password=pw-shape-2&x=1",
                "postgres://h/db?password=***&x=1",
            ),
            (
                "https://a.blob.core.windows.net/c?sv=1&sig=abc%2Fdef",
                "https://a.blob.core.windows.net/c?sv=1&sig=***",
            ),
            (
                "DefaultEndpointsProtocol=http;AccountKey=abc==;",
                "DefaultEndpointsProtocol=http;AccountKey=***;",
            ),
            (
                r#"{"private_key": "-----BEGIN\nxyz", "a": 1}"#,
                r#"{"private_key": "***", "a": 1}"#,
            ),
            (
                "Authorization: Bearer abcdefgh.ijk",
                "Authorization: Bearer ***",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(redact(text), want, "{text}");
        }
        assert!(matches!(redact("nothing to hide"), Cow::Borrowed(_)));
    }

    #[test]
    fn registered_values_are_masked_in_every_form() {
        register("s3cr3t/with+chars");
        assert_eq!(redact("key s3cr3t/with+chars end"), "key *** end");
        assert_eq!(redact("url s3cr3t%2Fwith%2Bchars"), "url ***");
        register("tiny");
        assert_eq!(redact("tiny"), "tiny");
    }

    #[test]
    fn a_url_registers_its_password_not_itself() {
        register_value("postgres://user:p%40ss-word-9@db/x?sslpassword=other-secret-9");
        assert_eq!(redact("p@ss-word-9 other-secret-9"), "*** ***");
    }

    #[test]
    fn secret_names() {
        for n in [
            "AWS_SECRET_ACCESS_KEY",
            "AZURE_STORAGE_ACCOUNT_KEY",
            "PGPASSWORD",
            "GOOGLE_SERVICE_ACCOUNT_KEY",
            "AZURE_STORAGE_SAS_TOKEN",
            "SCORER_HASH_KEY",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in ["HOME", "SCORER_JOBS_DIR", "PATH", "AWS_REGION"] {
            assert!(!is_secret_name(n), "{n}");
        }
    }
}
