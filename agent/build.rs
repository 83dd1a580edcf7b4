//! Links the agent's binary with packed relative relocations (DT_RELR, glibc ≥ 2.36 and binutils
//! ≥ 2.38): the relocation table shrinks from 24 bytes to a few bits per pointer, which saves
//! about 110 KB of the file and the pages the loader touches at start (docs/benchmarks.md,
//! "Agent size budget").
fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
}
