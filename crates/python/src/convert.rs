//! Python data into the tool's own formats: a config given as a dict (sent over as JSON) into
//! the TOML text of an experiment, one `--set` value given as a Python value into the text of a
//! `section.key=value` override, and a panic's payload into a message.

use anyhow::{anyhow, bail, Context, Result};

/// The TOML text of an experiment given as a JSON object (a Python dict, `json.dumps`ed).
pub fn config_text_from_json(json: &str) -> Result<String> {
    let value: serde_json::Value = serde_json::from_str(json).context("the config is not valid JSON")?;
    if !value.is_object() {
        bail!("the config must be a dict of sections (e.g. {{\"model\": {{\"kind\": \"mld\"}}}}), got {value}");
    }
    let table = toml_value(&value, "the config")?;
    toml::to_string(&table).map_err(|e| anyhow!("the config cannot be written as TOML: {e}"))
}

/// The override `key=value` (as `--set` takes it) for a value given as JSON.
pub fn override_from_json(key: &str, json: &str) -> Result<String> {
    let value: serde_json::Value =
        serde_json::from_str(json).with_context(|| format!("override {key}: the value is not valid JSON"))?;
    let value = toml_value(&value, &format!("override {key}"))?;
    Ok(format!("{key}={value}"))
}

/// `value` as TOML; `what` names it in errors (TOML has no null).
fn toml_value(value: &serde_json::Value, what: &str) -> Result<toml::Value> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => bail!("{what}: None has no TOML form; leave the key out instead"),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64().with_context(|| format!("{what}: {n} is not a number TOML holds"))?),
        },
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(items) => toml::Value::Array(items.iter().map(|v| toml_value(v, what)).collect::<Result<_>>()?),
        J::Object(map) => toml::Value::Table(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), toml_value(v, &format!("{what}: key `{k}`"))?)))
                .collect::<Result<_>>()?,
        ),
    })
}

/// The message of a panic's payload (a `&str` or `String`, as `panic!` makes them).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mmlatent_train::config::Experiment;

    #[test]
    fn a_config_dict_reads_as_the_same_experiment_as_its_toml() {
        let json = r#"{"name": "t", "seed": 3, "data": {"path": "default", "max_train": 64},
            "train": {"steps": 5, "lr": 0.002, "threads": 1},
            "model": {"kind": "mld", "autoencoder": {"latent_dim": 8, "steps": 2}, "score": {"mults": [1, 1]}}}"#;
        let from_dict = Experiment::parse(&config_text_from_json(json).unwrap(), &[]).unwrap();
        let toml = "name = \"t\"\nseed = 3\n[data]\npath = \"default\"\nmax_train = 64\n[train]\nsteps = 5\n\
                    lr = 0.002\nthreads = 1\n[model]\nkind = \"mld\"\n[model.autoencoder]\nlatent_dim = 8\nsteps = 2\n\
                    [model.score]\nmults = [1, 1]\n";
        assert_eq!(from_dict.to_toml().unwrap(), Experiment::parse(toml, &[]).unwrap().to_toml().unwrap());
    }

    #[test]
    fn bad_configs_say_what_is_wrong() {
        assert!(config_text_from_json("[1]").unwrap_err().to_string().contains("must be a dict"));
        let null = config_text_from_json(r#"{"train": {"steps": null}}"#).unwrap_err().to_string();
        assert!(null.contains("key `steps`") && null.contains("None has no TOML form"), "{null}");
    }

    #[test]
    fn override_values_keep_their_type() {
        assert_eq!(override_from_json("train.steps", "20").unwrap(), "train.steps=20");
        assert_eq!(override_from_json("train.lr", "0.0001").unwrap(), "train.lr=0.0001");
        assert_eq!(override_from_json("data.path", "\"default\"").unwrap(), "data.path=\"default\"");
        assert_eq!(override_from_json("model.score.mults", "[1, 2]").unwrap(), "model.score.mults=[1, 2]");
        // Through the parser `--set` uses: the string stays a string, the list a list.
        let mut table = toml::Table::new();
        for o in ["a.s=\"1e-3\"", "a.l=[1, 2]", "a.b=true"] {
            mmlatent_train::config::apply_override(&mut table, o).unwrap();
        }
        assert_eq!(table["a"]["s"].as_str(), Some("1e-3"));
        assert_eq!(table["a"]["l"].as_array().map(Vec::len), Some(2));
        assert_eq!(table["a"]["b"].as_bool(), Some(true));
    }

    #[test]
    fn panic_messages_are_read_from_both_payload_kinds() {
        let caught = std::panic::catch_unwind(|| panic!("at {}", 3)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "at 3");
        let caught = std::panic::catch_unwind(|| std::panic::panic_any(7_u8)).unwrap_err();
        assert_eq!(panic_message(caught.as_ref()), "(no message)");
    }
}
