//! Reason codes in the words a job chooses: `[model.reasons]` in the job file maps each input
//! feature to the text its reason-code outputs hold instead of the feature's name ("Debt to
//! income ratio too high" for `dti`). The model keeps naming features; this wrapper reads its
//! text-array outputs through the table, so one model serves jobs that word reasons differently.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, ListArray, StringArray};
use arrow::datatypes::{DataType, Field};

use super::{ModelError, ScoringModel};
use crate::contract::{ExecutionPolicy, InputContract, OutputColumn, OutputType};
use crate::features::FeatureBatch;

/// What is wrong with a job's reasons table for a model: every problem, one line each.
pub fn problems(
    table: &BTreeMap<String, String>,
    inputs: &[String],
    outputs: &[OutputColumn],
    model: &str,
) -> Vec<String> {
    let mut p = Vec::new();
    if table.is_empty() {
        return p;
    }
    if !outputs
        .iter()
        .any(|o| matches!(o.ty, OutputType::TextList(_)))
    {
        p.push(format!(
            "model.reasons: {model} writes no reason codes; declare an output \
             {{ name = \"reasons\", kind = \"top_contributions\", k = 3 }} in its model.toml, or \
             remove [model.reasons]"
        ));
        return p;
    }
    let unknown: Vec<&str> = table
        .keys()
        .filter(|k| !inputs.contains(k))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        p.push(format!(
            "model.reasons: {} {} not an input of {model} (inputs: {})",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" },
            inputs.join(", ")
        ));
    }
    let missing: Vec<&str> = inputs
        .iter()
        .filter(|f| !table.contains_key(*f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        p.push(format!(
            "model.reasons: every input needs its text, so no raw feature name reaches a notice; \
             missing: {}",
            missing.join(", ")
        ));
    }
    let empty: Vec<&str> = table
        .iter()
        .filter(|(_, text)| text.trim().is_empty())
        .map(|(f, _)| f.as_str())
        .collect();
    if !empty.is_empty() {
        p.push(format!(
            "model.reasons: the text for {} is empty",
            empty.join(", ")
        ));
    }
    p
}

/// A model whose reason codes name features through a table.
pub struct ReasonLabels {
    inner: Box<dyn ScoringModel>,
    /// Feature name -> its text, with the texts shared by every batch.
    labels: HashMap<String, Arc<str>>,
}

impl ReasonLabels {
    /// Wraps `inner`; `table` must have passed [`problems`].
    pub fn new(inner: Box<dyn ScoringModel>, table: &BTreeMap<String, String>) -> Self {
        let labels = table
            .iter()
            .map(|(f, text)| (f.clone(), Arc::from(text.as_str())))
            .collect();
        Self { inner, labels }
    }

    /// `list` with each text read through the table (a text not in it is kept as it is).
    fn relabel(&self, list: &ListArray) -> Result<ArrayRef, ModelError> {
        let wrong = || ModelError::Runtime("reason codes are not a list of text".into());
        let names = list
            .values()
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(wrong)?;
        let texts = StringArray::from_iter_values(names.iter().map(|name| {
            let name = name.unwrap_or_default();
            self.labels.get(name).map_or(name, |t| t.as_ref())
        }));
        let field = Arc::new(Field::new_list_field(DataType::Utf8, false));
        let relabelled = ListArray::try_new(field, list.offsets().clone(), Arc::new(texts), None)
            .map_err(|e| ModelError::Runtime(format!("reason codes: {e}")))?;
        Ok(Arc::new(relabelled))
    }
}

impl ScoringModel for ReasonLabels {
    fn inputs(&self) -> &InputContract {
        self.inner.inputs()
    }

    fn outputs(&self) -> &[OutputColumn] {
        self.inner.outputs()
    }

    fn execution(&self) -> ExecutionPolicy {
        self.inner.execution()
    }

    fn describe(&self) -> Option<String> {
        self.inner.describe()
    }

    fn score(&self, batch: &FeatureBatch) -> Result<Vec<ArrayRef>, ModelError> {
        let columns = self.inner.score(batch)?;
        columns
            .into_iter()
            .zip(self.inner.outputs())
            .map(|(array, output)| match output.ty {
                OutputType::TextList(_) => {
                    let list = array.as_any().downcast_ref::<ListArray>().ok_or_else(|| {
                        ModelError::Runtime(format!(
                            "output `{}` is not a list of text",
                            output.name
                        ))
                    })?;
                    self.relabel(list)
                }
                _ => Ok(array),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons() -> Vec<OutputColumn> {
        vec![OutputColumn {
            name: "reasons".into(),
            ty: OutputType::TextList(3),
        }]
    }

    #[test]
    fn every_input_mapped_and_no_stranger() {
        let inputs = vec!["age".to_string(), "dti".to_string()];
        let table: BTreeMap<String, String> = [("dti", "Debt too high"), ("agee", "Age")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let p = problems(&table, &inputs, &reasons(), "model m version 1");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("agee is not an input"), "{p:?}");
        assert!(p[1].contains("missing: age"), "{p:?}");
        let none = problems(&table, &inputs, &[], "model m version 1");
        assert!(none[0].contains("writes no reason codes"), "{none:?}");
        assert!(problems(&BTreeMap::new(), &inputs, &[], "m").is_empty());
    }
}
