//! Flags shared by several entity commands: parameters and annotations (`-p KEY VALUE`,
//! `-P FILE`, `-a KEY VALUE`, `-A FILE`) and list paging.

use std::path::PathBuf;

use serde_json::{json, Map, Value};

use super::http::{usage, CliError};

/// `-p/--param KEY VALUE` (repeatable) and `-P/--param-file FILE`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Params {
    /// Parameter KEY VALUE (VALUE is JSON if it parses as JSON, else a string); repeatable.
    #[arg(short = 'p', long = "param", num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub param: Vec<String>,
    /// FILE holding parameters as one JSON object (the -p flags are applied after it).
    #[arg(short = 'P', long = "param-file", value_name = "FILE")]
    pub param_file: Option<PathBuf>,
}

/// `-a/--annotation KEY VALUE` (repeatable) and `-A/--annotation-file FILE`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Annotations {
    /// Annotation KEY VALUE (VALUE is JSON if it parses as JSON, else a string); repeatable.
    #[arg(short = 'a', long = "annotation", num_args = 2, value_names = ["KEY", "VALUE"], action = clap::ArgAction::Append)]
    pub annotation: Vec<String>,
    /// FILE holding annotations as one JSON object (the -a flags are applied after it).
    #[arg(short = 'A', long = "annotation-file", value_name = "FILE")]
    pub annotation_file: Option<PathBuf>,
}

impl Params {
    /// The parameters as a JSON object (file first, then flags in order).
    pub fn object(&self) -> Result<Map<String, Value>, CliError> {
        object(&self.param, self.param_file.as_ref(), "parameter")
    }

    /// Whether any were given.
    pub fn given(&self) -> bool {
        !self.param.is_empty() || self.param_file.is_some()
    }
}

impl Annotations {
    /// The annotations as a JSON object (file first, then flags in order).
    pub fn object(&self) -> Result<Map<String, Value>, CliError> {
        object(
            &self.annotation,
            self.annotation_file.as_ref(),
            "annotation",
        )
    }

    /// Whether any were given.
    pub fn given(&self) -> bool {
        !self.annotation.is_empty() || self.annotation_file.is_some()
    }
}

/// A command-line value: JSON if it parses, else the string itself (wsk's rule).
pub fn value(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

fn object(
    pairs: &[String],
    file: Option<&PathBuf>,
    what: &str,
) -> Result<Map<String, Value>, CliError> {
    let mut out = match file {
        None => Map::new(),
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| usage(format!("Cannot read {what} file '{}': {e}", f.display())))?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                Ok(_) => {
                    return Err(usage(format!(
                        "Invalid {what} JSON in '{}': expected a JSON object",
                        f.display()
                    )))
                }
                Err(e) => {
                    return Err(usage(format!(
                        "Invalid {what} JSON in '{}': {e}",
                        f.display()
                    )))
                }
            }
        }
    };
    for kv in pairs.chunks(2) {
        if let [k, v] = kv {
            out.insert(k.clone(), value(v));
        }
    }
    Ok(out)
}

/// An object as OpenWhisk's key/value array `[{"key": k, "value": v}, ...]`.
pub fn kv_array(m: &Map<String, Value>) -> Value {
    Value::Array(
        m.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect(),
    )
}

/// Merges `over` into the key/value array `base` (same keys replaced in place, new ones appended).
pub fn kv_merge(base: &Value, over: &Map<String, Value>) -> Value {
    let mut out: Vec<Value> = base.as_array().cloned().unwrap_or_default();
    for (k, v) in over {
        match out.iter_mut().find(|e| e["key"] == k.as_str()) {
            Some(e) => e["value"] = v.clone(),
            None => out.push(json!({"key": k, "value": v})),
        }
    }
    Value::Array(out)
}

/// `--limit` and `--skip` of list commands.
#[derive(clap::Args, Debug, Clone)]
pub struct Paging {
    /// Return at most LIMIT entities (max 200).
    #[arg(short = 'l', long, default_value_t = 30, value_name = "LIMIT")]
    pub limit: u32,
    /// Skip the first SKIP entities.
    #[arg(short = 's', long, default_value_t = 0, value_name = "SKIP")]
    pub skip: u32,
    /// Sort the returned entities by name.
    #[arg(short = 'n', long)]
    pub name_sort: bool,
}

impl Paging {
    pub fn query(&self) -> Vec<(&'static str, String)> {
        let mut q = vec![("limit", self.limit.to_string())];
        if self.skip > 0 {
            q.push(("skip", self.skip.to_string()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_json_or_strings() {
        assert_eq!(value("5"), json!(5));
        assert_eq!(value("Ada"), json!("Ada"));
        assert_eq!(value("{\"a\":1}"), json!({"a": 1}));
        assert_eq!(value("{oops"), json!("{oops"));
        let p = Params {
            param: vec!["a".into(), "1".into(), "b".into(), "x".into()],
            param_file: None,
        };
        let m = p.object().unwrap();
        assert_eq!(
            kv_array(&m),
            json!([{"key":"a","value":1},{"key":"b","value":"x"}])
        );
        let merged = kv_merge(&json!([{"key":"a","value":0},{"key":"c","value":3}]), &m);
        assert_eq!(
            merged,
            json!([{"key":"a","value":1},{"key":"c","value":3},{"key":"b","value":"x"}])
        );
    }
}
