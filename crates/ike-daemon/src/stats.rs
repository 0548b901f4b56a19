//! The daemon's counters, each declared once with its name and meaning: the event loop bumps
//! them, `rampart ctl stats` prints them under the same names (and a metrics endpoint can).
//!
//! Plain integers owned by the event loop thread; no locks, no atomics, nothing secret.

macro_rules! counters {
    ($( $(#[doc = $doc:expr])* $field:ident => $name:literal; )*) => {
        /// Counters of the IKE daemon.
        #[derive(Debug, Default, Clone)]
        pub struct Counters {
            $( $(#[doc = $doc])* pub $field: u64, )*
        }

        impl Counters {
            /// Every counter as (name, value), in declaration order.
            pub fn pairs(&self) -> Vec<(&'static str, u64)> {
                vec![$( ($name, self.$field), )*]
            }

            /// What each counter means, by name.
            pub fn help() -> Vec<(&'static str, &'static str)> {
                vec![$( ($name, concat!($($doc),*).trim()), )*]
            }
        }
    };
}

counters! {
    /// IKE datagrams received (either port, marker removed).
    datagrams_in => "ike_datagrams_received";
    /// IKE datagrams sent.
    datagrams_out => "ike_datagrams_sent";
    /// Datagrams the kernel refused to send (buffer full, unreachable).
    send_errors => "ike_send_errors";
    /// NAT keepalives received on port 4500.
    keepalives_in => "nat_keepalives_received";
    /// ESP-in-UDP that reached the daemon's socket instead of the data plane (dropped).
    esp_on_ike_socket => "esp_on_ike_socket";
    /// Datagrams too short to be IKE, or IKE on port 4500 without the non-ESP marker (dropped).
    runts => "ike_runt_datagrams";
    /// IKE SAs established.
    ike_up => "ike_sas_established";
    /// IKE SAs gone, any reason.
    ike_down => "ike_sas_down";
    /// IKE SAs gone because the peer stopped answering.
    ike_dead => "ike_sas_peer_dead";
    /// IKE SAs that failed to come up (proposals, authentication, errors).
    ike_failed => "ike_sas_failed";
    /// IKE SA rekeys.
    ike_rekeys => "ike_sa_rekeys";
    /// CHILD_SAs installed (new ones, not rekeys).
    child_installed => "child_sas_installed";
    /// CHILD_SA rekeys installed.
    child_rekeys => "child_sa_rekeys";
    /// CHILD_SAs removed.
    child_deleted => "child_sas_deleted";
    /// CHILD_SAs that could not be created.
    child_failed => "child_sas_failed";
    /// Negotiations started by acquire events of trap policies.
    acquires => "acquires_handled";
    /// Rekeys asked for by byte/packet limits or sequence numbers near wrap.
    usage_rekeys => "usage_rekeys";
    /// CHILD_SAs deleted at a hard byte/packet limit.
    usage_deletes => "usage_hard_deletes";
    /// Diffie-Hellman computations handed to the worker pool.
    dh_jobs => "dh_jobs_submitted";
    /// IKE_AUTH signature checks handed to the worker pool.
    auth_jobs => "auth_jobs_submitted";
    /// Control requests served.
    control_requests => "control_requests";
    /// Configuration reloads applied.
    reloads => "config_reloads";
    /// Configuration reloads refused (the running configuration stayed).
    reload_errors => "config_reload_errors";
}
