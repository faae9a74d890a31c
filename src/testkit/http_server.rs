//! A small static-file HTTP/1.1 server on loopback, for the ingest
//! benchmark's network source and for tests of the HTTP fetcher: keep-alive,
//! GET only, files below one root, and optional faults (a number of 503s
//! before each path succeeds; paths that always fail).
//!
//! It is a real server on a real socket, not a mock — it binds 127.0.0.1 only.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Faults the server injects.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer each path with 503 this many times before serving it.
    pub unavailable_first: u32,
    /// Paths containing this always get HTTP 500.
    pub always_fail: Option<String>,
    /// Wait this long before each response (a remote store's first-byte
    /// latency; the benchmark uses it so that the network, not the CPU the
    /// server shares with the client, is what a fetch waits for).
    pub latency: Option<std::time::Duration>,
}

/// A running server; stopped when dropped, open connections included (as
/// when a real server goes away: clients see resets, then refusals).
#[derive(Debug)]
pub struct HttpServer {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
    requests: Arc<Mutex<HashMap<String, u32>>>,
}

impl HttpServer {
    /// Serves `root` on 127.0.0.1 at a free port.
    pub async fn start(root: PathBuf, faults: Faults) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)), root, faults).await
    }

    /// Serves `root` on `addr` (a server brought back on the port an
    /// earlier one used; must be a loopback address).
    pub async fn start_on(
        addr: SocketAddr,
        root: PathBuf,
        faults: Faults,
    ) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::other("the test server binds loopback only"));
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let requests: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let shared = Arc::new((root, faults, requests.clone()));
        let task = tokio::spawn(async move {
            // Connections live in this set, so aborting the accept loop
            // drops the set and closes every one of them.
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                while connections.try_join_next().is_some() {}
                let shared = shared.clone();
                connections.spawn(async move {
                    let _ = serve(stream, &shared.0, &shared.1, &shared.2).await;
                });
            }
        });
        Ok(Self {
            addr,
            task,
            requests,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests seen for every path together.
    pub fn total_requests(&self) -> u32 {
        self.requests.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    /// Requests seen for `path` (e.g. `/a/b.json`).
    pub fn requests_for(&self, path: &str) -> u32 {
        self.requests
            .lock()
            .map(|m| m.get(path).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: TcpStream,
    root: &std::path::Path,
    faults: &Faults,
    requests: &Mutex<HashMap<String, u32>>,
) -> std::io::Result<()> {
    // Head and body go out in one write, and without Nagle: two small writes
    // met the client's delayed ACK and capped every connection at ~25 req/s.
    stream.set_nodelay(true)?;
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let (method, target) = (method.to_string(), target.to_string());
        let mut close = false;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 {
                return Ok(());
            }
            let h = header.trim_end();
            if h.is_empty() {
                break;
            }
            if h.to_ascii_lowercase().starts_with("connection:")
                && h.to_ascii_lowercase().contains("close")
            {
                close = true;
            }
        }
        let path = target.split('?').next().unwrap_or("/").to_string();
        let seen = {
            let mut m = requests.lock().unwrap_or_else(|p| p.into_inner());
            let n = m.entry(path.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let (status, body) = if method != "GET" {
            (405, Vec::new())
        } else if faults
            .always_fail
            .as_deref()
            .is_some_and(|f| path.contains(f))
        {
            (500, b"injected failure".to_vec())
        } else if seen <= faults.unavailable_first {
            (503, b"try again".to_vec())
        } else {
            match resolve(root, &path) {
                Some(file) => match tokio::fs::read(&file).await {
                    Ok(b) => (200, b),
                    Err(_) => (404, Vec::new()),
                },
                None => (400, Vec::new()),
            }
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            500 => "Internal Server Error",
            _ => "Service Unavailable",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-length: {}\r\ncontent-type: application/json\r\n{}\r\n",
            body.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        if let Some(latency) = faults.latency {
            tokio::time::sleep(latency).await;
        }
        let mut response = head.into_bytes();
        response.extend_from_slice(&body);
        write.write_all(&response).await?;
        if close {
            return Ok(());
        }
    }
}

/// Maps a URL path below `root`, percent-decoded; `..` is refused.
fn resolve(root: &std::path::Path, path: &str) -> Option<PathBuf> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let rel = decoded.trim_start_matches('/');
    if rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('\\') {
        return None;
    }
    Some(root.join(rel))
}
