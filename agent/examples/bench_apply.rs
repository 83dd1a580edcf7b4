//! Benchmark: apply a typical configuration (tests/fixtures/valid/transcoding.xml) to a fresh
//! image root, every durability barrier included, N times; prints the median and spread of the
//! wall time of `apply_config` alone (the root is prepared outside the timed part).
//!
//! Run with `scripts/bench-apply [N]`. The roots are made under $BENCH_DIR (default: the
//! system temporary directory; it must be on the disk being measured, not a tmpfs).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            fs::create_dir_all(&dest)?;
            copy_tree(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

fn populate(repo: &Path, root: &Path) -> std::io::Result<()> {
    copy_tree(&repo.join("tests/fixtures/rendered/inputs/image"), root)?;
    let shadow = root.join("etc/shadow");
    fs::set_permissions(&shadow, fs::Permissions::from_mode(0o640))?;
    std::os::unix::fs::chown(&shadow, Some(0), Some(42))?;
    let home = root.join("home/admin");
    fs::create_dir_all(&home)?;
    std::os::unix::fs::chown(&home, Some(1000), Some(1000))?;
    fs::create_dir_all(root.join("var/lib/nodeboot"))
}

fn main() -> anyhow::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(50);
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no repository directory"))?;
    let xml = fs::read(repo.join("tests/fixtures/valid/transcoding.xml"))?;
    let parsed = nodeboot_config::parse(&xml)
        .map_err(|d| anyhow::anyhow!("fixture does not parse: {d:?}"))?;
    let base = std::env::var_os("BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let mut times = Vec::with_capacity(runs);
    let mut files = 0;
    for _ in 0..runs {
        let dir = tempfile::tempdir_in(&base)?;
        populate(&repo, dir.path())?;
        let start = Instant::now();
        let outcome = nodeboot_agent::apply::apply_config(dir.path(), &parsed)?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        if let nodeboot_agent::apply::Outcome::Applied { changed, .. } = outcome {
            files = changed.len();
        }
    }
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "apply of transcoding.xml to a fresh root ({files} files, durable: every barrier synced), {runs} runs under {}:",
        base.display()
    );
    println!(
        "  median {:.2} ms   p10 {:.2} ms   p90 {:.2} ms   min {:.2} ms   max {:.2} ms",
        pick(0.5),
        pick(0.1),
        pick(0.9),
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
