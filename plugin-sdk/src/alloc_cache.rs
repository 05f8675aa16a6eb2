//! A plugin's small allocations, recycled.
//!
//! A plugin call allocates a few short-lived values (the call's input, its
//! edits, a key or a header value) and frees them before it returns; the
//! next call asks for the same sizes again. Rust's wasm allocator
//! (dlmalloc) spends 300 to 500 instructions on each allocation and free,
//! as much as the rest of a small plugin's call. Freed blocks of up to
//! [`LARGEST`] bytes are kept here, per size class, and handed out again
//! in a few instructions; larger ones, and any past what a class keeps, go
//! back to the allocator underneath.
//!
//! Wasm plugins are single-threaded (no `atomics`), so the cache needs no
//! lock: see [`Recycling`]'s `Sync`.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;

/// Sizes are rounded up to a multiple of this; it is also the alignment
/// every cached block has.
const GRAIN: usize = 16;
/// The largest size class.
pub const LARGEST: usize = 256;
const CLASSES: usize = LARGEST / GRAIN;
/// Blocks kept per class: what a call frees at most of one size, with room.
const KEPT: usize = 16;

/// `Inner`'s allocator with freed small blocks kept for reuse.
pub struct Recycling<A> {
    inner: A,
    free: UnsafeCell<[Stack; CLASSES]>,
}

#[derive(Clone, Copy)]
struct Stack {
    blocks: [*mut u8; KEPT],
    len: usize,
}

const EMPTY: Stack = Stack { blocks: [ptr::null_mut(); KEPT], len: 0 };

// SAFETY: only instantiated as the allocator of a wasm guest built without
// the `atomics` feature, which runs one thread (see `guest.rs`), and in
// tests that use it from one thread.
unsafe impl<A: Sync> Sync for Recycling<A> {}

impl<A> Recycling<A> {
    pub const fn new(inner: A) -> Self {
        Self { inner, free: UnsafeCell::new([EMPTY; CLASSES]) }
    }
}

/// The class of a layout this cache serves, if any.
fn class(layout: Layout) -> Option<usize> {
    (layout.size() != 0 && layout.size() <= LARGEST && layout.align() <= GRAIN).then(|| (layout.size() - 1) / GRAIN)
}

/// The layout every block of `class` is allocated with underneath, so that
/// any request of the class fits any of its blocks.
fn block_layout(class: usize) -> Layout {
    // SAFETY: a non-zero multiple of GRAIN, a power of two.
    unsafe { Layout::from_size_align_unchecked((class + 1) * GRAIN, GRAIN) }
}

unsafe impl<A: GlobalAlloc> GlobalAlloc for Recycling<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class(layout) else {
            return unsafe { self.inner.alloc(layout) };
        };
        // SAFETY: one thread; no reference into `free` outlives this call.
        let stack = unsafe { &mut (*self.free.get())[class] };
        if stack.len > 0 {
            stack.len -= 1;
            return stack.blocks[stack.len];
        }
        unsafe { self.inner.alloc(block_layout(class)) }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        let Some(class) = class(layout) else {
            return unsafe { self.inner.dealloc(block, layout) };
        };
        // SAFETY: as in `alloc`.
        let stack = unsafe { &mut (*self.free.get())[class] };
        if stack.len < KEPT {
            stack.blocks[stack.len] = block;
            stack.len += 1;
            return;
        }
        unsafe { self.inner.dealloc(block, block_layout(class)) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's guarantees for `realloc`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (class(layout), class(new_layout)) {
            // Still fits the block it has.
            (Some(old), Some(new)) if old == new => block,
            // Neither is cached: the allocator underneath may grow in place.
            (None, None) => unsafe { self.inner.realloc(block, layout, new_size) },
            _ => {
                let moved = unsafe { self.alloc(new_layout) };
                if !moved.is_null() {
                    unsafe {
                        ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                        self.dealloc(block, layout);
                    }
                }
                moved
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::System;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn a_freed_small_block_is_handed_out_again_for_any_size_of_its_class() {
        let cache = Recycling::new(System);
        unsafe {
            let a = cache.alloc(layout(20, 1));
            cache.dealloc(a, layout(20, 1));
            let b = cache.alloc(layout(32, 8));
            assert_eq!(a, b, "20 and 32 bytes share the 17..=32 class");
            let c = cache.alloc(layout(32, 8));
            assert_ne!(b, c);
            for (block, size) in [(b, 32), (c, 32)] {
                assert_eq!(block as usize % GRAIN, 0);
                block.write_bytes(0xab, size);
                cache.dealloc(block, layout(size, 8));
            }
        }
    }

    #[test]
    fn large_or_overaligned_blocks_are_not_kept_and_a_full_class_frees_underneath() {
        let cache = Recycling::new(System);
        unsafe {
            let big = cache.alloc(layout(LARGEST + 1, 1));
            cache.dealloc(big, layout(LARGEST + 1, 1));
            let aligned = cache.alloc(layout(64, 64));
            assert_eq!(aligned as usize % 64, 0);
            cache.dealloc(aligned, layout(64, 64));
            let stack = |class: usize| (*cache.free.get())[class].len;
            assert_eq!((0..CLASSES).map(stack).sum::<usize>(), 0, "nothing was cached");

            let blocks: Vec<_> = (0..KEPT + 3).map(|_| cache.alloc(layout(8, 8))).collect();
            for &block in &blocks {
                cache.dealloc(block, layout(8, 8));
            }
            assert_eq!(stack(0), KEPT, "past KEPT, blocks go back underneath");
        }
    }

    #[test]
    fn realloc_keeps_the_contents_across_classes_and_past_the_largest() {
        let cache = Recycling::new(System);
        unsafe {
            let mut size = 5;
            let mut block = cache.alloc(layout(size, 1));
            block.copy_from_nonoverlapping(b"hello".as_ptr(), 5);
            for grown in [9, 16, 40, 200, LARGEST + 100, 4000, 100, 3] {
                block = cache.realloc(block, layout(size, 1), grown);
                assert!(!block.is_null());
                let kept = std::slice::from_raw_parts(block, 3);
                assert_eq!(kept, b"hel", "growing or shrinking to {grown} keeps the bytes");
                size = grown;
            }
            let same = cache.realloc(block, layout(size, 1), 12);
            assert_eq!(same, block, "within its class a block stays where it is");
            cache.dealloc(same, layout(12, 1));
        }
    }
}
