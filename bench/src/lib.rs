//! Shared helpers of Rampart's benchmark binaries (timing, report tables).
#![forbid(unsafe_code)]
