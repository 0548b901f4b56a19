//! ESP security-association runtime: outbound encapsulation, inbound decapsulation,
//! anti-replay with ESN, drop reasons. No I/O: bytes in, bytes out (DESIGN.md rule 1).
//!
//! This crate never allocates per packet, never blocks and never panics on packet contents:
//! every packet either comes out transformed or is dropped under a named [`DropReason`].
//!
//! | module       | what it is for                                                         |
//! |--------------|------------------------------------------------------------------------|
//! | [`outbound`] | [`OutboundSa`]: sequence numbers, padding, headers, sealing             |
//! | [`inbound`]  | [`parse_outer`], [`InboundSa`]: checks, opening, replay, selectors     |
//! | [`replay`]   | [`ReplayWindow`] with ESN inference (RFC 4303 Appendix A)               |
//! | [`burst`]    | bursts of many SAs: the steps every packet goes through, batched crypto |
//! | [`buf`]      | [`PacketBuf`]: a packet in a frame with head- and tailroom               |
//!
//! What an SA is made of ([`SaConfig`], [`TrafficSelector`], ...) and the drop reasons come from
//! `rampart-sa`, re-exported here.
#![forbid(unsafe_code)]

mod ah;
pub mod buf;
pub mod burst;
pub mod inbound;
pub mod outbound;
pub mod replay;
mod sa;
mod sync;

pub use buf::PacketBuf;
pub use burst::{OneSa, SaSlots};
pub use inbound::{Decapsulated, InboundSa, IpsecLocation, Received, parse_outer};
pub use outbound::{OutboundSa, OutboundStatus, Prepared};
pub use rampart_sa::{
    DEFAULT_REPLAY_WINDOW, Direction, Lifetimes, MAX_REPLAY_WINDOW, Mode, Protocol, SaConfig, TrafficSelector, UdpEncap,
};
pub use rampart_sa::{DropCounters, DropReason};
pub use replay::ReplayWindow;
pub use sa::{SaCounters, SaError};
