//! Pure readers of the small XML documents platforms hand a guest: the OVF environment
//! (`ovf-env.xml`, `guestinfo.ovfEnv`: `oe:key`/`oe:value` properties), Azure's `CustomData`
//! in the same file, and the Azure wire server's goal state. They read names and values only;
//! they never fetch, expand entities or follow a DOCTYPE.

use quick_xml::events::Event;
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;

/// The OVF environment's namespace (DMTF DSP8027).
pub const OVF_ENV_NS: &str = "http://schemas.dmtf.org/ovf/environment/1";
/// The namespace of Azure's provisioning section (`CustomData`).
pub const AZURE_NS: &str = "http://schemas.microsoft.com/windowsazure";
/// The largest document read: an OVF environment carrying a base64 configuration of 1 MiB
/// (1.4 MiB) with room for the rest.
pub const MAX_XML: usize = 4 * 1024 * 1024;
/// The most properties read from one environment.
pub const MAX_PROPERTIES: usize = 1024;

/// Why an XML document from a platform could not be read. The message names the place
/// (byte offset) and never quotes a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

fn text_of(xml: &[u8], what: &str) -> Result<String, XmlError> {
    if xml.len() > MAX_XML {
        return Err(XmlError(format!(
            "the {what} is {} bytes long, over the limit of {MAX_XML} bytes",
            xml.len()
        )));
    }
    String::from_utf8(xml.to_vec()).map_err(|e| {
        XmlError(format!(
            "the {what} is not UTF-8 (byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

fn xml_error(what: &str, pos: u64, e: impl std::fmt::Display) -> XmlError {
    XmlError(format!(
        "the {what} is not well-formed XML at byte {pos}: {}",
        nodeboot_config::text::printable_line(&e.to_string())
    ))
}

/// The properties of an OVF environment (`<Property oe:key="…" oe:value="…"/>` in
/// `http://schemas.dmtf.org/ovf/environment/1`), in document order. Bounded: at most
/// [`MAX_XML`] bytes and [`MAX_PROPERTIES`] properties; a DOCTYPE is refused.
pub fn ovf_properties(xml: &[u8]) -> Result<Vec<(String, String)>, XmlError> {
    const WHAT: &str = "OVF environment";
    let text = text_of(xml, WHAT)?;
    let mut reader = NsReader::from_str(&text);
    let mut out = Vec::new();
    loop {
        let pos = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| xml_error(WHAT, pos, e))?;
        let in_oe = matches!(ns, ResolveResult::Bound(Namespace(n)) if n == OVF_ENV_NS);
        match event {
            Event::DocType(_) => {
                return Err(XmlError(format!(
                    "the {WHAT} has a DOCTYPE at byte {pos}; none is allowed"
                )));
            }
            Event::Start(e) | Event::Empty(e) if in_oe && e.local_name().as_ref() == "Property" => {
                let mut key = None;
                let mut value = None;
                for attr in e.attributes() {
                    let attr = attr.map_err(|e| xml_error(WHAT, pos, e))?;
                    let (ans, local) = reader.resolver().resolve_attribute(attr.key);
                    let attr_oe =
                        matches!(ans, ResolveResult::Bound(Namespace(n)) if n == OVF_ENV_NS);
                    if !attr_oe {
                        continue;
                    }
                    let v = attr
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|e| xml_error(WHAT, pos, e))?
                        .into_owned();
                    match local.as_ref() {
                        "key" => key = Some(v),
                        "value" => value = Some(v),
                        _ => {}
                    }
                }
                // A property without oe:key is not one of the environment's: skipped.
                let Some(key) = key else { continue };
                if out.len() == MAX_PROPERTIES {
                    return Err(XmlError(format!(
                        "the {WHAT} has more than {MAX_PROPERTIES} properties"
                    )));
                }
                out.push((key, value.unwrap_or_default()));
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

/// The text of the first element in namespace `ns` (any namespace when `None`) whose local
/// name is one of `names`, for each name: `[Some(text) | None; N]`. Entity references other
/// than the five XML ones are refused.
fn first_texts<const N: usize>(
    xml: &[u8],
    what: &str,
    ns: Option<&str>,
    names: [&str; N],
) -> Result<[Option<String>; N], XmlError> {
    let text = text_of(xml, what)?;
    let mut reader = NsReader::from_str(&text);
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut open: Option<usize> = None;
    let mut buf = String::new();
    loop {
        let pos = reader.buffer_position();
        let (rns, event) = reader
            .read_resolved_event()
            .map_err(|e| xml_error(what, pos, e))?;
        let ns_ok = match ns {
            None => true,
            Some(want) => matches!(rns, ResolveResult::Bound(Namespace(n)) if n == want),
        };
        match event {
            Event::DocType(_) => {
                return Err(XmlError(format!(
                    "the {what} has a DOCTYPE at byte {pos}; none is allowed"
                )));
            }
            Event::Start(e) if open.is_none() && ns_ok => {
                let local = e.local_name();
                if let Some(i) = names.iter().position(|n| *n == local.as_ref()) {
                    if out[i].is_none() {
                        open = Some(i);
                        buf.clear();
                    }
                }
            }
            Event::Text(t) if open.is_some() => buf.push_str(&t),
            Event::CData(t) if open.is_some() => buf.push_str(&t),
            Event::GeneralRef(r) if open.is_some() => {
                let c = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    _ => match &*r {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        _ => {
                            return Err(XmlError(format!(
                                "the {what} has an unknown entity reference at byte {pos}"
                            )));
                        }
                    },
                };
                buf.push(c);
            }
            Event::End(_) => {
                if let Some(i) = open.take() {
                    out[i] = Some(std::mem::take(&mut buf));
                }
            }
            Event::Eof => return Ok(out),
            _ => {}
        }
    }
}

/// Azure's `CustomData` from the provisioning disc's `ovf-env.xml` (the element in
/// `http://schemas.microsoft.com/windowsazure`), still base64 as Azure writes it. `None` when
/// the element is absent or empty.
pub fn azure_custom_data(xml: &[u8]) -> Result<Option<String>, XmlError> {
    let [data] = first_texts(xml, "Azure ovf-env.xml", Some(AZURE_NS), ["CustomData"])?;
    Ok(data.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()))
}

/// What the ready report needs from the wire server's goal state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalState {
    /// `GoalState/Incarnation`.
    pub incarnation: String,
    /// `GoalState/Container/ContainerId`.
    pub container_id: String,
    /// The first `RoleInstance/InstanceId`.
    pub instance_id: String,
}

/// Reads the wire server's goal state (`GET /machine/?comp=goalstate`).
pub fn goal_state(xml: &[u8]) -> Result<GoalState, XmlError> {
    const WHAT: &str = "Azure goal state";
    let [inc, cont, inst] = first_texts(
        xml,
        WHAT,
        None,
        ["Incarnation", "ContainerId", "InstanceId"],
    )?;
    let need = |v: Option<String>, name: &str| {
        v.map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| XmlError(format!("the {WHAT} has no {name}")))
    };
    Ok(GoalState {
        incarnation: need(inc, "Incarnation")?,
        container_id: need(cont, "ContainerId")?,
        instance_id: need(inst, "InstanceId")?,
    })
}

/// The health report that tells Azure the VM is ready (`POST /machine/?comp=health`).
pub fn render_health(goal: &GoalState) -> String {
    use quick_xml::escape::escape;
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
<Health xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">\n\
  <GoalStateIncarnation>{}</GoalStateIncarnation>\n\
  <Container>\n\
    <ContainerId>{}</ContainerId>\n\
    <RoleInstanceList>\n\
      <Role>\n\
        <InstanceId>{}</InstanceId>\n\
        <Health>\n\
          <State>Ready</State>\n\
        </Health>\n\
      </Role>\n\
    </RoleInstanceList>\n\
  </Container>\n\
</Health>\n",
        escape(goal.incarnation.as_str()),
        escape(goal.container_id.as_str()),
        escape(goal.instance_id.as_str()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<Environment xmlns="http://schemas.dmtf.org/ovf/environment/1"
     xmlns:oe="http://schemas.dmtf.org/ovf/environment/1" oe:id="">
  <PlatformSection><Kind>VMware ESXi</Kind></PlatformSection>
  <PropertySection>
    <Property oe:key="nodeboot.config" oe:value="PG5vZGU+"/>
    <Property oe:key="nodeboot.token" oe:value="a&amp;b"/>
    <Property key="not-oe" value="x"/>
  </PropertySection>
</Environment>"#;

    #[test]
    fn reads_oe_properties_in_order() {
        let props = ovf_properties(ENV.as_bytes()).unwrap_or_default();
        assert_eq!(
            props,
            vec![
                ("nodeboot.config".to_owned(), "PG5vZGU+".to_owned()),
                ("nodeboot.token".to_owned(), "a&b".to_owned()),
            ]
        );
    }

    #[test]
    fn other_namespace_is_ignored() {
        let xml = r#"<Environment xmlns:oe="urn:other"><Property oe:key="k" oe:value="v"/></Environment>"#;
        assert_eq!(ovf_properties(xml.as_bytes()), Ok(vec![]));
    }

    #[test]
    fn refuses_doctype_and_bad_xml() {
        let xml = "<!DOCTYPE x [<!ENTITY a \"b\">]><Environment/>";
        let e = ovf_properties(xml.as_bytes()).err().map(|e| e.0);
        assert_eq!(
            e.as_deref(),
            Some("the OVF environment has a DOCTYPE at byte 0; none is allowed")
        );
        assert!(ovf_properties(b"<a><b></a>").is_err());
        assert!(ovf_properties(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn bounded_input_and_count() {
        let big = vec![b' '; MAX_XML + 1];
        assert!(ovf_properties(&big).is_err());
        let mut many = String::from(r#"<E xmlns:oe="http://schemas.dmtf.org/ovf/environment/1">"#);
        for i in 0..=MAX_PROPERTIES {
            many.push_str(&format!(r#"<oe:Property oe:key="k{i}" oe:value=""/>"#));
        }
        many.push_str("</E>");
        let e = ovf_properties(many.as_bytes()).err().map(|e| e.0);
        assert_eq!(
            e.as_deref(),
            Some("the OVF environment has more than 1024 properties")
        );
    }

    #[test]
    fn azure_custom_data_found_or_absent() {
        let xml = r#"<ns0:Environment xmlns:ns0="http://schemas.dmtf.org/ovf/environment/1" xmlns:ns1="http://schemas.microsoft.com/windowsazure">
<ns1:ProvisioningSection><ns1:LinuxProvisioningConfigurationSet>
<ns1:HostName>n</ns1:HostName><ns1:CustomData> PG5vZGUvPg== </ns1:CustomData>
</ns1:LinuxProvisioningConfigurationSet></ns1:ProvisioningSection></ns0:Environment>"#;
        assert_eq!(
            azure_custom_data(xml.as_bytes()),
            Ok(Some("PG5vZGUvPg==".to_owned()))
        );
        let none = r#"<Environment xmlns:w="http://schemas.microsoft.com/windowsazure"><w:HostName>n</w:HostName></Environment>"#;
        assert_eq!(azure_custom_data(none.as_bytes()), Ok(None));
    }

    #[test]
    fn goal_state_and_health() {
        let xml = r#"<?xml version="1.0" encoding="utf-8"?>
<GoalState xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Version>2012-11-30</Version>
<Incarnation>3</Incarnation><Machine><ExpectedState>Started</ExpectedState></Machine>
<Container><ContainerId>c-1</ContainerId><RoleInstanceList><RoleInstance>
<InstanceId>i&amp;1</InstanceId></RoleInstance></RoleInstanceList></Container></GoalState>"#;
        let g = goal_state(xml.as_bytes());
        let want = GoalState {
            incarnation: "3".into(),
            container_id: "c-1".into(),
            instance_id: "i&1".into(),
        };
        assert_eq!(g, Ok(want.clone()));
        let h = render_health(&want);
        assert!(h.contains("<InstanceId>i&amp;1</InstanceId>"), "{h}");
        assert!(h.contains("<GoalStateIncarnation>3</GoalStateIncarnation>"));
        assert!(h.contains("<State>Ready</State>"));
        let e = goal_state(b"<GoalState><Incarnation>1</Incarnation></GoalState>");
        assert_eq!(
            e,
            Err(XmlError("the Azure goal state has no ContainerId".into()))
        );
    }
}
