//! A wrapper for values that must never be printed: password hashes, private keys, tokens.
//!
//! `Debug` and `Display` print `***`; the value is reached only through [`Secret::expose`], so
//! every place that reads a secret is visible in the code.

use std::sync::OnceLock;

use regex::Regex;
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

/// A configuration file's text with every secret value replaced by `*`, character for
/// character (newlines kept), so lines and columns still point at the same places.
///
/// Secrets are the contents of elements and the values of attributes whose name holds
/// `password`, `private-key`, `secret` or `token` — hashes, plain text put where a hash belongs,
/// keys. [`crate::Diagnostic::render`] takes only this type, so no rendered error can quote a
/// secret from the file.
#[derive(Clone, PartialEq, Eq)]
pub struct MaskedSource(String);

impl MaskedSource {
    /// Masks `source` (invalid UTF-8 is shown as U+FFFD).
    pub fn new(source: &[u8]) -> Self {
        MaskedSource(mask_secrets(&String::from_utf8_lossy(source)))
    }

    /// The masked text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for MaskedSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MaskedSource({} bytes)", self.0.len())
    }
}

fn mask_secrets(text: &str) -> String {
    const NAME: &str = r"[\w:.-]*(?:password|private-key|secret|token)[\w:.-]*";
    static PATTERN: OnceLock<Option<Regex>> = OnceLock::new();
    let pattern = PATTERN.get_or_init(|| {
        Regex::new(&format!(
            r#"(?s)(<{NAME}(?:\s[^>/]*)?>)([^<]*)|(\s{NAME}\s*=\s*)("[^"]*"|'[^']*')"#
        ))
        .ok()
    });
    let Some(re) = pattern else {
        // Without the pattern nothing can be shown safely: keep only the line structure.
        return text.lines().map(|_| "\n").collect();
    };
    let stars =
        |s: &str| -> String { s.chars().map(|c| if c == '\n' { c } else { '*' }).collect() };
    re.replace_all(text, |caps: &regex::Captures<'_>| {
        if let (Some(open), Some(body)) = (caps.get(1), caps.get(2)) {
            format!("{}{}", open.as_str(), stars(body.as_str()))
        } else if let (Some(name), Some(value)) = (caps.get(3), caps.get(4)) {
            let v = value.as_str();
            let quote = &v[..1];
            format!(
                "{}{quote}{}{quote}",
                name.as_str(),
                stars(&v[1..v.len() - 1])
            )
        } else {
            caps.get(0)
                .map(|m| m.as_str().to_owned())
                .unwrap_or_default()
        }
    })
    .into_owned()
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
            format!("{masked:?}"),
            format!("MaskedSource({} bytes)", text.len())
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
