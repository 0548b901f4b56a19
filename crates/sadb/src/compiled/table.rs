//! A fixed-size array for the compiled lookup tables, backed by transparent huge pages when it
//! is large: a 100,000-entry table spans megabytes, and with 4 KiB pages random lookups miss
//! the TLB as often as the cache. Must never be resized after it is built.

use core::ptr::NonNull;
use std::alloc::{self, Layout};

/// Size from which a table is aligned to, and advised onto, 2 MiB pages.
const HUGE: usize = 2 << 20;

/// A boxed slice of `T` (plain data), huge-page backed from [`HUGE`] bytes on.
pub(crate) struct HugeSlice<T: Copy> {
    ptr: NonNull<T>,
    len: usize,
    layout: Layout,
}

// Safety: `HugeSlice` owns its elements exclusively, like `Box<[T]>`.
unsafe impl<T: Copy + Send> Send for HugeSlice<T> {}
// Safety: shared access only hands out `&T`, like `Box<[T]>`.
unsafe impl<T: Copy + Sync> Sync for HugeSlice<T> {}

impl<T: Copy> HugeSlice<T> {
    /// `len` copies of `fill`.
    pub fn new(len: usize, fill: T) -> HugeSlice<T> {
        assert!(core::mem::size_of::<T>() > 0, "zero-sized elements");
        let len = len.max(1);
        let bytes = len.checked_mul(core::mem::size_of::<T>()).expect("table size overflows");
        let huge = bytes >= HUGE;
        let (size, align) =
            if huge { (bytes.div_ceil(HUGE) * HUGE, HUGE) } else { (bytes, core::mem::align_of::<T>().max(64)) };
        let layout = Layout::from_size_align(size, align).expect("table layout");
        // Safety: `layout` has a non-zero size (len >= 1, T not zero-sized).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<T>()) else { alloc::handle_alloc_error(layout) };
        if huge {
            // Safety: the range is exactly the allocation just made, 2 MiB aligned and a
            // multiple of 2 MiB long; MADV_HUGEPAGE only changes how it is backed. A failure
            // (THP disabled) leaves ordinary pages, which is fine.
            unsafe {
                libc::madvise(raw.cast(), size, libc::MADV_HUGEPAGE);
            }
        }
        for i in 0..len {
            // Safety: `i < len` and the allocation holds `len` elements of `T`, aligned.
            unsafe { ptr.as_ptr().add(i).write(fill) };
        }
        HugeSlice { ptr, len, layout }
    }
}

impl<T: Copy> core::ops::Deref for HugeSlice<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // Safety: `ptr` points to `len` initialised elements owned by `self`.
        unsafe { core::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> core::ops::DerefMut for HugeSlice<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // Safety: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Copy> Drop for HugeSlice<T> {
    fn drop(&mut self) {
        // Safety: allocated in `new` with exactly this layout; `T: Copy` has no destructor.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) };
    }
}

impl<T: Copy> Clone for HugeSlice<T> {
    fn clone(&self) -> Self {
        let mut c = HugeSlice::new(self.len, self[0]);
        c.copy_from_slice(self);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_and_huge_tables_hold_what_is_written() {
        for len in [1usize, 3, 100, (HUGE / 16) + 5] {
            let mut t = HugeSlice::new(len, [7u64, 0]);
            assert_eq!(t.len(), len);
            assert!(t.iter().all(|e| *e == [7, 0]));
            t[len - 1] = [1, 2];
            let c = t.clone();
            assert_eq!(c[len - 1], [1, 2]);
            assert_eq!(c.as_ptr() as usize % 64, 0);
        }
    }
}
