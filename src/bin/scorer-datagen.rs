//! `scorer-datagen`: writes the synthetic Parquet inputs and example models used by the quickstart,
//! the tests and the benchmarks. Deterministic: the same arguments give the same bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::NaiveDate;
use clap::{Parser, Subcommand, ValueEnum};
use scorer::datagen::{InputGen, ModelGen, feature_names, write_input, write_model};
use scorer::model::spec::{Activation, ModelKind};

/// Generate synthetic input data and example models for scorer.
#[derive(Debug, Parser)]
#[command(
    name = "scorer-datagen",
    after_help = "Examples:\n  \
    scorer-datagen input --out data/quickstart/dt=2026-11-24 --date 2026-11-24 --rows 100000 --files 4 --features 8\n  \
    scorer-datagen model --out models/quickstart_mlp/1 --kind mlp --inputs 8 --hidden 16\n  \
    scorer-datagen texts --from tests/fixtures/text_embedding/sentences.jsonl --out data/tickets/dt=2026-11-24/part-0.parquet --id-column ticket_id"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Linear,
    Logistic,
    Mlp,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum OutAct {
    None,
    Sigmoid,
    Relu,
    Tanh,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Parquet files of (id, ds, f0..fN, segment) for one date.
    Input {
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        date: NaiveDate,
        #[arg(long, default_value_t = 100_000)]
        rows: u64,
        #[arg(long, default_value_t = 4)]
        files: usize,
        #[arg(long, default_value_t = 131_072)]
        row_group_rows: usize,
        #[arg(long, default_value_t = 8)]
        features: usize,
        /// Feature index that gets nulls.
        #[arg(long)]
        null_feature: Option<usize>,
        /// Fraction of that feature's values that are null.
        #[arg(long, default_value_t = 0.01)]
        null_fraction: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// A dense model (safetensors + model.toml with its sha256) over features f0..fN.
    Model {
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "mlp")]
        kind: Kind,
        #[arg(long, default_value_t = 8)]
        inputs: usize,
        /// Hidden widths, comma-separated (mlp only).
        #[arg(long, value_delimiter = ',')]
        hidden: Vec<usize>,
        /// Output names, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "score")]
        outputs: Vec<String>,
        /// Activation after the last layer (mlp only).
        #[arg(long, value_enum, default_value = "sigmoid")]
        output_activation: OutAct,
        #[arg(long, default_value_t = 7)]
        seed: u64,
    },
    /// One Parquet file of (id, text) from a file of texts, one per line (a JSON string per
    /// line for texts with newlines): the input of a text_embedding job.
    Texts {
        /// The texts, one per line.
        #[arg(long)]
        from: PathBuf,
        /// The Parquet file to write.
        #[arg(long)]
        out: PathBuf,
        #[arg(long, default_value = "id")]
        id_column: String,
        #[arg(long, default_value = "body")]
        text_column: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Input {
            out,
            date,
            rows,
            files,
            row_group_rows,
            features,
            null_feature,
            null_fraction,
            seed,
        } => write_input(&InputGen {
            out_dir: out,
            date,
            rows,
            files,
            row_group_rows,
            features,
            nulls: null_feature.map(|i| (i, null_fraction)),
            seed,
        })
        .map(|paths| format!("wrote {rows} rows in {} files", paths.len())),
        Command::Model {
            out,
            kind,
            inputs,
            hidden,
            outputs,
            output_activation,
            seed,
        } => {
            let kind = match kind {
                Kind::Linear => ModelKind::Linear,
                Kind::Logistic => ModelKind::Logistic,
                Kind::Mlp => ModelKind::Mlp,
            };
            let output_activation = match (kind, output_activation) {
                (ModelKind::Mlp, OutAct::Sigmoid) => Activation::Sigmoid,
                (ModelKind::Mlp, OutAct::Relu) => Activation::Relu,
                (ModelKind::Mlp, OutAct::Tanh) => Activation::Tanh,
                _ => Activation::None,
            };
            let description = format!(
                "synthetic {kind:?} model made by `scorer-datagen model --kind {} --inputs {inputs} --hidden {} --outputs {} --seed {seed}`",
                format!("{kind:?}").to_lowercase(),
                hidden
                    .iter()
                    .map(|h| h.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
                outputs.join(","),
            );
            write_model(&ModelGen {
                out_dir: out.clone(),
                kind,
                inputs: feature_names(inputs),
                hidden,
                outputs,
                output_activation,
                seed,
                description,
            })
            .map(|spec| {
                format!(
                    "wrote {} (sha256 {})",
                    out.display(),
                    spec.artifacts
                        .get("weights")
                        .map_or("", |a| a.sha256.as_str())
                )
            })
        }
        Command::Texts {
            from,
            out,
            id_column,
            text_column,
        } => scorer::model::precision_check::read_texts(&from)
            .map_err(|e| scorer::datagen::DatagenError::Invalid(e.to_string()))
            .and_then(|texts| {
                scorer::datagen::write_texts(&texts, &out, &id_column, &text_column)
                    .map(|()| format!("wrote {} texts to {}", texts.len(), out.display()))
            }),
    };
    match result {
        Ok(msg) => {
            println!("scorer-datagen: {msg}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("scorer-datagen: error: {e}");
            ExitCode::from(2)
        }
    }
}
