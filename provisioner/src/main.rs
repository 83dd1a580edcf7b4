fn main() {
    println!("nodeboot {}", env!("CARGO_PKG_VERSION"));
}
