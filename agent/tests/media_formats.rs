//! The configuration media in their real formats, built with the Debian tools and mounted by
//! `nodeboot-agent acquire` itself with its production list of file systems (iso9660, vfat,
//! udf): a NoCloud ISO (`genisoimage -V cidata`), a config drive (`xorriso`, `config-2`), an
//! OVF environment ISO, a vfat `CIDATA` (`mkfs.vfat -n CIDATA`, `mcopy`) and a UDF `cidata`
//! (`mkudffs`).
//!
//! These need a kernel with those file systems (`/proc/filesystems`); on one without them
//! (some container hosts) the tests fail and say so: they never pass without mounting.

#![allow(clippy::unwrap_used)] // test helpers: a failure is a test failure

mod common;
mod https;

use std::path::{Path, PathBuf};
use std::process::Command;

use https::valid_xml;

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is required (see scripts/apt-packages): {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn require_kernel(fs: &str) {
    let known = std::fs::read_to_string("/proc/filesystems").unwrap();
    assert!(
        known
            .lines()
            .any(|l| l.split_whitespace().last() == Some(fs)),
        "this kernel cannot mount {fs} (not in /proc/filesystems): load its module or run \
         these tests on a kernel that has it"
    );
}

/// A read-only loop device over an image file, detached on drop.
struct Loop(PathBuf);

impl Loop {
    fn attach(image: &Path) -> Loop {
        let out = Command::new("losetup")
            .args(["-f", "--show", "-r"])
            .arg(image)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup (run as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Loop(PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// Builds the image with `build(content_dir, image)`, attaches it, links it under `label`
/// (or offers it as the optical drive when `label` is `None`), runs acquire, and checks the
/// node is configured from `origin`.
fn applied_from(
    label: Option<&str>,
    files: &[(&str, Vec<u8>)],
    build: impl FnOnce(&Path, &Path),
    origin: &str,
) {
    let work = tempfile::tempdir().unwrap();
    let content = work.path().join("content");
    for (path, bytes) in files {
        let p = content.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    let image = work.path().join("medium.img");
    build(&content, &image);
    let dev = Loop::attach(&image);
    let by_label = work.path().join("by-label");
    std::fs::create_dir(&by_label).unwrap();
    let disc = match label {
        Some(l) => {
            std::os::unix::fs::symlink(&dev.0, by_label.join(l)).unwrap();
            work.path().join("no-drive")
        }
        None => dev.0.clone(),
    };
    let root = common::image_root();
    let out = common::agent(
        &[
            "acquire",
            "--no-reboot",
            "--devices",
            by_label.to_str().unwrap(),
            "--disc",
            disc.to_str().unwrap(),
        ],
        root.path(),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("configuration from {origin}")),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let hostname = std::fs::read_to_string(root.path().join("etc/hostname")).unwrap();
    assert_eq!(hostname, "conf01\n");
}

#[test]
fn a_nocloud_iso_made_by_genisoimage() {
    require_kernel("iso9660");
    applied_from(
        Some("cidata"),
        &[
            ("user-data", valid_xml()),
            ("meta-data", b"instance-id: n1\n".to_vec()),
        ],
        |dir, img| {
            run(
                "genisoimage",
                &[
                    "-quiet",
                    "-V",
                    "cidata",
                    "-J",
                    "-R",
                    "-o",
                    img.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            )
        },
        "NoCloud disc cidata (user-data)",
    );
}

#[test]
fn a_config_drive_iso_made_by_xorriso() {
    require_kernel("iso9660");
    let user_data = serde_json::to_vec(&serde_json::json!({
        "conferencing_node_config": String::from_utf8(valid_xml()).unwrap()
    }))
    .unwrap();
    applied_from(
        Some("config-2"),
        &[("openstack/latest/user_data", user_data)],
        |dir, img| {
            run(
                "xorriso",
                &[
                    "-as",
                    "mkisofs",
                    "-quiet",
                    "-V",
                    "config-2",
                    "-J",
                    "-R",
                    "-o",
                    img.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            )
        },
        "config drive config-2 (openstack/latest/user_data)",
    );
}

#[test]
fn an_ovf_environment_iso() {
    require_kernel("iso9660");
    use base64ct::Encoding as _;
    let env = format!(
        r#"<?xml version="1.0"?><Environment xmlns="http://schemas.dmtf.org/ovf/environment/1" xmlns:oe="http://schemas.dmtf.org/ovf/environment/1"><PropertySection><Property oe:key="nodeboot.config" oe:value="{}"/></PropertySection></Environment>"#,
        base64ct::Base64::encode_string(&valid_xml())
    );
    applied_from(
        None,
        &[("ovf-env.xml", env.into_bytes())],
        |dir, img| {
            run(
                "genisoimage",
                &[
                    "-quiet",
                    "-V",
                    "OVF ENV",
                    "-J",
                    "-R",
                    "-o",
                    img.to_str().unwrap(),
                    dir.to_str().unwrap(),
                ],
            )
        },
        "OVF environment disc",
    );
}

#[test]
fn a_vfat_cidata_made_by_mkfs_vfat() {
    require_kernel("vfat");
    applied_from(
        Some("CIDATA"),
        &[("user-data", valid_xml())],
        |dir, img| {
            run("truncate", &["-s", "4M", img.to_str().unwrap()]);
            run("mkfs.vfat", &["-n", "CIDATA", img.to_str().unwrap()]);
            run(
                "mcopy",
                &[
                    "-i",
                    img.to_str().unwrap(),
                    dir.join("user-data").to_str().unwrap(),
                    "::user-data",
                ],
            );
        },
        "NoCloud disc CIDATA (user-data)",
    );
}

#[test]
fn a_udf_cidata_made_by_mkudffs() {
    require_kernel("udf");
    // mkudffs makes an empty file system; the file goes in with a loop mount of our own.
    applied_from(
        Some("cidata"),
        &[("user-data", valid_xml())],
        |dir, img| {
            run("truncate", &["-s", "4M", img.to_str().unwrap()]);
            run("mkudffs", &["--label=cidata", img.to_str().unwrap()]);
            let mnt = dir.with_file_name("udf-mnt");
            std::fs::create_dir(&mnt).unwrap();
            run(
                "mount",
                &["-o", "loop", img.to_str().unwrap(), mnt.to_str().unwrap()],
            );
            run(
                "cp",
                &[
                    dir.join("user-data").to_str().unwrap(),
                    mnt.to_str().unwrap(),
                ],
            );
            run("umount", &[mnt.to_str().unwrap()]);
        },
        "NoCloud disc cidata (user-data)",
    );
}
