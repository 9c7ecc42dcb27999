//! Where a container's action runtime listens.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The address of an action runtime's HTTP server: a Unix socket (cheapest for local sandboxes) or
/// a TCP address (containers on a network).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(p) = s.strip_prefix("unix:") {
            Ok(Endpoint::Unix(PathBuf::from(p)))
        } else {
            let a = s.strip_prefix("tcp:").unwrap_or(s);
            a.parse()
                .map(Endpoint::Tcp)
                .map_err(|e| format!("bad endpoint '{s}': {e}"))
        }
    }
}
