//! LightGBM's text model format (`Booster.save_model("m.txt")`, LightGBM 2.x to 4.x) into a
//! [`Forest`]. The rules it encodes, each checked against LightGBM's own `predict` by the fixtures:
//!
//! - children `>= 0` are split nodes, `< 0` are leaves `~child`;
//! - `decision_type` bits: 1 categorical, 2 default left, bits 3–4 the missing type (0 None,
//!   1 Zero, 2 NaN);
//! - a numeric split goes left iff `f64(x) <= threshold`; with missing type None a NaN is read as
//!   0, with Zero a NaN or a value within ±1e-35 goes the default way, with NaN a NaN does;
//! - a categorical split goes left iff the truncated value is a listed category in the
//!   `cat_threshold` bitset words between `cat_boundaries[k]` and `cat_boundaries[k + 1]`
//!   (`k` = the node's threshold); NaN and negative values go right;
//! - tree `i` adds to class `i % num_tree_per_iteration`; the init score is already in the
//!   first trees' leaves.

use std::collections::HashMap;

use super::error::ForestFileError;
use super::forest::{Forest, Link, Node, Split, Tree, ZERO_BAND, f32_at_or_below};

/// Reads a LightGBM text model.
pub fn parse(bytes: &[u8]) -> Result<Forest, ForestFileError> {
    let text = std::str::from_utf8(bytes).map_err(|_| {
        ForestFileError::NotTheFormat("not a LightGBM text model: not UTF-8".into())
    })?;
    let mut blocks = text.split("\nTree=");
    let header = blocks.next().unwrap_or_default();
    if !header.trim_start().starts_with("tree") {
        return Err(ForestFileError::NotTheFormat(
            "not a LightGBM text model (it starts with `tree`; save it with Booster.save_model(\"model.txt\"))"
                .into(),
        ));
    }
    if !text.contains("\nend of trees") {
        return Err(
            "the file is cut short: no `end of trees` line after the last Tree= block".into(),
        );
    }
    let head = key_values(header);
    let count = |key: &str| -> Result<usize, ForestFileError> {
        head.get(key)
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| format!("header `{key}` is missing or not a count").into())
    };
    let features = count("max_feature_idx")? + 1;
    let num_class = count("num_class")?;
    let per_iteration = count("num_tree_per_iteration")?;
    if per_iteration == 0 || (num_class > 1 && per_iteration != num_class) {
        return Err(format!(
            "num_tree_per_iteration {per_iteration} does not fit num_class {num_class}"
        )
        .into());
    }
    if header.lines().any(|l| l.trim() == "average_output") {
        return Err(ForestFileError::Unsupported(
            "random-forest models (`average_output`) are not supported; scorer reads boosted models"
                .into(),
        ));
    }
    let objective = head
        .get("objective")
        .map(|s| s.trim().to_string())
        .ok_or("header `objective` is missing (a model trained with a custom objective has none; scorer needs to know the output link)")?;
    let link = objective_link(&objective, per_iteration)?;
    let names: Vec<String> = head
        .get("feature_names")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    let default_names = names
        .iter()
        .enumerate()
        .all(|(i, n)| *n == format!("Column_{i}"));

    let mut trees = Vec::new();
    for (i, block) in blocks.enumerate() {
        // the last block carries the trailer (`end of trees`, importances, parameters)
        let block = block.split("\nend of trees").next().unwrap_or(block);
        let mut t = tree(block, features).map_err(|e| e.in_tree(format!("Tree={i}")))?;
        t.group = i % per_iteration;
        trees.push(t);
    }
    if trees.is_empty() {
        return Err("the model has no trees".into());
    }
    if let Some(sizes) = head.get("tree_sizes") {
        let listed = sizes.split_whitespace().count();
        if listed != trees.len() {
            return Err(format!(
                "the header lists {listed} trees (tree_sizes) but the file holds {}",
                trees.len()
            )
            .into());
        }
    }
    let forest = Forest {
        features,
        groups: per_iteration,
        trees,
        base_margin: vec![0.0; per_iteration],
        link,
        objective,
        feature_names: (!names.is_empty() && !default_names).then_some(names),
    };
    forest.check()?;
    Ok(forest)
}

/// The output link of a LightGBM objective line (`binary sigmoid:1`, `multiclass num_class:3`…).
fn objective_link(objective: &str, groups: usize) -> Result<Link, ForestFileError> {
    let mut parts = objective.split_whitespace();
    let name = parts.next().unwrap_or_default();
    let params: HashMap<&str, &str> = parts.filter_map(|p| p.split_once(':')).collect();
    if objective.split_whitespace().any(|p| p == "sqrt") {
        return Err(ForestFileError::Unsupported(format!(
            "objective `{objective}`: models trained with reg_sqrt are not supported"
        )));
    }
    let single = || -> Result<(), ForestFileError> {
        if groups > 1 {
            Err(ForestFileError::Unsupported(format!(
                "objective `{name}` with {groups} trees per iteration is not supported"
            )))
        } else {
            Ok(())
        }
    };
    Ok(match name {
        "binary" => {
            single()?;
            let scale = params
                .get("sigmoid")
                .map(|s| s.parse::<f64>())
                .transpose()
                .map_err(|_| format!("objective `{objective}`: bad sigmoid"))?
                .unwrap_or(1.0);
            Link::Sigmoid { scale }
        }
        "cross_entropy" | "xentropy" => {
            single()?;
            Link::Sigmoid { scale: 1.0 }
        }
        "multiclass" | "softmax" => Link::Softmax,
        "regression"
        | "regression_l2"
        | "l2"
        | "mean_squared_error"
        | "mse"
        | "regression_l1"
        | "l1"
        | "mean_absolute_error"
        | "mae"
        | "huber"
        | "fair"
        | "quantile"
        | "mape" => {
            single()?;
            Link::Identity
        }
        "poisson" | "gamma" | "tweedie" => {
            single()?;
            Link::Exp
        }
        other => {
            return Err(ForestFileError::Unsupported(format!(
                "objective `{other}` is not supported; scorer reads binary, cross_entropy, multiclass, the regression objectives (l2, l1, huber, fair, quantile, mape), poisson, gamma and tweedie"
            )));
        }
    })
}

/// `key=value` lines.
fn key_values(block: &str) -> HashMap<&str, &str> {
    block
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v))
        .collect()
}

fn list<T: std::str::FromStr>(
    kv: &HashMap<&str, &str>,
    key: &str,
    len: usize,
) -> Result<Vec<T>, ForestFileError> {
    let raw = kv.get(key).ok_or_else(|| format!("`{key}` is missing"))?;
    let values = raw
        .split_whitespace()
        .map(|v| v.parse::<T>().map_err(|_| format!("`{key}` holds `{v}`")))
        .collect::<Result<Vec<T>, String>>()?;
    if values.len() != len {
        return Err(format!("`{key}` has {} values, expected {len}", values.len()).into());
    }
    Ok(values)
}

/// The f32 threshold of LightGBM's `x <= t` for a feature it reads as LightGBM does: a value in
/// the zero band (`|x| <= kZeroThreshold`, which LightGBM drops from a row as it reads it, so the
/// tree sees 0) goes where 0 goes. Outside the band nothing moves: a band value sits on the
/// same side as 0 of every threshold but one in `[-band, band)`, which moves out of the band
/// towards 0's side. Seen on thresholds at `-1e-35`, which LightGBM's bins put beside zero.
fn threshold_reading_the_band_as_zero(t: f64) -> f32 {
    let below = f32_at_or_below(t);
    if 0.0 <= t {
        below.max(ZERO_BAND)
    } else {
        below.min((-ZERO_BAND).next_down())
    }
}

/// One `Tree=` block.
fn tree(block: &str, features: usize) -> Result<Tree, ForestFileError> {
    let kv = key_values(block);
    let leaves: usize = kv
        .get("num_leaves")
        .and_then(|v| v.trim().parse().ok())
        .filter(|&n| n >= 1)
        .ok_or("`num_leaves` is missing")?;
    if kv.get("is_linear").map(|v| v.trim()) == Some("1") {
        return Err(ForestFileError::Unsupported(
            "linear trees (linear_tree = true) are not supported".into(),
        ));
    }
    let leaf_value: Vec<f64> = list(&kv, "leaf_value", leaves)?;
    // Data counts, for TreeSHAP: split nodes first, then leaves, as the nodes are laid out.
    let counts = |key: &str, n: usize| -> Result<Vec<f64>, ForestFileError> {
        match kv.contains_key(key) {
            true => list(&kv, key, n),
            false => Ok(Vec::new()),
        }
    };
    let leaf_count = counts("leaf_count", leaves)?;
    if leaves == 1 {
        return Ok(Tree {
            nodes: vec![Node::Leaf(leaf_value[0])],
            group: 0,
            covers: leaf_count,
        });
    }
    let splits = leaves - 1;
    let feature: Vec<u32> = list(&kv, "split_feature", splits)?;
    let threshold: Vec<f64> = list(&kv, "threshold", splits)?;
    let decision: Vec<u8> = list(&kv, "decision_type", splits)?;
    let left: Vec<i64> = list(&kv, "left_child", splits)?;
    let right: Vec<i64> = list(&kv, "right_child", splits)?;
    let num_cat: usize = kv
        .get("num_cat")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let (boundaries, words): (Vec<usize>, Vec<u32>) = if num_cat > 0 {
        let b: Vec<usize> = list(&kv, "cat_boundaries", num_cat + 1)?;
        let total = b.last().copied().unwrap_or(0);
        (b, list(&kv, "cat_threshold", total)?)
    } else {
        (Vec::new(), Vec::new())
    };

    // split nodes keep their indices; leaf k becomes node `splits + k`
    let child = |c: i64| -> Result<usize, ForestFileError> {
        if c >= 0 {
            usize::try_from(c)
                .ok()
                .filter(|&c| c < splits)
                .ok_or_else(|| format!("child {c} is out of range").into())
        } else {
            usize::try_from(!c)
                .ok()
                .filter(|&k| k < leaves)
                .map(|k| splits + k)
                .ok_or_else(|| format!("leaf child {c} is out of range").into())
        }
    };
    let mut nodes = Vec::with_capacity(splits + leaves);
    for i in 0..splits {
        let d = decision[i];
        let default_left = d & 2 != 0;
        let missing = (d >> 2) & 3;
        if feature[i] as usize >= features {
            return Err(format!("node {i} splits on feature {}", feature[i]).into());
        }
        let split = if d & 1 != 0 {
            let k = threshold[i];
            let k = (k >= 0.0 && k.fract() == 0.0 && (k as usize) < num_cat)
                .then_some(k as usize)
                .ok_or_else(|| {
                    format!("node {i}: categorical threshold {k} is not a bitset index")
                })?;
            let set = boundaries
                .get(k..=k + 1)
                .and_then(|b| words.get(b[0]..b[1]))
                .ok_or_else(|| format!("node {i}: cat_boundaries out of range"))?
                .to_vec();
            Split::Categorical {
                feature: feature[i],
                set,
                listed_left: true,
                nan_left: false,
                other_left: false,
                truncate_first: true,
            }
        } else {
            let t = threshold[i];
            match missing {
                // None: NaN is read as 0
                0 => Split::Numeric {
                    feature: feature[i],
                    threshold: threshold_reading_the_band_as_zero(t),
                    nan_left: 0.0 <= t,
                    zero_is_missing: false,
                },
                1 => Split::Numeric {
                    feature: feature[i],
                    threshold: f32_at_or_below(t),
                    nan_left: default_left,
                    zero_is_missing: true,
                },
                2 => Split::Numeric {
                    feature: feature[i],
                    threshold: threshold_reading_the_band_as_zero(t),
                    nan_left: default_left,
                    zero_is_missing: false,
                },
                m => return Err(format!("node {i}: unknown missing type {m}").into()),
            }
        };
        nodes.push(Node::Split {
            split,
            left: child(left[i])?,
            right: child(right[i])?,
        });
    }
    nodes.extend(leaf_value.into_iter().map(Node::Leaf));
    let internal_count = counts("internal_count", splits)?;
    let covers = if internal_count.is_empty() || leaf_count.is_empty() {
        Vec::new()
    } else {
        [internal_count, leaf_count].concat()
    };
    Ok(Tree {
        nodes,
        group: 0,
        covers,
    })
}

#[cfg(test)]
mod tests {
    //! One test per LightGBM trap the issue names, on hand-made models small enough to read.

    use super::*;

    fn model(objective: &str, per_iteration: usize, trees: &[&str]) -> Forest {
        let mut text = format!(
            "tree\nversion=v4\nnum_class={per_iteration}\nnum_tree_per_iteration={per_iteration}\nlabel_index=0\nmax_feature_idx=0\nobjective={objective}\nfeature_names=x\n"
        );
        for (i, t) in trees.iter().enumerate() {
            text.push_str(&format!("\nTree={i}\n{t}\n"));
        }
        text.push_str("\nend of trees\n");
        parse(text.as_bytes()).unwrap()
    }

    /// A stump on x <= 0.5 (left -1, right +1) with this decision_type.
    fn stump(decision_type: u8) -> String {
        format!(
            "num_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.5\ndecision_type={decision_type}\nleft_child=-1\nright_child=-2\nleaf_value=-1 1\nis_linear=0\nshrinkage=1"
        )
    }

    #[test]
    fn decision_type_bits_set_the_missing_rule() {
        // missing type None (bits 3-4 = 0): NaN is read as 0, so it goes left (0 <= 0.5)
        let none = model("regression", 1, &[&stump(0)]);
        assert_eq!(none.margins(&[f32::NAN]), vec![-1.0]);
        assert_eq!(none.margins(&[0.5]), vec![-1.0], "x <= threshold goes left");
        assert_eq!(none.margins(&[0.5f32.next_up()]), vec![1.0]);
        // missing type NaN (8), default right: NaN goes right; default left (8 | 2): left
        assert_eq!(
            model("regression", 1, &[&stump(8)]).margins(&[f32::NAN]),
            vec![1.0]
        );
        assert_eq!(
            model("regression", 1, &[&stump(10)]).margins(&[f32::NAN]),
            vec![-1.0]
        );
        // missing type Zero (4), default right: NaN and ±1e-36 go right, though 0 <= 0.5
        let zero = model("regression", 1, &[&stump(4)]);
        assert_eq!(zero.margins(&[f32::NAN]), vec![1.0]);
        assert_eq!(zero.margins(&[0.0]), vec![1.0]);
        assert_eq!(zero.margins(&[-1e-36]), vec![1.0]);
        assert_eq!(zero.margins(&[0.25]), vec![-1.0]);
    }

    #[test]
    fn thresholds_compare_as_f64() {
        // 0.1 as f64 is above 0.1f32's neighbour below and below 0.1f32 itself
        let tree = "num_leaves=2\nnum_cat=0\nsplit_feature=0\nthreshold=0.10000000000000001\ndecision_type=2\nleft_child=-1\nright_child=-2\nleaf_value=-1 1";
        let f = model("regression", 1, &[tree]);
        assert!(f64::from(0.1f32) > 0.1);
        assert_eq!(f.margins(&[0.1f32]), vec![1.0]);
        assert_eq!(f.margins(&[0.1f32.next_down()]), vec![-1.0]);
    }

    #[test]
    fn categorical_bitsets_send_listed_categories_left() {
        // categories 1 and 33 listed: two bitset words, 0b10 and 0b10
        let tree = "num_leaves=2\nnum_cat=1\nsplit_feature=0\nthreshold=0\ndecision_type=1\nleft_child=-1\nright_child=-2\nleaf_value=-1 1\ncat_boundaries=0 2\ncat_threshold=2 2";
        let f = model("regression", 1, &[tree]);
        for (x, want) in [
            (1.0, -1.0),
            (33.0, -1.0),
            (1.9, -1.0),
            (2.0, 1.0),
            (64.0, 1.0),
            (f32::NAN, 1.0),
            (-1.0, 1.0),
        ] {
            assert_eq!(f.margins(&[x]), vec![want], "x = {x}");
        }
    }

    #[test]
    fn trees_cycle_through_the_classes() {
        let leaf = |v: f64| format!("num_leaves=1\nleaf_value={v}");
        let f = model(
            "multiclass num_class:2",
            2,
            &[&leaf(0.5), &leaf(-1.0), &leaf(0.25)],
        );
        assert_eq!(f.margins(&[0.0]), vec![0.75, -1.0]);
        assert_eq!(f.link, Link::Softmax);
    }
}
