//! The ways to reach a console, all turned into one async byte stream.
//!
//! `exec:<command>` runs the command in a new pseudo-terminal (its controlling terminal, set by
//! `setsid --ctty`), `tcp:HOST:PORT` and `unix:PATH` connect to a socket (hypervisor serial
//! consoles), `serial:/dev/ttyX[@BAUD]` opens a serial device raw at the given speed, and
//! `pty:PATH` opens an existing terminal device raw.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::task::{Context, Poll, ready};

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::termios::{self, BaudRate, SetArg};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Where the console is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// A command run in a new pty.
    Exec(String),
    /// A TCP socket, `host:port`.
    Tcp(String),
    /// A Unix socket.
    Unix(PathBuf),
    /// A serial device and its speed.
    Serial(PathBuf, u32),
    /// An existing terminal device.
    Pty(PathBuf),
}

/// The speed a serial console runs at when none is given.
pub const DEFAULT_BAUD: u32 = 115_200;

impl std::str::FromStr for Transport {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        const HELP: &str = "use exec:COMMAND, tcp:HOST:PORT, unix:PATH, serial:/dev/ttyS1[@115200] or pty:/dev/pts/N";
        let Some((kind, rest)) = s.split_once(':') else {
            return Err(format!("console {s:?} has no transport prefix ({HELP})"));
        };
        if rest.is_empty() {
            return Err(format!(
                "console {s:?} is missing what follows {kind:?} ({HELP})"
            ));
        }
        match kind {
            "exec" => Ok(Transport::Exec(rest.to_owned())),
            "tcp" => {
                let ok = rest
                    .rsplit_once(':')
                    .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok());
                if ok {
                    Ok(Transport::Tcp(rest.to_owned()))
                } else {
                    Err(format!(
                        "console {s:?}: expected tcp:HOST:PORT with a port from 0 to 65535"
                    ))
                }
            }
            "unix" => Ok(Transport::Unix(PathBuf::from(rest))),
            "pty" => Ok(Transport::Pty(PathBuf::from(rest))),
            "serial" => match rest.rsplit_once('@') {
                None => Ok(Transport::Serial(PathBuf::from(rest), DEFAULT_BAUD)),
                Some((path, baud)) => {
                    let rate: u32 = baud.parse().map_err(|_| {
                        format!("console {s:?}: baud rate {baud:?} is not a number")
                    })?;
                    baud_rate(rate).map_err(|e| format!("console {s:?}: {e}"))?;
                    Ok(Transport::Serial(PathBuf::from(path), rate))
                }
            },
            other => Err(format!("console transport {other:?} is unknown ({HELP})")),
        }
    }
}

/// The termios speed constant for a baud rate.
pub fn baud_rate(rate: u32) -> Result<BaudRate, String> {
    Ok(match rate {
        1200 => BaudRate::B1200,
        2400 => BaudRate::B2400,
        4800 => BaudRate::B4800,
        9600 => BaudRate::B9600,
        19200 => BaudRate::B19200,
        38400 => BaudRate::B38400,
        57600 => BaudRate::B57600,
        115_200 => BaudRate::B115200,
        230_400 => BaudRate::B230400,
        460_800 => BaudRate::B460800,
        921_600 => BaudRate::B921600,
        _ => {
            return Err(format!(
                "baud rate {rate} is not supported (help: use 9600, 19200, 38400, 57600, 115200, 230400, 460800 or 921600)"
            ));
        }
    })
}

/// A connected console.
pub trait ConsoleStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ConsoleStream for T {}

/// Opens the console.
pub async fn connect(t: &Transport) -> io::Result<Box<dyn ConsoleStream>> {
    match t {
        Transport::Tcp(addr) => Ok(Box::new(tokio::net::TcpStream::connect(addr).await?)),
        Transport::Unix(path) => Ok(Box::new(tokio::net::UnixStream::connect(path).await?)),
        Transport::Exec(cmd) => Ok(Box::new(spawn_in_pty(cmd)?)),
        Transport::Serial(path, rate) => {
            let speed = baud_rate(*rate).map_err(io::Error::other)?;
            Ok(Box::new(open_tty(path, Some(speed))?))
        }
        Transport::Pty(path) => Ok(Box::new(open_tty(path, None)?)),
    }
}

fn open_tty(path: &PathBuf, speed: Option<BaudRate>) -> io::Result<FdStream> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags_noctty()
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("opening {}: {e}", path.display())))?;
    let fd = OwnedFd::from(file);
    let mut t = termios::tcgetattr(&fd)
        .map_err(|e| io::Error::other(format!("{} is not a terminal: {e}", path.display())))?;
    termios::cfmakeraw(&mut t);
    if let Some(speed) = speed {
        termios::cfsetspeed(&mut t, speed).map_err(io::Error::from)?;
    }
    termios::tcsetattr(&fd, SetArg::TCSANOW, &t).map_err(io::Error::from)?;
    FdStream::new(fd, None)
}

trait NoCtty {
    fn custom_flags_noctty(&mut self) -> &mut Self;
}

impl NoCtty for std::fs::OpenOptions {
    fn custom_flags_noctty(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.custom_flags(OFlag::O_NOCTTY.bits())
    }
}

fn spawn_in_pty(cmd: &str) -> io::Result<FdStream> {
    let pty = nix::pty::openpty(None, None).map_err(io::Error::from)?;
    let slave = pty.slave;
    // setsid(1) makes the command a session leader with the pty as its controlling terminal
    // (sudo and passwd read /dev/tty), without unsafe code in a pre-exec hook
    let child = Command::new("setsid")
        .args(["--ctty", "sh", "-c", cmd])
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("running setsid --ctty sh -c …: {e}")))?;
    FdStream::new(pty.master, Some(child))
}

/// A terminal or pty master file descriptor as an async stream. EIO from a pty master (the
/// other side closed) reads as the end of the stream. A child started for it is killed when
/// the stream is dropped.
#[derive(Debug)]
pub struct FdStream {
    fd: AsyncFd<OwnedFd>,
    child: Option<Child>,
}

impl FdStream {
    /// An async stream over a terminal or pty descriptor (made non-blocking here).
    pub fn from_fd(fd: OwnedFd) -> io::Result<FdStream> {
        FdStream::new(fd, None)
    }

    fn new(fd: OwnedFd, child: Option<Child>) -> io::Result<FdStream> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
        // `AsyncFd::new` is deprecated because a borrowed descriptor could be closed while
        // registered; here the `OwnedFd` is moved in and lives exactly as long as the `AsyncFd`
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(FdStream { fd, child })
    }
}

impl Drop for FdStream {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl AsyncRead for FdStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|fd| {
                nix::unistd::read(fd.get_ref().as_fd(), unfilled).map_err(io::Error::from)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(nix::libc::EIO) => {
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for FdStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), data).map_err(io::Error::from))
            {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_parse_with_precise_errors() {
        assert_eq!(
            "exec:ssh -t x".parse::<Transport>(),
            Ok(Transport::Exec("ssh -t x".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:4555".parse::<Transport>(),
            Ok(Transport::Tcp("127.0.0.1:4555".into()))
        );
        assert_eq!(
            "serial:/dev/ttyS1".parse::<Transport>(),
            Ok(Transport::Serial("/dev/ttyS1".into(), 115_200))
        );
        assert_eq!(
            "serial:/dev/ttyUSB0@9600".parse::<Transport>(),
            Ok(Transport::Serial("/dev/ttyUSB0".into(), 9600))
        );
        assert_eq!(
            "unix:/run/s.sock".parse::<Transport>(),
            Ok(Transport::Unix("/run/s.sock".into()))
        );
        let errs = [
            (
                "/dev/ttyS0",
                "console \"/dev/ttyS0\" has no transport prefix",
            ),
            ("tcp:host", "console \"tcp:host\": expected tcp:HOST:PORT"),
            (
                "serial:/dev/ttyS0@fast",
                "baud rate \"fast\" is not a number",
            ),
            ("serial:/dev/ttyS0@1234", "baud rate 1234 is not supported"),
            ("ssh:x", "console transport \"ssh\" is unknown"),
            ("exec:", "is missing what follows \"exec\""),
        ];
        for (input, want) in errs {
            let e = input.parse::<Transport>().unwrap_err();
            assert!(e.contains(want), "{input}: {e}");
        }
    }
}
