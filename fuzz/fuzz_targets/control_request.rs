//! The IKE daemon's control socket on arbitrary request lines (what any local client of the
//! socket may write): each is either a request, which written back out reads as the same
//! request, or refused with an answer that says why (and that answer is itself valid JSON of
//! the protocol's shape). Never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_ike_daemon::control::{Response, read_request};

fuzz_target!(|line: &[u8]| {
    match read_request(line) {
        Ok(request) => {
            let text = serde_json::to_vec(&request).unwrap();
            assert_eq!(read_request(&text).ok(), Some(request), "a request that does not read back");
        }
        Err(refusal) => {
            assert!(!refusal.ok && refusal.error.as_deref().is_some_and(|e| !e.is_empty()));
            let text = serde_json::to_vec(&refusal).unwrap();
            let back: Response = serde_json::from_slice(&text).unwrap();
            assert_eq!(back, refusal);
        }
    }
});
