//! Relabeling: `relabel_configs` (targets) and `metric_relabel_configs`
//! (scraped series), with Prometheus' field names, defaults and actions.
//!
//! Layer 3. Owns [`RelabelConfig`] (deserialized from YAML and validated)
//! and [`relabel`]; it does not know where the labels come from.
//!
//! Semantics, per Prometheus' documentation:
//! - the source value is the values of `source_labels` joined by
//!   `separator` (`;`), a missing label counting as empty;
//! - `regex` (default `(.*)`) is anchored at both ends;
//! - `replacement` (default `$1`) and `target_label` expand `$1`, `${1}`,
//!   `$name`, `${name}` and `$$` as Go's `Regexp.Expand` does (a reference
//!   takes the longest run of `[A-Za-z0-9_]`, so write `${1}_x`, not `$1_x`);
//! - `hashmod` takes the MD5 of the source value, reads its last 8 bytes as a
//!   big-endian `u64` (what Prometheus' `sum64` keeps) and takes it modulo
//!   `modulus`;
//! - a label set that ends up empty is dropped.

use model::{Label, Labels};
use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// What a relabel step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Sets `target_label` to the expanded `replacement` when `regex` matches.
    #[default]
    Replace,
    /// Drops the set unless `regex` matches the source value.
    Keep,
    /// Drops the set if `regex` matches the source value.
    Drop,
    /// Drops the set unless the source value equals `target_label`'s value.
    KeepEqual,
    /// Drops the set if the source value equals `target_label`'s value.
    DropEqual,
    /// Sets `target_label` to the MD5 of the source value modulo `modulus`.
    HashMod,
    /// Copies labels whose name matches `regex` to the expanded `replacement`.
    LabelMap,
    /// Removes labels whose name matches `regex`.
    LabelDrop,
    /// Removes labels whose name does not match `regex`.
    LabelKeep,
    /// Sets `target_label` to the lower-cased source value.
    Lowercase,
    /// Sets `target_label` to the upper-cased source value.
    Uppercase,
}

/// An anchored regular expression that remembers how it was written.
#[derive(Clone)]
pub struct RelabelRegex {
    source: String,
    // Invariant: `compiled` is `^(?:source)$`.
    compiled: Regex,
}

impl RelabelRegex {
    /// Compiles `source`, anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(RelabelRegex {
            source: source.to_string(),
            compiled: Regex::new(&format!("^(?:{source})$"))?,
        })
    }

    /// The expression as written in the configuration.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The anchored, compiled expression.
    pub fn regex(&self) -> &Regex {
        &self.compiled
    }
}

impl Default for RelabelRegex {
    fn default() -> Self {
        RelabelRegex {
            source: "(.*)".to_string(),
            compiled: Regex::new("^(?:(.*))$").unwrap_or_else(|_| unreachable!("constant regex")),
        }
    }
}

impl PartialEq for RelabelRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl fmt::Debug for RelabelRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.source, f)
    }
}

impl<'de> Deserialize<'de> for RelabelRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        RelabelRegex::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

impl Serialize for RelabelRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

fn default_separator() -> String {
    ";".to_string()
}

fn default_replacement() -> String {
    "$1".to_string()
}

/// One relabel step, as written under `relabel_configs:`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    /// Labels whose values are joined to form the source value.
    #[serde(default)]
    pub source_labels: Vec<String>,
    /// Joins the source values; default `;`.
    #[serde(default = "default_separator")]
    pub separator: String,
    /// The label written by `replace`, `hashmod`, `lowercase`, `uppercase`,
    /// or compared by `keepequal`/`dropequal`.
    #[serde(default)]
    pub target_label: String,
    /// Anchored regular expression; default `(.*)`.
    #[serde(default)]
    pub regex: RelabelRegex,
    /// The modulus of `hashmod`.
    #[serde(default)]
    pub modulus: u64,
    /// The replacement template; default `$1`.
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// The action; default `replace`.
    #[serde(default)]
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: Vec::new(),
            separator: default_separator(),
            target_label: String::new(),
            regex: RelabelRegex::default(),
            modulus: 0,
            replacement: default_replacement(),
            action: Action::Replace,
        }
    }
}

/// A relabel step that cannot work as configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relabel action {action:?}: {reason}")]
pub struct RelabelConfigError {
    /// The action concerned.
    pub action: Action,
    /// What is wrong.
    pub reason: String,
}

impl RelabelConfig {
    /// Checks the combination of fields the action needs, as Prometheus does
    /// when it loads a configuration.
    pub fn validate(&self) -> Result<(), RelabelConfigError> {
        let err = |reason: String| {
            Err(RelabelConfigError {
                action: self.action,
                reason,
            })
        };
        match self.action {
            Action::Replace | Action::Lowercase | Action::Uppercase | Action::HashMod => {
                if self.target_label.is_empty() {
                    return err("target_label is required".into());
                }
                let templated = self.action == Action::Replace && self.target_label.contains('$');
                if !templated && !crate::exposition::is_valid_label_name(&self.target_label) {
                    return err(format!("{:?} is an invalid target_label", self.target_label));
                }
                if self.action == Action::HashMod && self.modulus == 0 {
                    return err("modulus must be greater than 0".into());
                }
            }
            Action::KeepEqual | Action::DropEqual => {
                if self.target_label.is_empty() {
                    return err("target_label is required".into());
                }
                if self.regex != RelabelRegex::default()
                    || self.modulus != 0
                    || self.separator != default_separator()
                    || self.replacement != default_replacement()
                {
                    return err("only source_labels and target_label may be set".into());
                }
            }
            Action::LabelMap => {
                if !self.replacement.contains('$') && !crate::exposition::is_valid_label_name(&self.replacement) {
                    return err(format!("{:?} is an invalid replacement", self.replacement));
                }
            }
            Action::LabelDrop | Action::LabelKeep => {
                if !self.source_labels.is_empty()
                    || !self.target_label.is_empty()
                    || self.modulus != 0
                    || self.separator != default_separator()
                    || self.replacement != default_replacement()
                {
                    return err("only regex may be set".into());
                }
            }
            Action::Keep | Action::Drop => {}
        }
        Ok(())
    }
}

/// Applies `configs` in order to `labels`. Returns `None` when a step drops
/// the set or when no label is left.
pub fn relabel(labels: &Labels, configs: &[RelabelConfig]) -> Option<Labels> {
    let mut work: Vec<Label> = labels.as_slice().to_vec();
    for cfg in configs {
        if !apply_one(&mut work, cfg) {
            return None;
        }
    }
    let out = Labels::new(work);
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

fn get<'a>(work: &'a [Label], name: &str) -> &'a str {
    work.iter().find(|l| l.name == name).map_or("", |l| l.value.as_str())
}

fn set(work: &mut Vec<Label>, name: &str, value: String) {
    if value.is_empty() {
        work.retain(|l| l.name != name);
        return;
    }
    match work.iter_mut().find(|l| l.name == name) {
        Some(l) => l.value = value,
        None => work.push(Label {
            name: name.to_string(),
            value,
        }),
    }
}

/// Applies one step; false means "drop the set".
fn apply_one(work: &mut Vec<Label>, cfg: &RelabelConfig) -> bool {
    let source = || {
        let mut s = String::new();
        for (i, name) in cfg.source_labels.iter().enumerate() {
            if i > 0 {
                s.push_str(&cfg.separator);
            }
            s.push_str(get(work, name));
        }
        s
    };
    let re = cfg.regex.regex();
    match cfg.action {
        Action::Keep => re.is_match(&source()),
        Action::Drop => !re.is_match(&source()),
        Action::KeepEqual => source() == get(work, &cfg.target_label),
        Action::DropEqual => source() != get(work, &cfg.target_label),
        Action::Replace => {
            let value = source();
            let Some(caps) = re.captures(&value) else {
                return true;
            };
            let mut target = String::new();
            caps.expand(&cfg.target_label, &mut target);
            if !crate::exposition::is_valid_label_name(&target) {
                // Prometheus deletes the label named literally by target_label.
                work.retain(|l| l.name != cfg.target_label);
                return true;
            }
            let mut replaced = String::new();
            caps.expand(&cfg.replacement, &mut replaced);
            set(work, &target, replaced);
            true
        }
        Action::Lowercase => {
            let v = source().to_lowercase();
            set(work, &cfg.target_label, v);
            true
        }
        Action::Uppercase => {
            let v = source().to_uppercase();
            set(work, &cfg.target_label, v);
            true
        }
        Action::HashMod => {
            let digest = md5::compute(source().as_bytes());
            let mut last8 = [0u8; 8];
            last8.copy_from_slice(&digest.0[8..16]);
            let m = u64::from_be_bytes(last8) % cfg.modulus.max(1);
            set(work, &cfg.target_label, m.to_string());
            true
        }
        Action::LabelMap => {
            let mut added = Vec::new();
            for l in work.iter() {
                if let Some(caps) = re.captures(&l.name) {
                    let mut name = String::new();
                    caps.expand(&cfg.replacement, &mut name);
                    added.push((name, l.value.clone()));
                }
            }
            for (name, value) in added {
                set(work, &name, value);
            }
            true
        }
        Action::LabelDrop => {
            work.retain(|l| !re.is_match(&l.name));
            true
        }
        Action::LabelKeep => {
            work.retain(|l| re.is_match(&l.name));
            true
        }
    }
}

#[cfg(test)]
mod tests;
