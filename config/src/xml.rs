//! Reads XML bytes into a small element tree that remembers the line and column of every
//! element, attribute and text, using quick-xml's event reader.
//!
//! It refuses what a configuration file never needs and what makes XML dangerous: DOCTYPE and
//! entity declarations (so nothing is ever expanded and no file is ever read), processing
//! instructions other than the XML declaration, references to entities other than the five
//! predefined ones, a second root, non-UTF-8 input, control characters in names. Its work is
//! bounded whatever the input: at most [`MAX_DEPTH`](crate::MAX_DEPTH) levels,
//! [`MAX_ELEMENTS`](crate::MAX_ELEMENTS) elements and
//! [`MAX_ATTRIBUTES`](crate::MAX_ATTRIBUTES) attributes per element, each refused before the
//! tree grows; positions computed in one pass; no recursion anywhere.
//!
//! While reading it records the byte ranges of secret content (see [`is_secret_name`]) so that
//! [`crate::MaskedSource`] hides exactly those. It does not know the schema: that is
//! `crate::parse`'s (its shape) and `crate::rules`' (its rules) job.

use std::ops::Range;

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::diagnostic::{Diagnostic, Findings, Severity};
use crate::{MAX_ATTRIBUTES, MAX_DEPTH, MAX_ELEMENTS};

/// A 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Pos {
    pub line: u32,
    pub column: u32,
}

/// One attribute: name, unescaped value, where its name starts.
#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub name: String,
    pub value: String,
    pub pos: Pos,
}

/// One element: name, attributes, child elements, text content and positions.
///
/// The tree is at most [`MAX_DEPTH`](crate::MAX_DEPTH) deep (the reader refuses deeper input),
/// so the derived, recursive `Drop`, `Clone` and `Debug` stay shallow.
#[derive(Debug, Clone, Default)]
pub(crate) struct Element {
    pub name: String,
    /// Where the `<` of the start tag is.
    pub pos: Pos,
    pub attrs: Vec<Attr>,
    pub children: Vec<Element>,
    /// Concatenated character data (text, CDATA, resolved references).
    pub text: String,
    /// Where the first non-whitespace character data starts, if any.
    pub text_pos: Option<Pos>,
}

/// Whether an element's content or an attribute's value is a secret: a password (hash or,
/// by mistake, plain text), a private key, a token. Names are compared without case.
pub(crate) fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    ["password", "passphrase", "private-key", "secret", "token"]
        .iter()
        .any(|s| n.contains(s))
}

/// Elements whose own character data would be a secret put in the wrong place (the
/// password written as the text of `<ssh>` or `<web-admin>`, a key as the text of `<tls>`).
fn holds_secret_text(name: &str) -> bool {
    matches!(name, "ssh" | "tls" | "web-admin")
}

/// Maps byte offsets to line and column, counting columns in characters.
///
/// Lines come from a table of line starts built once; the column is counted from the previous
/// answer when the offset moves forward on the same line (the reader asks in increasing
/// order), so positions for a whole document cost one pass over it, one-line files included.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    src: &'a [u8],
    starts: Vec<usize>,
    /// The last answer: offset, line index, characters before the offset on that line.
    last: (usize, usize, usize),
}

/// Characters in a UTF-8 byte slice (any slice: bytes that continue a character are skipped).
fn count_chars(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xc0) != 0x80).count()
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex {
            src: src.as_bytes(),
            starts,
            last: (0, 0, 0),
        }
    }

    pub fn pos(&mut self, offset: usize) -> Pos {
        let offset = offset.min(self.src.len());
        let line_idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line_idx).copied().unwrap_or(0);
        let (from, before) = if self.last.1 == line_idx && self.last.0 <= offset {
            (self.last.0, self.last.2)
        } else {
            (start, 0)
        };
        let column = before + self.src.get(from..offset).map(count_chars).unwrap_or(0);
        self.last = (offset, line_idx, column);
        Pos {
            line: u32::try_from(line_idx + 1).unwrap_or(u32::MAX),
            column: u32::try_from(column + 1).unwrap_or(u32::MAX),
        }
    }
}

fn err(pos: Pos, path: &str, message: impl Into<String>, help: impl Into<String>) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        path: path.to_owned(),
        line: pos.line,
        column: pos.column,
        message: message.into(),
        help: Some(help.into()),
    }
}

/// Offset of `part` inside `whole`, when `part` is a slice of it.
fn offset_in(whole: &str, part: &[u8]) -> Option<usize> {
    let base = whole.as_ptr() as usize;
    let p = part.as_ptr() as usize;
    (p >= base && p + part.len() <= base + whole.len()).then(|| p - base)
}

fn path_of(stack: &[Element]) -> String {
    let mut p = String::new();
    for e in stack {
        p.push('/');
        p.push_str(&e.name);
    }
    p
}

/// The first character of `s` that [`crate::text::is_forbidden_in_value`] refuses.
pub(crate) fn forbidden_char(s: &str) -> Option<char> {
    crate::text::find_forbidden_in_value(s)
}

/// Character data with CR LF and lone CR read as LF, as XML says.
fn normalize_newlines(raw: &str) -> std::borrow::Cow<'_, str> {
    if raw.as_bytes().contains(&b'\r') {
        std::borrow::Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(raw)
    }
}

/// `U+001B`: how a refused character is named in a message.
pub(crate) fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// What reading a document gave: the tree or the errors, and what a masked view needs.
#[derive(Debug)]
pub(crate) struct ReadOutcome {
    /// The root element, or every error found (at most [`crate::MAX_DIAGNOSTICS`] and a count).
    pub tree: Result<Element, Vec<Diagnostic>>,
    /// Byte ranges (of the input) holding secret content, in increasing order.
    pub secrets: Vec<Range<usize>>,
    /// Where reading stopped on an error: nothing from here on was understood, so a masked
    /// view hides all of it.
    pub unread_from: Option<usize>,
}

/// Reads a whole document into its root element. Errors are collected as far as the XML stays
/// readable; a well-formedness error or a limit stops the reading (what follows cannot be
/// trusted).
pub(crate) fn read_tree(bytes: &[u8]) -> Result<Element, Vec<Diagnostic>> {
    read(bytes).tree
}

/// Reads a document: the tree (or errors), the secret ranges and where reading stopped.
pub(crate) fn read(bytes: &[u8]) -> ReadOutcome {
    let src = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            // Read the valid part for its secrets; everything after the bad byte is unread.
            let ok = std::str::from_utf8(bytes.get(..e.valid_up_to()).unwrap_or_default())
                .unwrap_or_default();
            let mut out = Builder::new(ok).run();
            let pos = LineIndex::new(ok).pos(ok.len());
            out.tree = Err(vec![err(
                pos,
                "",
                format!(
                    "the file is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
                "save the file as UTF-8",
            )]);
            out.unread_from = Some(out.unread_from.unwrap_or(ok.len()).min(ok.len()));
            return out;
        }
    };
    Builder::new(src).run()
}

/// The outermost open secret element: the stack depth it sits at and where its content starts.
#[derive(Debug, Clone, Copy)]
struct OpenSecret {
    depth: usize,
    from: usize,
}

/// The reader's state while it walks the events of one document.
struct Builder<'a> {
    src: &'a str,
    idx: LineIndex<'a>,
    errors: Findings,
    stack: Vec<Element>,
    root: Option<Element>,
    elements: usize,
    seen_decl: bool,
    seen_anything: bool,
    secrets: Vec<Range<usize>>,
    open_secret: Option<OpenSecret>,
}

/// Why reading stopped early: where nothing more was understood.
struct Stop {
    at: usize,
}

impl<'a> Builder<'a> {
    fn new(src: &'a str) -> Self {
        Builder {
            src,
            idx: LineIndex::new(src),
            errors: Findings::in_order(),
            stack: Vec::new(),
            root: None,
            elements: 0,
            seen_decl: false,
            seen_anything: false,
            secrets: Vec::new(),
            open_secret: None,
        }
    }

    fn path(&self) -> String {
        path_of(&self.stack)
    }

    fn secret_range(&mut self, r: Range<usize>) {
        if r.start < r.end {
            self.secrets.push(r);
        }
    }

    fn run(mut self) -> ReadOutcome {
        let stopped = self.events().err();
        // An element left open hides everything after its start: its end was never seen.
        if let Some(open) = self.open_secret.take() {
            self.secret_range(open.from..self.src.len());
        }
        let mut secrets = self.secrets;
        secrets.sort_by_key(|r| r.start);
        let unread_from = stopped.as_ref().map(|s| s.at);
        let tree = match (stopped, self.root) {
            (None, Some(r)) if self.errors.is_empty() => Ok(r),
            (None, None) => {
                let end = self.idx.pos(self.src.len());
                self.errors.push(err(
                    end,
                    "",
                    "the file has no root element",
                    "the file must contain one <node-config schema=\"1\"> element",
                ));
                Err(self.errors.finish())
            }
            _ => Err(self.errors.finish()),
        };
        ReadOutcome {
            tree,
            secrets,
            unread_from,
        }
    }

    /// Walks every event; `Err` when reading stopped early (the error is already recorded).
    fn events(&mut self) -> Result<(), Stop> {
        let body = self.src.strip_prefix('\u{feff}').unwrap_or(self.src);
        let bom = self.src.len() - body.len();
        let mut reader = Reader::from_str(body);
        let cfg = reader.config_mut();
        cfg.check_end_names = true;
        cfg.expand_empty_elements = false;
        cfg.trim_text(false);
        loop {
            let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX) + bom;
            let event = match reader.read_event() {
                Ok(ev) => ev,
                Err(e) => {
                    let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX) + bom;
                    let here = self.idx.pos(at.max(before));
                    let path = self.path();
                    let message = match &self.open_secret {
                        // quick-xml's words may quote names or text from inside the secret.
                        Some(_) => "the file is not well-formed XML inside a secret element (details are not shown, they could quote the secret)".to_owned(),
                        None => format!("the file is not well-formed XML: {e}"),
                    };
                    self.errors.push(err(
                        here,
                        &path,
                        message,
                        "fix the XML syntax (every element closed, attribute values quoted, no stray '<' or '&')",
                    ));
                    return Err(Stop { at: before.min(at) });
                }
            };
            let after = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX) + bom;
            match event {
                Event::Start(start) => {
                    self.open_element(&start, false, before..after, body, bom)?
                }
                Event::Empty(start) => self.open_element(&start, true, before..after, body, bom)?,
                Event::Decl(decl) => {
                    let here = self.idx.pos(before);
                    if let Some(Ok(enc)) = decl.encoding()
                        && !enc.eq_ignore_ascii_case("utf-8")
                    {
                        self.errors.push(err(
                            here,
                            "",
                            format!(
                                "encoding {:?} is not supported",
                                crate::text::printable_line(&enc)
                            ),
                            "save the file as UTF-8 and declare encoding=\"UTF-8\" (or no encoding)",
                        ));
                    }
                    if self.seen_anything || self.seen_decl {
                        let path = self.path();
                        self.errors.push(err(
                            here,
                            &path,
                            "the XML declaration is not at the start of the file",
                            "put <?xml version=\"1.0\" encoding=\"UTF-8\"?> first, or leave it out",
                        ));
                    }
                    self.seen_decl = true;
                }
                Event::DocType(_) => {
                    let here = self.idx.pos(before);
                    self.errors.push(err(
                        here,
                        "",
                        "a DOCTYPE (and any entity declaration) is not allowed",
                        "remove the <!DOCTYPE ...> declaration; configuration files use no DTD and no entities",
                    ));
                    // Nothing after a DTD is trusted: stop at once, nothing was expanded.
                    return Err(Stop { at: after });
                }
                Event::PI(pi) => {
                    let here = self.idx.pos(before);
                    let path = self.path();
                    let message = if self.open_secret.is_some() {
                        "a processing instruction is not allowed".to_owned()
                    } else {
                        let target = crate::text::printable_line(pi.target());
                        format!("processing instruction <?{target} ...?> is not allowed")
                    };
                    self.errors.push(err(
                        here,
                        &path,
                        message,
                        "remove it; only the <?xml ...?> declaration may appear",
                    ));
                }
                Event::Comment(_) => {}
                Event::End(_) => {
                    if let Some(el) = self.stack.pop() {
                        if let Some(open) = self.open_secret
                            && open.depth == self.stack.len()
                        {
                            self.secret_range(open.from..before);
                            self.open_secret = None;
                        }
                        self.finish(el);
                    }
                }
                Event::Text(t) => {
                    self.mask_own_text(before..after);
                    let raw: &str = &t;
                    let text = normalize_newlines(raw);
                    let lead = raw.len() - raw.trim_start().len();
                    let pos = self.idx.pos(before + lead);
                    self.push_text(&text, pos);
                    if self.stack.is_empty() && !text.trim().is_empty() {
                        self.seen_anything = true;
                    }
                }
                Event::CData(c) => {
                    self.mask_own_text(before..after);
                    let here = self.idx.pos(before);
                    let raw: &str = &c;
                    let text = normalize_newlines(raw);
                    self.push_text(&text, here);
                }
                Event::GeneralRef(r) => {
                    self.mask_own_text(before..after);
                    let here = self.idx.pos(before);
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => Some(c.to_string()),
                        Ok(None) => match &*r {
                            "lt" => Some("<".into()),
                            "gt" => Some(">".into()),
                            "amp" => Some("&".into()),
                            "apos" => Some("'".into()),
                            "quot" => Some("\"".into()),
                            _ => None,
                        },
                        Err(_) => None,
                    };
                    match resolved {
                        Some(s) => self.push_text(&s, here),
                        None => {
                            let path = self.path();
                            let message = if self.open_secret.is_some() || self.own_text_secret() {
                                "this reference is not allowed".to_owned()
                            } else {
                                let name = crate::text::printable_line(&r);
                                format!("reference &{name}; is not allowed")
                            };
                            self.errors.push(err(
                                here,
                                &path,
                                message,
                                "only &lt; &gt; &amp; &apos; &quot; and character references (&#NN;) are allowed; entities are never expanded",
                            ));
                        }
                    }
                }
                Event::Eof => break,
            }
        }
        if let Some(open) = self.stack.last() {
            let (pos, name) = (open.pos, open.name.clone());
            let path = self.path();
            self.errors.push(err(
                pos,
                &path,
                format!("element <{name}> is not closed"),
                format!("add </{name}>"),
            ));
            return Err(Stop { at: self.src.len() });
        }
        Ok(())
    }

    /// Whether the innermost open element's own text is secret (see [`holds_secret_text`]).
    fn own_text_secret(&self) -> bool {
        self.stack
            .last()
            .is_some_and(|e| holds_secret_text(&e.name))
    }

    /// Records character data as secret when it sits directly in an element whose text would be
    /// a misplaced secret. (Inside a secret element, the whole content is one range already.)
    /// Blanks around it (the file's indentation) stay visible.
    fn mask_own_text(&mut self, r: Range<usize>) {
        if self.open_secret.is_none() && self.own_text_secret() {
            let raw = self.src.get(r.clone()).unwrap_or_default();
            let lead = raw.len() - raw.trim_start().len();
            let trail = raw.len() - raw.trim_end().len();
            self.secret_range(r.start + lead..r.end.saturating_sub(trail));
        }
    }

    /// Turns a start (or empty) tag into an element on the stack, reading its attributes.
    /// Limits (depth, element count, attribute count) and bad names stop the reading here,
    /// before the tree grows.
    fn open_element(
        &mut self,
        start: &quick_xml::events::BytesStart<'_>,
        is_empty: bool,
        tag: Range<usize>,
        body: &str,
        bom: usize,
    ) -> Result<(), Stop> {
        let before = tag.start;
        let here = self.idx.pos(before);
        let stop = Stop { at: before };
        if let Some(open) = self.open_secret {
            let name = self.stack.get(open.depth).map(|e| e.name.clone());
            let name = name.unwrap_or_default();
            let path = path_of(self.stack.get(..=open.depth).unwrap_or_default());
            self.errors.push(err(
                here,
                &path,
                format!("an element inside <{name}> is not allowed"),
                format!("<{name}> holds only text"),
            ));
            return Err(stop);
        }
        let raw_name = start.name().as_ref().to_owned();
        let path = self.path();
        if let Some(c) = forbidden_char(&raw_name) {
            self.errors.push(err(
                here,
                &path,
                format!(
                    "an element name here contains the control character {}",
                    code_point(c)
                ),
                "element names are letters, digits, '-' and '.'; remove the character",
            ));
            return Err(stop);
        }
        let name = raw_name;
        let depth = self.stack.len() + 1;
        if depth > MAX_DEPTH {
            self.errors.push(err(
                here,
                &path,
                format!(
                    "element <{name}> is nested {depth} levels deep, over the limit of {MAX_DEPTH}"
                ),
                "a node configuration is at most 3 levels deep; check that this is the right file",
            ));
            return Err(stop);
        }
        self.elements += 1;
        if self.elements > MAX_ELEMENTS {
            self.errors.push(err(
                here,
                &format!("{path}/{name}"),
                format!("the file has more than {MAX_ELEMENTS} elements"),
                "a node configuration has a few dozen elements; check that this is the right file",
            ));
            return Err(stop);
        }
        let mut el = Element {
            name,
            pos: here,
            ..Element::default()
        };
        let el_path = format!("{path}/{}", el.name);
        let mut attrs = start.attributes();
        attrs.with_checks(false);
        for a in attrs {
            let a = match a {
                Ok(a) => a,
                Err(e) => {
                    self.errors.push(err(
                        here,
                        &el_path,
                        format!("the file is not well-formed XML: {e}"),
                        "write attributes as name=\"value\"",
                    ));
                    return Err(stop);
                }
            };
            if el.attrs.len() == MAX_ATTRIBUTES {
                self.errors.push(err(
                    here,
                    &el_path,
                    format!(
                        "element <{}> has more than {MAX_ATTRIBUTES} attributes",
                        el.name
                    ),
                    "an element of a node configuration has at most 3 attributes",
                ));
                return Err(stop);
            }
            let key = a.key.as_ref();
            let key_at = offset_in(body, key.as_bytes()).map(|o| o + bom);
            let pos = key_at.map(|o| self.idx.pos(o)).unwrap_or(here);
            let name = key.to_owned();
            if let Some(c) = forbidden_char(&name) {
                self.errors.push(err(
                    pos,
                    &el_path,
                    format!(
                        "an attribute name of <{}> contains the control character {}",
                        el.name,
                        code_point(c)
                    ),
                    "attribute names are letters, digits, '-' and '.'; remove the character",
                ));
                return Err(Stop {
                    at: key_at.unwrap_or(before),
                });
            }
            let secret = is_secret_name(&name);
            if secret {
                match offset_in(body, a.value.as_bytes()) {
                    Some(o) => self.secret_range(o + bom..o + bom + a.value.len()),
                    // Not a slice of the input: the value's place is unknown, so hide the rest.
                    None => return Err(Stop { at: before }),
                }
            }
            let raw = a.value.clone().into_owned();
            let value = match quick_xml::escape::unescape(&raw) {
                Ok(v) => v.into_owned(),
                Err(e) => {
                    let detail = if secret {
                        String::new()
                    } else {
                        format!(": {}", crate::text::printable_line(&e.to_string()))
                    };
                    self.errors.push(err(
                        pos,
                        &format!("{el_path}@{name}"),
                        format!("attribute {name:?} has a bad reference{detail}"),
                        "only &lt; &gt; &amp; &apos; &quot; and character references (&#NN;) are allowed; entities are never expanded",
                    ));
                    raw
                }
            };
            el.attrs.push(Attr { name, value, pos });
        }
        if self.stack.is_empty() {
            if self.root.is_some() {
                self.errors.push(err(
                    here,
                    &format!("/{}", el.name),
                    "a second root element is not allowed",
                    "put everything inside the one <node-config> element",
                ));
                return Err(stop);
            }
            self.seen_anything = true;
        }
        if is_empty {
            self.finish(el);
        } else {
            if is_secret_name(&el.name) {
                // the content starts right after this start tag
                self.open_secret = Some(OpenSecret {
                    depth: self.stack.len(),
                    from: tag.end,
                });
            }
            self.stack.push(el);
        }
        Ok(())
    }

    fn finish(&mut self, el: Element) {
        match self.stack.last_mut() {
            Some(parent) => parent.children.push(el),
            None => self.root = Some(el),
        }
    }

    /// Appends character data to the open element; `pos` is where its first non-blank
    /// character is (kept as the element's text position). Outside the root, only blanks are
    /// allowed.
    fn push_text(&mut self, text: &str, pos: Pos) {
        match self.stack.last_mut() {
            Some(el) => {
                if el.text_pos.is_none() && !text.trim().is_empty() {
                    el.text_pos = Some(pos);
                }
                el.text.push_str(text);
            }
            None => {
                if !text.trim().is_empty() {
                    let where_ = if self.root.is_some() {
                        "after"
                    } else {
                        "before"
                    };
                    self.errors.push(err(
                        pos,
                        "",
                        format!("text {where_} the root element is not allowed"),
                        "put everything inside the <node-config> element",
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let mut idx = LineIndex::new("ab\nçé<x");
        assert_eq!(idx.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(3), Pos { line: 2, column: 1 });
        assert_eq!(idx.pos(7), Pos { line: 2, column: 3 });
        // backwards, and forward again from there
        assert_eq!(idx.pos(1), Pos { line: 1, column: 2 });
        assert_eq!(idx.pos(8), Pos { line: 2, column: 4 });
        assert_eq!(idx.pos(5), Pos { line: 2, column: 2 });
    }

    #[test]
    fn tree_keeps_positions() {
        let root = read_tree(b"<a x=\"1\">\n  <b y='&lt;2'/>\n  <c>t&amp;u</c>\n</a>").unwrap();
        assert_eq!(root.name, "a");
        assert_eq!(root.attrs[0].pos, Pos { line: 1, column: 4 });
        let b = &root.children[0];
        assert_eq!(b.pos, Pos { line: 2, column: 3 });
        assert_eq!(b.attrs[0].value, "<2");
        assert_eq!(b.attrs[0].pos, Pos { line: 2, column: 6 });
        let c = &root.children[1];
        assert_eq!(c.text, "t&u");
        assert_eq!(c.text_pos, Some(Pos { line: 3, column: 6 }));
    }

    fn masked(doc: &str) -> Vec<&str> {
        let out = read(doc.as_bytes());
        out.secrets.iter().map(|r| &doc[r.clone()]).collect()
    }

    #[test]
    fn secret_ranges_cover_cdata_references_and_comments() {
        let doc = "<a><password-hash><!--c--><![CDATA[hunter2]]>&#104;x</password-hash>\
                   <web-admin username=\"u\" password-hash='p&amp;w'/><ssh> oops\n</ssh>\
                   <private-key>K</private-key><name>visible</name></a>";
        assert_eq!(
            masked(doc),
            ["<!--c--><![CDATA[hunter2]]>&#104;x", "p&amp;w", "oops", "K"]
        );
        assert_eq!(read(doc.as_bytes()).unread_from, None);
    }

    #[test]
    fn an_unclosed_secret_hides_everything_after_it() {
        let doc = "<a><password-hash><![CDATA[hunter2 and more";
        let out = read(doc.as_bytes());
        assert_eq!(masked(doc), ["<![CDATA[hunter2 and more"]);
        assert!(out.tree.is_err());
        let errs = out.tree.unwrap_err();
        assert!(!errs[0].message.contains("hunter2"), "{errs:?}");
    }

    #[test]
    fn names_inside_a_secret_are_never_quoted() {
        for doc in [
            "<a><password-hash><hunter2/></password-hash></a>",
            "<a><password-hash><hunter2></password-hash></a>",
            "<a><password-hash>&hunter2;</password-hash></a>",
            "<a><password-hash><?hunter2?></password-hash></a>",
            "<a><web-admin password-hash=\"&hunter2;\"/></a>",
            "<a><ssh>&hunter2;</ssh></a>",
        ] {
            let errs = read_tree(doc.as_bytes()).unwrap_err();
            for e in &errs {
                assert!(!format!("{e:?}").contains("hunter2"), "{doc}: {e:?}");
            }
        }
    }

    #[test]
    fn limits_stop_reading_before_the_tree_grows() {
        let deep = "<a>".repeat(MAX_DEPTH + 1);
        let errs = read_tree(deep.as_bytes()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message,
            "element <a> is nested 9 levels deep, over the limit of 8"
        );
        assert_eq!((errs[0].line, errs[0].column), (1, 25));

        let wide = format!("<a>{}</a>", "<x/>".repeat(MAX_ELEMENTS));
        let errs = read_tree(wide.as_bytes()).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].message, "the file has more than 4096 elements");
        assert_eq!(errs[0].column, 4 + 4 * 4095);

        let attrs: String = (0..=MAX_ATTRIBUTES)
            .map(|i| format!(" a{i}=\"\""))
            .collect();
        let errs = read_tree(format!("<a{attrs}/>").as_bytes()).unwrap_err();
        assert_eq!(errs[0].message, "element <a> has more than 16 attributes");
    }

    #[test]
    fn control_characters_in_names_are_refused_unquoted() {
        let errs = read_tree(b"<a><x\x1b[31m\x07/></a>").unwrap_err();
        assert_eq!(
            errs[0].message,
            "an element name here contains the control character U+001B"
        );
        assert_eq!((errs[0].line, errs[0].column), (1, 4));
    }
}
