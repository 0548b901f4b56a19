//! ESP security-association runtime: outbound encapsulation, inbound decapsulation,
//! anti-replay with ESN, drop reasons. No I/O: bytes in, bytes out.
#![forbid(unsafe_code)]

pub mod config;

pub use config::{
    DEFAULT_REPLAY_WINDOW, Direction, Lifetimes, MAX_REPLAY_WINDOW, Mode, SaConfig, TrafficSelector, UdpEncap,
};
