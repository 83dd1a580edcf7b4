//! The few packets the checks send and the replies they accept, built and parsed as bytes:
//! a DNS query and its reply, an NTP client request and its reply, an ARP request and reply,
//! an ICMPv6 neighbour solicitation and advertisement. Pure; every read is bounds-checked, so
//! a hostile reply is refused with a reason and never panics.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::plan::DnsQuery;

/// Why a reply was not accepted (a reply that is not ours, or is malformed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Shorter than its fixed part, or a field runs past the end.
    #[error("truncated reply ({0} bytes)")]
    Truncated(usize),
    /// Not an answer to the request we sent (id, question, origin timestamp, mode).
    #[error("reply does not match the request ({0})")]
    Mismatch(&'static str),
    /// Well-formed but not usable (a DNS error code, an unsynchronised NTP server).
    #[error("{0}")]
    Refused(String),
}

fn be16(b: &[u8], at: usize) -> Result<u16, ReplyError> {
    match b.get(at..at + 2) {
        Some(&[h, l]) => Ok(u16::from_be_bytes([h, l])),
        _ => Err(ReplyError::Truncated(b.len())),
    }
}

// ---------------------------------------------------------------- DNS (RFC 1035)

/// Query type A.
const QTYPE_A: u16 = 1;
/// Query type SOA.
const QTYPE_SOA: u16 = 6;
/// Class IN.
const QCLASS_IN: u16 = 1;

fn question_of(query: &DnsQuery) -> (&str, u16) {
    match query {
        DnsQuery::Address(name) => (name.as_str(), QTYPE_A),
        DnsQuery::RootSoa => ("", QTYPE_SOA),
    }
}

/// A DNS query for `query` with transaction `id`, recursion desired. `None` when the name
/// cannot be encoded (a label over 63 bytes or a name over 255).
pub fn build_dns_query(id: u16, query: &DnsQuery) -> Option<Vec<u8>> {
    let (name, qtype) = question_of(query);
    let mut out = Vec::with_capacity(18 + name.len());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.split('.').filter(|l| !l.is_empty()) {
        let len = u8::try_from(label.len()).ok().filter(|&l| l <= 63)?;
        out.push(len);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    if out.len() - 12 > 255 {
        return None;
    }
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&QCLASS_IN.to_be_bytes());
    Some(out)
}

/// What a DNS server answered: its response code and the IPv4 addresses of A records in the
/// answer section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsReply {
    /// The RCODE: 0 NOERROR, 3 NXDOMAIN, …
    pub rcode: u8,
    /// The A records' addresses (at most 16 are kept).
    pub addresses: Vec<Ipv4Addr>,
    /// How many answer records the server sent.
    pub answers: u16,
}

impl DnsReply {
    /// The RCODE's name (`NOERROR`, `NXDOMAIN`, `SERVFAIL`, `REFUSED`, …).
    pub fn rcode_name(&self) -> String {
        match self.rcode {
            0 => "NOERROR".into(),
            1 => "FORMERR".into(),
            2 => "SERVFAIL".into(),
            3 => "NXDOMAIN".into(),
            4 => "NOTIMP".into(),
            5 => "REFUSED".into(),
            n => format!("RCODE {n}"),
        }
    }
}

/// The position after the (possibly compressed) name that starts at `at`.
fn skip_name(b: &[u8], mut at: usize) -> Result<usize, ReplyError> {
    for _ in 0..128 {
        let len = *b.get(at).ok_or(ReplyError::Truncated(b.len()))?;
        match len & 0xc0 {
            0x00 if len == 0 => return Ok(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xc0 => {
                return if at + 2 <= b.len() {
                    Ok(at + 2)
                } else {
                    Err(ReplyError::Truncated(b.len()))
                };
            }
            _ => return Err(ReplyError::Mismatch("unknown label type")),
        }
    }
    Err(ReplyError::Mismatch("name has too many labels"))
}

/// Checks that `reply` answers `request` (same id, a response, the same question) and reads
/// its code and A records. The question must be written out (no compression pointer), as
/// every server does, and compares case-insensitively (RFC 4343).
pub fn parse_dns_reply(request: &[u8], reply: &[u8]) -> Result<DnsReply, ReplyError> {
    if reply.len() < 12 || request.len() < 12 {
        return Err(ReplyError::Truncated(reply.len()));
    }
    if reply[..2] != request[..2] {
        return Err(ReplyError::Mismatch("transaction id"));
    }
    let flags = be16(reply, 2)?;
    if flags & 0x8000 == 0 {
        return Err(ReplyError::Mismatch("not a response"));
    }
    if flags & 0x7800 != 0 {
        return Err(ReplyError::Mismatch("opcode"));
    }
    if be16(reply, 4)? != 1 {
        return Err(ReplyError::Mismatch("question count"));
    }
    let question = &request[12..];
    let echoed = reply
        .get(12..12 + question.len())
        .ok_or(ReplyError::Truncated(reply.len()))?;
    if !echoed.eq_ignore_ascii_case(question) {
        return Err(ReplyError::Mismatch("question"));
    }
    let rcode = (flags & 0x000f) as u8;
    let answers = be16(reply, 6)?;
    let mut addresses = Vec::new();
    let mut at = 12 + question.len();
    for _ in 0..answers {
        if at >= reply.len() {
            break; // truncated (TC) replies keep what they hold
        }
        at = skip_name(reply, at)?;
        let rtype = be16(reply, at)?;
        let rclass = be16(reply, at + 2)?;
        let rdlen = usize::from(be16(reply, at + 8)?);
        let data = reply
            .get(at + 10..at + 10 + rdlen)
            .ok_or(ReplyError::Truncated(reply.len()))?;
        if rtype == QTYPE_A && rclass == QCLASS_IN && addresses.len() < 16 {
            if let Ok(a) = <[u8; 4]>::try_from(data) {
                addresses.push(Ipv4Addr::from(a));
            }
        }
        at += 10 + rdlen;
    }
    Ok(DnsReply {
        rcode,
        addresses,
        answers,
    })
}

// ---------------------------------------------------------------- NTP (RFC 5905)

/// The size of an NTP packet without extensions.
pub const NTP_PACKET_LEN: usize = 48;

/// A client request (version 4, mode 3) whose transmit timestamp is `nonce`: the server copies
/// it into the reply's origin timestamp, which ties the reply to this request.
pub fn build_ntp_request(nonce: [u8; 8]) -> [u8; NTP_PACKET_LEN] {
    let mut p = [0u8; NTP_PACKET_LEN];
    p[0] = 0x23; // LI 0, VN 4, mode 3
    p[40..48].copy_from_slice(&nonce);
    p
}

/// What an NTP server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpReply {
    /// 1 (primary) to 15.
    pub stratum: u8,
    /// The protocol version the server answered with.
    pub version: u8,
}

/// Checks that `reply` is a server reply (mode 4) to the request carrying `nonce`, from a
/// synchronised server (leap indicator not 3, stratum 1–15; stratum 0 is a kiss-o'-death,
/// whose ASCII code is shown cleaned).
pub fn parse_ntp_reply(nonce: [u8; 8], reply: &[u8]) -> Result<NtpReply, ReplyError> {
    if reply.len() < NTP_PACKET_LEN {
        return Err(ReplyError::Truncated(reply.len()));
    }
    let (li, version, mode) = (reply[0] >> 6, (reply[0] >> 3) & 7, reply[0] & 7);
    if mode != 4 {
        return Err(ReplyError::Mismatch("not a server reply (mode)"));
    }
    if !(1..=4).contains(&version) {
        return Err(ReplyError::Mismatch("version"));
    }
    if reply[24..32] != nonce {
        return Err(ReplyError::Mismatch("origin timestamp"));
    }
    let stratum = reply[1];
    if stratum == 0 {
        let code = nodeboot_config::text::printable_lossy(&reply[12..16]);
        return Err(ReplyError::Refused(format!(
            "answered kiss-o'-death {:?}",
            code.trim()
        )));
    }
    if li == 3 || stratum > 15 {
        return Err(ReplyError::Refused(format!(
            "answered but is not synchronised (leap {li}, stratum {stratum})"
        )));
    }
    if reply[40..48] == [0; 8] {
        return Err(ReplyError::Refused("answered without a time".into()));
    }
    Ok(NtpReply { stratum, version })
}

// ---------------------------------------------------------------- ARP (RFC 826)

/// An Ethernet frame asking who has `target`, from `mac`/`sender` (padded to 60 bytes).
pub fn build_arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = Vec::with_capacity(60);
    f.extend_from_slice(&[0xff; 6]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&sender.octets());
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&target.octets());
    f.resize(60, 0);
    f
}

/// The hardware address in `frame` when it is an ARP reply from `target` (Ethernet, IPv4).
pub fn parse_arp_reply(frame: &[u8], target: Ipv4Addr) -> Option<[u8; 6]> {
    let arp = frame.get(12..42)?;
    if arp[..10] != [0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 2] || arp[16..20] != target.octets() {
        return None;
    }
    arp[10..16].try_into().ok()
}

// ---------------------------------------------------------------- NDP (RFC 4861)

/// The solicited-node multicast address of `target` (`ff02::1:ffXX:XXXX`).
pub fn solicited_node(target: Ipv6Addr) -> Ipv6Addr {
    let o = target.octets();
    Ipv6Addr::from([
        0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, o[13], o[14], o[15],
    ])
}

/// An ICMPv6 neighbour solicitation for `target` with our link-layer address (the kernel
/// fills in the checksum of a raw ICMPv6 socket's packets).
pub fn build_neighbour_solicitation(target: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut p = vec![135, 0, 0, 0, 0, 0, 0, 0];
    p.extend_from_slice(&target.octets());
    p.extend_from_slice(&[1, 1]);
    p.extend_from_slice(&mac);
    p
}

/// Whether `icmp` (an ICMPv6 message without its IPv6 header) is a neighbour advertisement
/// for `target`; its target link-layer address when it carries one.
pub fn parse_neighbour_advertisement(icmp: &[u8], target: Ipv6Addr) -> Option<Option<[u8; 6]>> {
    if icmp.len() < 24 || icmp[0] != 136 || icmp[1] != 0 || icmp[8..24] != target.octets() {
        return None;
    }
    let mut at = 24;
    while let Some(&[kind, len]) = icmp.get(at..at + 2) {
        let size = usize::from(len) * 8;
        if size == 0 {
            break;
        }
        if kind == 2 {
            if let Some(mac) = icmp.get(at + 2..at + 8) {
                return Some(mac.try_into().ok());
            }
        }
        at += size;
    }
    Some(None)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn query() -> (Vec<u8>, DnsQuery) {
        let q = DnsQuery::Address("conf01.example.com".into());
        (build_dns_query(0xbeef, &q).unwrap(), q)
    }

    fn answer(request: &[u8], rcode: u8, records: &[[u8; 4]]) -> Vec<u8> {
        let mut r = request.to_vec();
        r[2] = 0x81;
        r[3] = 0x80 | rcode;
        r[6..8].copy_from_slice(&(records.len() as u16).to_be_bytes());
        for a in records {
            r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
            r.extend_from_slice(a);
        }
        r
    }

    #[test]
    fn a_dns_query_is_written_as_rfc_1035_says() {
        let (q, _) = query();
        assert_eq!(&q[..12], &[0xbe, 0xef, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&q[12..20], b"\x06conf01\x07");
        assert_eq!(&q[q.len() - 4..], &[0, 1, 0, 1]);
        let soa = build_dns_query(1, &DnsQuery::RootSoa).unwrap();
        assert_eq!(&soa[12..], &[0, 0, 6, 0, 1]);
        let long = DnsQuery::Address("a".repeat(64));
        assert_eq!(build_dns_query(1, &long), None);
    }

    #[test]
    fn a_dns_reply_gives_its_code_and_addresses() {
        let (q, _) = query();
        let r = parse_dns_reply(&q, &answer(&q, 0, &[[10, 0, 0, 31]])).unwrap();
        assert_eq!(r.addresses, vec![Ipv4Addr::new(10, 0, 0, 31)]);
        assert_eq!(r.rcode_name(), "NOERROR");
        let r = parse_dns_reply(&q, &answer(&q, 3, &[])).unwrap();
        assert_eq!(r.rcode_name(), "NXDOMAIN");
    }

    #[test]
    fn replies_to_other_questions_are_not_ours() {
        let (q, _) = query();
        let mut other = answer(&q, 0, &[[1, 2, 3, 4]]);
        other[0] ^= 1;
        assert_eq!(
            parse_dns_reply(&q, &other),
            Err(ReplyError::Mismatch("transaction id"))
        );
        let mut other = answer(&q, 0, &[]);
        other[14] = b'x';
        assert_eq!(
            parse_dns_reply(&q, &other),
            Err(ReplyError::Mismatch("question"))
        );
        assert_eq!(
            parse_dns_reply(&q, &q),
            Err(ReplyError::Mismatch("not a response"))
        );
        let mut cut = answer(&q, 0, &[[1, 2, 3, 4]]);
        cut.truncate(cut.len() - 2);
        assert!(matches!(
            parse_dns_reply(&q, &cut),
            Err(ReplyError::Truncated(_))
        ));
    }

    #[test]
    fn an_ntp_reply_must_answer_our_request_from_a_synchronised_server() {
        let nonce = [1, 2, 3, 4, 5, 6, 7, 8];
        let req = build_ntp_request(nonce);
        assert_eq!(req[0], 0x23);
        let mut r = [0u8; 48];
        r[0] = 0x24;
        r[1] = 2;
        r[24..32].copy_from_slice(&nonce);
        r[40] = 0xe0;
        assert_eq!(
            parse_ntp_reply(nonce, &r),
            Ok(NtpReply {
                stratum: 2,
                version: 4
            })
        );
        let mut bad = r;
        bad[24] ^= 1;
        assert_eq!(
            parse_ntp_reply(nonce, &bad),
            Err(ReplyError::Mismatch("origin timestamp"))
        );
        assert_eq!(
            parse_ntp_reply(nonce, &req),
            Err(ReplyError::Mismatch("not a server reply (mode)"))
        );
        let mut kod = r;
        kod[1] = 0;
        kod[12..16].copy_from_slice(b"RATE");
        assert_eq!(
            parse_ntp_reply(nonce, &kod).unwrap_err().to_string(),
            "answered kiss-o'-death \"RATE\""
        );
        let mut alarm = r;
        alarm[0] = 0xe4;
        assert_eq!(
            parse_ntp_reply(nonce, &alarm).unwrap_err().to_string(),
            "answered but is not synchronised (leap 3, stratum 2)"
        );
        assert_eq!(
            parse_ntp_reply(nonce, &r[..47]),
            Err(ReplyError::Truncated(47))
        );
    }

    #[test]
    fn arp_and_neighbour_discovery_frames() {
        let mac = [2, 0, 0, 0, 0, 1];
        let req = build_arp_request(mac, Ipv4Addr::new(10, 0, 0, 31), Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(req.len(), 60);
        assert_eq!(parse_arp_reply(&req, Ipv4Addr::new(10, 0, 0, 1)), None);
        let mut reply = req.clone();
        reply[21] = 2;
        reply[22..28].copy_from_slice(&[2, 0, 0, 0, 0, 9]);
        reply[28..32].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(
            parse_arp_reply(&reply, Ipv4Addr::new(10, 0, 0, 1)),
            Some([2, 0, 0, 0, 0, 9])
        );
        assert_eq!(parse_arp_reply(&reply, Ipv4Addr::new(10, 0, 0, 2)), None);

        let target: Ipv6Addr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            solicited_node(target),
            "ff02::1:ff00:1".parse::<Ipv6Addr>().unwrap()
        );
        let ns = build_neighbour_solicitation(target, mac);
        assert_eq!(parse_neighbour_advertisement(&ns, target), None);
        let mut na = ns.clone();
        na[0] = 136;
        na[24] = 2;
        assert_eq!(parse_neighbour_advertisement(&na, target), Some(Some(mac)));
        na[25] = 0; // a zero-length option ends the walk
        assert_eq!(parse_neighbour_advertisement(&na, target), Some(None));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn hostile_dns_replies_never_panic(
            tail in proptest::collection::vec(any::<u8>(), 0..600),
            head in proptest::collection::vec(any::<u8>(), 0..40),
        ) {
            let (q, _) = query();
            let _ = parse_dns_reply(&q, &tail);
            // A reply that matches the header and question, then anything.
            let mut r = answer(&q, 0, &[]);
            r[6..8].copy_from_slice(&[0xff, 0xff]);
            r.extend_from_slice(&head);
            r.extend_from_slice(&tail);
            let _ = parse_dns_reply(&q, &r);
        }

        #[test]
        fn hostile_ntp_replies_never_panic(reply in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_ntp_reply([0; 8], &reply);
        }

        #[test]
        fn hostile_link_replies_never_panic(frame in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = parse_arp_reply(&frame, Ipv4Addr::new(10, 0, 0, 1));
            let _ = parse_neighbour_advertisement(&frame, Ipv6Addr::LOCALHOST);
        }
    }
}
