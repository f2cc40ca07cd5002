//! The book's config tables are the code's: every key a model page (`docs/src/models/*.md`,
//! under `## Config keys`) or the configs guide (`docs/src/guide/configs.md`) lists exists, with
//! the default the code resolves, and every key the code resolves is listed.
//!
//! A row is `| \`section.key\` | \`default as TOML\` | meaning |`; a default of `—` says the key
//! has none (unset, derived or required): it must then be absent from the resolved config and
//! still be a key the parser knows (setting it to a value of the wrong type is a type error, not
//! an unknown key).

use mmlatent_train::config::Experiment;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn docs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src")
}

/// key → default (`None` for `—`) of the table rows of `text` whose first cell is a key in
/// backticks; with `section`, only the rows under that `## ` heading.
fn rows(text: &str, section: Option<&str>) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let mut inside = section.is_none();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            inside = section.is_none_or(|s| heading.trim() == s);
            continue;
        }
        if !inside || !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let key = cells[0].trim_matches('`').to_string();
        let default = cells.get(1).map(|c| c.trim()).filter(|c| *c != "—").map(|c| c.trim_matches('`').to_string());
        out.insert(key, default);
    }
    out
}

/// Dotted keys → values of a TOML table, `prefix` before each.
fn leaves(table: &toml::Table, prefix: &str, out: &mut BTreeMap<String, toml::Value>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) if !inner.is_empty() && !path.ends_with("likelihoods") => {
                leaves(inner, &format!("{path}."), out)
            }
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

/// Parses a documented default (a TOML literal) as a value.
fn literal(text: &str) -> toml::Value {
    let doc: toml::Table =
        toml::from_str(&format!("v = {text}")).unwrap_or_else(|e| panic!("`{text}` is not TOML: {e}"));
    doc["v"].clone()
}

/// Numbers compare as numbers (`1` and `1.0` are the same default).
fn same(a: &toml::Value, b: &toml::Value) -> bool {
    match (a, b) {
        (toml::Value::Integer(x), toml::Value::Float(y)) | (toml::Value::Float(y), toml::Value::Integer(x)) => {
            (*x as f64 - y).abs() < 1e-12
        }
        (toml::Value::Float(x), toml::Value::Float(y)) => (x - y).abs() <= 1e-12 * x.abs().max(1.0),
        (toml::Value::Table(x), toml::Value::Table(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        (toml::Value::Array(x), toml::Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| same(v, w))
        }
        _ => a == b,
    }
}

/// An experiment of `kind` on the bundled dataset, with `extra` lines in its `[model]` table.
fn experiment(kind: &str, extra: &str) -> anyhow::Result<Experiment> {
    Experiment::parse(&format!("[data]\npath = \"default\"\n[model]\nkind = \"{kind}\"\n{extra}"), &[])
}

/// True when the family of `kind` knows `key` (a `model.` key): set to a string, it is accepted or
/// refused for its value, not as an unknown key.
fn known_model_key(kind: &str, key: &str) -> bool {
    let family = mmlatent_runner::families::for_kind(kind).unwrap();
    let path = key.strip_prefix("model.").unwrap();
    let err = experiment(kind, "")
        .and_then(|mut e| {
            mmlatent_train::config::apply_override(&mut e.model, &format!("{path}=\"?\""))?;
            family.resolved_model(&e, None)
        })
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap_or_default();
    !err.contains("unknown")
}

/// Checks one page's table against the resolved `[model]` tables of `kinds`; the mistakes.
fn check_model_page(page: &str, kinds: &[&str]) -> Vec<String> {
    let text = std::fs::read_to_string(docs().join("models").join(page)).unwrap();
    let documented = rows(&text, Some("Config keys"));
    let mut mistakes = vec![];
    if documented.is_empty() {
        return vec![format!("{page}: no `## Config keys` table")];
    }
    let mut resolved_any = BTreeMap::new();
    for kind in kinds {
        let family = mmlatent_runner::families::for_kind(kind).unwrap();
        let model = family.resolved_model(&experiment(kind, "").unwrap(), None).unwrap();
        let mut resolved = BTreeMap::new();
        leaves(&model, "model.", &mut resolved);
        resolved.remove("model.kind");
        for (key, value) in &resolved {
            match documented.get(key) {
                None => mistakes.push(format!("{page}: `{key}` (kind {kind}, default {value}) is not listed")),
                Some(None) => {
                    mistakes.push(format!("{page}: `{key}` has default {value} for kind {kind}, listed as —"))
                }
                Some(Some(text)) if !same(&literal(text), value) => {
                    mistakes.push(format!("{page}: `{key}` is listed with default {text}, the code's is {value}"))
                }
                Some(Some(_)) => {}
            }
        }
        resolved_any.extend(resolved);
    }
    for (key, default) in &documented {
        if resolved_any.contains_key(key) {
            continue;
        }
        if default.is_some() {
            mistakes.push(format!("{page}: `{key}` is listed with a default, but no kind of {kinds:?} has it"));
        } else if !kinds.iter().any(|k| known_model_key(k, key)) {
            mistakes.push(format!("{page}: `{key}` is not a key of {kinds:?}"));
        }
    }
    mistakes
}

#[test]
fn model_pages_list_every_key_with_the_codes_default() {
    let pages: [(&str, &[&str]); 9] = [
        ("mld.md", &["mld"]),
        ("ebm.md", &["ebm", "ebm-generalised"]),
        ("mvae.md", &["mvae"]),
        ("mmvae.md", &["mmvae"]),
        ("mopoe.md", &["mopoe"]),
        ("mvtcae.md", &["mvtcae"]),
        ("mmjsd.md", &["mmjsd"]),
        ("nexus.md", &["nexus"]),
        ("mmvaeplus.md", &["mmvaeplus"]),
    ];
    let covered: Vec<&str> = pages.iter().flat_map(|(_, k)| k.iter().copied()).collect();
    for family in mmlatent_runner::families::all() {
        for kind in family.kinds() {
            assert!(covered.contains(kind), "kind {kind} has no page in this test");
        }
    }
    let mistakes: Vec<String> = pages.iter().flat_map(|(page, kinds)| check_model_page(page, kinds)).collect();
    assert!(mistakes.is_empty(), "the book's config tables disagree with the code:\n{}", mistakes.join("\n"));
}

#[test]
fn the_configs_guide_lists_every_train_data_and_top_level_key() {
    let text = std::fs::read_to_string(docs().join("guide/configs.md")).unwrap();
    let documented = rows(&text, None);
    let resolved: toml::Table = toml::from_str(&experiment("mld", "").unwrap().to_toml().unwrap()).unwrap();
    let mut keys = BTreeMap::new();
    leaves(&resolved, "", &mut keys);
    keys.retain(|k, _| !k.starts_with("model."));
    let mut mistakes = vec![];
    for (key, value) in &keys {
        match documented.get(key) {
            None => mistakes.push(format!("`{key}` (default {value}) is not listed")),
            Some(Some(text)) if !same(&literal(text), value) => {
                mistakes.push(format!("`{key}` is listed with default {text}, the code's is {value}"))
            }
            _ => {}
        }
    }
    for (key, default) in documented.iter().filter(|(k, _)| !k.starts_with("MMLATENT") && !k.contains(',')) {
        if keys.contains_key(key) {
            continue;
        }
        if default.is_some() {
            mistakes.push(format!("`{key}` is listed with a default, but the code resolves none"));
            continue;
        }
        let err = Experiment::parse("[data]\npath = \"default\"\n[model]\nkind = \"mld\"\n", &[format!("{key}=\"?\"")])
            .err()
            .map(|e| format!("{e:#}"))
            .unwrap_or_default();
        if err.contains("unknown") {
            mistakes.push(format!("`{key}` is not a key the parser knows ({err})"));
        }
    }
    assert!(mistakes.is_empty(), "docs/src/guide/configs.md disagrees with the code:\n{}", mistakes.join("\n"));
}
