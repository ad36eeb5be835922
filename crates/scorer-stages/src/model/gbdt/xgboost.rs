//! XGBoost's JSON model format (`Booster.save_model("m.json")`, XGBoost 1.0 to 3.x), and the same
//! document in UBJSON (`"m.ubj"`, `super::ubjson`), into a [`Forest`]. The rules it encodes, each checked against XGBoost's own `predict` by the fixtures:
//!
//! - a numeric split goes left iff `x < split_condition`, compared in f32;
//! - a missing value (NaN) follows `default_left`;
//! - a categorical split sends the listed categories right and everything else (unlisted,
//!   negative, beyond the list) left;
//! - `base_score` is in output space (a probability for logistic objectives, a mean count for
//!   poisson), stored since 3.1 as an array string (`"[6.27E-1]"`, one value per class), and is
//!   brought to margin space through the objective's inverse link before it is added;
//! - `tree_info[i]` is the class tree `i` adds to.

use serde_json::Value;

use super::error::ForestFileError;
use super::forest::{Forest, Link, Node, Split, Tree};
use super::ubjson;

/// Reads an XGBoost model, JSON or UBJSON.
pub fn parse(bytes: &[u8]) -> Result<Forest, ForestFileError> {
    walk(&document(bytes)?)
}

/// The model file's document: JSON or UBJSON, told apart by their first bytes (MLflow's
/// `model.xgb`/`model.ubj` can be either, depending on the XGBoost version that saved it).
fn document(bytes: &[u8]) -> Result<Value, ForestFileError> {
    if ubjson::looks_like_ubjson(bytes) {
        return ubjson::decode(bytes).map_err(|e| {
            ForestFileError::NotTheFormat(format!("not an XGBoost UBJSON model: {e}"))
        });
    }
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ForestFileError::NotTheFormat(
            "not an XGBoost JSON model, nor UBJSON (XGBoost's old binary format is not read: \
             load it in XGBoost and save it with Booster.save_model(\"model.json\") or \
             \"model.ubj\")"
                .into(),
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ForestFileError::NotTheFormat(format!("not an XGBoost JSON model: {e}")))
}

/// The forest an XGBoost model document describes.
fn walk(root: &Value) -> Result<Forest, ForestFileError> {
    let learner = root.get("learner").ok_or_else(|| {
        ForestFileError::NotTheFormat("not an XGBoost JSON model: no `learner` object (save it with Booster.save_model(\"model.json\"))".into())
    })?;
    let params = field(learner, "learner_model_param")?;
    let features = usize_param(params, "num_feature")?;
    let num_class = usize_param(params, "num_class").unwrap_or(0);
    let num_target = usize_param(params, "num_target").unwrap_or(1);
    if num_target > 1 {
        return Err(ForestFileError::Unsupported(format!(
            "the model has {num_target} targets; scorer reads single-target XGBoost models"
        )));
    }
    let objective = field(learner, "objective")?
        .get("name")
        .and_then(Value::as_str)
        .ok_or("`learner.objective.name` is missing")?
        .to_string();
    let groups = num_class.max(1);
    let (link, inverse) = objective_link(&objective, groups)?;

    let booster = field(learner, "gradient_booster")?;
    match booster.get("name").and_then(Value::as_str) {
        Some("gbtree") => {}
        Some(other) => {
            return Err(ForestFileError::Unsupported(format!(
                "booster `{other}` is not supported; scorer reads tree boosters (`gbtree`)"
            )));
        }
        None => return Err("`gradient_booster.name` is missing".into()),
    }
    let model = field(booster, "model")?;
    let tree_info = array(model, "tree_info")?;
    let trees_json = array(model, "trees")?;
    if tree_info.len() != trees_json.len() {
        return Err(format!(
            "{} trees but {} tree_info entries",
            trees_json.len(),
            tree_info.len()
        )
        .into());
    }
    let mut trees = Vec::with_capacity(trees_json.len());
    for (i, (t, g)) in trees_json.iter().zip(tree_info).enumerate() {
        let group = g
            .as_u64()
            .and_then(|g| usize::try_from(g).ok())
            .ok_or_else(|| format!("tree_info[{i}] is not a class index"))?;
        trees.push(tree(t).map_err(|e| e.in_tree(format!("tree {i}")))?);
        if let Some(last) = trees.last_mut() {
            last.group = group;
        }
    }

    let base_score = base_score(params, groups)?;
    let base_margin = base_score
        .iter()
        .map(|&b| inverse(b))
        .collect::<Result<Vec<f64>, ForestFileError>>()?;
    let names: Vec<String> = learner
        .get("feature_names")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let forest = Forest {
        features,
        groups,
        trees,
        base_margin,
        link,
        objective,
        feature_names: (!names.is_empty()).then_some(names),
    };
    forest.check()?;
    Ok(forest)
}

type Inverse = fn(f64) -> Result<f64, ForestFileError>;

/// The objective's link (margin → predict output) and its inverse (for base_score).
fn objective_link(objective: &str, groups: usize) -> Result<(Link, Inverse), ForestFileError> {
    fn identity(b: f64) -> Result<f64, ForestFileError> {
        Ok(b)
    }
    fn logit(b: f64) -> Result<f64, ForestFileError> {
        if b > 0.0 && b < 1.0 {
            Ok((b / (1.0 - b)).ln())
        } else {
            Err(
                format!("base_score {b} is not a probability in (0, 1) for a logistic objective")
                    .into(),
            )
        }
    }
    fn log(b: f64) -> Result<f64, ForestFileError> {
        if b > 0.0 {
            Ok(b.ln())
        } else {
            Err(format!("base_score {b} must be positive for a log-link objective").into())
        }
    }
    let single = |what: &str| -> Result<(), ForestFileError> {
        if groups > 1 {
            Err(
                format!("objective `{objective}` is {what} but the model has {groups} classes")
                    .into(),
            )
        } else {
            Ok(())
        }
    };
    Ok(match objective {
        "binary:logistic" | "reg:logistic" => {
            single("binary")?;
            (Link::Sigmoid { scale: 1.0 }, logit as Inverse)
        }
        "binary:logitraw" => {
            single("binary")?;
            (Link::Identity, logit as Inverse)
        }
        "multi:softprob" | "multi:softmax" => {
            if groups < 2 {
                return Err(format!("objective `{objective}` needs num_class >= 2").into());
            }
            (Link::Softmax, identity as Inverse)
        }
        "reg:squarederror"
        | "reg:linear"
        | "reg:squaredlogerror"
        | "reg:pseudohubererror"
        | "reg:absoluteerror" => {
            single("a regression")?;
            (Link::Identity, identity as Inverse)
        }
        "count:poisson" | "reg:gamma" | "reg:tweedie" => {
            single("a regression")?;
            (Link::Exp, log as Inverse)
        }
        other => {
            return Err(ForestFileError::Unsupported(format!(
                "objective `{other}` is not supported; scorer reads binary:logistic, binary:logitraw, reg:logistic, multi:softprob, multi:softmax (scored as probabilities), reg:squarederror, reg:squaredlogerror, reg:pseudohubererror, reg:absoluteerror, count:poisson, reg:gamma and reg:tweedie"
            )));
        }
    })
}

/// `base_score`: `"5E-1"` (before 3.1) or `"[6.27E-1]"` / `"[a,b,c]"` (3.1 and later), one value
/// for every class or one per class.
fn base_score(params: &Value, groups: usize) -> Result<Vec<f64>, ForestFileError> {
    let raw = match params.get("base_score") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return Err(format!("base_score {other} is not a number").into()),
        None => return Err("`learner_model_param.base_score` is missing".into()),
    };
    let inner = raw.trim().trim_start_matches('[').trim_end_matches(']');
    let values = inner
        .split(',')
        .map(|v| {
            let v = v.trim();
            v.parse::<f32>()
                .map(f64::from)
                .map_err(|_| format!("base_score `{raw}` is not a number or a list of numbers"))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    match values.len() {
        1 => Ok(vec![values[0]; groups]),
        n if n == groups => Ok(values),
        n => Err(format!("base_score `{raw}` has {n} values for {groups} classes").into()),
    }
}

/// One tree in XGBoost's array-of-fields form.
fn tree(t: &Value) -> Result<Tree, ForestFileError> {
    if let Some(p) = t.get("tree_param")
        && usize_param(p, "size_leaf_vector").unwrap_or(1) > 1
    {
        return Err(ForestFileError::Unsupported(
            "vector leaves (multi_strategy = \"multi_output_tree\") are not supported".into(),
        ));
    }
    let left = ints(t, "left_children")?;
    let right = ints(t, "right_children")?;
    let index = ints(t, "split_indices")?;
    let cond = floats(t, "split_conditions")?;
    let default_left = bools(t, "default_left")?;
    // Covers are f32 in XGBoost too: through f32, so JSON's decimals and UBJSON's floats agree.
    let covers: Vec<f64> = match t.get("sum_hessian") {
        Some(_) => floats(t, "sum_hessian")?
            .into_iter()
            .map(|c| f64::from(c as f32))
            .collect(),
        None => Vec::new(),
    };
    let n = left.len();
    if !covers.is_empty() && covers.len() != n {
        return Err("its node arrays have different lengths".into());
    }
    if [right.len(), index.len(), cond.len(), default_left.len()]
        .iter()
        .any(|&l| l != n)
    {
        return Err("its node arrays have different lengths".into());
    }
    let split_type = match t.get("split_type") {
        Some(_) => ints(t, "split_type")?,
        None => vec![0; n],
    };
    // categorical splits: node -> the categories it lists
    let cat_nodes = optional_ints(t, "categories_nodes")?;
    let cat_segments = optional_ints(t, "categories_segments")?;
    let cat_sizes = optional_ints(t, "categories_sizes")?;
    let categories = optional_ints(t, "categories")?;
    let mut listed: std::collections::HashMap<i64, Vec<u32>> = std::collections::HashMap::new();
    for ((node, seg), size) in cat_nodes.iter().zip(&cat_segments).zip(&cat_sizes) {
        let (Ok(seg), Ok(size)) = (usize::try_from(*seg), usize::try_from(*size)) else {
            return Err(format!("node {node}: bad category segment").into());
        };
        let cats = categories
            .get(seg..seg.saturating_add(size))
            .ok_or_else(|| format!("node {node}: category segment out of range"))?;
        let mut set = Vec::new();
        for &c in cats {
            let c = u32::try_from(c)
                .ok()
                .filter(|c| *c < (1 << 24))
                .ok_or_else(|| format!("node {node}: category {c} is out of range"))?;
            let word = (c / 32) as usize;
            if set.len() <= word {
                set.resize(word + 1, 0u32);
            }
            set[word] |= 1 << (c % 32);
        }
        listed.insert(*node, set);
    }

    let child = |c: i64, i: usize| -> Result<usize, ForestFileError> {
        usize::try_from(c)
            .ok()
            .filter(|&c| c < n)
            .ok_or_else(|| format!("node {i}: child {c} is out of range").into())
    };
    let mut nodes = Vec::with_capacity(n);
    for i in 0..n {
        if left[i] == -1 {
            // XGBoost keeps leaf values in f32: the JSON text is the f32's shortest decimal,
            // which parses to a nearby f64, not the f32 itself.
            nodes.push(Node::Leaf(f64::from(cond[i] as f32)));
            continue;
        }
        let feature =
            u32::try_from(index[i]).map_err(|_| format!("node {i}: bad feature index"))?;
        let split = if split_type[i] == 1 {
            let set = listed
                .get(&(i as i64))
                .cloned()
                .ok_or_else(|| format!("node {i} is categorical but lists no categories"))?;
            Split::Categorical {
                feature,
                set,
                listed_left: false,
                nan_left: default_left[i],
                other_left: true,
                truncate_first: false,
            }
        } else {
            // XGBoost keeps thresholds in f32 and goes left iff x < t: x <= the f32 below t
            let t = cond[i] as f32;
            Split::Numeric {
                feature,
                threshold: t.next_down(),
                nan_left: default_left[i],
                zero_is_missing: false,
            }
        };
        nodes.push(Node::Split {
            split,
            left: child(left[i], i)?,
            right: child(right[i], i)?,
        });
    }
    Ok(Tree {
        nodes,
        group: 0,
        covers,
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a Value, ForestFileError> {
    v.get(name)
        .ok_or_else(|| format!("`{name}` is missing from the model").into())
}

fn array<'a>(v: &'a Value, name: &str) -> Result<&'a Vec<Value>, ForestFileError> {
    field(v, name)?
        .as_array()
        .ok_or_else(|| format!("`{name}` is not an array").into())
}

fn usize_param(v: &Value, name: &str) -> Result<usize, ForestFileError> {
    match v.get(name) {
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(Value::Number(n)) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        _ => None,
    }
    .ok_or_else(|| format!("`{name}` is missing or not a count").into())
}

fn ints(v: &Value, name: &str) -> Result<Vec<i64>, ForestFileError> {
    array(v, name)?
        .iter()
        .map(|x| {
            x.as_i64()
                .ok_or_else(|| format!("`{name}` holds {x}, not an integer").into())
        })
        .collect()
}

fn optional_ints(v: &Value, name: &str) -> Result<Vec<i64>, ForestFileError> {
    if v.get(name).is_some() {
        ints(v, name)
    } else {
        Ok(Vec::new())
    }
}

fn floats(v: &Value, name: &str) -> Result<Vec<f64>, ForestFileError> {
    array(v, name)?
        .iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| format!("`{name}` holds {x}, not a number").into())
        })
        .collect()
}

/// `default_left` is 0/1 in some versions and true/false in others.
fn bools(v: &Value, name: &str) -> Result<Vec<bool>, ForestFileError> {
    array(v, name)?
        .iter()
        .map(|x| match x {
            Value::Bool(b) => Ok(*b),
            Value::Number(n) => Ok(n.as_i64() != Some(0)),
            other => Err(format!("`{name}` holds {other}, not a flag").into()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! One test per XGBoost trap the issue names, on hand-made models small enough to read.

    use super::*;

    /// A one-feature model: `trees` are JSON tree objects, `tree_info` their classes.
    fn model(
        objective: &str,
        base_score: &str,
        num_class: usize,
        trees: &[String],
        tree_info: &[usize],
    ) -> Forest {
        let json = format!(
            r#"{{"learner": {{
                "feature_names": [], "feature_types": [],
                "gradient_booster": {{"name": "gbtree", "model": {{
                    "gbtree_model_param": {{"num_parallel_tree": "1", "num_trees": "{n}"}},
                    "tree_info": {info:?}, "trees": [{trees}]}}}},
                "learner_model_param": {{"base_score": "{base_score}", "num_class": "{num_class}",
                    "num_feature": "1", "num_target": "1"}},
                "objective": {{"name": "{objective}"}}}},
                "version": [3, 2, 0]}}"#,
            n = trees.len(),
            info = tree_info,
            trees = trees.join(","),
        );
        parse(json.as_bytes()).unwrap()
    }

    /// A stump: `x < cond` → leaf -1, else leaf +1; missing goes left iff `default_left`.
    fn stump(cond: &str, default_left: u8) -> String {
        format!(
            r#"{{"left_children": [1, -1, -1], "right_children": [2, -1, -1],
                "split_indices": [0, 0, 0], "split_conditions": [{cond}, -1.0, 1.0],
                "default_left": [{default_left}, 0, 0], "split_type": [0, 0, 0],
                "categories": [], "categories_nodes": [], "categories_segments": [],
                "categories_sizes": [], "tree_param": {{"size_leaf_vector": "1"}}}}"#
        )
    }

    fn leaf(v: f64) -> String {
        format!(
            r#"{{"left_children": [-1], "right_children": [-1], "split_indices": [0],
                "split_conditions": [{v}], "default_left": [0], "split_type": [0]}}"#
        )
    }

    #[test]
    fn base_score_is_an_array_string_in_output_space() {
        // XGBoost >= 3.1: "[p]" for a logistic model is a probability: margin = logit(p)
        let f = model("binary:logistic", "[6.274165E-1]", 0, &[leaf(0.0)], &[0]);
        let p = f64::from(6.274165e-1f32);
        assert!((f.base_margin[0] - (p / (1.0 - p)).ln()).abs() < 1e-12);
        // before 3.1, a plain number; 0.5 is margin 0
        let f = model("binary:logistic", "5E-1", 0, &[leaf(0.0)], &[0]);
        assert_eq!(f.base_margin, vec![0.0]);
        // a log link: margin = ln(mean)
        let f = model("count:poisson", "[3.80543E0]", 0, &[leaf(0.0)], &[0]);
        assert!((f.base_margin[0] - f64::from(3.80543f32).ln()).abs() < 1e-12);
        // multiclass: one value per class, identity
        let f = model(
            "multi:softprob",
            "[1E-1,2E-1,3E-1]",
            3,
            &[leaf(0.0), leaf(0.0), leaf(0.0)],
            &[0, 1, 2],
        );
        assert_eq!(f.base_margin.len(), 3);
        assert!((f.base_margin[2] - f64::from(0.3f32)).abs() < 1e-12);
    }

    #[test]
    fn splits_compare_in_f32_with_strict_less_than() {
        let f = model("reg:squarederror", "[0E0]", 0, &[stump("0.7", 0)], &[0]);
        let t = 0.7f32;
        // the trap: in f64, 0.7f32 (0.699999988…) < 0.7 would send it left
        assert!(f64::from(t) < 0.7);
        assert_eq!(f.margins(&[t]), vec![1.0], "x == threshold goes right");
        assert_eq!(f.margins(&[t.next_down()]), vec![-1.0]);
    }

    #[test]
    fn missing_values_follow_default_left() {
        let left = model("reg:squarederror", "[0E0]", 0, &[stump("0.5", 1)], &[0]);
        let right = model("reg:squarederror", "[0E0]", 0, &[stump("0.5", 0)], &[0]);
        assert_eq!(left.margins(&[f32::NAN]), vec![-1.0]);
        assert_eq!(right.margins(&[f32::NAN]), vec![1.0]);
    }

    #[test]
    fn listed_categories_go_right() {
        let tree = r#"{"left_children": [1, -1, -1], "right_children": [2, -1, -1],
            "split_indices": [0, 0, 0], "split_conditions": [0.0, -1.0, 1.0],
            "default_left": [1, 0, 0], "split_type": [1, 0, 0],
            "categories": [1, 3], "categories_nodes": [0], "categories_segments": [0],
            "categories_sizes": [2]}"#;
        let f = model("reg:squarederror", "[0E0]", 0, &[tree.to_string()], &[0]);
        for (x, want) in [
            (1.0, 1.0),
            (3.0, 1.0),
            (2.0, -1.0),
            (f32::NAN, -1.0),
            (-1.0, -1.0),
            (40.0, -1.0),
        ] {
            assert_eq!(f.margins(&[x]), vec![want], "x = {x}");
        }
    }

    #[test]
    fn tree_info_maps_trees_to_classes() {
        let f = model(
            "multi:softprob",
            "[0E0,0E0]",
            2,
            &[leaf(0.25), leaf(-0.5), leaf(1.0)],
            &[1, 0, 1],
        );
        assert_eq!(f.margins(&[0.0]), vec![-0.5, 1.25]);
    }
}
