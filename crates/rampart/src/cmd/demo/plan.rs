//! The demo's address plan, shared by the orchestrator (which builds the namespaces and writes
//! the gateways' files) and the traffic agents (which send from and to these addresses). Pure
//! arithmetic; nothing here touches the system.
//!
//! ```text
//!  [dc]  eth0 10.0.0.2/24 --- lan0 10.0.0.1/24 [hub] wan0 100.64.0.1/16
//!                                                     |  (one veth: the WAN)
//!  [sites] eth0 10.128.k.2/9 (one per site) --- lan0 10.128.0.1/9 [branch] wan0 100.64.1.1+k/16 (one per site)
//! ```
//!
//! Site `k` has the subnet `10.128.0.0 + k*256 /24` behind the branch gateway and the WAN
//! address `100.64.1.1 + k`; its tunnel protects that subnet towards the hub's `10.0.0.0/24`.

use std::net::Ipv4Addr;

/// Most branch tunnels the plan has addresses for.
pub const MAX_TUNNELS: u32 = 30_000;
/// The hub's WAN address.
pub const HUB_WAN: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
/// Prefix length of the WAN.
pub const WAN_PREFIX: u8 = 16;
/// The hub gateway's LAN address.
pub const HUB_LAN: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
/// The host behind the hub ("data centre").
pub const DC_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
/// The hub's protected subnet.
pub const HUB_SUBNET: &str = "10.0.0.0/24";
/// The branch gateway's LAN address (one /9 holds every site's subnet).
pub const BRANCH_LAN: Ipv4Addr = Ipv4Addr::new(10, 128, 0, 1);
/// Prefix length of the branch LAN.
pub const BRANCH_LAN_PREFIX: u8 = 9;
/// Every site's subnet: what the hub's templates accept, narrowed to each site's /24.
pub const SITES_SUBNET: &str = "10.128.0.0/9";
/// UDP port of the traffic agents.
pub const AGENT_PORT: u16 = 47_000;

fn add(base: Ipv4Addr, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base).wrapping_add(n))
}

/// Site `k`'s subnet (network address; /24).
pub fn site_subnet(k: u32) -> Ipv4Addr {
    add(Ipv4Addr::new(10, 128, 0, 0), k << 8)
}

/// Site `k`'s host address (the traffic agent sends from it).
pub fn site_host(k: u32) -> Ipv4Addr {
    add(site_subnet(k), 2)
}

/// Site `k`'s WAN address on the branch gateway.
pub fn site_wan(k: u32) -> Ipv4Addr {
    add(Ipv4Addr::new(100, 64, 1, 1), k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_map_back() {
        assert_eq!(site_subnet(0), Ipv4Addr::new(10, 128, 0, 0));
        assert_eq!(site_host(257), Ipv4Addr::new(10, 129, 1, 2));
        assert_eq!(site_wan(0), Ipv4Addr::new(100, 64, 1, 1));
        assert_eq!(site_wan(MAX_TUNNELS - 1), Ipv4Addr::new(100, 64, 118, 48));
        let last = site_host(MAX_TUNNELS - 1);
        assert!(last.octets()[0] == 10 && last.octets()[1] >= 128, "{last}");
        let mut seen = std::collections::HashSet::new();
        for k in (0..MAX_TUNNELS).step_by(7).chain([MAX_TUNNELS - 1]) {
            assert!(seen.insert(site_host(k)) && seen.insert(site_wan(k)) && seen.insert(site_subnet(k)));
            assert_ne!(site_wan(k), HUB_WAN);
            assert_ne!(site_host(k), BRANCH_LAN);
        }
    }
}
