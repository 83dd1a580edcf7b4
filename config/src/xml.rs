//! Reads XML bytes into a small element tree that remembers the line and column of every
//! element, attribute and text, using quick-xml's event reader.
//!
//! It refuses what a configuration file never needs and what makes XML dangerous: DOCTYPE and
//! entity declarations (so nothing is ever expanded and no file is ever read), processing
//! instructions other than the XML declaration, references to entities other than the five
//! predefined ones, a second root, non-UTF-8 input. It does not know the schema: that is
//! `crate::parse`'s job.

use quick_xml::events::Event;
use quick_xml::reader::Reader;

use crate::diagnostic::{Diagnostic, Severity};

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

/// Maps byte offsets to line and column, counting columns in characters.
#[derive(Debug)]
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(src.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { src, starts }
    }

    pub fn pos(&self, offset: usize) -> Pos {
        let offset = offset.min(self.src.len());
        let line_idx = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line_idx).copied().unwrap_or(0);
        let column = self
            .src
            .get(start..offset)
            .map(|s| s.chars().count())
            .unwrap_or(0);
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

/// Reads a whole document into its root element. Errors are collected as far as the XML stays
/// readable; a well-formedness error stops the reading (what follows cannot be trusted).
pub(crate) fn read_tree(bytes: &[u8]) -> Result<(Element, LineIndex<'_>), Vec<Diagnostic>> {
    let src = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => {
            let ok = bytes.get(..e.valid_up_to()).unwrap_or_default();
            let idx = LineIndex::new(std::str::from_utf8(ok).unwrap_or_default());
            let pos = idx.pos(ok.len());
            return Err(vec![err(
                pos,
                "",
                format!(
                    "the file is not valid UTF-8 (invalid byte at offset {})",
                    e.valid_up_to()
                ),
                "save the file as UTF-8",
            )]);
        }
    };
    let src_body = src.strip_prefix('\u{feff}').unwrap_or(src);
    let idx = LineIndex::new(src);
    let mut errors = Vec::new();
    let mut reader = Reader::from_str(src_body);
    let bom = src.len() - src_body.len();
    let cfg = reader.config_mut();
    cfg.check_end_names = true;
    cfg.expand_empty_elements = false;
    cfg.trim_text(false);

    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut seen_decl = false;
    let mut seen_anything = false;
    loop {
        let before = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX) + bom;
        let here = idx.pos(before);
        let event = match reader.read_event() {
            Ok(ev @ (Event::Start(_) | Event::Empty(_))) => {
                let is_empty = matches!(ev, Event::Empty(_));
                let (Event::Start(start) | Event::Empty(start)) = ev else {
                    continue;
                };
                match open_element(
                    &start,
                    is_empty,
                    here,
                    src_body,
                    bom,
                    &idx,
                    &mut stack,
                    &mut root,
                    &mut seen_anything,
                ) {
                    Ok(mut soft) => errors.append(&mut soft),
                    Err(mut fatal) => {
                        errors.append(&mut fatal);
                        return Err(errors);
                    }
                }
                continue;
            }
            Ok(ev) => ev,
            Err(e) => {
                let at = usize::try_from(reader.error_position()).unwrap_or(usize::MAX) + bom;
                errors.push(err(
                    idx.pos(at),
                    &path_of(&stack),
                    format!("the file is not well-formed XML: {e}"),
                    "fix the XML syntax (every element closed, attribute values quoted, no stray '<' or '&')",
                ));
                return Err(errors);
            }
        };
        match event {
            Event::Decl(decl) => {
                if let Some(Ok(enc)) = decl.encoding()
                    && !enc.eq_ignore_ascii_case("utf-8")
                {
                    errors.push(err(
                        here,
                        "",
                        format!("encoding {:?} is not supported", &*enc),
                        "save the file as UTF-8 and declare encoding=\"UTF-8\" (or no encoding)",
                    ));
                }
                if seen_anything || seen_decl {
                    errors.push(err(
                        here,
                        &path_of(&stack),
                        "the XML declaration is not at the start of the file",
                        "put <?xml version=\"1.0\" encoding=\"UTF-8\"?> first, or leave it out",
                    ));
                }
                seen_decl = true;
            }
            Event::DocType(_) => {
                errors.push(err(
                    here,
                    "",
                    "a DOCTYPE (and any entity declaration) is not allowed",
                    "remove the <!DOCTYPE ...> declaration; configuration files use no DTD and no entities",
                ));
                // Nothing after a DTD is trusted: stop at once, nothing was expanded.
                return Err(errors);
            }
            Event::PI(pi) => {
                let target = pi.target().to_owned();
                errors.push(err(
                    here,
                    &path_of(&stack),
                    format!("processing instruction <?{target} ...?> is not allowed"),
                    "remove it; only the <?xml ...?> declaration may appear",
                ));
            }
            Event::Comment(_) => {}
            Event::Start(_) | Event::Empty(_) => {}
            Event::End(_) => {
                if let Some(el) = stack.pop() {
                    finish(el, &mut stack, &mut root);
                }
            }
            Event::Text(t) => {
                let raw = (*t).to_owned();
                let text = raw.replace("\r\n", "\n").replace('\r', "\n");
                let lead = raw.len() - raw.trim_start().len();
                push_text(
                    &mut stack,
                    &mut errors,
                    &text,
                    idx.pos(before + lead),
                    &root,
                );
                if stack.is_empty() && !text.trim().is_empty() {
                    seen_anything = true;
                }
            }
            Event::CData(c) => {
                let text = (*c).to_owned();
                let text = text.replace("\r\n", "\n").replace('\r', "\n");
                push_text(&mut stack, &mut errors, &text, here, &root);
            }
            Event::GeneralRef(r) => {
                let name = (*r).to_owned();
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    Ok(None) => match name.as_str() {
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
                    Some(s) => {
                        push_text(&mut stack, &mut errors, &s, here, &root)
                    }
                    None => errors.push(err(
                        here,
                        &path_of(&stack),
                        format!("reference &{name}; is not allowed"),
                        "only &lt; &gt; &amp; &apos; &quot; and character references (&#NN;) are allowed; entities are never expanded",
                    )),
                }
            }
            Event::Eof => break,
        }
    }
    if let Some(open) = stack.last() {
        errors.push(err(
            open.pos,
            &path_of(&stack),
            format!("element <{}> is not closed", open.name),
            format!("add </{}>", open.name),
        ));
        return Err(errors);
    }
    match root {
        Some(r) if errors.is_empty() => Ok((r, idx)),
        Some(_) => Err(errors),
        None => {
            errors.push(err(
                idx.pos(src.len()),
                "",
                "the file has no root element",
                "the file must contain one <node-config schema=\"1\"> element",
            ));
            Err(errors)
        }
    }
}

/// Turns a start (or empty) tag into an element on the stack, reading its attributes.
#[allow(clippy::too_many_arguments)]
fn open_element(
    start: &quick_xml::events::BytesStart<'_>,
    is_empty: bool,
    here: Pos,
    src_body: &str,
    bom: usize,
    idx: &LineIndex<'_>,
    stack: &mut Vec<Element>,
    root: &mut Option<Element>,
    seen_anything: &mut bool,
) -> Result<Vec<Diagnostic>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let name = start.name().as_ref().to_owned();
    let mut el = Element {
        name,
        pos: here,
        ..Element::default()
    };
    let mut attrs = start.attributes();
    attrs.with_checks(false);
    for a in attrs {
        match a {
            Ok(a) => {
                let key = a.key.as_ref();
                let pos = offset_in(src_body, key.as_bytes())
                    .map(|o| idx.pos(o + bom))
                    .unwrap_or(here);
                let name = key.to_owned();
                let raw = a.value.clone().into_owned();
                let value = match quick_xml::escape::unescape(&raw) {
                    Ok(v) => v.into_owned(),
                    Err(e) => {
                        errors.push(err(
                            pos,
                            &format!("{}/{}@{}", path_of(stack), el.name, name),
                            format!("attribute {name:?} has a bad reference: {e}"),
                            "only &lt; &gt; &amp; &apos; &quot; and character references (&#NN;) are allowed; entities are never expanded",
                        ));
                        raw
                    }
                };
                el.attrs.push(Attr { name, value, pos });
            }
            Err(e) => {
                errors.push(err(
                    here,
                    &format!("{}/{}", path_of(stack), el.name),
                    format!("the file is not well-formed XML: {e}"),
                    "write attributes as name=\"value\"",
                ));
                return Err(errors);
            }
        }
    }
    if stack.is_empty() {
        if root.is_some() {
            errors.push(err(
                here,
                &format!("/{}", el.name),
                "a second root element is not allowed",
                "put everything inside the one <node-config> element",
            ));
            return Err(errors);
        }
        *seen_anything = true;
    }
    if is_empty {
        finish(el, stack, root);
    } else {
        stack.push(el);
    }
    Ok(errors)
}

fn finish(el: Element, stack: &mut [Element], root: &mut Option<Element>) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(el),
        None => *root = Some(el),
    }
}

/// Appends character data to the open element; `pos` is where its first non-blank character
/// is (kept as the element's text position). Outside the root, only blanks are allowed.
fn push_text(
    stack: &mut [Element],
    errors: &mut Vec<Diagnostic>,
    text: &str,
    pos: Pos,
    root: &Option<Element>,
) {
    match stack.last_mut() {
        Some(el) => {
            if el.text_pos.is_none() && !text.trim().is_empty() {
                el.text_pos = Some(pos);
            }
            el.text.push_str(text);
        }
        None => {
            if !text.trim().is_empty() {
                let where_ = if root.is_some() { "after" } else { "before" };
                errors.push(err(
                    pos,
                    "",
                    format!("text {where_} the root element is not allowed"),
                    "put everything inside the <node-config> element",
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_count_characters() {
        let idx = LineIndex::new("ab\nçé<x");
        assert_eq!(idx.pos(0), Pos { line: 1, column: 1 });
        assert_eq!(idx.pos(3), Pos { line: 2, column: 1 });
        assert_eq!(idx.pos(7), Pos { line: 2, column: 3 });
    }

    #[test]
    fn tree_keeps_positions() {
        let (root, _) =
            read_tree(b"<a x=\"1\">\n  <b y='&lt;2'/>\n  <c>t&amp;u</c>\n</a>").unwrap();
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
}
