//! Console output as text prompts can be matched against: ANSI/OSC/CSI sequences, carriage
//! returns and other control characters removed (streaming, so a sequence split across two
//! reads is still removed), kernel log lines cut out, and secrets masked.
//!
//! Pure byte handling; nothing here reads or writes a stream.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// Where the [`Cleaner`] is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Text,
    /// After ESC.
    Esc,
    /// Inside `ESC [ …` until a final byte 0x40–0x7e.
    Csi,
    /// Inside `ESC ] …` (or DCS/PM/APC) until BEL or `ESC \`.
    Osc,
    /// ESC seen inside an OSC string.
    OscEsc,
    /// After `ESC (` and similar: one more byte belongs to the sequence.
    Charset,
}

/// Strips terminal control sequences from a byte stream, keeping text, `\n` and `\t`.
///
/// `\r` is dropped (so CRLF, LF and lone CR line endings all become text the same way);
/// BEL, backspace and the other C0 controls are dropped; CSI (`ESC [ … final`), OSC
/// (`ESC ] … BEL` or `… ESC \`), DCS/PM/APC strings and two-byte escapes are removed whole —
/// colours, cursor moves and systemd's terminal queries alike.
#[derive(Debug, Default)]
pub struct Cleaner {
    state: State,
}

impl Cleaner {
    /// A cleaner at the start of a stream.
    pub fn new() -> Self {
        Cleaner::default()
    }

    /// Appends the text of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.state = match self.state {
                State::Text => match b {
                    0x1b => State::Esc,
                    b'\n' | b'\t' => {
                        out.push(b);
                        State::Text
                    }
                    0x00..=0x1f | 0x7f => State::Text,
                    _ => {
                        out.push(b);
                        State::Text
                    }
                },
                State::Esc => match b {
                    b'[' => State::Csi,
                    b']' | b'P' | b'X' | b'^' | b'_' => State::Osc,
                    b'(' | b')' | b'*' | b'+' | b'#' | b'%' => State::Charset,
                    _ => State::Text,
                },
                State::Csi => match b {
                    0x40..=0x7e => State::Text,
                    _ => State::Csi,
                },
                State::Osc => match b {
                    0x07 => State::Text,
                    0x1b => State::OscEsc,
                    _ => State::Osc,
                },
                State::OscEsc => State::Text,
                State::Charset => State::Text,
            };
        }
    }
}

static KERNEL_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"\[ *[0-9]+\.[0-9]{6}\] [^\n]*\n").ok());

/// `text` with complete kernel log lines (`[   12.345678] …\n`) cut out, wherever they start:
/// the kernel writes to the console in the middle of a prompt as readily as between lines.
pub fn strip_kernel_lines(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match KERNEL_LINE.as_ref() {
        Some(re) => re.replace_all(text, &b""[..]),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// The mask printed in place of a secret.
pub const MASK: &[u8] = b"***";

/// Replaces every occurrence of a secret in a stream with `***`, holding back just enough of
/// the stream's end that a secret split across two chunks is still caught.
#[derive(Debug, Default)]
pub struct Masker {
    secrets: Vec<Vec<u8>>,
    pending: Vec<u8>,
}

impl Masker {
    /// A masker for these secrets (empty ones are ignored).
    pub fn new(secrets: impl IntoIterator<Item = Vec<u8>>) -> Self {
        let mut secrets: Vec<Vec<u8>> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        // longest first, so that a secret containing another is masked whole
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Masker {
            secrets,
            pending: Vec::new(),
        }
    }

    fn hold_back(&self) -> usize {
        self.secrets
            .iter()
            .map(|s| s.len().saturating_sub(1))
            .max()
            .unwrap_or(0)
    }

    /// Feeds `input`; returns the masked text that can be released now.
    pub fn feed(&mut self, input: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(input);
        self.pending = mask_all(&self.pending, &self.secrets);
        let keep = self.hold_back().min(self.pending.len());
        let cut = self.pending.len() - keep;
        let rest = self.pending.split_off(cut);
        std::mem::replace(&mut self.pending, rest)
    }

    /// The held-back end of the stream, masked, with any trailing beginning of a secret
    /// masked too.
    pub fn peek_pending(&self) -> Vec<u8> {
        let mut out = mask_all(&self.pending, &self.secrets);
        for start in 0..out.len() {
            let tail = &out[start..];
            if self.secrets.iter().any(|s| s.starts_with(tail)) {
                out.truncate(start);
                out.extend_from_slice(MASK);
                break;
            }
        }
        out
    }

    /// Releases everything held back (at the end of the stream).
    pub fn finish(&mut self) -> Vec<u8> {
        let out = self.peek_pending();
        self.pending.clear();
        out
    }

    /// Masks a complete piece of text (an error message, a line).
    pub fn mask(&self, text: &[u8]) -> Vec<u8> {
        mask_all(text, &self.secrets)
    }
}

fn mask_all(text: &[u8], secrets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    'outer: while i < text.len() {
        for s in secrets {
            if text[i..].starts_with(s) {
                out.extend_from_slice(MASK);
                i += s.len();
                continue 'outer;
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean_in_pieces(pieces: &[&[u8]]) -> String {
        let mut c = Cleaner::new();
        let mut out = Vec::new();
        for p in pieces {
            c.feed(p, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cleaner_removes_sequences_even_when_split() {
        let cases: &[(&[&[u8]], &str)] = &[
            (&[b"\x1b[1;32mHostname\x1b[0m: "], "Hostname: "),
            (
                &[b"\x1b[1;3", b"2mHost", b"name\x1b", b"[0m: "],
                "Hostname: ",
            ),
            (&[b"a\r\nb\nc\rd"], "a\nb\ncd"),
            (&[b"\x1b]0;title\x07login: "], "login: "),
            (&[b"\x1b]11;?\x1b\\x"], "x"),
            (&[b"\x1b[6n\x1b[?25l\x1b(Bok"], "ok"),
            (&[b"bell\x07 tab\t"], "bell tab\t"),
            (&[b"caf\xc3\xa9"], "caf\u{e9}"),
        ];
        for (pieces, want) in cases {
            assert_eq!(clean_in_pieces(pieces), *want, "{pieces:?}");
        }
    }

    #[test]
    fn kernel_lines_are_cut_out_mid_prompt() {
        let t = b"IP add[    5.123456] e1000: eth0 NIC Link is Up\nress [10.0.2.15]: ";
        assert_eq!(&*strip_kernel_lines(t), b"IP address [10.0.2.15]: ");
        // the summary's bracketed defaults are not kernel lines
        let t = b"Gateway [10.0.2.2]: \n";
        assert_eq!(&*strip_kernel_lines(t), &t[..]);
        // an unfinished kernel line stays until its end arrives
        let t = b"Hostname: [    5.123456] rand";
        assert_eq!(&*strip_kernel_lines(t), &t[..]);
    }

    #[test]
    fn masker_catches_secrets_across_chunks() {
        let mut m = Masker::new([b"hunter2".to_vec(), b"s3cret!".to_vec()]);
        let mut out = Vec::new();
        for chunk in [&b"pass: hun"[..], b"ter2\nnext s3", b"cret! end", b" s3c"] {
            out.extend(m.feed(chunk));
        }
        let pending = m.peek_pending();
        assert_eq!(String::from_utf8_lossy(&pending), "nd ***");
        out.extend(m.finish());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "pass: ***\nnext *** end ***"
        );
        assert_eq!(m.mask(b"a hunter2 b"), b"a *** b");
    }
}
