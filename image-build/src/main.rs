fn main() {
    println!("nodeboot-image {}", env!("CARGO_PKG_VERSION"));
}
