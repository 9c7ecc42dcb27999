//! The properties file (`~/.wskprops`, or `$WSK_CONFIG_FILE`): `KEY=VALUE` lines shared with
//! OpenWhisk's `wsk`. Reading keeps every line so that writing changes only the keys it sets.

use std::path::PathBuf;

use super::http::{usage, CliError};

/// The properties file's path: `$WSK_CONFIG_FILE` if set, else `$HOME/.wskprops`.
pub fn path() -> Result<PathBuf, CliError> {
    if let Some(p) = std::env::var_os("WSK_CONFIG_FILE") {
        return Ok(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| usage("HOME is not set; set WSK_CONFIG_FILE to name the properties file"))?;
    Ok(PathBuf::from(home).join(".wskprops"))
}

/// A properties file's lines, in order.
#[derive(Debug, Default, Clone)]
pub struct Props {
    lines: Vec<String>,
}

impl Props {
    /// Reads the file at [`path`]; a missing file is empty.
    pub fn load() -> Result<Self, CliError> {
        let p = path()?;
        match std::fs::read_to_string(&p) {
            Ok(text) => Ok(Self::parse(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(CliError::Other(format!(
                "Unable to read the properties file '{}': {e}",
                p.display()
            ))),
        }
    }

    /// From the file's text.
    pub fn parse(text: &str) -> Self {
        Self {
            lines: text.lines().map(str::to_owned).collect(),
        }
    }

    /// The value of `key` (the last assignment wins; blank values count as unset).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .filter_map(|l| split(l))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
            .next_back()
            .filter(|v| !v.is_empty())
    }

    /// Sets `key`, replacing its line(s) in place or appending one.
    pub fn set(&mut self, key: &str, value: &str) {
        let line = format!("{key}={value}");
        let mut done = false;
        self.lines.retain_mut(|l| {
            if split(l).is_some_and(|(k, _)| k == key) {
                if done {
                    return false;
                }
                *l = line.clone();
                done = true;
            }
            true
        });
        if !done {
            self.lines.push(line);
        }
    }

    /// Removes `key`'s lines.
    pub fn unset(&mut self, key: &str) {
        self.lines
            .retain(|l| split(l).is_none_or(|(k, _)| k != key));
    }

    /// The file's text.
    pub fn text(&self) -> String {
        let mut s = self.lines.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// Writes the file at [`path`] (mode 0600: it holds a key).
    pub fn save(&self) -> Result<PathBuf, CliError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let p = path()?;
        let fail = |e: std::io::Error| {
            CliError::Other(format!(
                "Unable to write the properties file '{}': {e}",
                p.display()
            ))
        };
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&p)
            .map_err(fail)?;
        f.write_all(self.text().as_bytes()).map_err(fail)?;
        Ok(p)
    }
}

fn split(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if t.starts_with('#') {
        return None;
    }
    let (k, v) = t.split_once('=')?;
    Some((k.trim(), v.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_other_lines_and_unset_removes() {
        let mut p = Props::parse("# mine\nAPIHOST=a\nCERT=x\nAPIHOST=b\n");
        assert_eq!(p.get("APIHOST"), Some("b"));
        p.set("APIHOST", "c");
        p.set("AUTH", "u:k");
        assert_eq!(p.text(), "# mine\nAPIHOST=c\nCERT=x\nAUTH=u:k\n");
        p.unset("CERT");
        assert_eq!(p.text(), "# mine\nAPIHOST=c\nAUTH=u:k\n");
        assert_eq!(p.get("CERT"), None);
        assert_eq!(Props::parse("NAMESPACE=\n").get("NAMESPACE"), None);
    }
}
