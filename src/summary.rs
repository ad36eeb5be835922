//! What `scorer run`, `scorer gc` and `scorer models` print on stdout: where the rows went and
//! how to look at them, what the sweep removed, and what the model registry holds.

use crate::run::RunOutcome;
use crate::run::sweep::SweepOutcome;

/// The lines `scorer run` prints after a successful run.
pub fn run_lines(s: &RunOutcome) -> Vec<String> {
    let date = s.date.format("%Y-%m-%d");
    let secs = s.stage_seconds.get("total").copied().unwrap_or_default();
    let mut lines = vec![format!(
        "scorer: job {} for {date}: {} rows read from {} objects, {} written, {} rejected, in {secs:.2} s",
        s.job, s.rows_read, s.objects, s.rows_written, s.rows_rejected
    )];
    if let Some(shard) = &s.shard {
        lines.push(format!("  {shard}"));
    }
    lines.extend(s.output.result_lines(s.date, s.run_id));
    lines
}

/// The lines `scorer gc` prints.
pub fn sweep_lines(r: &SweepOutcome) -> Vec<String> {
    let mut lines = vec![format!(
        "scorer gc: {} dead run(s) marked abandoned, {} running run(s) left alone",
        r.abandoned.len(),
        r.alive
    )];
    for a in &r.abandoned {
        let removed = if a.removed.is_empty() {
            "nothing left to remove".to_string()
        } else {
            format!("removed {}", a.removed.join(", "))
        };
        lines.push(format!(
            "  run {} (job {}, {}, output {}): {removed}",
            a.run.run_id, a.run.job, a.run.logical_date, a.run.output
        ));
    }
    for (run, why) in &r.failed {
        lines.push(format!(
            "  run {} (job {}, {}): not cleaned up, left `running`: {why}",
            run.run_id, run.job, run.logical_date
        ));
    }
    lines
}

/// The lines `scorer gc` prints for the sharded attempts it expired, kept and could not expire.
pub fn expiry_lines(r: &crate::run::expire::ExpiryOutcome) -> Vec<String> {
    let mut lines = vec![format!(
        "scorer gc: {} stalled sharded attempt(s) expired, {} unpublished attempt(s) kept (idle \
         less than --expire-attempts-after, or their date locked)",
        r.expired.len(),
        r.kept
    )];
    for a in &r.expired {
        lines.push(format!(
            "  attempt {} (job {}, {}, output {}): {} of {} shards had staged, idle {:.0} s; \
             their parts dropped, the attempt forgotten",
            a.attempt, a.job, a.date, a.output, a.staged, a.count, a.idle_seconds
        ));
    }
    for (a, why) in &r.failed {
        lines.push(format!(
            "  attempt {} (job {}, {}): not expired: {why}",
            a.attempt, a.job, a.date
        ));
    }
    lines
}

/// The lines `scorer models list` prints: one per model version, then its inputs, outputs,
/// preprocessing and artifacts. A version whose model.toml does not parse is listed with why.
pub fn models_list(
    registry: &crate::model::registry::Registry,
) -> Result<Vec<String>, crate::model::ModelError> {
    let entries = registry.list()?;
    if entries.is_empty() {
        return Ok(vec![format!(
            "no models in {} (expected <name>/<version>/model.toml)",
            registry.root.display()
        )]);
    }
    let mut lines = Vec::new();
    for e in entries {
        match crate::model::read_spec(registry, &e.name, &e.version) {
            Ok(spec) => {
                lines.push(format!(
                    "{} {}: {:?} model, {} inputs -> {}",
                    e.name,
                    e.version,
                    spec.kind.kind(),
                    spec.inputs.len(),
                    spec.output_columns()
                        .iter()
                        .map(|o| format!("{} ({})", o.name, o.ty))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                if let Some(p) = &spec.preprocess {
                    lines.push(format!(
                        "  preprocess: {} derived, {} imputed, {} categorical, {} standardized",
                        p.derive.len(),
                        p.impute.len(),
                        p.categorical.len(),
                        p.standardize.len()
                    ));
                }
                if let Some(line) = spec.kind.section().describe() {
                    lines.push(format!("  {line}"));
                }
                for (role, a) in &spec.artifacts {
                    let at = a.file.as_deref().or(a.url.as_deref()).unwrap_or_default();
                    lines.push(format!("  {role}: {at} sha256 {}", a.sha256));
                }
            }
            Err(err) => lines.push(format!("{} {}: INVALID: {err}", e.name, e.version)),
        }
    }
    Ok(lines)
}

/// `scorer models verify`: checks the artifacts of the chosen versions and loads each model on
/// `device`; a text encoder also encodes `texts` (the fixture sentences when `None`), timed,
/// and in bf16/f16 against its own weights in f32 (`precision_check`). Returns the report lines
/// and one problem per version that failed.
pub fn models_verify(
    registry: &crate::model::registry::Registry,
    name: Option<&str>,
    version: Option<&str>,
    device: crate::model::device::DeviceSpec,
    texts: Option<&std::path::Path>,
) -> Result<(Vec<String>, Vec<String>), crate::model::ModelError> {
    let entries: Vec<(String, String)> = match (name, version) {
        (Some(n), Some(v)) => vec![(n.to_string(), registry.resolve_version(n, v)?)],
        (Some(n), None) => {
            let versions = registry.versions(n)?;
            if versions.is_empty() {
                return Err(crate::model::ModelError::NotFound {
                    name: n.to_string(),
                    version: "any".into(),
                    path: registry.root.join(n),
                    dir: registry.root.clone(),
                });
            }
            versions.into_iter().map(|v| (n.to_string(), v)).collect()
        }
        (None, _) => registry
            .list()?
            .into_iter()
            .map(|e| (e.name, e.version))
            .collect(),
    };
    let (mut lines, mut failed) = (Vec::new(), Vec::new());
    for (n, v) in entries {
        // Loading checks every artifact against its sha256 (fetching remote ones) and opens the
        // model, so each file is read and hashed once.
        let checked = crate::model::load(registry, &n, &v, device).and_then(|m| {
            let encoder = text_encoder_line(registry, &m, texts)?;
            Ok((m.sha256, m.model.describe(), encoder))
        });
        match checked {
            Ok((sha, about, encoder)) => {
                let mut line = format!("{n} {v}: OK (sha256 {sha})");
                for part in about.iter().chain(encoder.iter()) {
                    line.push_str("; ");
                    line.push_str(part);
                }
                lines.push(line);
            }
            Err(e) => failed.push(format!("{n} {v}: {e}")),
        }
    }
    Ok((lines, failed))
}

/// For a text encoder, its speed on the sample texts and, when it computes in bf16 or f16,
/// the speed-up and worst cosine against the same weights in f32 on the same device; `None` for
/// other kinds.
fn text_encoder_line(
    registry: &crate::model::registry::Registry,
    loaded: &crate::model::LoadedModel,
    texts: Option<&std::path::Path>,
) -> Result<Option<String>, crate::model::ModelError> {
    use crate::model::device::DeviceSpec;
    use crate::model::precision_check as check;
    use crate::model::text_embedding::Precision;
    let crate::model::spec::KindSpec::TextEmbedding(section) = &loaded.spec.kind else {
        return Ok(None);
    };
    let spec = &section.text_embedding;
    let texts = match texts {
        Some(path) => check::read_texts(path)?,
        None => check::fixture_texts(),
    };
    let on_gpu = loaded.device != DeviceSpec::Cpu;
    // The CPU computes in f32 whatever model.toml asks (`TextEmbeddingModel::build`).
    let precision = if on_gpu { spec.dtype } else { Precision::F32 };
    let timed = check::time_encoder(loaded.model.as_ref(), &texts, on_gpu)?;
    let reference = if precision == Precision::F32 {
        None
    } else {
        let f32s = crate::model::load_adjusted(
            registry,
            &loaded.name,
            &loaded.version,
            loaded.device,
            |spec| {
                if let crate::model::spec::KindSpec::TextEmbedding(section) = &mut spec.kind {
                    section.text_embedding.dtype = Precision::F32;
                }
            },
        )?;
        Some(check::time_encoder(f32s.model.as_ref(), &texts, on_gpu)?)
    };
    let mut line = check::report(precision, texts.len(), &timed, reference.as_ref());
    if !on_gpu && spec.dtype != Precision::F32 {
        line.push_str(&format!(
            " (dtype {} applies on a GPU; the CPU computes in f32)",
            spec.dtype.name()
        ));
    }
    Ok(Some(line))
}
