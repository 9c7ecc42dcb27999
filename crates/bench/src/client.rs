//! The load generator's HTTP client: one keep-alive HTTP/1.1 connection per client, driven on
//! the bench's single thread (hyper's connection task), so the generator takes one core at most.

use std::path::Path;

use anyhow::bail;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use serde_json::{json, Value};

/// The guest's credentials (`whirl standalone`'s well-known namespace), as a Basic header.
pub const AUTH: &str = "Basic MjNiYzQ2YjEtNzFmNi00ZWQ1LThjNTQtODE2YWE0ZjhjNTAyOjEyM3pPM3haQ0xyTU42djJCS0sxZFhZRnBYbFBrY2NPRnFtMTJDZEFzTWdSVTRWck5aOWx5R1ZDR3VNREdJd1A=";

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    tx: SendRequest<Full<Bytes>>,
    host: String,
}

impl Conn {
    pub async fn tcp(addr: &str) -> anyhow::Result<Conn> {
        let s = tokio::net::TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Self::handshake(s, addr.to_string()).await
    }

    pub async fn unix(path: &Path) -> anyhow::Result<Conn> {
        let s = tokio::net::UnixStream::connect(path).await?;
        Self::handshake(s, "localhost".into()).await
    }

    async fn handshake<S>(s: S, host: String) -> anyhow::Result<Conn>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(s)).await?;
        tokio::spawn(conn);
        Ok(Conn { tx, host })
    }

    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        body: Bytes,
        auth: bool,
    ) -> anyhow::Result<(u16, Bytes)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("content-type", "application/json");
        if auth {
            req = req.header("authorization", AUTH);
        }
        self.tx.ready().await?;
        let resp = self.tx.send_request(req.body(Full::new(body))?).await?;
        let status = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

pub async fn put_action(
    c: &mut Conn,
    name: &str,
    kind: &str,
    code: &str,
    limits: Value,
) -> anyhow::Result<()> {
    let body = json!({"exec": {"kind": kind, "code": code}, "limits": limits});
    let (st, b) = c
        .send(
            "PUT",
            &format!("/api/v1/namespaces/_/actions/{name}?overwrite=true"),
            body.to_string().into(),
            true,
        )
        .await?;
    if st != 200 {
        bail!("create {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(())
}

/// A blocking invoke; the full activation record.
pub async fn invoke(c: &mut Conn, name: &str) -> anyhow::Result<Value> {
    let (st, b) = c
        .send(
            "POST",
            &format!("/api/v1/namespaces/_/actions/{name}?blocking=true"),
            Bytes::from_static(b"{}"),
            true,
        )
        .await?;
    if st != 200 {
        bail!("invoke {name}: {st} {}", String::from_utf8_lossy(&b));
    }
    Ok(serde_json::from_slice(&b)?)
}
