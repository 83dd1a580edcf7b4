//! Console output as text prompts can be matched against, and shown or written safely:
//! ANSI/OSC/CSI sequences (7-bit and 8-bit), C0 and C1 controls and bidi overrides removed,
//! line breaks (CR, LF, CRLF, LFCR) made one `\n` each — streaming, so a sequence, a UTF-8
//! character or a CRLF split across two reads is handled the same — then system lines
//! (kernel, systemd) cut out for matching, and secrets masked.
//!
//! Pure byte handling; nothing here reads or writes a stream.

use std::sync::LazyLock;

use nodeboot_config::text::is_unsafe_char;
use regex::bytes::Regex;

/// Where the [`Cleaner`] is inside an escape sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum State {
    #[default]
    Text,
    /// After ESC.
    Esc,
    /// Inside `ESC [ …` (or 8-bit CSI, 0x9b) until a final byte 0x40–0x7e.
    Csi,
    /// Inside `ESC ] …` (or DCS/SOS/PM/APC, 7-bit or 8-bit) until BEL, `ESC \` or ST (0x9c).
    Osc,
    /// ESC seen inside an OSC string.
    OscEsc,
    /// After `ESC (` and similar: one more byte belongs to the sequence.
    Charset,
}

/// Strips terminal control sequences and unsafe characters from a byte stream, keeping text,
/// `\n` and `\t`; the output is valid UTF-8.
///
/// - CSI (`ESC [ … final`), OSC (`ESC ] … BEL` or `… ESC \`), DCS/SOS/PM/APC strings and
///   two-byte escapes are removed whole — colours, cursor moves and systemd's terminal
///   queries alike. Their 8-bit forms are removed the same way, whether they come as a raw
///   byte (0x9b, 0x9d, …) or UTF-8 encoded (`c2 9b`): a terminal may act on either.
/// - BEL, backspace, DEL, the other C0 and C1 controls and the bidirectional overrides
///   (U+202A–U+202E, U+2066–U+2069, …: [`is_unsafe_char`]) are dropped.
/// - A run of CRs and LFs is as many line breaks as it holds LFs (at least one): CR, LF,
///   CRLF, LFCR and the tty's CR CR LF each end one line, and each becomes one `\n`.
/// - A byte that is not valid UTF-8 becomes U+FFFD.
#[derive(Debug, Default)]
pub struct Cleaner {
    state: State,
    /// A UTF-8 character begun in the text: its bytes so far, and how many it needs.
    utf8: [u8; 4],
    have: usize,
    need: usize,
    /// Inside a run of CRs and LFs (a `\n` has been written for it), and whether that `\n`
    /// already stands for an LF of the run.
    in_break: bool,
    break_has_lf: bool,
}

const REPLACEMENT: &[u8] = "\u{fffd}".as_bytes();

impl Cleaner {
    /// A cleaner at the start of a stream.
    pub fn new() -> Self {
        Cleaner::default()
    }

    /// Appends the text of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn text(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        self.in_break = false;
        out.extend_from_slice(bytes);
    }

    fn line_break(&mut self, b: u8, out: &mut Vec<u8>) {
        if !self.in_break {
            out.push(b'\n');
            self.in_break = true;
            self.break_has_lf = b == b'\n';
        } else if b == b'\n' {
            if self.break_has_lf {
                out.push(b'\n');
            }
            self.break_has_lf = true;
        }
    }

    /// A C1 control (0x80–0x9f), raw or decoded: the introducers start their sequence, the
    /// rest are dropped.
    fn c1(&mut self, code: u8) {
        self.state = match code {
            0x9b => State::Csi,
            0x90 | 0x98 | 0x9d | 0x9e | 0x9f => State::Osc,
            _ => State::Text,
        };
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            State::Text => self.text_byte(b, out),
            State::Esc => match b {
                b'[' => self.state = State::Csi,
                b']' | b'P' | b'X' | b'^' | b'_' => self.state = State::Osc,
                b'(' | b')' | b'*' | b'+' | b'#' | b'%' => self.state = State::Charset,
                0x1b => {}
                // not an escape: the byte is text (or a control) again
                0x00..=0x1f | 0x80..=0xff => {
                    self.state = State::Text;
                    self.text_byte(b, out);
                }
                _ => self.state = State::Text,
            },
            State::Csi => match b {
                0x20..=0x3f => {}
                0x40..=0x7e => self.state = State::Text,
                // anything else ends the sequence unfinished and counts on its own
                _ => {
                    self.state = State::Text;
                    self.text_byte(b, out);
                }
            },
            State::Osc => match b {
                0x07 | 0x9c => self.state = State::Text,
                0x1b => self.state = State::OscEsc,
                _ => {}
            },
            State::OscEsc => {
                self.state = State::Esc;
                if b == b'\\' {
                    self.state = State::Text;
                } else {
                    self.byte(b, out);
                }
            }
            State::Charset => self.state = State::Text,
        }
    }

    fn text_byte(&mut self, b: u8, out: &mut Vec<u8>) {
        if self.need > 0 {
            if (0x80..=0xbf).contains(&b) {
                self.utf8[self.have] = b;
                self.have += 1;
                if self.have == self.need {
                    let bytes = self.utf8;
                    let len = self.have;
                    self.need = 0;
                    self.have = 0;
                    self.character(&bytes[..len], out);
                }
                return;
            }
            // a character cut short: one replacement for it, and this byte on its own
            self.need = 0;
            self.have = 0;
            self.text(REPLACEMENT, out);
        }
        match b {
            0x1b => self.state = State::Esc,
            b'\r' | b'\n' => self.line_break(b, out),
            b'\t' => self.text(b"\t", out),
            0x00..=0x1f | 0x7f => {}
            0x20..=0x7e => self.text(&[b], out),
            // a raw C1 byte outside a UTF-8 character: an 8-bit control
            0x80..=0x9f => self.c1(b),
            0xc2..=0xdf => self.start(b, 2),
            0xe0..=0xef => self.start(b, 3),
            0xf0..=0xf4 => self.start(b, 4),
            _ => self.text(REPLACEMENT, out),
        }
    }

    fn start(&mut self, b: u8, need: usize) {
        self.utf8[0] = b;
        self.have = 1;
        self.need = need;
    }

    fn character(&mut self, bytes: &[u8], out: &mut Vec<u8>) {
        let Some(c) = std::str::from_utf8(bytes)
            .ok()
            .and_then(|s| s.chars().next())
        else {
            // overlong or surrogate
            self.text(REPLACEMENT, out);
            return;
        };
        match c {
            '\u{80}'..='\u{9f}' => self.c1(c as u32 as u8),
            c if is_unsafe_char(c) => {}
            _ => self.text(bytes, out),
        }
    }
}

/// The start of a system line: a kernel message (`[   42.1] `, `[    5.123456] `, any number
/// of digits) or a systemd status (`[  OK  ] `, `[FAILED] `, `[ TIME ] `, `[ ***  ] `, …).
const SYSTEM: &str =
    r"(?:\[ *[0-9]+\.[0-9]+\]|\[(?: *(?:OK|FAILED|DEPEND|TIME|WARN|INFO) *| *\*+ *)\]) ";

/// A complete system line and the one line break that ends it.
static SYSTEM_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"{SYSTEM}[^\n]*\n")).ok());

/// A complete system line with every line break around it: the breaks it was printed with
/// when it fell inside a prompt.
static SYSTEM_LINE_JOINED: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(&format!(r"\n*{SYSTEM}[^\n]*\n+")).ok());

/// `text` with complete system lines (kernel `[   12.345678] …\n`, systemd `[  OK  ] …\n`)
/// cut out, wherever they start: the kernel writes to the console in the middle of a prompt
/// as readily as between lines. The lines around them keep their own breaks.
pub fn strip_kernel_lines(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match SYSTEM_LINE.as_ref() {
        Some(re) => re.replace_all(text, &b""[..]),
        None => std::borrow::Cow::Borrowed(text),
    }
}

/// `text` with complete system lines cut out together with the line breaks before and after
/// them, joining what surrounds them: `[sudo] password for ad` CRLF `[   42.1] random: …`
/// CRLF `min: ` reads `[sudo] password for admin: `. A second view beside
/// [`strip_kernel_lines`], for prompts only: it would glue two real lines together.
pub fn join_around_system_lines(text: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match SYSTEM_LINE_JOINED.as_ref() {
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
            (&[b"a\r\nb\nc\rd"], "a\nb\nc\nd"),
            (&[b"a\r", b"\nb\n\rc\r\r\nd\n\ne"], "a\nb\nc\nd\n\ne"),
            (&[b"a\r\n\r\nb\n\r\n\rc"], "a\n\nb\n\nc"),
            (&[b"a\r\x1b[K\nb"], "a\nb"),
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

    fn clean_byte_by_byte(input: &[u8]) -> String {
        let pieces: Vec<&[u8]> = input.chunks(1).collect();
        clean_in_pieces(&pieces)
    }

    #[test]
    fn cleaner_removes_c1_controls_and_bidi_overrides_raw_or_encoded() {
        let cases: &[(&[u8], &str)] = &[
            // 8-bit CSI as a raw byte and UTF-8 encoded: the whole sequence goes
            (b"a\x9b2Jb", "ab"),
            (b"a\xc2\x9b31mb", "ab"),
            // 8-bit OSC ended by ST (raw or encoded), or by BEL
            (b"a\x9d0;title\x9cb", "ab"),
            (b"a\xc2\x9d0;title\xc2\x9cb", "ab"),
            (b"a\xc2\x900;dcs\x07b", "ab"),
            // other C1 controls (NEL, IND) and DEL dropped
            (b"a\x85b\xc2\x84c\x7fd", "abcd"),
            // bidi overrides and isolates
            ("a\u{202e}b\u{2066}c\u{2069}d\u{200f}e".as_bytes(), "abcde"),
            // text that is not UTF-8 becomes U+FFFD, never a raw byte
            (b"\xff\xe9x\xc3", "\u{fffd}\u{fffd}x"),
            (b"\xed\xa0\x80z", "\u{fffd}z"),
            // ESC, BEL and a CSI cut short by a control
            (b"a\x1b\x07b\x1b[12\nc", "ab\nc"),
            ("caf\u{e9} \u{2713}".as_bytes(), "caf\u{e9} \u{2713}"),
        ];
        for (input, want) in cases {
            assert_eq!(clean_in_pieces(&[input]), *want, "{input:?}");
            assert_eq!(clean_byte_by_byte(input), *want, "{input:?} byte by byte");
        }
    }

    /// Whatever the bytes and however they are cut into reads, the output is the same,
    /// valid UTF-8, with no control character but newline and tab and no bidi override.
    #[test]
    fn cleaner_output_is_always_safe_and_independent_of_read_boundaries() {
        let alphabet: &[&[u8]] = &[
            b"a",
            b"Z",
            b" ",
            b"\r",
            b"\n",
            b"\t",
            b"\x1b",
            b"[",
            b"]",
            b"\\",
            b"0",
            b";",
            b"m",
            b"\x07",
            b"\x9b",
            b"\x9c",
            b"\x9d",
            b"\xc2",
            b"\x85",
            b"\xe2\x80\xae",
            b"\xe2\x81",
            b"\xa6",
            b"\xff",
            b"\xc3\xa9",
            b"\x00",
            b"\x7f",
            b"P",
            b"(",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..300 {
            let mut input = Vec::new();
            for _ in 0..next(60) {
                input.extend_from_slice(alphabet[next(alphabet.len())]);
            }
            let whole = clean_in_pieces(&[&input]);
            let mut pieces = Vec::new();
            let mut rest = &input[..];
            while !rest.is_empty() {
                let (a, b) = rest.split_at(1 + next(rest.len()));
                pieces.push(a);
                rest = b;
            }
            assert_eq!(clean_in_pieces(&pieces), whole, "{input:?}");
            assert!(
                !whole
                    .chars()
                    .any(|c| c != '\n' && c != '\t' && is_unsafe_char(c)),
                "{input:?} -> {whole:?}"
            );
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
