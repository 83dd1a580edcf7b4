//! A wrapper for values that must never be printed: password hashes, private keys, tokens.
//!
//! `Debug` and `Display` print `***`; the value is reached only through [`Secret::expose`], so
//! every place that reads a secret is visible in the code.

use serde::{Deserialize, Serialize};

/// A value whose `Debug` and `Display` forms are `***`.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value itself. Callers must not log or print it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the secret value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl<T> std::fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// A configuration file's text with every secret replaced by `*`, character for character
/// (newlines kept), so lines and columns still point at the same places.
///
/// What is secret is what the XML reader knows by its place, not a pattern: the whole content
/// of an element whose name holds `password`, `passphrase`, `private-key`, `secret` or
/// `token` (`<password-hash>`, `<private-key>`), CDATA sections, character references and
/// comments inside it included; the value of an attribute with such a name
/// (`<web-admin password-hash=…>`); text put directly in `<ssh>`, `<tls>` or `<web-admin>`.
/// Whatever the reader could not read (after a well-formedness error, a limit, an invalid
/// UTF-8 byte) is masked whole, since nothing is known of it. [`crate::Diagnostic::render`]
/// takes only this type, so no rendered error can quote a secret from the file.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskedSource {
    text: String,
    /// Byte offset of the start of every line.
    starts: Vec<usize>,
}

impl MaskedSource {
    /// Masks a schema-1 XML document (invalid UTF-8 is shown as U+FFFD, and masked).
    pub fn new(source: &[u8]) -> Self {
        let out = crate::xml::read(source);
        let mut ranges = out.secrets;
        if let Some(from) = out.unread_from {
            ranges.push(from..usize::MAX);
        }
        Self::masking(&String::from_utf8_lossy(source), ranges)
    }

    /// Masks metadata JSON. For `{"conferencing_node_config": "<xml…>"}` it is the masked
    /// XML string itself, since the diagnostics of that document give places inside it. For
    /// anything else the JSON text with the value of every key named like a secret (`pass`,
    /// `admin_password`, …) and of `conferencing_node_config` masked; when the JSON is not
    /// valid, every string and value is masked and only its punctuation is shown.
    pub fn metadata_json(source: &[u8]) -> Self {
        match serde_json::from_slice::<serde_json::Value>(source) {
            Ok(v) => match v.get("conferencing_node_config") {
                Some(serde_json::Value::String(xml)) => Self::new(xml.as_bytes()),
                _ => Self::masking(&String::from_utf8_lossy(source), json_secret_ranges(source)),
            },
            Err(_) => {
                let text = String::from_utf8_lossy(source);
                let masked = text
                    .chars()
                    .map(|c| match c {
                        '{' | '}' | '[' | ']' | ':' | ',' | '"' | ' ' | '\n' | '\r' | '\t' => c,
                        _ => '*',
                    })
                    .collect::<String>();
                Self::from_masked(masked)
            }
        }
    }

    /// `text` with every character inside one of `ranges` (byte offsets) replaced by `*`,
    /// newlines kept. One pass over the text.
    fn masking(text: &str, mut ranges: Vec<std::ops::Range<usize>>) -> Self {
        ranges.sort_by_key(|r| r.start);
        let mut out = String::with_capacity(text.len());
        let mut next = ranges.iter().peekable();
        let mut covered_until = 0usize;
        for (i, c) in text.char_indices() {
            while let Some(r) = next.next_if(|r| r.start <= i) {
                covered_until = covered_until.max(r.end);
            }
            if i < covered_until && c != '\n' {
                out.push('*');
            } else {
                out.push(c);
            }
        }
        Self::from_masked(out)
    }

    fn from_masked(text: String) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        MaskedSource { text, starts }
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Line `index` (0-based) of the masked text, without its line ending.
    pub fn line(&self, index: usize) -> Option<&str> {
        let start = *self.starts.get(index)?;
        let end = self
            .starts
            .get(index + 1)
            .map(|e| e - 1)
            .unwrap_or(self.text.len());
        let line = self.text.get(start..end)?;
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl std::fmt::Debug for MaskedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaskedSource({} bytes)", self.text.len())
    }
}

/// Whether a JSON key names a value that must never be shown.
fn is_secret_json_key(key: &[u8]) -> bool {
    let key = String::from_utf8_lossy(key);
    key == "pass" || key == "conferencing_node_config" || crate::xml::is_secret_name(&key)
}

/// Byte ranges of the values of secret keys in (valid) JSON: a small lexer that knows strings,
/// escapes and nesting; a value runs from its first byte to the `,`, `}` or `]` that ends it.
fn json_secret_ranges(src: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    // After `"secret key":`, the depth at which its value is being read, and where it started.
    let mut secret_value: Option<(usize, Option<usize>)> = None;
    let mut pending_key: Option<std::ops::Range<usize>> = None;
    while let Some(&b) = src.get(i) {
        match b {
            b'"' => {
                let start = i;
                i += 1;
                while let Some(&c) = src.get(i) {
                    match c {
                        b'\\' => i += 2,
                        b'"' => break,
                        _ => i += 1,
                    }
                }
                if let Some((_, from @ None)) = secret_value.as_mut() {
                    *from = Some(start);
                }
                pending_key = Some(start + 1..i.min(src.len()));
            }
            b':' => {
                if secret_value.is_none()
                    && let Some(k) = pending_key.take()
                    && is_secret_json_key(src.get(k).unwrap_or_default())
                {
                    secret_value = Some((depth, None));
                }
            }
            b'{' | b'[' | b',' | b'}' | b']' => {
                if matches!(b, b',' | b'}' | b']')
                    && let Some((d, from)) = secret_value
                    && d == depth
                {
                    if let Some(from) = from {
                        ranges.push(from..i);
                    }
                    secret_value = None;
                }
                match b {
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => depth = depth.saturating_sub(1),
                    _ => {}
                }
                if let Some((_, from @ None)) = secret_value.as_mut()
                    && matches!(b, b'{' | b'[')
                {
                    *from = Some(i);
                }
                pending_key = None;
            }
            c if c.is_ascii_whitespace() => {}
            _ => {
                if let Some((_, from @ None)) = secret_value.as_mut() {
                    *from = Some(i);
                }
            }
        }
        i += 1;
    }
    if let Some((_, Some(from))) = secret_value {
        ranges.push(from..src.len());
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_source_hides_secrets_column_for_column() {
        let text = "<a>\n  <password-hash>$6$salt$abc</password-hash>\n\
                    <web-admin username=\"admin\" password-hash='$6$x$y'/>\n\
                    <password>hunter2</password>\n\
                    <private-key>-----BEGIN\nKEY\n-----END</private-key>\n</a>\n";
        let masked = MaskedSource::new(text.as_bytes());
        assert_eq!(
            masked.as_str(),
            "<a>\n  <password-hash>***********</password-hash>\n\
             <web-admin username=\"admin\" password-hash='******'/>\n\
             <password>*******</password>\n\
             <private-key>**********\n***\n********</private-key>\n</a>\n"
        );
        assert_eq!(masked.as_str().len(), text.len());
        assert_eq!(
            masked.line(1),
            Some("  <password-hash>***********</password-hash>")
        );
        assert_eq!(masked.line(9), None);
        assert_eq!(
            format!("{masked:?}"),
            format!("MaskedSource({} bytes)", text.len())
        );
    }

    #[test]
    fn what_was_not_read_is_masked() {
        let masked = MaskedSource::new(b"<a>\n<b x=1 password-hash=\"hunter2\"/>\n</a>");
        assert!(!masked.as_str().contains("hunter2"), "{masked:?}");
        assert_eq!(masked.line(0), Some("<a>"));
        let masked = MaskedSource::new(b"<a><password-hash>hun\xfftre</password-hash></a>");
        let stars = "*".repeat("hun\u{fffd}tre</password-hash></a>".chars().count());
        assert_eq!(masked.as_str(), format!("<a><password-hash>{stars}"));
    }

    #[test]
    fn metadata_json_masks_secret_values() {
        let json = br#"{"management_node_config": {"user": "admin", "pass": "hun\"ter2",
 "admin_password": ["x", {"y": 1}], "dns": "10.0.0.2"}}"#;
        let m = MaskedSource::metadata_json(json);
        assert_eq!(
            m.as_str(),
            "{\"management_node_config\": {\"user\": \"admin\", \"pass\": ***********,\n \"admin_password\": ***************, \"dns\": \"10.0.0.2\"}}"
        );
        let broken = MaskedSource::metadata_json(br#"{"pass" "hunter2", 12}"#);
        assert_eq!(broken.as_str(), r#"{"****" "*******", **}"#);
        let xml = "<node-config>\n<password-hash>hunter2</password-hash></node-config>";
        let conf = serde_json::json!({ "conferencing_node_config": xml }).to_string();
        let m = MaskedSource::metadata_json(conf.as_bytes());
        assert_eq!(
            m.line(1),
            Some("<password-hash>*******</password-hash></node-config>")
        );
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(format!("{s}"), "***");
        assert_eq!(format!("{:?}", Some(&s)), "Some(***)");
        assert_eq!(s.expose(), "hunter2");
    }
}
