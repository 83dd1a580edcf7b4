//! A stand-in reader of the OVF environment (`ovf-env.xml`): the `Property` elements of the
//! `http://schemas.dmtf.org/ovf/environment/1` namespace, as `(key, value)` pairs. The
//! platform engineer's `platform::ovf_properties` (VMware guestinfo and Azure read the same
//! document) replaces it when the two branches meet; the chain takes the reader as a seam
//! ([`super::OvfReader`]).

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// The OVF environment namespace.
pub const OVF_ENV_NS: &str = "http://schemas.dmtf.org/ovf/environment/1";

/// The most properties read.
const MAX_PROPERTIES: usize = 256;

/// The properties of an OVF environment document. `Err` when it is not XML, not UTF-8, or its
/// root is not `Environment` in [`OVF_ENV_NS`].
pub fn ovf_properties(xml: &[u8]) -> Result<Vec<(String, String)>, String> {
    let text = std::str::from_utf8(xml).map_err(|_| "ovf-env.xml is not UTF-8".to_owned())?;
    let mut reader = NsReader::from_str(text);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut root_seen = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("ovf-env.xml is not well-formed XML: {e}"))?;
        let in_ns = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == OVF_ENV_NS);
        let (start, empty) = match event {
            Event::Start(s) => (s, false),
            Event::Empty(s) => (s, true),
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                continue;
            }
            Event::DocType(_) => return Err("ovf-env.xml has a DOCTYPE".to_owned()),
            Event::Eof => break,
            _ => continue,
        };
        if !empty {
            depth += 1;
            if depth > 16 {
                return Err("ovf-env.xml nests deeper than 16 elements".to_owned());
            }
        }
        let local = start.local_name();
        if !root_seen {
            if local.as_ref() != "Environment" || !in_ns {
                return Err(format!(
                    "ovf-env.xml's root is not <Environment> in the namespace {OVF_ENV_NS}"
                ));
            }
            root_seen = true;
            continue;
        }
        if local.as_ref() != "Property" || !in_ns {
            continue;
        }
        let (mut key, mut value) = (None, None);
        for a in start.attributes() {
            let a = a.map_err(|e| format!("ovf-env.xml: a bad attribute: {e}"))?;
            let (ans, name) = reader.resolver().resolve_attribute(a.key);
            if !matches!(ans, ResolveResult::Bound(n) if n.as_ref() == OVF_ENV_NS) {
                continue;
            }
            let v = quick_xml::escape::unescape(&a.value)
                .map_err(|e| format!("ovf-env.xml: a bad attribute value: {e}"))?
                .into_owned();
            match name.as_ref() {
                "key" => key = Some(v),
                "value" => value = Some(v),
                _ => {}
            }
        }
        if let (Some(k), Some(v)) = (key, value) {
            if out.len() == MAX_PROPERTIES {
                return Err(format!(
                    "ovf-env.xml has more than {MAX_PROPERTIES} properties"
                ));
            }
            out.push((k, v));
        }
    }
    if !root_seen {
        return Err("ovf-env.xml has no root element".to_owned());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_in_the_namespace_only() {
        let xml = format!(
            r#"<?xml version="1.0"?><Environment xmlns="{OVF_ENV_NS}" xmlns:oe="{OVF_ENV_NS}" xmlns:x="urn:x">
            <PropertySection><Property oe:key="nodeboot.config" oe:value="PHg+"/>
            <Property oe:key="nodeboot.token" oe:value="a&amp;b"/>
            <x:Property oe:key="other" oe:value="no"/></PropertySection></Environment>"#
        );
        assert_eq!(
            ovf_properties(xml.as_bytes()).unwrap(),
            vec![
                ("nodeboot.config".to_owned(), "PHg+".to_owned()),
                ("nodeboot.token".to_owned(), "a&b".to_owned())
            ]
        );
        assert_eq!(
            ovf_properties(b"<Environment/>").unwrap_err(),
            format!("ovf-env.xml's root is not <Environment> in the namespace {OVF_ENV_NS}")
        );
    }
}
