//! The data-plane traffic benchmark: an AF_XDP generator and sink on the hosts of the
//! host A - gateway A - gateway B - host B namespace topology (`scripts/topology.sh`), a
//! no-crypto AF_XDP forwarder as the I/O ceiling, and the orchestration that measures every
//! gateway kind side by side in one run (`bin/traffic.rs`).
//!
//! | module | what |
//! |---|---|
//! | [`packet`] | test packets (UDP/IPv4, UDP/IPv6 with a run id, sequence number and send time), the sink's parser |
//! | [`generator`] | the generator (AF_XDP transmit, paced or flat out) |
//! | [`sink`] | the sink (AF_XDP receive; loss, duplicates, reordering, HDR latency histogram) |
//! | [`fwd`] | the no-crypto AF_XDP forwarder (Rampart's I/O path without ESP) |
//! | [`orchestrate`] | topologies, gateway arms, trials, throughput search, the report |
//!
//! Nothing here sends traffic anywhere but into the network namespaces the orchestrator creates
//! and removes; nothing here asserts on a timing.

pub mod fwd;
pub mod generator;
pub mod orchestrate;
pub mod packet;
pub mod sink;

/// CLOCK_MONOTONIC in nanoseconds: the clock of the send timestamps and of the sink, one clock
/// for every process on the machine (network namespaces do not change it).
#[inline]
pub fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Binds an AF_XDP socket to queue 0, retrying for up to two seconds while the kernel answers
/// `EBUSY`: the previous trial's socket on the same queue is released by deferred kernel work,
/// which a loaded machine may run late.
pub fn bind_retrying(
    umem: &rampart_nic::Umem,
    ifindex: u32,
    config: &rampart_nic::XskConfig,
) -> rampart_nic::Result<rampart_nic::XskSocket> {
    let deadline = now_ns() + 2_000_000_000;
    loop {
        match rampart_nic::XskSocket::bind(umem, ifindex, 0, config) {
            Err(e) if e.raw_os_error() == Some(16) && now_ns() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            r => return r,
        }
    }
}
