//! Wall-clock helpers: OpenWhisk speaks epoch milliseconds in JSON and RFC 3339 nanoseconds in logs.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A log timestamp as OpenWhisk prints it: RFC 3339 UTC with nanoseconds, e.g.
/// `2018-03-05T02:10:38.196689522Z`.
pub fn log_timestamp(t: SystemTime) -> String {
    let dt = time::OffsetDateTime::from(t);
    let fmt = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:9]Z"
    );
    dt.format(&fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_openwhisk() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::new(1520216238, 196689522);
        assert_eq!(super::log_timestamp(t), "2018-03-05T02:17:18.196689522Z");
    }
}
