//! The wizard's thin terminal layer: a line editor for a plain serial console (pure, byte in →
//! echo and lines out) and the effects around it (raw mode with nix termios, blocking reads,
//! writes).
//!
//! The editor accepts CR, LF or CRLF as the end of a line, erases with backspace or DEL,
//! clears the line with ^U, cancels with ^C (and ^D on an empty line), swallows the escape
//! sequences of arrow and function keys, and keeps any other control character (a pasted ^V)
//! in the line so that the dialog can refuse it with a message. Nothing needs cursor
//! addressing.

use std::io::{self, Write};
use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};

/// What a byte typed did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Write these bytes back (echo).
    Echo(Vec<u8>),
    /// A whole line was typed (without its line ending).
    Line(String),
    /// ^C, or ^D on an empty line: the operator gives up.
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Esc {
    #[default]
    None,
    /// After ESC.
    Start,
    /// Inside `ESC [` or `ESC O` until a final byte.
    Sequence,
}

/// Collects a line from typed bytes.
#[derive(Debug, Default)]
pub struct LineEditor {
    line: Vec<u8>,
    /// The previous line ended with CR: a LF right after it is the same line ending.
    after_cr: bool,
    esc: Esc,
}

impl LineEditor {
    /// An empty editor.
    pub fn new() -> Self {
        LineEditor::default()
    }

    /// Takes one typed byte. `secret`: nothing is echoed but the line ending.
    pub fn feed(&mut self, b: u8, secret: bool) -> Option<Event> {
        match self.esc {
            Esc::Start => {
                self.esc = if b == b'[' || b == b'O' {
                    Esc::Sequence
                } else {
                    Esc::None
                };
                return None;
            }
            Esc::Sequence => {
                if (0x40..=0x7e).contains(&b) {
                    self.esc = Esc::None;
                }
                return None;
            }
            Esc::None => {}
        }
        let after_cr = std::mem::take(&mut self.after_cr);
        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                let line = String::from_utf8_lossy(&std::mem::take(&mut self.line)).into_owned();
                Some(Event::Line(line))
            }
            0x1b => {
                self.esc = Esc::Start;
                None
            }
            0x03 => Some(Event::Cancel),
            0x04 if self.line.is_empty() => Some(Event::Cancel),
            0x04 => None,
            0x7f | 0x08 => {
                let width = self.pop_char();
                (!secret && width > 0).then(|| Event::Echo(b"\x08 \x08".repeat(width)))
            }
            0x15 => {
                let mut width = 0;
                while !self.line.is_empty() {
                    width += self.pop_char();
                }
                (!secret && width > 0).then(|| Event::Echo(b"\x08 \x08".repeat(width)))
            }
            _ => {
                self.line.push(b);
                if secret {
                    None
                } else if b < 0x20 {
                    Some(Event::Echo(vec![b'^', b'@' + b]))
                } else {
                    Some(Event::Echo(vec![b]))
                }
            }
        }
    }

    /// Removes the last character; returns how many columns it took on screen.
    fn pop_char(&mut self) -> usize {
        let Some(last) = self.line.pop() else {
            return 0;
        };
        if last < 0x20 {
            return 2;
        }
        // a UTF-8 character: drop its continuation bytes' lead too
        if last >= 0x80 {
            while let Some(&b) = self.line.last() {
                if b & 0xc0 != 0x80 {
                    if b >= 0xc0 {
                        self.line.pop();
                    }
                    break;
                }
                self.line.pop();
            }
        }
        1
    }
}

/// The terminal the wizard runs on: standard input and output. On a tty, raw mode for the
/// wizard's lifetime (restored on drop) so that the editor sees every byte, ^C and ^V
/// included; on a pipe, bytes are read as they come.
#[derive(Debug)]
pub struct Terminal {
    stdin: io::Stdin,
    saved: Option<Termios>,
    editor: LineEditor,
    pending: Vec<u8>,
}

/// Why no line could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The operator pressed ^C (or ^D), or the input ended.
    Cancelled,
    /// Reading or writing failed.
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

impl Terminal {
    /// Takes over standard input; raw mode when it is a terminal.
    pub fn open() -> io::Result<Terminal> {
        let stdin = io::stdin();
        let fd = stdin.as_fd();
        let saved = match termios::tcgetattr(fd) {
            Ok(t) => {
                let mut raw = t.clone();
                termios::cfmakeraw(&mut raw);
                // keep output processing off too: the wizard writes CRLF itself
                raw.local_flags
                    .remove(LocalFlags::ECHO | LocalFlags::ICANON);
                termios::tcsetattr(fd, SetArg::TCSAFLUSH, &raw).map_err(io::Error::from)?;
                Some(t)
            }
            Err(_) => None,
        };
        Ok(Terminal {
            stdin,
            saved,
            editor: LineEditor::new(),
            pending: Vec::new(),
        })
    }

    /// Writes text; `\n` becomes CRLF (raw mode does no output processing).
    pub fn write(&mut self, text: &str) -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(text.replace('\n', "\r\n").as_bytes())?;
        out.flush()
    }

    /// Writes lines, each followed by CRLF.
    pub fn write_lines(&mut self, lines: &[String]) -> io::Result<()> {
        let mut text = String::new();
        for l in lines {
            text.push_str(l);
            text.push('\n');
        }
        self.write(&text)
    }

    /// Reads one line; `secret` lines are not echoed.
    pub fn read_line(&mut self, secret: bool) -> Result<String, ReadError> {
        loop {
            while !self.pending.is_empty() {
                let b = self.pending.remove(0);
                match self.editor.feed(b, secret) {
                    None => {}
                    Some(Event::Echo(bytes)) => {
                        let mut out = io::stdout().lock();
                        out.write_all(&bytes)?;
                        out.flush()?;
                    }
                    Some(Event::Line(line)) => {
                        self.write("\n")?;
                        return Ok(line);
                    }
                    Some(Event::Cancel) => return Err(ReadError::Cancelled),
                }
            }
            let mut buf = [0u8; 256];
            let n = loop {
                match nix::unistd::read(self.stdin.as_fd(), &mut buf) {
                    Ok(n) => break n,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(ReadError::Io(e.into())),
                }
            };
            if n == 0 {
                return Err(ReadError::Cancelled);
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(self.stdin.as_fd(), SetArg::TCSADRAIN, t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn type_in(bytes: &[u8], secret: bool) -> (Vec<String>, Vec<u8>, bool) {
        let mut e = LineEditor::new();
        let mut lines = Vec::new();
        let mut echo = Vec::new();
        let mut cancelled = false;
        for &b in bytes {
            match e.feed(b, secret) {
                Some(Event::Line(l)) => lines.push(l),
                Some(Event::Echo(x)) => echo.extend(x),
                Some(Event::Cancel) => cancelled = true,
                None => {}
            }
        }
        (lines, echo, cancelled)
    }

    #[test]
    fn line_endings_cr_lf_and_crlf_each_end_one_line() {
        let (lines, _, _) = type_in(b"a\rb\nc\r\nd\r\r\n", false);
        assert_eq!(lines, ["a", "b", "c", "d", ""]);
    }

    #[test]
    fn backspace_and_kill_edit_the_line() {
        let (lines, echo, _) = type_in(b"mgx\x7f01\x08\x0801\r", false);
        assert_eq!(lines, ["mg01"]);
        assert_eq!(echo, b"mgx\x08 \x0801\x08 \x08\x08 \x0801");
        let (lines, _, _) = type_in(b"wrong\x15right\r", false);
        assert_eq!(lines, ["right"]);
        let (lines, _, _) = type_in("caf\u{e9}\x7f\x7fe\r".as_bytes(), false);
        assert_eq!(lines, ["cae"]);
    }

    #[test]
    fn secrets_are_not_echoed_and_control_characters_are_kept() {
        let (lines, echo, _) = type_in(b"\x16pw\x7fW\r", true);
        assert_eq!(lines, ["\u{16}pW"]);
        assert!(echo.is_empty());
        let (_, echo, _) = type_in(b"a\x16", false);
        assert_eq!(echo, b"a^V");
    }

    #[test]
    fn arrow_keys_are_swallowed_and_ctrl_c_cancels() {
        let (lines, _, cancelled) = type_in(b"ab\x1b[D\x1bOAc\r", false);
        assert_eq!(lines, ["abc"]);
        assert!(!cancelled);
        let (_, _, cancelled) = type_in(b"ab\x03", false);
        assert!(cancelled);
        let (_, _, cancelled) = type_in(b"\x04", false);
        assert!(cancelled);
        let (_, _, cancelled) = type_in(b"a\x04", false);
        assert!(!cancelled);
    }
}
