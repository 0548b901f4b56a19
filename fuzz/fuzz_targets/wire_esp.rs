//! ESP header and trailer: no panic on any input; a parsed header emits back equal; a parsed
//! trailer, written back, reproduces the bytes it was read from.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rampart_wire::{EspPacket, EspRepr, EspTrailer};

fuzz_target!(|data: &[u8]| {
    if let Ok(packet) = EspPacket::new_checked(data) {
        let _ = (packet.spi(), packet.seq_number(), packet.payload());
        if let Ok(repr) = EspRepr::parse(&packet) {
            let mut out = [0u8; 8];
            assert_eq!(repr.emit(&mut out), Ok(8));
            assert_eq!(&out[..], &data[..8]);
        }
    }
    if let Ok(trailer) = EspTrailer::parse(data) {
        assert_eq!(trailer.total_len(), data.len());
        let mut out = data.to_vec();
        out[trailer.payload_len..].fill(0);
        assert_eq!(trailer.emit(&mut out), Ok(data.len()));
        assert_eq!(out, data);
    }
    // The builder, driven by the input: its trailer always parses back.
    if let [a, b, c, ..] = *data {
        let payload_len = usize::from(u16::from_le_bytes([a, b]));
        if let Ok(trailer) = EspTrailer::new(payload_len, c, 1 << (c % 10)) {
            let mut out = vec![0u8; trailer.total_len()];
            assert_eq!(trailer.emit(&mut out), Ok(trailer.total_len()));
            assert_eq!(EspTrailer::parse(&out), Ok(trailer));
        }
    }
});
