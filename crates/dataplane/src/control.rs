//! The control thread: follows the SA database (new tables for the workers, protected prefixes
//! for the LAN steering program), the kernel's addresses (the steering programs' local
//! addresses), and sweeps time-based lifetimes once a second.
//!
//! It is the only writer of the steering programs' maps after start; it never touches a
//! worker's UMEM, sockets or runtimes.

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rampart_nic::SteeringProgram;

use crate::mirror::NetMirror;
use crate::tables::{TableBuilder, TablesHandle};

/// Everything the control thread owns and follows.
pub(crate) struct Control {
    pub builder: TableBuilder,
    pub tables: Arc<TablesHandle>,
    pub stop: Arc<AtomicBool>,
    pub lan_prog: Arc<SteeringProgram>,
    pub wan_prog: Arc<SteeringProgram>,
    pub mirror: Arc<NetMirror>,
    /// Protected prefixes now in the LAN program's map.
    pub protected: BTreeSet<(IpAddr, u8)>,
    /// WAN addresses now in the WAN program's map.
    pub wan_addrs: Vec<IpAddr>,
    /// The WAN addresses are configured: do not follow the interface's.
    pub fixed_wan: bool,
    pub lan_ifindex: u32,
    pub wan_ifindex: u32,
}

/// A prefix for the steering programs' maps; `None` for an impossible length.
pub(crate) fn prefix(addr: IpAddr, len: u8) -> Option<rampart_nic::IpPrefix> {
    rampart_nic::IpPrefix::new(addr, len).ok()
}

/// Adds what is new in `want` and removes what is gone, through `add`/`remove`.
fn sync_set<T: Ord + Copy>(
    have: &mut BTreeSet<T>,
    want: &BTreeSet<T>,
    mut add: impl FnMut(T),
    mut remove: impl FnMut(T),
) {
    for x in want.difference(have) {
        add(*x);
    }
    for x in have.difference(want) {
        remove(*x);
    }
    *have = want.clone();
}

impl Control {
    /// Runs until the stop flag is set.
    pub fn run(mut self) {
        let mut wan_set: BTreeSet<IpAddr> = std::mem::take(&mut self.wan_addrs).into_iter().collect();
        let mut lan_set: BTreeSet<IpAddr> =
            self.mirror.load().addresses_of(self.lan_ifindex).into_iter().chain(wan_set.iter().copied()).collect();
        let mut net_gen = self.mirror.generation();
        let mut last_sweep = Instant::now();
        while !self.stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
            self.follow_database();
            if self.mirror.generation() != net_gen {
                net_gen = self.mirror.generation();
                self.follow_addresses(&mut wan_set, &mut lan_set);
            }
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.sweep_lifetimes();
            }
        }
    }

    /// New tables when the database moved; the LAN program's protected prefixes follow them.
    fn follow_database(&mut self) {
        let Some(t) = self.builder.refresh(false) else { return };
        let lan_prog = &self.lan_prog;
        sync_set(
            &mut self.protected,
            &t.protected,
            |(a, l)| {
                if let Some(p) = prefix(a, l) {
                    let _ = lan_prog.add_protected_prefix(p);
                }
            },
            |(a, l)| {
                if let Some(p) = prefix(a, l) {
                    let _ = lan_prog.remove_protected_prefix(p);
                }
            },
        );
        for (slot, e) in self.builder.errors.drain(..) {
            tracing::warn!(slot, error = %e, "SA not loaded into the data plane");
        }
        self.tables.publish(t);
    }

    /// The steering programs' local addresses follow the interfaces' (the WAN's only when they
    /// are not configured).
    fn follow_addresses(&self, wan_set: &mut BTreeSet<IpAddr>, lan_set: &mut BTreeSet<IpAddr>) {
        let net = self.mirror.load();
        if !self.fixed_wan {
            let want: BTreeSet<IpAddr> = net.addresses_of(self.wan_ifindex).into_iter().collect();
            sync_set(
                wan_set,
                &want,
                |a| {
                    let _ = self.wan_prog.add_local_address(a);
                },
                |a| {
                    let _ = self.wan_prog.remove_local_address(a);
                },
            );
        }
        let want: BTreeSet<IpAddr> =
            net.addresses_of(self.lan_ifindex).into_iter().chain(wan_set.iter().copied()).collect();
        sync_set(
            lan_set,
            &want,
            |a| {
                let _ = self.lan_prog.add_local_address(a);
            },
            |a| {
                let _ = self.lan_prog.remove_local_address(a);
            },
        );
    }

    /// Time-based lifetimes run out without traffic: every SA is checked once a second.
    fn sweep_lifetimes(&self) {
        let now = rampart_sadb::clock::now();
        for e in self.builder.entries() {
            let expiry =
                self.builder.reader().check_lifetimes(e.id, e.config.spi, &e.config.lifetimes, e.install_time, now);
            if matches!(expiry, rampart_sadb::Expiry::Hard(_)) {
                e.shared.expired.store(true, Ordering::Relaxed);
            }
        }
    }
}
