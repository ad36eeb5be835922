//! `models:/<name>@<alias>` and `models:/<name>/<version>`: the MLflow Model Registry URIs a job's
//! `model.uri` takes.

use crate::model::registry::check_name;

/// What a registry URI asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selector {
    /// An alias (`champion`, `production`), resolved to a version once, when the run is planned.
    Alias(String),
    /// A version number.
    Version(String),
}

/// A parsed `models:/` URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryUri {
    /// The registered model's name.
    pub name: String,
    pub selector: Selector,
}

impl RegistryUri {
    /// Parses `models:/name@alias` or `models:/name/7`.
    pub fn parse(uri: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "model.uri `{uri}`: {why} (expected models:/<name>@<alias> or models:/<name>/<version>)"
            )
        };
        let rest = uri
            .strip_prefix("models:/")
            .ok_or_else(|| bad("not a registry URI"))?;
        let (name, selector) = if let Some((name, alias)) = rest.split_once('@') {
            (name, Selector::Alias(alias.to_string()))
        } else if let Some((name, version)) = rest.rsplit_once('/') {
            if version.is_empty() || !version.chars().all(|c| c.is_ascii_digit()) {
                return Err(bad("the version must be a number"));
            }
            (name, Selector::Version(version.to_string()))
        } else {
            return Err(bad("no alias or version"));
        };
        check_name("name", name).map_err(|e| bad(&e))?;
        match &selector {
            Selector::Alias(a) => check_name("alias", a).map_err(|e| bad(&e))?,
            Selector::Version(_) => {}
        }
        Ok(Self {
            name: name.to_string(),
            selector,
        })
    }
}

impl std::fmt::Display for RegistryUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.selector {
            Selector::Alias(a) => write!(f, "models:/{}@{a}", self.name),
            Selector::Version(v) => write!(f, "models:/{}/{v}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_and_versions_parse_and_nonsense_is_refused() {
        let u = RegistryUri::parse("models:/churn@champion").unwrap();
        assert_eq!(u.name, "churn");
        assert_eq!(u.selector, Selector::Alias("champion".into()));
        assert_eq!(u.to_string(), "models:/churn@champion");
        let u = RegistryUri::parse("models:/churn/7").unwrap();
        assert_eq!(u.selector, Selector::Version("7".into()));
        for bad in [
            "runs:/abc/model",
            "models:/churn",
            "models:/churn/latest",
            "models:/../x/1",
            "models:/churn@",
        ] {
            assert!(RegistryUri::parse(bad).is_err(), "{bad}");
        }
    }
}
