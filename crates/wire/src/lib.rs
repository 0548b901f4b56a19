//! Checked zero-copy views of the headers Rampart handles on the data path.
//!
//! Each header lives in its own module, in the smoltcp style: a `Packet<T: AsRef<[u8]>>`
//! view whose `new_checked` validates lengths once, after which no accessor can panic, and a
//! `Repr` with `parse`, `emit` and `buffer_len`. This crate never allocates and never does I/O.
#![forbid(unsafe_code)]
