fn main() {
    println!("nodeboot-agent {}", env!("CARGO_PKG_VERSION"));
}
