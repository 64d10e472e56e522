//! The process's allocator: mimalloc, asked through its plain entry points whenever the
//! alignment a layout needs is one every mimalloc block has anyway.
//!
//! `mimalloc::MiMalloc` sends every allocation to `mi_malloc_aligned`. In mimalloc 3 that call
//! keeps its fast path only while the size class's free list has a block; otherwise, for a
//! size whose class is not a power of two, it allocates `size + align - 1` bytes from a larger
//! class. That class is then the one refilled, and the first stays empty: every later
//! allocation of that size takes the slow path, about 200 instructions instead of 20 (seven of
//! them in each of a lone client's writes, which cost 1,900 instructions fewer without). Rust's
//! allocations almost all ask for 8 bytes' alignment or less, which every `mi_malloc` block
//! has: its 8-byte blocks are 8-aligned, and every larger one 16-aligned (its size classes are
//! multiples of 16 from there), as the system allocator's `malloc` gives.
#![allow(unsafe_code)] // a global allocator is an `unsafe` trait over raw pointers

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// The alignment every `mi_malloc` block of at least this many bytes has (`MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// mimalloc, through `mi_malloc` where the alignment allows and `MiMalloc` elsewhere.
pub struct Allocator;

/// Whether a block from mimalloc's plain entry points, of `size` bytes, is aligned to `align`:
/// one of up to 8 bytes is 8-aligned, a larger one 16-aligned.
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

/// A block for `layout`: from `plain_call` (`mi_malloc` or `mi_zalloc`) where `plain` allows,
/// from `aligned` otherwise.
///
/// # Safety
///
/// `layout` has a non-zero size, and `aligned` allocates a block for it.
#[inline]
unsafe fn either(
    layout: Layout,
    plain_call: unsafe extern "C" fn(usize) -> *mut c_void,
    aligned: impl FnOnce() -> *mut u8,
) -> *mut u8 {
    if plain(layout.align(), layout.size()) {
        // SAFETY: `plain_call` takes any size; `plain` checked the alignment it gives.
        unsafe { plain_call(layout.size()).cast() }
    } else {
        aligned()
    }
}

// SAFETY: every path hands out blocks from mimalloc that are at least `layout.size()` bytes
// and aligned to `layout.align()` (by `plain` or by the aligned calls), and frees them with
// `mi_free`, which takes any block mimalloc handed out, aligned or not.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, passed on as it is.
        unsafe { either(layout, libmimalloc_sys::mi_malloc, || mimalloc::MiMalloc.alloc(layout)) }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's layout, passed on as it is.
        unsafe { either(layout, libmimalloc_sys::mi_zalloc, || mimalloc::MiMalloc.alloc_zeroed(layout)) }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc; mi_free takes any of its blocks.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if plain(layout.align(), new_size) {
            // SAFETY: `ptr` is a live mimalloc block; the new block's alignment is checked as in
            // `alloc`, and mi_realloc copies what fits and frees the old block.
            unsafe { libmimalloc_sys::mi_realloc(ptr.cast::<c_void>(), new_size).cast() }
        } else {
            // SAFETY: the caller's arguments, passed on as they are.
            unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Allocates `layout` through `Allocator`, checks the block's alignment and that all of it
    /// can be written and read back, grows it, checks again, and frees it.
    fn round_trip(layout: Layout, zeroed: bool) {
        let a = Allocator;
        // SAFETY: a layout of non-zero size; each block is used within its size and freed once.
        unsafe {
            // Many at once too, so that blocks past a page's first are looked at.
            let many: Vec<*mut u8> = (0..64).map(|_| a.alloc(layout)).collect();
            assert!(
                many.iter().all(|p| !p.is_null() && (*p as usize).is_multiple_of(layout.align())),
                "{layout:?} misaligned"
            );
            many.into_iter().for_each(|p| a.dealloc(p, layout));
            let p = if zeroed { a.alloc_zeroed(layout) } else { a.alloc(layout) };
            assert!(!p.is_null(), "{layout:?}");
            assert_eq!(p as usize % layout.align(), 0, "{layout:?} misaligned");
            if zeroed {
                assert!(std::slice::from_raw_parts(p, layout.size()).iter().all(|b| *b == 0), "{layout:?} not zeroed");
            }
            std::ptr::write_bytes(p, 0xa5, layout.size());
            let grown = layout.size() * 3 + 5;
            let q = a.realloc(p, layout, grown);
            assert!(!q.is_null());
            assert_eq!(q as usize % layout.align(), 0, "{layout:?} misaligned after growing");
            let kept = std::slice::from_raw_parts(q, layout.size());
            assert!(kept.iter().all(|b| *b == 0xa5), "{layout:?}: growing lost the contents");
            std::ptr::write_bytes(q, 0x5a, grown);
            a.dealloc(q, Layout::from_size_align(grown, layout.align()).expect("a layout"));
        }
    }

    #[test]
    fn every_size_and_alignment_gets_a_block_aligned_as_asked_and_keeps_it_when_grown() {
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in [1, 3, 8, 15, 16, 24, 40, 48, 100, 1000, 1500, 4096, 5000, 70_000, 1 << 21] {
                let layout = Layout::from_size_align(size, align).expect("a layout");
                round_trip(layout, false);
                round_trip(layout, true);
            }
        }
    }

    unsafe extern "C" {
        /// The bytes a mimalloc block holds: its size class's.
        fn mi_usable_size(p: *const c_void) -> usize;
    }

    /// The size classes that `count` blocks of `layout`, all live at once, were taken from.
    fn classes(alloc: &impl GlobalAlloc, layout: Layout, count: usize) -> std::collections::BTreeSet<usize> {
        // SAFETY: blocks of a non-zero layout, each freed once with that layout.
        unsafe {
            let blocks: Vec<*mut u8> = (0..count).map(|_| alloc.alloc(layout)).collect();
            let classes = blocks.iter().map(|p| mi_usable_size(p.cast())).collect();
            blocks.into_iter().for_each(|p| alloc.dealloc(p, layout));
            classes
        }
    }

    #[test]
    fn blocks_of_a_size_keep_coming_from_its_own_class_past_a_page() {
        // Far more 48-byte blocks than one of mimalloc's pages holds: with `mi_malloc_aligned`,
        // those past the first page came from the 64-byte class.
        for _ in 0..3 {
            let seen = classes(&Allocator, Layout::from_size_align(48, 8).expect("a layout"), 20_000);
            assert_eq!(seen.into_iter().collect::<Vec<_>>(), [48]);
        }
    }

    #[test]
    fn only_alignments_a_plain_block_has_go_the_plain_way() {
        assert!(plain(8, 8) && plain(8, 1500) && plain(16, 16) && plain(1, 1));
        // Smaller than its alignment: a 4-byte block may sit at any 4 bytes (mimalloc's 8-byte
        // class is 8-aligned, but the guarantee is the size's).
        assert!(!plain(8, 4));
        assert!(!plain(32, 64) && !plain(64, 1 << 20));
    }
}
