//! A program on the slave side of a pty, typed at from the master as on a serial console:
//! wait for what it shows, send keys, collect its exit status. No terminal emulation.

use std::io::{Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A child whose stdin, stdout and stderr are a pty's slave side; the test holds the master.
#[derive(Debug)]
pub struct Pty {
    child: Child,
    master: std::fs::File,
    output: Receiver<Vec<u8>>,
    seen: Vec<u8>,
}

impl Pty {
    /// Starts `cmd` on a new pty. Panics (fails the test) when it cannot.
    pub fn spawn(mut cmd: Command) -> Pty {
        let pty = nix::pty::openpty(None, None).unwrap();
        let child = cmd
            .stdin(Stdio::from(pty.slave.try_clone().unwrap()))
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave))
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        let master = std::fs::File::from(pty.master);
        let mut reader = master.try_clone().unwrap();
        let (tx, output) = channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            // EIO once the child has exited and its side is closed
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        Pty {
            child,
            master,
            output,
            seen: Vec::new(),
        }
    }

    /// Waits until the output since the last call contains `text`; returns that output, up to
    /// and with `text`. The generous limit only keeps a broken program from hanging the suite.
    pub fn expect(&mut self, text: &str) -> String {
        loop {
            if let Some(pos) = self
                .seen
                .windows(text.len())
                .position(|w| w == text.as_bytes())
            {
                let got: Vec<u8> = self.seen.drain(..pos + text.len()).collect();
                return String::from_utf8_lossy(&got).into_owned();
            }
            match self.output.recv_timeout(Duration::from_secs(60)) {
                Ok(chunk) => self.seen.extend(chunk),
                Err(_) => panic!(
                    "no {text:?} from the program; it showed:\n{}",
                    String::from_utf8_lossy(&self.seen)
                ),
            }
        }
    }

    /// Types `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).unwrap();
    }

    /// Types `text` and Enter (CR, as a serial console sends it).
    pub fn send_line(&mut self, text: &str) {
        self.send(text.as_bytes());
        self.send(b"\r");
    }

    /// Answers the prompt that ends with `prompt`; returns the output up to it.
    pub fn answer(&mut self, prompt: &str, text: &str) -> String {
        let shown = self.expect(prompt);
        self.send_line(text);
        shown
    }

    /// Waits for the child; its exit code, -1 when a signal ended it.
    pub fn wait(mut self) -> i32 {
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}
