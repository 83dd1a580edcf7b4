//! Text from outside (a file, a node, a console) made safe to show on a terminal or write into
//! a file: C0 and C1 control characters and Unicode bidirectional overrides removed.
//!
//! Pure string handling. It does not strip ANSI escape sequences as whole sequences (the
//! console engine's `Cleaner` does that for a byte stream); here the ESC itself goes, so what
//! is left of a sequence is inert printable text.

/// Whether `c` must never reach a terminal or a line-oriented file: C0 controls other than
/// newline and tab, DEL, C1 controls (U+0080–U+009F), and the bidirectional formatting
/// characters that reorder what a reader sees (U+061C, U+200E/F, U+202A–U+202E,
/// U+2066–U+2069).
pub fn is_unsafe_char(c: char) -> bool {
    matches!(c,
        '\u{0}'..='\u{8}' | '\u{b}'..='\u{1f}' | '\u{7f}'..='\u{9f}'
        | '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether `c` is refused inside a one-line configuration value: every unsafe character,
/// and newline and tab too.
pub fn is_forbidden_in_value(c: char) -> bool {
    c == '\n' || c == '\t' || c == '\r' || is_unsafe_char(c)
}

/// The first character of `s` that [`is_forbidden_in_value`] refuses, if any. Printable
/// ASCII (the common case) is passed over a byte at a time, so checking a large file's values
/// costs little.
pub fn find_forbidden_in_value(s: &str) -> Option<char> {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return None;
    }
    s.chars().find(|&c| is_forbidden_in_value(c))
}

/// The first [unsafe](is_unsafe_char) character of `s`, if any (newline and tab are not).
pub fn find_unsafe(s: &str) -> Option<char> {
    if s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) || b == b'\n' || b == b'\t')
    {
        return None;
    }
    s.chars().find(|&c| is_unsafe_char(c))
}

/// `s` with every [unsafe](is_unsafe_char) character removed; newlines and tabs stay.
///
/// Borrowed when there is nothing to remove, so the common case costs one scan.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if s.chars().any(is_unsafe_char) {
        std::borrow::Cow::Owned(s.chars().filter(|&c| !is_unsafe_char(c)).collect())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Bytes from outside (perhaps not UTF-8) as printable text: invalid UTF-8 becomes U+FFFD,
/// raw C1 bytes (0x80–0x9f outside a UTF-8 sequence) included, then [`printable`].
pub fn printable_lossy(bytes: &[u8]) -> String {
    printable(&String::from_utf8_lossy(bytes)).into_owned()
}

/// The same on one line: newlines and tabs become spaces too (for a log field, a table cell,
/// a one-line error).
pub fn printable_line(s: &str) -> String {
    s.chars()
        .filter(|&c| !is_unsafe_char(c))
        .map(|c| if c == '\n' || c == '\t' { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_c0_c1_and_bidi_keeps_newline_and_tab() {
        let input = "a\u{1b}[31mb\u{7}c\u{9b}d\u{202e}e\u{2066}f\r\ng\th";
        assert_eq!(printable(input), "a[31mbcdef\ng\th");
        assert_eq!(printable_line(input), "a[31mbcdef g h");
    }

    #[test]
    fn clean_text_is_borrowed() {
        assert!(matches!(
            printable("conf01.example.com"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn raw_c1_byte_is_not_passed_through() {
        // 0x9b alone is CSI on an 8-bit terminal; as invalid UTF-8 it becomes U+FFFD.
        assert_eq!(printable_lossy(b"x\x9b2Jy\xc2\x9bz"), "x\u{fffd}2Jyz");
    }

    #[test]
    fn value_rules() {
        assert!(is_forbidden_in_value('\n'));
        assert!(is_forbidden_in_value('\u{85}'));
        assert!(!is_forbidden_in_value('é'));
        assert!(!is_forbidden_in_value(' '));
        assert_eq!(find_forbidden_in_value("ab c~"), None);
        assert_eq!(find_forbidden_in_value("a\tb"), Some('\t'));
        assert_eq!(find_forbidden_in_value("é\u{202e}"), Some('\u{202e}'));
        assert_eq!(find_unsafe("a\n\tb é"), None);
        assert_eq!(find_unsafe("a\n\u{9b}"), Some('\u{9b}'));
    }
}
