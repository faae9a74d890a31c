//! A throttled static-file HTTP/1.1 server on 127.0.0.1 for the embedded
//! demo: it serves the demo's item files at most `rate` per second, so the
//! demo ingest runs long enough to be watched (the ingest engine has no
//! throttle of its own, and a local folder ingests in a blink). GET only,
//! keep-alive, files below one root; paths with `..` are refused.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct FeedServer {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl FeedServer {
    /// Serves `root` on a free loopback port, `rate` responses per second.
    pub async fn start(root: PathBuf, rate: f64) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.1));
        let shared = Arc::new(Shared {
            root,
            interval,
            next: Mutex::new(Instant::now()),
        });
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let _ = serve(stream, &shared).await;
                });
            }
        });
        Ok(Self { addr, task })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Shared {
    root: PathBuf,
    interval: Duration,
    /// The next free response slot (a token bucket of depth one).
    next: Mutex<Instant>,
}

impl Shared {
    async fn wait_turn(&self) {
        let slot = {
            let mut next = self.next.lock().await;
            let slot = (*next).max(Instant::now());
            *next = slot + self.interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

async fn serve(stream: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await? == 0 {
            return Ok(());
        }
        // Skip headers up to the blank line; requests carry no body.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 {
                return Ok(());
            }
            if header.trim().is_empty() {
                break;
            }
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let response = if method != "GET" {
            (405, b"method not allowed".to_vec())
        } else {
            shared.wait_turn().await;
            match resolve(&shared.root, target) {
                Some(path) => match tokio::fs::read(&path).await {
                    Ok(body) => (200, body),
                    Err(_) => (404, b"not found".to_vec()),
                },
                None => (400, b"bad path".to_vec()),
            }
        };
        let status = match response.0 {
            200 => "200 OK",
            404 => "404 Not Found",
            405 => "405 Method Not Allowed",
            _ => "400 Bad Request",
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/json\r\n\r\n",
            response.1.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(&response.1).await?;
        write.flush().await?;
    }
}

/// The file below `root` that `target` names, or None for unsafe paths.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split('?').next().unwrap_or("");
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let mut out = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty()) {
        if segment == ".." || segment == "." || segment.contains('\\') {
            return None;
        }
        out.push(segment);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_leaving_the_root() {
        let root = Path::new("/srv/items");
        assert_eq!(
            resolve(root, "/a/b%20c.json"),
            Some(PathBuf::from("/srv/items/a/b c.json"))
        );
        assert_eq!(resolve(root, "/a/../../etc/passwd"), None);
        assert_eq!(resolve(root, "/%2e%2e/x"), None);
    }
}
