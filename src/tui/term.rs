//! The terminal side of the console: the writer every frame goes through,
//! terminal setup and restore, and the OSC 52 clipboard escape.
//!
//! [`TermWriter`] holds a frame's bytes until ratatui flushes, then writes
//! them at once (one write per frame: over SSH, one packet burst instead of
//! many), counts them (the bandwidth bench reads the count), and rewrites
//! crossterm's 256-colour escapes for the 16 ANSI colours (`38;5;1`) into
//! the classic SGR codes (`31`), which every terminal knows.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine;

/// A buffering, counting, SGR-rewriting writer around `W`.
#[derive(Debug)]
pub struct TermWriter<W: Write> {
    inner: W,
    pending: Vec<u8>,
    written: Arc<AtomicU64>,
}

impl<W: Write> TermWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            pending: Vec::with_capacity(16 * 1024),
            written: Arc::default(),
        }
    }

    /// Bytes written to the terminal so far (shared: read it from anywhere).
    pub fn counter(&self) -> Arc<AtomicU64> {
        self.written.clone()
    }

    pub fn inner(&self) -> &W {
        &self.inner
    }
}

impl<W: Write> Write for TermWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.pending.is_empty() {
            let out = classic_sgr(&self.pending);
            self.inner.write_all(&out)?;
            self.written.fetch_add(out.len() as u64, Ordering::Relaxed);
            self.pending.clear();
        }
        self.inner.flush()
    }
}

/// Rewrites `38;5;N` / `48;5;N` with N < 16 inside SGR sequences
/// (`ESC [ … m`) to the classic codes 30–37, 90–97, 40–47 and 100–107.
pub fn classic_sgr(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == 0x1b && bytes.get(i + 1) == Some(&b'[') {
            let start = i + 2;
            let end = bytes[start..]
                .iter()
                .position(|b| !(b.is_ascii_digit() || *b == b';'))
                .map(|p| start + p);
            if let Some(end) = end
                && bytes[end] == b'm'
            {
                out.extend_from_slice(b"\x1b[");
                out.extend_from_slice(rewrite_params(&bytes[start..end]).as_bytes());
                out.push(b'm');
                i = end + 1;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn rewrite_params(params: &[u8]) -> String {
    let text = String::from_utf8_lossy(params);
    let parts: Vec<&str> = text.split(';').collect();
    let mut out: Vec<String> = vec![];
    let mut i = 0;
    while i < parts.len() {
        if (parts[i] == "38" || parts[i] == "48") && parts.get(i + 1) == Some(&"5") {
            let n = parts.get(i + 2).and_then(|n| n.parse::<u8>().ok());
            if let Some(n @ 0..=15) = n {
                let base = match (parts[i] == "38", n < 8) {
                    (true, true) => 30,
                    (true, false) => 90 - 8,
                    (false, true) => 40,
                    (false, false) => 100 - 8,
                };
                out.push((base + u16::from(n)).to_string());
                i += 3;
                continue;
            }
        }
        out.push(parts[i].to_string());
        i += 1;
    }
    out.join(";")
}

/// The OSC 52 escape that puts `text` on the system clipboard (through
/// SSH and, with `set-clipboard on`, tmux).
pub fn osc52(text: &str) -> Vec<u8> {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    format!("\x1b]52;c;{encoded}\x07").into_bytes()
}

/// The console's terminal: ratatui over crossterm over a [`TermWriter`].
pub type ConsoleTerminal =
    ratatui::Terminal<ratatui::backend::CrosstermBackend<TermWriter<io::Stdout>>>;

/// Raw mode, the alternate screen (and mouse capture when asked), with a
/// panic hook that restores the terminal before the panic is reported.
pub fn init(mouse: bool) -> io::Result<ConsoleTerminal> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore(mouse);
        hook(info);
    }));
    crossterm::terminal::enable_raw_mode()?;
    crossterm::execute!(io::stdout(), crossterm::terminal::EnterAlternateScreen)?;
    if mouse {
        crossterm::execute!(io::stdout(), crossterm::event::EnableMouseCapture)?;
    }
    ratatui::Terminal::new(ratatui::backend::CrosstermBackend::new(TermWriter::new(
        io::stdout(),
    )))
}

/// Leaves the alternate screen and raw mode (errors ignored: best effort on the way out).
pub fn restore(mouse: bool) {
    if mouse {
        let _ = crossterm::execute!(io::stdout(), crossterm::event::DisableMouseCapture);
    }
    ratatui::restore();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_colours_become_classic_codes_and_others_stay() {
        let input = b"a\x1b[38;5;9;48;5;4mX\x1b[38;5;208mY\x1b[0m\x1b[2J";
        let out = String::from_utf8(classic_sgr(input)).unwrap();
        assert_eq!(out, "a\x1b[91;44mX\x1b[38;5;208mY\x1b[0m\x1b[2J");
    }

    #[test]
    fn osc52_is_base64_between_the_markers() {
        assert_eq!(osc52("hi"), b"\x1b]52;c;aGk=\x07".to_vec());
    }
}
