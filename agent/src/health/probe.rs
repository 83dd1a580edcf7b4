//! The effects the checks need, behind one small trait: read an interface's addresses and the
//! kernel's routes, ask for a neighbour's link-layer address (ARP, neighbour discovery), one
//! UDP exchange, one TCP connect. [`SystemProbe`] does them for real on the calling thread's
//! network namespace; tests may give their own.

use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use nix::ifaddrs::getifaddrs;
use nix::sys::socket::{
    self, AddressFamily, LinkAddr, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn6, sockopt,
};
use tokio::io::unix::AsyncFd;
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

use super::wire;

/// A route in the kernel's table, as `/proc/net/route` and `/proc/net/ipv6_route` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRoute {
    /// Destination network.
    pub dest: IpNet,
    /// Next hop (`None` for a directly connected network).
    pub via: Option<IpAddr>,
    /// The interface it leaves by.
    pub iface: String,
}

/// The effects the checks are made of. Each waits at most `wait`; "no answer in time" is
/// `Ok(None)` / `Ok(false)`, an error is what the system said (link down, refused, …).
pub trait Probe {
    /// The addresses on `iface` with their prefix lengths (IPv6 link-local ones left out);
    /// `None` when there is no such interface.
    fn addresses(&self, iface: &str) -> io::Result<Option<Vec<IpNet>>>;

    /// The kernel's routes (IPv4 and IPv6 main table).
    fn routes(&self) -> io::Result<Vec<KernelRoute>>;

    /// Broadcasts an ARP request for `target` on `iface`; the answering hardware address.
    fn arp(
        &self,
        iface: &str,
        target: Ipv4Addr,
        wait: Duration,
    ) -> impl Future<Output = io::Result<Option<[u8; 6]>>>;

    /// Sends a neighbour solicitation for `target` on `iface`; `Some` when a neighbour
    /// advertisement came back (with its link-layer address when it carried one).
    fn neighbour(
        &self,
        iface: &str,
        target: Ipv6Addr,
        wait: Duration,
    ) -> impl Future<Output = io::Result<Option<Option<[u8; 6]>>>>;

    /// Sends `request` to `server` over UDP and hands each reply from it to `accept` until
    /// one is accepted (`Ok(true)`) or `wait` is over (`Ok(false)`).
    fn udp_exchange(
        &self,
        server: SocketAddr,
        request: &[u8],
        wait: Duration,
        accept: &mut dyn FnMut(&[u8]) -> bool,
    ) -> impl Future<Output = io::Result<bool>>;

    /// Opens (and closes) a TCP connection to `addr`: `Ok(true)` when it was accepted.
    fn tcp_connect(
        &self,
        addr: SocketAddr,
        wait: Duration,
    ) -> impl Future<Output = io::Result<bool>>;

    /// Eight unpredictable bytes (DNS ids, NTP nonces): a reply must echo them.
    fn nonce(&self) -> [u8; 8] {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos()),
        );
        h.finish().to_ne_bytes()
    }
}

/// The sender protocol address an ARP request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArpSender {
    /// The interface's address in the target's subnet (else its first, else 0.0.0.0): the
    /// checks after the reboot, when the node holds its configured address.
    #[default]
    Interface,
    /// Always 0.0.0.0, an RFC 5227 ARP probe: the wizard's checks before the apply, when the
    /// node still holds its DHCP address (maybe in another subnet) and the configured one may
    /// belong to someone else. A probe updates no neighbour's ARP cache, and hosts answer it
    /// (RFC 5227 2.1.1; Linux replies to a 0.0.0.0 sender too).
    Unspecified,
}

/// The real effects, in the calling thread's network namespace. Run it on a tokio runtime
/// (current-thread is enough).
#[derive(Debug, Clone)]
pub struct SystemProbe {
    /// Where the kernel's routing tables are read: `/proc/thread-self/net` (the thread's own
    /// namespace, as the sockets are; `/proc/net` is the process's).
    pub proc_net: PathBuf,
    /// The sender address of ARP requests.
    pub arp_sender: ArpSender,
}

impl Default for SystemProbe {
    fn default() -> Self {
        SystemProbe {
            proc_net: PathBuf::from("/proc/thread-self/net"),
            arp_sender: ArpSender::Interface,
        }
    }
}

/// What a packet socket needs of an interface: its link address (index, MAC) and the IPv4
/// address to send from (the one whose subnet holds `toward`, else the first, else 0.0.0.0).
fn link_of(iface: &str, toward: Ipv4Addr) -> io::Result<(LinkAddr, [u8; 6], Ipv4Addr)> {
    let mut link = None;
    let (mut first, mut on_link) = (None, None);
    for ifa in getifaddrs()?.filter(|i| i.interface_name == iface) {
        let Some(addr) = ifa.address else { continue };
        if let Some(l) = addr.as_link_addr() {
            link = Some(*l);
        } else if let Some(v4) = addr.as_sockaddr_in() {
            let prefix = ifa
                .netmask
                .and_then(|m| m.as_sockaddr_in().map(|m| m.ip().to_bits().count_ones()))
                .unwrap_or(32);
            let net = Ipv4Net::new(v4.ip(), u8::try_from(prefix).unwrap_or(32));
            if on_link.is_none() && net.is_ok_and(|n| n.contains(&toward)) {
                on_link = Some(v4.ip());
            }
            first.get_or_insert(v4.ip());
        }
    }
    let link = link.ok_or_else(|| io::Error::from_raw_os_error(nix::libc::ENODEV))?;
    let mac = link
        .addr()
        .ok_or_else(|| io::Error::from_raw_os_error(nix::libc::EINVAL))?;
    Ok((
        link,
        mac,
        on_link.or(first).unwrap_or(Ipv4Addr::UNSPECIFIED),
    ))
}

fn raw_socket(family: AddressFamily, protocol: SockProtocol) -> io::Result<AsyncFd<OwnedFd>> {
    let fd = socket::socket(
        family,
        SockType::Raw,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        protocol,
    )?;
    // `new` is deprecated because an `AsRawFd` might answer a different descriptor later; an
    // `OwnedFd` holds one descriptor for its whole life, so registering it is sound, and this
    // keeps the crate free of `unsafe` (`register`).
    #[allow(deprecated)]
    AsyncFd::new(fd)
}

async fn send_fd(
    fd: &AsyncFd<OwnedFd>,
    send: impl Fn(i32) -> nix::Result<usize>,
) -> io::Result<()> {
    loop {
        let mut guard = fd.writable().await?;
        match guard.try_io(|inner| send(inner.as_raw_fd()).map_err(io::Error::from)) {
            Ok(result) => return result.map(drop),
            Err(_would_block) => continue,
        }
    }
}

/// Reads datagrams from `fd` until `accept` returns `Some`.
async fn recv_until<T>(
    fd: &AsyncFd<OwnedFd>,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> io::Result<T> {
    let mut buf = [0u8; 2048];
    loop {
        let mut guard = fd.readable().await?;
        match guard.try_io(|inner| {
            socket::recv(inner.as_raw_fd(), &mut buf, MsgFlags::empty()).map_err(io::Error::from)
        }) {
            Ok(Ok(n)) => {
                if let Some(found) = buf.get(..n).and_then(&mut accept) {
                    return Ok(found);
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

/// Reads frames from an unbound packet socket until one that came in on interface `index`
/// is accepted.
async fn recv_from_link<T>(
    fd: &AsyncFd<OwnedFd>,
    index: usize,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> io::Result<Option<T>> {
    let mut buf = [0u8; 2048];
    loop {
        let mut guard = fd.readable().await?;
        match guard.try_io(|inner| {
            socket::recvfrom::<LinkAddr>(inner.as_raw_fd(), &mut buf).map_err(io::Error::from)
        }) {
            Ok(Ok((n, from))) => {
                let here = from.is_some_and(|l| l.ifindex() == index);
                if let Some(found) = buf.get(..n).filter(|_| here).and_then(&mut accept) {
                    return Ok(Some(found));
                }
            }
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
}

/// Closes a packet socket on the blocking pool: the kernel waits for an RCU grace period on
/// close, which must not stall the other checks on a current-thread runtime.
fn close_off_thread(fd: AsyncFd<OwnedFd>) {
    let fd = fd.into_inner();
    drop(tokio::task::spawn_blocking(move || drop(fd)));
}

fn hex_field(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok()
}

/// Parses `/proc/net/route`: little-endian hex words, flags RTF_UP (1) and RTF_GATEWAY (2).
pub(crate) fn parse_proc_route(text: &str) -> Vec<KernelRoute> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (iface, dest, gw, flags, mask) =
                (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
            let flags = hex_field(flags)?;
            if flags & 1 == 0 {
                return None;
            }
            let addr = |w: u32| Ipv4Addr::from(w.to_ne_bytes());
            let prefix = hex_field(mask)?.count_ones() as u8;
            let dest = Ipv4Net::new(addr(hex_field(dest)?), prefix).ok()?;
            let via = (flags & 2 != 0).then(|| IpAddr::V4(addr(hex_field(gw).unwrap_or(0))));
            Some(KernelRoute {
                dest: IpNet::V4(dest),
                via,
                iface: (*iface).to_owned(),
            })
        })
        .collect()
}

fn ipv6_hex(s: &str) -> Option<Ipv6Addr> {
    if s.len() != 32 {
        return None;
    }
    u128::from_str_radix(s, 16).ok().map(Ipv6Addr::from)
}

/// Parses `/proc/net/ipv6_route`: dest, dest prefix, source, source prefix, next hop, metric,
/// refcount, use, flags, interface.
pub(crate) fn parse_proc_ipv6_route(text: &str) -> Vec<KernelRoute> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = ipv6_hex(f.first()?)?;
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let hop = ipv6_hex(f.get(4)?)?;
            let flags = hex_field(f.get(8)?)?;
            if flags & 1 == 0 {
                return None;
            }
            Some(KernelRoute {
                dest: IpNet::V6(Ipv6Net::new(dest, prefix).ok()?),
                via: (!hop.is_unspecified()).then_some(IpAddr::V6(hop)),
                iface: (*f.get(9)?).to_owned(),
            })
        })
        .collect()
}

fn read_optional(path: PathBuf) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        other => other,
    }
}

impl Probe for SystemProbe {
    fn addresses(&self, iface: &str) -> io::Result<Option<Vec<IpNet>>> {
        let mut exists = false;
        let mut found = Vec::new();
        for ifa in getifaddrs()?.filter(|i| i.interface_name == iface) {
            exists = true;
            let (Some(addr), mask) = (ifa.address, ifa.netmask) else {
                continue;
            };
            if let Some(a) = addr.as_sockaddr_in() {
                let prefix =
                    mask.and_then(|m| m.as_sockaddr_in().map(|m| m.ip().to_bits().count_ones()));
                if let Ok(net) = Ipv4Net::new(a.ip(), prefix.unwrap_or(32) as u8) {
                    found.push(IpNet::V4(net));
                }
            } else if let Some(a) = addr.as_sockaddr_in6() {
                if a.ip().is_unicast_link_local() {
                    continue;
                }
                let prefix =
                    mask.and_then(|m| m.as_sockaddr_in6().map(|m| m.ip().to_bits().count_ones()));
                if let Ok(net) = Ipv6Net::new(a.ip(), prefix.unwrap_or(128) as u8) {
                    found.push(IpNet::V6(net));
                }
            }
        }
        Ok(exists.then_some(found))
    }

    fn routes(&self) -> io::Result<Vec<KernelRoute>> {
        let mut routes = parse_proc_route(&std::fs::read_to_string(self.proc_net.join("route"))?);
        routes.extend(parse_proc_ipv6_route(&read_optional(
            self.proc_net.join("ipv6_route"),
        )?));
        Ok(routes)
    }

    async fn arp(
        &self,
        iface: &str,
        target: Ipv4Addr,
        wait: Duration,
    ) -> io::Result<Option<[u8; 6]>> {
        let (link, mac, sender) = link_of(iface, target)?;
        let sender = match self.arp_sender {
            ArpSender::Interface => sender,
            ArpSender::Unspecified => Ipv4Addr::UNSPECIFIED,
        };
        // Not bound: binding a packet socket (as closing one) waits for an RCU grace period
        // (tens of ms) in the kernel. It sends through the link's address and keeps the
        // frames that came in on that link.
        let fd = raw_socket(AddressFamily::Packet, SockProtocol::EthAll)?;
        let frame = wire::build_arp_request(mac, sender, target);
        let sent = send_fd(&fd, |raw| {
            socket::sendto(raw, &frame, &link, MsgFlags::empty())
        })
        .await;
        let found = match sent {
            Err(e) => Err(e),
            Ok(()) => {
                let reply =
                    recv_from_link(&fd, link.ifindex(), |f| wire::parse_arp_reply(f, target));
                timeout(wait, reply).await.unwrap_or(Ok(None))
            }
        };
        close_off_thread(fd);
        found
    }

    async fn neighbour(
        &self,
        iface: &str,
        target: Ipv6Addr,
        wait: Duration,
    ) -> io::Result<Option<Option<[u8; 6]>>> {
        let (_, mac, _) = link_of(iface, Ipv4Addr::UNSPECIFIED)?;
        let index = nix::net::if_::if_nametoindex(iface)?;
        let fd = raw_socket(AddressFamily::Inet6, SockProtocol::IcmpV6)?;
        socket::setsockopt(fd.get_ref(), sockopt::BindToDevice, &iface.into())?;
        // Neighbour discovery drops messages whose hop limit is not 255 (RFC 4861 7.1.1).
        socket::setsockopt(fd.get_ref(), sockopt::Ipv6MulticastHops, &255)?;
        let to = SockaddrIn6::from(SocketAddrV6::new(wire::solicited_node(target), 0, 0, index));
        let ns = wire::build_neighbour_solicitation(target, mac);
        send_fd(&fd, |raw| socket::sendto(raw, &ns, &to, MsgFlags::empty())).await?;
        match timeout(
            wait,
            recv_until(&fd, |m| wire::parse_neighbour_advertisement(m, target)),
        )
        .await
        {
            Ok(found) => found.map(Some),
            Err(_elapsed) => Ok(None),
        }
    }

    async fn udp_exchange(
        &self,
        server: SocketAddr,
        request: &[u8],
        wait: Duration,
        accept: &mut dyn FnMut(&[u8]) -> bool,
    ) -> io::Result<bool> {
        let local: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let exchange = async {
            let sock = UdpSocket::bind(local).await?;
            // Connected: the kernel drops datagrams from any other address or port.
            sock.connect(server).await?;
            sock.send(request).await?;
            let mut buf = [0u8; 2048];
            loop {
                let n = sock.recv(&mut buf).await?;
                if buf.get(..n).is_some_and(&mut *accept) {
                    return Ok(true);
                }
            }
        };
        timeout(wait, exchange).await.unwrap_or(Ok(false))
    }

    async fn tcp_connect(&self, addr: SocketAddr, wait: Duration) -> io::Result<bool> {
        match timeout(wait, TcpStream::connect(addr)).await {
            Ok(Ok(_stream)) => Ok(true),
            Ok(Err(e)) => Err(e),
            Err(_elapsed) => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_routes_are_read_as_the_kernel_writes_them() {
        let v4 = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                  eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                  eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
                  eth0\t0000A8C0\tFE00000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                  eth9\tgarbage\n";
        let routes = parse_proc_route(v4);
        let ip = |s: &str| s.parse::<IpAddr>().ok();
        let net = |s: &str| s.parse::<IpNet>().ok();
        let got: Vec<_> = routes.iter().map(|r| (Some(r.dest), r.via)).collect();
        if cfg!(target_endian = "little") {
            assert_eq!(
                got,
                vec![
                    (net("0.0.0.0/0"), ip("10.0.0.1")),
                    (net("10.0.0.0/24"), None),
                    (net("192.168.0.0/16"), ip("10.0.0.254")),
                ]
            );
        }
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n\
                  20010db8000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
                  short line\n";
        let routes = parse_proc_ipv6_route(v6);
        assert_eq!(routes.len(), 2);
        assert_eq!(Some(routes[0].dest), net("::/0"));
        assert_eq!(routes[0].via, ip("2001:db8::1"));
        assert_eq!(Some(routes[1].dest), net("2001:db8::/64"));
        assert_eq!(routes[1].via, None);
        assert_eq!(routes[1].iface, "eth0");
    }
}
