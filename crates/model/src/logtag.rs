//! Log lines tagged with the activation that wrote them.
//!
//! When one container runs several activations at once (`limits.concurrency` > 1), their output
//! shares the container's stdout and stderr. A runtime that can tell which activation wrote a line
//! (Whirl's node launcher, through `AsyncLocalStorage`) prefixes it with a tag naming that
//! activation, and ends each activation's output with a *tagged* sentinel on both streams. The
//! platform's log readers split the output by tag, so every line lands in the record of the
//! activation that wrote it. Containers running one activation at a time print untagged lines and
//! the plain sentinel, exactly as OpenWhisk's runtimes do.
//!
//! A tagged line is `RS <activation id> US <message>`, with the ASCII record separator (0x1E) and
//! unit separator (0x1F) as delimiters: control characters that ordinary output does not start
//! with. The node launcher (`crates/runtime/launchers/launcher.cjs`) writes the same format.

/// Starts a tagged line.
pub const TAG_START: char = '\u{1e}';
/// Ends the activation id of a tagged line.
pub const TAG_END: char = '\u{1f}';

/// Longest activation id a tag may carry (OpenWhisk's are 32 hex digits).
pub const MAX_TAG_ID: usize = 64;

/// Splits a tagged line into the activation id and the message; `None` for an untagged line (or a
/// malformed tag, which is then just text).
pub fn split(line: &str) -> Option<(&str, &str)> {
    let rest = line.strip_prefix(TAG_START)?;
    let end = rest.find(TAG_END)?;
    let id = &rest[..end];
    if id.is_empty() || id.len() > MAX_TAG_ID || id.bytes().any(|b| b.is_ascii_control()) {
        return None;
    }
    Some((id, &rest[end + TAG_END.len_utf8()..]))
}

/// Appends the tag of activation `id` to `out` (the message follows).
pub fn push_tag(out: &mut String, id: &str) {
    out.push(TAG_START);
    out.push_str(id);
    out.push(TAG_END);
}

/// The tagged line `message` of activation `id`, without a newline.
pub fn tagged(id: &str, message: &str) -> String {
    let mut s = String::with_capacity(id.len() + message.len() + 2);
    push_tag(&mut s, id);
    s.push_str(message);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_malformed_tags() {
        let line = tagged("a1b2", "hello \u{1f} world");
        assert_eq!(split(&line), Some(("a1b2", "hello \u{1f} world")));
        assert_eq!(split("plain"), None);
        assert_eq!(split("\u{1e}no end"), None);
        assert_eq!(split("\u{1e}\u{1f}empty id"), None);
        assert_eq!(split(&tagged(&"x".repeat(65), "m")), None);
        assert_eq!(split(&tagged("ok", "")), Some(("ok", "")));
    }
}
