//! The `rampart` command: entry point of the gateway.
#![forbid(unsafe_code)]

fn main() {
    println!("rampart {}", env!("CARGO_PKG_VERSION"));
}
