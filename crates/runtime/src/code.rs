//! The `/init` request and unpacking the action's code into the work dir.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Launcher;

/// The `value` of an `/init` body.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct InitValue {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub main: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub binary: Option<bool>,
    #[serde(default)]
    pub env: Option<Map<String, Value>>,
    /// Whirl's extension: how many activations the platform may run in this container at once
    /// (the action's `limits.concurrency`; absent means 1). OpenWhisk's runtimes ignore it.
    #[serde(default)]
    pub concurrency: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct InitBody {
    #[serde(default)]
    pub value: Option<InitValue>,
}

impl InitValue {
    /// The activations this container may run at once (at least 1).
    pub fn concurrency(&self) -> u64 {
        self.concurrency.unwrap_or(1).max(1)
    }

    /// The activation the platform is initializing for (`__OW_ACTIVATION_ID` in `env`), whose
    /// record gets the initialization's output.
    pub fn activation_id(&self) -> Option<&str> {
        self.env
            .as_ref()?
            .get("__OW_ACTIVATION_ID")?
            .as_str()
            .filter(|s| !s.is_empty())
    }

    pub fn main(&self) -> &str {
        match self.main.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => "main",
        }
    }

    /// The `env` entries as environment strings, the way OpenWhisk runtimes set them: strings as
    /// they are, null as empty, anything else as JSON text.
    pub fn env_strings(&self) -> Vec<(String, String)> {
        let Some(env) = &self.env else {
            return Vec::new();
        };
        env.iter()
            .map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect()
    }
}

/// The action's code, unpacked.
#[derive(Debug)]
pub(crate) struct Unpacked {
    /// Directory holding the code; the action's working directory.
    pub dir: PathBuf,
    /// The entry file: the text action's source, python's `__main__.py`, native's `exec`; for a
    /// node archive none (the launcher resolves `package.json` / `index.js`).
    pub file: Option<PathBuf>,
    /// Whether the code came as an archive.
    pub archive: bool,
}

const ZIP_MAGIC: &[&[u8]] = &[b"PK\x03\x04", b"PK\x05\x06"];

fn is_zip(bytes: &[u8]) -> bool {
    ZIP_MAGIC.iter().any(|m| bytes.starts_with(m))
}

fn decode_base64(code: &str) -> Result<Vec<u8>, String> {
    let engine = base64::engine::general_purpose::STANDARD;
    engine.decode(code).or_else(|_| {
        let compact: String = code.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        engine
            .decode(compact)
            .map_err(|e| format!("The action's code is not valid base64: {e}."))
    })
}

fn write_file(path: &Path, bytes: &[u8], executable: bool) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("Unable to write {}: {e}.", path.display()))?;
    if executable {
        fs::set_permissions(path, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("Unable to make {} executable: {e}.", path.display()))?;
    }
    Ok(())
}

fn extract(zip: &[u8], dir: &Path) -> Result<(), String> {
    let mut archive = zip::ZipArchive::new(Cursor::new(zip))
        .map_err(|e| format!("There was an error uncompressing the action archive: {e}."))?;
    archive
        .extract(dir)
        .map_err(|e| format!("There was an error uncompressing the action archive: {e}."))
}

/// Writes the action's code under `work_dir/action` in the shape `launcher` expects.
/// Errors are the user-facing `/init` failure message.
pub(crate) fn unpack(
    launcher: Launcher,
    work_dir: &Path,
    init: &InitValue,
) -> Result<Unpacked, String> {
    let code = match init.code.as_deref() {
        Some(c) if !c.is_empty() => c,
        _ => return Err("Missing main/no code to execute.".into()),
    };
    let dir = work_dir.join("action");
    if dir.exists() {
        fs::remove_dir_all(&dir).map_err(|e| format!("Unable to clear {}: {e}.", dir.display()))?;
    }
    fs::create_dir_all(&dir).map_err(|e| format!("Unable to create {}: {e}.", dir.display()))?;

    let binary = if init.binary.unwrap_or(false) {
        Some(decode_base64(code)?)
    } else {
        None
    };
    let zip = binary.as_deref().filter(|b| is_zip(b));
    if let Some(zip) = zip {
        extract(zip, &dir)?;
    }

    let unpacked = match launcher {
        Launcher::Python => match (zip, &binary) {
            (Some(_), _) => {
                let file = dir.join("__main__.py");
                if !file.is_file() {
                    return Err("Zip file does not include __main__.py".into());
                }
                Unpacked {
                    dir,
                    file: Some(file),
                    archive: true,
                }
            }
            (None, Some(_)) => {
                return Err("The action's binary code is not a zip archive.".into());
            }
            (None, None) => {
                let file = dir.join("__main__.py");
                write_file(&file, code.as_bytes(), false)?;
                Unpacked {
                    dir,
                    file: Some(file),
                    archive: false,
                }
            }
        },
        Launcher::Node => match (zip, &binary) {
            (Some(_), _) => Unpacked {
                dir,
                file: None,
                archive: true,
            },
            (None, Some(_)) => {
                return Err(
                    "There was an error uncompressing the action archive. The file type is unsupported".into(),
                );
            }
            (None, None) => {
                let file = dir.join("index.js");
                write_file(&file, code.as_bytes(), false)?;
                Unpacked {
                    dir,
                    file: Some(file),
                    archive: false,
                }
            }
        },
        Launcher::Native => {
            let file = dir.join("exec");
            match (zip, &binary) {
                (Some(_), _) => {
                    if !file.is_file() {
                        return Err(
                            "Zip file does not include an executable named 'exec' at its root."
                                .into(),
                        );
                    }
                    fs::set_permissions(&file, fs::Permissions::from_mode(0o755))
                        .map_err(|e| format!("Unable to make exec executable: {e}."))?;
                    Unpacked {
                        dir,
                        file: Some(file),
                        archive: true,
                    }
                }
                (None, Some(bytes)) => {
                    write_file(&file, bytes, true)?;
                    Unpacked {
                        dir,
                        file: Some(file),
                        archive: false,
                    }
                }
                (None, None) => {
                    if !code.starts_with("#!") {
                        return Err(
                            "A native action given as text must be a script starting with '#!'."
                                .into(),
                        );
                    }
                    write_file(&file, code.as_bytes(), true)?;
                    Unpacked {
                        dir,
                        file: Some(file),
                        archive: false,
                    }
                }
            }
        }
    };
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(files: &[(&str, &str)]) -> String {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, body) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(body.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        base64::engine::general_purpose::STANDARD.encode(buf.into_inner())
    }

    fn init(code: &str, binary: bool) -> InitValue {
        InitValue {
            code: Some(code.into()),
            binary: Some(binary),
            ..Default::default()
        }
    }

    #[test]
    fn env_strings_follow_openwhisk() {
        let v: InitValue = serde_json::from_value(
            serde_json::json!({"env": {"A": "x", "B": 1, "C": null, "D": {"k": true}}}),
        )
        .unwrap();
        let mut env = v.env_strings();
        env.sort();
        assert_eq!(
            env,
            vec![
                ("A".into(), "x".into()),
                ("B".into(), "1".into()),
                ("C".into(), "".into()),
                ("D".into(), r#"{"k":true}"#.into())
            ]
        );
        assert_eq!(v.main(), "main");
    }

    #[test]
    fn unpacks_each_shape() {
        let dir = tempfile::tempdir().unwrap();
        let u = unpack(
            Launcher::Python,
            dir.path(),
            &init("def main(a): return a", false),
        )
        .unwrap();
        assert!(u.file.unwrap().ends_with("action/__main__.py"));

        let z = zip_of(&[("__main__.py", "def main(a): return a")]);
        assert!(
            unpack(Launcher::Python, dir.path(), &init(&z, true))
                .unwrap()
                .archive
        );
        let z = zip_of(&[("other.py", "")]);
        assert!(unpack(Launcher::Python, dir.path(), &init(&z, true))
            .unwrap_err()
            .contains("__main__.py"));

        let z = zip_of(&[("exec", "#!/bin/sh\n")]);
        let u = unpack(Launcher::Native, dir.path(), &init(&z, true)).unwrap();
        let mode = fs::metadata(u.file.unwrap()).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111);
        assert!(unpack(Launcher::Native, dir.path(), &init("echo hi", false)).is_err());
        assert!(unpack(
            Launcher::Native,
            dir.path(),
            &init("#!/bin/sh\necho", false)
        )
        .is_ok());
        assert!(unpack(Launcher::Node, dir.path(), &init("not base64!", true)).is_err());
        assert!(unpack(Launcher::Node, dir.path(), &init("", false)).is_err());
    }
}
