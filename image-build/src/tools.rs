//! External tools: finding them (with an error that names the missing tool and its Debian
//! package) and running them (with an error that shows the command and what it printed).
//!
//! This module does not decide what to run; the build steps do.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A program the image pipeline runs, with the Debian package that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tool {
    /// The program's file name, looked up in `PATH` and the sbin directories.
    pub program: &'static str,
    /// The Debian package to install when it is missing.
    pub package: &'static str,
}

/// mmdebstrap, which bootstraps the Debian tree.
pub const MMDEBSTRAP: Tool = Tool::new("mmdebstrap", "mmdebstrap");
/// mkfs.ext4, which fills the root filesystem from the tree without mounting it.
pub const MKFS_EXT4: Tool = Tool::new("mkfs.ext4", "e2fsprogs");
/// qemu-img, which converts between raw, qcow2 and VMDK.
pub const QEMU_IMG: Tool = Tool::new("qemu-img", "qemu-utils");
/// losetup, which attaches the disk so GRUB can be installed on it.
pub const LOSETUP: Tool = Tool::new("losetup", "mount");
/// partx, which makes the kernel see the loop device's partition.
pub const PARTX: Tool = Tool::new("partx", "util-linux");
/// mount and umount.
pub const MOUNT: Tool = Tool::new("mount", "mount");
/// chroot, which runs the image's own GRUB and dpkg inside it.
pub const CHROOT: Tool = Tool::new("chroot", "coreutils");

/// sgdisk, which writes the GPT and checks it.
pub const SGDISK: Tool = Tool::new("sgdisk", "gdisk");
/// mkfs.vfat, which makes the EFI system partition's FAT32.
pub const MKFS_VFAT: Tool = Tool::new("mkfs.vfat", "dosfstools");
/// mcopy, which writes the EFI loader onto the ESP without mounting it.
pub const MCOPY: Tool = Tool::new("mcopy", "mtools");
/// mmd, which makes the ESP's directories.
pub const MMD: Tool = MCOPY.with_program("mmd");
/// mdir, which lists them back.
pub const MDIR: Tool = MCOPY.with_program("mdir");
/// GNU tar, which writes Google Compute Engine's sparse `disk.raw` archive.
pub const TAR: Tool = Tool::new("tar", "tar");
/// gzip, which GNU tar runs for `-z`.
pub const GZIP: Tool = Tool::new("gzip", "gzip");

/// The directories searched besides `PATH` (sbin tools are often outside a user's `PATH`).
const EXTRA_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// A tool could not be found or failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The program is not installed.
    #[error(
        "missing tool `{program}`: install the Debian package `{package}` (apt-get install {package})"
    )]
    Missing {
        /// The program that was looked for.
        program: &'static str,
        /// The package that provides it.
        package: &'static str,
    },
    /// The program could not be started.
    #[error("starting `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// Why it could not start.
        source: std::io::Error,
    },
    /// The program ran and failed.
    #[error("`{command}` failed ({status}){}", tail_of(.stderr))]
    Failed {
        /// The command line.
        command: String,
        /// How it ended.
        status: String,
        /// What it printed on stderr (the end of it).
        stderr: String,
    },
}

fn tail_of(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    let start = lines.len().saturating_sub(12);
    format!(":\n  {}", lines[start..].join("\n  "))
}

impl Tool {
    /// `program`, from the Debian package `package`.
    pub const fn new(program: &'static str, package: &'static str) -> Tool {
        Tool { program, package }
    }

    /// Another program of the same package (`umount` beside `mount`).
    pub const fn with_program(&self, program: &'static str) -> Tool {
        Tool::new(program, self.package)
    }

    /// Finds the program, or says which package to install.
    pub fn locate(&self) -> Result<PathBuf, ToolError> {
        locate_in(self, std::env::var_os("PATH").as_deref())
    }
}

/// Finds `tool` in the given `PATH` value and the usual sbin directories.
pub fn locate_in(tool: &Tool, path: Option<&OsStr>) -> Result<PathBuf, ToolError> {
    let mut dirs: Vec<PathBuf> = path
        .map(|p| std::env::split_paths(p).collect())
        .unwrap_or_default();
    dirs.extend(EXTRA_DIRS.iter().map(PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(tool.program);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(ToolError::Missing {
        program: tool.program,
        package: tool.package,
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Checks every tool at once, so the user learns about all missing packages in one go.
pub fn require(tools: &[Tool]) -> anyhow::Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter_map(|t| t.locate().err())
        .map(|e| e.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("{}", missing.join("\n"))
    }
}

/// Renders a command line for messages.
pub fn describe(cmd: &Command) -> String {
    let mut out = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        out.push(' ');
        out.push_str(&arg.to_string_lossy());
    }
    out
}

/// Runs `tool` with `args`, capturing its output; fails with the command and its stderr.
pub fn run<I, S>(tool: &Tool, args: I) -> Result<Output, ToolError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = Command::new(tool.locate()?);
    cmd.args(args);
    run_command(&mut cmd)
}

/// Runs a prepared command, capturing its output; fails with the command and its stderr.
pub fn run_command(cmd: &mut Command) -> Result<Output, ToolError> {
    let command = describe(cmd);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|source| ToolError::Spawn {
            command: command.clone(),
            source,
        })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(ToolError::Failed {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let tool = Tool::new("nodeboot-no-such-tool", "nodeboot-pkg");
        let err = locate_in(&tool, Some(OsStr::new("/nonexistent"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing tool `nodeboot-no-such-tool`: install the Debian package `nodeboot-pkg` \
             (apt-get install nodeboot-pkg)"
        );
    }

    #[test]
    fn tools_in_sbin_are_found_without_path() {
        let found = locate_in(&Tool::new("sh", "dash"), None).unwrap();
        assert!(found.ends_with("sh"));
    }

    #[test]
    fn a_failing_command_reports_its_stderr() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo first >&2; echo 'bad thing' >&2; exit 3"]);
        let err = run_command(&mut cmd).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "`sh -c echo first >&2; echo 'bad thing' >&2; exit 3` failed (exit status: 3)"
            ),
            "{err}"
        );
        assert!(err.ends_with(":\n  first\n  bad thing"), "{err}");
    }
}
