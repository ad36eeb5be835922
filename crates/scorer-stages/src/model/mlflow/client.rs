//! The MLflow tracking server's REST API, as far as scorer needs it: an alias or a version to a
//! model version, a version to where its artifacts are, and an artifact's bytes through the
//! server's artifact proxy (`mlflow-artifacts:`). Credentials come from the variables MLflow's
//! own clients read: `MLFLOW_TRACKING_TOKEN` (bearer) or `MLFLOW_TRACKING_USERNAME` and
//! `MLFLOW_TRACKING_PASSWORD` (basic).

use std::time::Duration;

use serde::Deserialize;

/// A failed call: what happened, and whether trying again later could help (the server down or
/// overloaded) or not (no such model or alias, credentials refused).
#[derive(Debug)]
pub struct CallError {
    pub message: String,
    pub transient: bool,
}

impl CallError {
    fn config(message: String) -> Self {
        Self {
            message,
            transient: false,
        }
    }
}

/// How to authenticate to the tracking server.
#[derive(Debug, Clone)]
enum Auth {
    None,
    Bearer(String),
    Basic(String, String),
}

/// A tracking server, from `MLFLOW_TRACKING_URI`.
#[derive(Debug, Clone)]
pub struct Tracking {
    base: url::Url,
    client: reqwest::Client,
    auth: Auth,
}

/// One model version as the registry returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelVersion {
    pub version: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A registered model as the search returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisteredModel {
    pub name: String,
    #[serde(default)]
    pub aliases: Vec<Alias>,
    #[serde(default)]
    pub latest_versions: Vec<ModelVersion>,
}

/// An alias and the version it points at.
#[derive(Debug, Clone, Deserialize)]
pub struct Alias {
    pub alias: String,
    pub version: String,
}

#[derive(Deserialize)]
struct VersionReply {
    model_version: ModelVersion,
}

#[derive(Deserialize)]
struct DownloadUri {
    artifact_uri: String,
}

/// Seconds one call may take before the server counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Tracking {
    /// The server `MLFLOW_TRACKING_URI` names (http or https), with the credentials the
    /// environment gives.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, CallError> {
        let uri = var("MLFLOW_TRACKING_URI")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                CallError::config(
                "MLFLOW_TRACKING_URI is not set; point it at the tracking server (http://host:5000)"
                    .into(),
            )
            })?;
        let mut base = url::Url::parse(&uri)
            .map_err(|e| CallError::config(format!("MLFLOW_TRACKING_URI is not a URL ({e})")))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(CallError::config(format!(
                "MLFLOW_TRACKING_URI must be an http(s) tracking server, not `{}:`",
                base.scheme()
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let auth = match (
            var("MLFLOW_TRACKING_TOKEN").filter(|t| !t.is_empty()),
            var("MLFLOW_TRACKING_USERNAME").filter(|u| !u.is_empty()),
        ) {
            (Some(token), _) => Auth::Bearer(token),
            (None, Some(user)) => {
                Auth::Basic(user, var("MLFLOW_TRACKING_PASSWORD").unwrap_or_default())
            }
            (None, None) => Auth::None,
        };
        let client = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| CallError::config(format!("HTTP client: {e}")))?;
        Ok(Self { base, client, auth })
    }

    /// The server this process's environment names ([`Tracking::from_env`] over its variables).
    pub fn from_process_env() -> Result<Self, CallError> {
        Self::from_env(|name| std::env::var(name).ok())
    }

    /// The server's address without credentials, for messages and the ledger.
    pub fn address(&self) -> String {
        crate::source::location::redact_url(self.base.as_str())
    }

    /// GET `path` (relative to the server's root) with `query`, as bytes.
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Vec<u8>, CallError> {
        let mut url = self
            .base
            .join(path)
            .map_err(|e| CallError::config(e.to_string()))?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        self.send(self.client.get(url)).await
    }

    /// POSTs a JSON body to `path`, as bytes of the reply.
    async fn post(&self, path: &str, body: &serde_json::Value) -> Result<Vec<u8>, CallError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| CallError::config(e.to_string()))?;
        let req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        self.send(req).await
    }

    /// Sends a request with the credentials; a non-2xx answer becomes a [`CallError`] that says
    /// whether retrying could help.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<Vec<u8>, CallError> {
        let req = match &self.auth {
            Auth::None => req,
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Basic(u, p) => req.basic_auth(u, Some(p)),
        };
        let response = req.send().await.map_err(|e| CallError {
            message: format!(
                "the tracking server {} cannot be reached: {}",
                self.address(),
                error_chain(&e)
            ),
            transient: true,
        })?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| CallError {
            message: format!("reading the tracking server's reply: {}", error_chain(&e)),
            transient: true,
        })?;
        if status.is_success() {
            return Ok(body.to_vec());
        }
        let said = server_message(&body);
        Err(match status.as_u16() {
            401 | 403 => CallError::config(format!(
                "the tracking server {} refused the credentials (HTTP {status}{said}); set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD",
                self.address()
            )),
            408 | 429 | 500..=599 => CallError {
                message: format!("the tracking server answered HTTP {status}{said}"),
                transient: true,
            },
            _ => CallError::config(format!("the tracking server answered HTTP {status}{said}")),
        })
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CallError> {
        let body = self.get(path, query).await?;
        serde_json::from_slice(&body).map_err(|e| {
            CallError::config(format!(
                "the tracking server's reply to {path} is not understood: {e}"
            ))
        })
    }

    /// The version an alias points at now.
    pub async fn version_by_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<ModelVersion, CallError> {
        let reply: VersionReply = self
            .get_json(
                "api/2.0/mlflow/registered-models/alias",
                &[("name", name), ("alias", alias)],
            )
            .await?;
        Ok(reply.model_version)
    }

    /// One version of a registered model.
    pub async fn version(&self, name: &str, version: &str) -> Result<ModelVersion, CallError> {
        let reply: VersionReply = self
            .get_json(
                "api/2.0/mlflow/model-versions/get",
                &[("name", name), ("version", version)],
            )
            .await?;
        Ok(reply.model_version)
    }

    /// Where a version's files are (in MLflow 3 its `source` is `models:/m-<id>`, not a path).
    pub async fn download_uri(&self, name: &str, version: &str) -> Result<String, CallError> {
        let reply: DownloadUri = self
            .get_json(
                "api/2.0/mlflow/model-versions/get-download-uri",
                &[("name", name), ("version", version)],
            )
            .await?;
        Ok(reply.artifact_uri)
    }

    /// Every registered model with its aliases and newest version, following the pages.
    pub async fn registered_models(&self) -> Result<Vec<RegisteredModel>, CallError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            registered_models: Vec<RegisteredModel>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut query = vec![("max_results", "1000")];
            if let Some(t) = &token {
                query.push(("page_token", t.as_str()));
            }
            let page: Page = self
                .get_json("api/2.0/mlflow/registered-models/search", &query)
                .await?;
            all.extend(page.registered_models);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => token = Some(t),
                None => return Ok(all),
            }
        }
    }

    /// Points `alias` of model `name` at `version` (the registry's own set-alias call).
    pub async fn set_alias(&self, name: &str, alias: &str, version: &str) -> Result<(), CallError> {
        let body = serde_json::json!({ "name": name, "alias": alias, "version": version });
        self.post("api/2.0/mlflow/registered-models/alias", &body)
            .await
            .map(|_| ())
    }

    /// A file under an `mlflow-artifacts:` location, through the server's artifact proxy.
    pub async fn proxied_artifact(&self, location: &str, file: &str) -> Result<Vec<u8>, CallError> {
        // mlflow-artifacts:/path or mlflow-artifacts://host:port/path: the path is what counts.
        let rest = location.trim_start_matches("mlflow-artifacts:");
        let path = match rest.strip_prefix("//") {
            Some(with_host) => with_host.split_once('/').map_or("", |(_, p)| p),
            None => rest.trim_start_matches('/'),
        };
        let path = format!(
            "api/2.0/mlflow-artifacts/artifacts/{}/{}",
            path.trim_end_matches('/'),
            file
        );
        self.get(&path, &[]).await
    }
}

/// The `message` of an MLflow error reply (`{"error_code": …, "message": …}`), as `: message`.
fn server_message(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(default)]
        error_code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Reply>(body) {
        Ok(r) if !r.message.is_empty() => format!(": {} {}", r.error_code, r.message),
        _ => String::new(),
    }
}

/// An error with its causes, so "connection refused" shows and not only "error sending request".
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
