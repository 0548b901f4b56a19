//! Big-endian field access shared by the header views. Callers pass only offsets inside lengths
//! that `new_checked` (or an explicit length check right before) validated; these helpers never
//! allocate.

// The reads take the field as one slice (one bounds check, one load) and read a field that is
// not there (which the checks before make impossible) as 0 rather than panicking.

#[inline(always)]
pub(crate) fn get_u16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_be_bytes([x, y]),
        _ => 0,
    }
}

#[inline(always)]
pub(crate) fn get_u32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at.wrapping_add(4)) {
        Some(&[w, x, y, z]) => u32::from_be_bytes([w, x, y, z]),
        _ => 0,
    }
}

#[inline]
pub(crate) fn put_u16(b: &mut [u8], at: usize, value: u16) {
    b[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

#[inline]
pub(crate) fn put_u32(b: &mut [u8], at: usize, value: u32) {
    b[at..at + 4].copy_from_slice(&value.to_be_bytes());
}
