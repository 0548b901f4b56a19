//! The database's clock: whole seconds of `CLOCK_BOOTTIME`, for SA install times, last use and
//! time lifetimes. It never jumps when the wall clock is set (by hand, by NTP, by a bad RTC), it
//! counts time suspended, and it is the same for every process on the host; its epoch (boot)
//! goes with the database file, which lives in tmpfs and does not outlive a boot either. Wall
//! time (certificate validity, logs) is not this clock's business.

/// Seconds since boot.
pub fn now() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    u64::try_from(t.tv_sec).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_seconds_forward() {
        let a = super::now();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let b = super::now();
        assert!(b > a && b - a <= 2, "{a} -> {b}");
    }
}
