//! The OVA format, pure parts: the OVF 1.0 descriptor (written with quick-xml), the SHA-256
//! manifest, and reading back a VMDK's embedded descriptor. Files and tools are in `ova`.
//!
//! OVF 1.0 is the version every importer reads (VMware, VirtualBox, virt-v2v). The virtual
//! hardware family (`vmx-N`) must match the `ddb.virtualHWVersion` inside the VMDK.

use std::io::{self, Read};

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};
use sha2::{Digest, Sha256};

const OVF_NS: &str = "http://schemas.dmtf.org/ovf/envelope/1";
const RASD_NS: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData";
const VSSD_NS: &str =
    "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData";
const VMW_NS: &str = "http://www.vmware.com/schema/ovf";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
/// The OVF disk format URI of a streamOptimized VMDK.
pub const STREAM_OPTIMIZED: &str =
    "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized";
/// The name of the single network the NIC connects to; importers map it to a real one.
pub const NETWORK_NAME: &str = "VM Network";

/// What the descriptor says about the virtual machine and its one disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvfSpec {
    /// The virtual system's name (also its id).
    pub name: String,
    /// Number of virtual CPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// The VMware virtual hardware version (`vmx-N`), equal to the VMDK's.
    pub hw_version: u32,
    /// The VMDK file's name inside the OVA.
    pub disk_file: String,
    /// The VMDK file's size in bytes.
    pub disk_file_size: u64,
    /// The disk's capacity (virtual size) in bytes.
    pub capacity: u64,
}

fn elem<W: io::Write>(w: &mut Writer<W>, name: &str, text: &str) -> io::Result<()> {
    w.create_element(name)
        .write_text_content(BytesText::new(text))?;
    Ok(())
}

/// One `<Item>` of the virtual hardware section; `fields` must be in the CIM schema's
/// (alphabetical) order, which strict validators check.
fn item<W: io::Write>(w: &mut Writer<W>, fields: &[(&str, &str)]) -> io::Result<()> {
    w.create_element("Item").write_inner_content(|w| {
        for (name, value) in fields {
            elem(w, &format!("rasd:{name}"), value)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Renders the OVF 1.0 descriptor: references, disk section (streamOptimized), network
/// section, and one virtual system with CPUs, memory, an LSI Logic SCSI controller, the disk
/// on it, and an E1000 NIC.
pub fn render_ovf(spec: &OvfSpec) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_ovf(&mut w, spec);
    String::from_utf8_lossy(&w.into_inner()).into_owned() + "\n"
}

fn write_ovf<W: io::Write>(w: &mut Writer<W>, s: &OvfSpec) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    let file_size = s.disk_file_size.to_string();
    let capacity = s.capacity.to_string();
    let cpus = s.cpus.to_string();
    let memory = s.memory_mib.to_string();
    let system_type = format!("vmx-{}", s.hw_version);
    w.create_element("Envelope")
        .with_attribute(("xmlns", OVF_NS))
        .with_attribute(("xmlns:ovf", OVF_NS))
        .with_attribute(("xmlns:rasd", RASD_NS))
        .with_attribute(("xmlns:vssd", VSSD_NS))
        .with_attribute(("xmlns:vmw", VMW_NS))
        .with_attribute(("xmlns:xsi", XSI_NS))
        .write_inner_content(|w| {
            w.create_element("References").write_inner_content(|w| {
                w.create_element("File")
                    .with_attribute(("ovf:href", s.disk_file.as_str()))
                    .with_attribute(("ovf:id", "file1"))
                    .with_attribute(("ovf:size", file_size.as_str()))
                    .write_empty()?;
                Ok(())
            })?;
            w.create_element("DiskSection").write_inner_content(|w| {
                elem(w, "Info", "Virtual disk information")?;
                w.create_element("Disk")
                    .with_attribute(("ovf:capacity", capacity.as_str()))
                    .with_attribute(("ovf:capacityAllocationUnits", "byte"))
                    .with_attribute(("ovf:diskId", "vmdisk1"))
                    .with_attribute(("ovf:fileRef", "file1"))
                    .with_attribute(("ovf:format", STREAM_OPTIMIZED))
                    .write_empty()?;
                Ok(())
            })?;
            w.create_element("NetworkSection")
                .write_inner_content(|w| {
                    elem(w, "Info", "The list of logical networks")?;
                    w.create_element("Network")
                        .with_attribute(("ovf:name", NETWORK_NAME))
                        .write_inner_content(|w| {
                            elem(
                                w,
                                "Description",
                                "The network of the node's first interface (eth0)",
                            )
                        })?;
                    Ok(())
                })?;
            w.create_element("VirtualSystem")
                .with_attribute(("ovf:id", s.name.as_str()))
                .write_inner_content(|w| {
                    elem(
                        w,
                        "Info",
                        "A nodeboot node: it waits for its configuration on port 8443",
                    )?;
                    elem(w, "Name", &s.name)?;
                    w.create_element("OperatingSystemSection")
                        .with_attribute(("ovf:id", "96"))
                        .with_attribute(("vmw:osType", "debian12_64Guest"))
                        .write_inner_content(|w| {
                            elem(w, "Info", "The kind of installed guest operating system")?;
                            elem(w, "Description", "Debian GNU/Linux 12 (64-bit)")
                        })?;
                    // The OVF environment reaches the guest by VMware's guestinfo and, for
                    // other deployers, as an ISO (ovf-env.xml): DSP0243 puts `ovf:transport`
                    // on the VirtualHardwareSection.
                    w.create_element("VirtualHardwareSection")
                        .with_attribute(("ovf:transport", OVF_TRANSPORT))
                        .write_inner_content(|w| {
                            elem(w, "Info", "Virtual hardware requirements")?;
                            w.create_element("System").write_inner_content(|w| {
                                elem(w, "vssd:ElementName", "Virtual Hardware Family")?;
                                elem(w, "vssd:InstanceID", "0")?;
                                elem(w, "vssd:VirtualSystemIdentifier", &s.name)?;
                                elem(w, "vssd:VirtualSystemType", &system_type)
                            })?;
                            item(
                                w,
                                &[
                                    ("AllocationUnits", "hertz * 10^6"),
                                    ("Description", "Number of Virtual CPUs"),
                                    ("ElementName", &format!("{cpus} virtual CPU(s)")),
                                    ("InstanceID", "1"),
                                    ("ResourceType", "3"),
                                    ("VirtualQuantity", &cpus),
                                ],
                            )?;
                            item(
                                w,
                                &[
                                    ("AllocationUnits", "byte * 2^20"),
                                    ("Description", "Memory Size"),
                                    ("ElementName", &format!("{memory}MB of memory")),
                                    ("InstanceID", "2"),
                                    ("ResourceType", "4"),
                                    ("VirtualQuantity", &memory),
                                ],
                            )?;
                            item(
                                w,
                                &[
                                    ("Address", "0"),
                                    ("Description", "SCSI Controller"),
                                    ("ElementName", "SCSI Controller 0"),
                                    ("InstanceID", "3"),
                                    ("ResourceSubType", "lsilogic"),
                                    ("ResourceType", "6"),
                                ],
                            )?;
                            item(
                                w,
                                &[
                                    ("AddressOnParent", "0"),
                                    ("ElementName", "Hard Disk 1"),
                                    ("HostResource", "ovf:/disk/vmdisk1"),
                                    ("InstanceID", "4"),
                                    ("Parent", "3"),
                                    ("ResourceType", "17"),
                                ],
                            )?;
                            item(
                                w,
                                &[
                                    ("AddressOnParent", "7"),
                                    ("AutomaticAllocation", "true"),
                                    ("Connection", NETWORK_NAME),
                                    ("Description", "E1000 ethernet adapter on \"VM Network\""),
                                    ("ElementName", "Network adapter 1"),
                                    ("InstanceID", "5"),
                                    ("ResourceSubType", "E1000"),
                                    ("ResourceType", "10"),
                                ],
                            )
                        })?;
                    write_product_section(w)
                })?;
            Ok(())
        })?;
    Ok(())
}

/// The transports the OVF environment is offered by (vSphere: guestinfo and an ISO).
pub const OVF_TRANSPORT: &str = "com.vmware.guestInfo iso";

/// The properties a deployer asks for (key, label, description, password).
pub const PRODUCT_PROPERTIES: &[(&str, &str, &str, bool)] = &[
    (
        "nodeboot.config",
        "Node configuration (base64)",
        "The node's configuration, schema-1 XML or the Management Node JSON, encoded with \
         `base64 -w0`. The node applies it at its first boot and reboots into it; an invalid one \
         is shown on the console and on https://<node>:8443/. Empty: configure the node on port \
         8443 or at the console.",
        false,
    ),
    (
        "nodeboot.token",
        "Bootstrap token",
        "Optional. When set and no configuration is given, port 8443 accepts only uploads that \
         carry this token.",
        true,
    ),
];

/// The `ProductSection` with the user-configurable properties `nodeboot.config` and
/// `nodeboot.token` (a password: deployers mask it), so OVF deployers prompt for them and hand
/// them to the node in its OVF environment (docs/sources.md).
fn write_product_section<W: io::Write>(w: &mut Writer<W>) -> io::Result<()> {
    w.create_element("ProductSection")
        .with_attribute(("ovf:required", "false"))
        .write_inner_content(|w| {
            elem(
                w,
                "Info",
                "The node's configuration, asked for at deployment",
            )?;
            elem(w, "Product", "nodeboot node")?;
            elem(w, "Category", "Configuration")?;
            for (key, label, description, password) in PRODUCT_PROPERTIES {
                let mut p = w
                    .create_element("Property")
                    .with_attribute(("ovf:key", *key))
                    .with_attribute(("ovf:type", "string"))
                    .with_attribute(("ovf:userConfigurable", "true"))
                    .with_attribute(("ovf:value", ""));
                if *password {
                    p = p.with_attribute(("ovf:password", "true"));
                }
                p.write_inner_content(|w| {
                    elem(w, "Label", label)?;
                    elem(w, "Description", description)
                })?;
            }
            Ok(())
        })?;
    Ok(())
}

/// The lowercase hex SHA-256 of everything `reader` yields.
pub fn sha256_hex(mut reader: impl Read) -> io::Result<String> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

/// The manifest: one `SHA256(file)= hex` line for the descriptor and each disk, in order.
pub fn render_manifest(entries: &[(&str, &str)]) -> String {
    entries
        .iter()
        .map(|(name, hex)| format!("SHA256({name})= {hex}\n"))
        .collect()
}

/// Reads a manifest back into (file, hex) pairs; a malformed line is an error naming it.
pub fn parse_manifest(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let parsed = line
            .strip_prefix("SHA256(")
            .and_then(|rest| rest.split_once(")= "))
            .filter(|(_, hex)| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
        match parsed {
            Some((name, hex)) => out.push((name.to_string(), hex.to_string())),
            None => {
                return Err(format!(
                    "manifest line {}: expected `SHA256(<file>)= <64 hex digits>`, got `{line}`",
                    i + 1
                ));
            }
        }
    }
    Ok(out)
}

/// The text descriptor embedded in a sparse (monolithicSparse or streamOptimized) VMDK.
pub fn read_vmdk_descriptor(mut file: impl Read) -> io::Result<String> {
    let mut header = [0u8; 512];
    file.read_exact(&mut header)?;
    if &header[0..4] != b"KDMV" {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "not a sparse VMDK (no KDMV magic)",
        ));
    }
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&header[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let (offset, size) = (u64_at(28), u64_at(36));
    if offset != 1 || size == 0 || size > 64 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected VMDK descriptor position (sector {offset}, {size} sectors)"),
        ));
    }
    let mut text = vec![0u8; usize::try_from(size * 512).unwrap_or(0)];
    file.read_exact(&mut text)?;
    let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    Ok(String::from_utf8_lossy(&text[..end]).into_owned())
}

/// A `key = "value"` (or `key="value"`) entry of a VMDK descriptor.
pub fn vmdk_descriptor_value<'a>(descriptor: &'a str, key: &str) -> Option<&'a str> {
    descriptor.lines().find_map(|line| {
        let (k, v) = line.split_once('=')?;
        (k.trim() == key).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use quick_xml::Reader;

    fn spec() -> OvfSpec {
        OvfSpec {
            name: "nodeboot-node".into(),
            cpus: 2,
            memory_mib: 4096,
            hw_version: 13,
            disk_file: "nodeboot-node-disk1.vmdk".into(),
            disk_file_size: 123_456,
            capacity: 2 * 1024 * 1024 * 1024,
        }
    }

    /// An element: its path (names joined by '/'), attributes and text.
    type Element = (String, Vec<(String, String)>, String);

    /// Every element's path (local names joined by '/') with its attributes and text.
    fn flatten(xml: &str) -> Vec<Element> {
        let mut reader = Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut path: Vec<String> = Vec::new();
        let mut out: Vec<Element> = Vec::new();
        loop {
            let (e, empty) = match reader.read_event().unwrap() {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::Text(t) => {
                    if let Some(last) = out.last_mut() {
                        last.2 = t.into_inner().into_owned();
                    }
                    continue;
                }
                Event::End(_) => {
                    path.pop();
                    continue;
                }
                Event::Eof => break,
                _ => continue,
            };
            let name = e.name().as_ref().to_string();
            let attrs = e
                .attributes()
                .map(|a| {
                    let a = a.unwrap();
                    (
                        a.key.as_ref().to_string(),
                        a.normalized_value(quick_xml::XmlVersion::default())
                            .unwrap()
                            .into_owned(),
                    )
                })
                .collect();
            path.push(name);
            out.push((path.join("/"), attrs, String::new()));
            if empty {
                path.pop();
            }
        }
        out
    }

    fn attr<'a>(attrs: &'a [(String, String)], key: &str) -> &'a str {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key}"))
    }

    #[test]
    fn ovf_parses_back_with_every_section_an_importer_reads() {
        let xml = render_ovf(&spec());
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Envelope xmlns=\"http://schemas.dmtf.org/ovf/envelope/1\""));
        let elems = flatten(&xml);
        let find = |p: &str| {
            elems
                .iter()
                .find(|(path, _, _)| path == p)
                .unwrap_or_else(|| panic!("no {p} in\n{xml}"))
        };
        let file = &find("Envelope/References/File").1;
        assert_eq!(attr(file, "ovf:href"), "nodeboot-node-disk1.vmdk");
        assert_eq!(attr(file, "ovf:size"), "123456");
        let disk = &find("Envelope/DiskSection/Disk").1;
        assert_eq!(attr(disk, "ovf:capacity"), "2147483648");
        assert_eq!(attr(disk, "ovf:fileRef"), "file1");
        assert_eq!(attr(disk, "ovf:format"), STREAM_OPTIMIZED);
        assert_eq!(
            attr(&find("Envelope/NetworkSection/Network").1, "ovf:name"),
            "VM Network"
        );
        assert_eq!(
            find("Envelope/VirtualSystem/VirtualHardwareSection/System/vssd:VirtualSystemType").2,
            "vmx-13"
        );
        // The items by resource type: CPU 3, memory 4, SCSI 6, disk 17, NIC 10.
        let types: Vec<&str> = elems
            .iter()
            .filter(|(p, _, _)| {
                p == "Envelope/VirtualSystem/VirtualHardwareSection/Item/rasd:ResourceType"
            })
            .map(|(_, _, t)| t.as_str())
            .collect();
        assert_eq!(types, ["3", "4", "6", "17", "10"]);
        let text_of = |p: &str| -> Vec<&str> {
            elems
                .iter()
                .filter(|(path, _, _)| path.ends_with(p))
                .map(|(_, _, t)| t.as_str())
                .collect()
        };
        assert_eq!(text_of("Item/rasd:VirtualQuantity"), ["2", "4096"]);
        assert_eq!(text_of("Item/rasd:HostResource"), ["ovf:/disk/vmdisk1"]);
        assert_eq!(text_of("Item/rasd:Parent"), ["3"]);
        assert_eq!(text_of("Item/rasd:ResourceSubType"), ["lsilogic", "E1000"]);
        assert_eq!(text_of("Item/rasd:Connection"), ["VM Network"]);
    }

    #[test]
    fn the_product_section_asks_for_the_configuration_and_a_masked_token() {
        let xml = render_ovf(&spec());
        let elems = flatten(&xml);
        let hw = elems
            .iter()
            .find(|(p, _, _)| p == "Envelope/VirtualSystem/VirtualHardwareSection")
            .unwrap();
        assert_eq!(attr(&hw.1, "ovf:transport"), "com.vmware.guestInfo iso");
        let props: Vec<&Element> = elems
            .iter()
            .filter(|(p, _, _)| p == "Envelope/VirtualSystem/ProductSection/Property")
            .collect();
        assert_eq!(props.len(), 2);
        let config = &props[0].1;
        assert_eq!(attr(config, "ovf:key"), "nodeboot.config");
        assert_eq!(attr(config, "ovf:type"), "string");
        assert_eq!(attr(config, "ovf:userConfigurable"), "true");
        assert!(!config.iter().any(|(k, _)| k == "ovf:password"));
        let token = &props[1].1;
        assert_eq!(attr(token, "ovf:key"), "nodeboot.token");
        assert_eq!(attr(token, "ovf:password"), "true");
        assert_eq!(attr(token, "ovf:userConfigurable"), "true");
        let labels: Vec<&str> = elems
            .iter()
            .filter(|(p, _, _)| p == "Envelope/VirtualSystem/ProductSection/Property/Label")
            .map(|(_, _, t)| t.as_str())
            .collect();
        assert_eq!(labels, ["Node configuration (base64)", "Bootstrap token"]);
        // The section follows the hardware, inside the one VirtualSystem.
        let order: Vec<&str> = elems
            .iter()
            .filter(|(p, _, _)| {
                p.matches('/').count() == 2 && p.starts_with("Envelope/VirtualSystem/")
            })
            .map(|(p, _, _)| p.rsplit('/').next().unwrap())
            .collect();
        assert_eq!(
            order,
            [
                "Info",
                "Name",
                "OperatingSystemSection",
                "VirtualHardwareSection",
                "ProductSection"
            ]
        );
    }

    #[test]
    fn names_are_escaped_in_the_descriptor() {
        let mut s = spec();
        s.name = "a<b>&\"c\"".into();
        let xml = render_ovf(&s);
        assert!(
            xml.contains("<Name>a&lt;b&gt;&amp;&quot;c&quot;</Name>"),
            "{xml}"
        );
        assert!(
            xml.contains("ovf:id=\"a&lt;b&gt;&amp;&quot;c&quot;\""),
            "{xml}"
        );
        let elems = flatten(&xml);
        let system = elems
            .iter()
            .find(|(p, _, _)| p == "Envelope/VirtualSystem")
            .unwrap();
        assert_eq!(attr(&system.1, "ovf:id"), "a<b>&\"c\"");
    }

    #[test]
    fn manifest_round_trips_and_rejects_bad_lines() {
        let hex = sha256_hex(&b"abc"[..]).unwrap();
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let text = render_manifest(&[("x.ovf", &hex), ("x-disk1.vmdk", &hex)]);
        assert_eq!(
            text,
            format!("SHA256(x.ovf)= {hex}\nSHA256(x-disk1.vmdk)= {hex}\n")
        );
        assert_eq!(
            parse_manifest(&text).unwrap()[1],
            ("x-disk1.vmdk".to_string(), hex.clone())
        );
        assert_eq!(
            parse_manifest("SHA1(x.ovf)= 00").unwrap_err(),
            "manifest line 1: expected `SHA256(<file>)= <64 hex digits>`, got `SHA1(x.ovf)= 00`"
        );
    }

    #[test]
    fn descriptor_values_are_read_with_or_without_spaces() {
        let d = "# Disk DescriptorFile\nversion=1\ncreateType=\"streamOptimized\"\nddb.virtualHWVersion = \"13\"\n";
        assert_eq!(
            vmdk_descriptor_value(d, "createType"),
            Some("streamOptimized")
        );
        assert_eq!(vmdk_descriptor_value(d, "ddb.virtualHWVersion"), Some("13"));
        assert_eq!(vmdk_descriptor_value(d, "ddb.adapterType"), None);
    }

    #[test]
    fn a_file_without_vmdk_magic_is_refused() {
        let err = read_vmdk_descriptor(&[0u8; 1024][..]).unwrap_err();
        assert_eq!(err.to_string(), "not a sparse VMDK (no KDMV magic)");
    }
}
