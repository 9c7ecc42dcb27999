//! Query-string parameters, parsed lazily and without allocation in the common case, with
//! OpenWhisk's (Pekko's) error wording.

use std::borrow::Cow;

use crate::error::ApiError;

/// Default number of entries a list returns.
pub(crate) const DEFAULT_LIST_LIMIT: usize = 30;
/// Most entries a list returns (`limit=0` means this).
pub(crate) const MAX_LIST_LIMIT: usize = 200;

/// The raw query string of a request.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Query<'a>(pub &'a str);

fn decode(s: &str) -> Cow<'_, str> {
    if !s.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(s);
    }
    let plus = s.replace('+', " ");
    Cow::Owned(
        percent_encoding::percent_decode_str(&plus)
            .decode_utf8_lossy()
            .into_owned(),
    )
}

impl<'a> Query<'a> {
    /// The first value of `name` (percent-decoded), if given.
    pub fn get(&self, name: &str) -> Option<Cow<'a, str>> {
        self.0
            .split('&')
            .filter(|p| !p.is_empty())
            .find_map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k) == name).then(|| decode(v))
            })
    }

    /// A boolean parameter (`true/false`, `yes/no`, `on/off`, `1/0`).
    pub fn bool(&self, name: &str, default: bool) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(ApiError::bad_query(
                    name,
                    format!("'{v}' is not a valid Boolean value"),
                )),
            },
        }
    }

    /// `skip` of a list over `collection`.
    pub fn skip(&self, collection: &str) -> Result<usize, ApiError> {
        match self.get("skip") {
            None => Ok(0),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Ok(n as usize),
                Ok(n) => Err(ApiError::bad_query(
                    "skip",
                    format!("The value '{n}' is not greater than or equal to 0 for {collection}."),
                )),
                Err(_) => Err(ApiError::bad_query(
                    "skip",
                    format!("The value '{v}' is not an integer for {collection}."),
                )),
            },
        }
    }

    /// `limit` of a list over `collection`: default 30, `0` means the maximum 200.
    pub fn limit(&self, collection: &str) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(DEFAULT_LIST_LIMIT),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(0) => Ok(MAX_LIST_LIMIT),
                Ok(n) if n > 0 && n as usize <= MAX_LIST_LIMIT => Ok(n as usize),
                Ok(n) => Err(ApiError::bad_query(
                    "limit",
                    format!("The value '{n}' is not in the range of 0 to {MAX_LIST_LIMIT} for {collection}."),
                )),
                Err(_) => {
                    Err(ApiError::bad_query("limit", format!("The value '{v}' is not an integer for {collection}.")))
                }
            },
        }
    }

    /// An epoch-milliseconds parameter (`since`, `upto`).
    pub fn epoch_ms(&self, name: &str) -> Result<Option<u64>, ApiError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.trim().parse::<i64>() {
                Ok(n) => Ok(Some(n.max(0) as u64)),
                Err(_) => Err(ApiError::bad_query(
                    name,
                    format!("Parameter is not a valid value for epoch seconds: {v}"),
                )),
            },
        }
    }

    /// The blocking wait of an invoke: `timeout` in milliseconds, 1..=max, default max.
    pub fn timeout_ms(&self, max: u64) -> Result<u64, ApiError> {
        match self.get("timeout") {
            None => Ok(max),
            // Out of range gets OpenWhisk's plain message; not a number, its malformed-parameter one.
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => Ok(n),
                Ok(_) => Err(ApiError::bad_request(format!(
                    "Timeout must be number of milliseconds up to {max}."
                ))),
                Err(_) => Err(ApiError::bad_query(
                    "timeout",
                    format!("Timeout must be number of milliseconds up to {max}."),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn finds_and_decodes_values() {
        let q = Query("blocking=true&name=my%20pkg%2Fa&x=a+b&flag&blocking=false");
        assert_eq!(q.get("blocking").as_deref(), Some("true"));
        assert_eq!(q.get("name").as_deref(), Some("my pkg/a"));
        assert_eq!(q.get("x").as_deref(), Some("a b"));
        assert_eq!(q.get("flag").as_deref(), Some(""));
        assert!(q.get("missing").is_none());
        assert!(Query("").get("a").is_none());
    }

    #[test]
    fn booleans() {
        let q = Query("a=true&b=0&c=YES&d=maybe");
        assert!(q.bool("a", false).unwrap());
        assert!(!q.bool("b", true).unwrap());
        assert!(q.bool("c", false).unwrap());
        assert!(q.bool("z", true).unwrap());
        let e = q.bool("d", false).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            e.message,
            "The query parameter 'd' was malformed:\n'maybe' is not a valid Boolean value"
        );
    }

    #[test]
    fn list_paging_follows_openwhisk() {
        assert_eq!(Query("").limit("actions").unwrap(), 30);
        assert_eq!(Query("limit=0").limit("actions").unwrap(), 200);
        assert_eq!(Query("limit=200").limit("actions").unwrap(), 200);
        assert_eq!(
            Query("limit=201").limit("actions").unwrap_err().message,
            "The query parameter 'limit' was malformed:\nThe value '201' is not in the range of 0 to 200 for actions."
        );
        assert_eq!(
            Query("limit=x").limit("actions").unwrap_err().message,
            "The query parameter 'limit' was malformed:\nThe value 'x' is not an integer for actions."
        );
        assert_eq!(Query("skip=5").skip("actions").unwrap(), 5);
        assert!(Query("skip=-1")
            .skip("activations")
            .unwrap_err()
            .message
            .contains("not greater than or equal to 0"));
    }

    #[test]
    fn timeouts() {
        assert_eq!(Query("").timeout_ms(60_000).unwrap(), 60_000);
        assert_eq!(Query("timeout=1500").timeout_ms(60_000).unwrap(), 1500);
        for bad in [
            "timeout=0",
            "timeout=60001",
            "timeout=-5",
            "timeout=abc",
            "timeout=1.5",
        ] {
            let e = Query(bad).timeout_ms(60_000).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.message
                    .ends_with("Timeout must be number of milliseconds up to 60000."),
                "{bad}"
            );
        }
    }

    #[test]
    fn epochs() {
        assert_eq!(
            Query("since=1700000000000").epoch_ms("since").unwrap(),
            Some(1_700_000_000_000)
        );
        assert_eq!(Query("").epoch_ms("since").unwrap(), None);
        assert!(Query("upto=yesterday").epoch_ms("upto").is_err());
    }
}
