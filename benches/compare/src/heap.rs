//! Live heap bytes, counted while seeding: what the pre-filled sessions
//! hold in the process (for the in-process stores, the store's own cost
//! per session).
//!
//! Every binary of the bench runs on this allocator. Outside a
//! measurement it only reads one flag per allocation, so the timed runs
//! pay nothing measurable, and all binaries pay the same.
#![allow(unsafe_code, reason = "a global allocator is unsafe to implement")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

/// The system allocator, counting the live bytes while [`track`] is on.
struct Counting;

static ON: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);

fn count(delta: isize) {
    if ON.load(Relaxed) {
        LIVE.fetch_add(delta, Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; only a counter is
// updated next to it.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is `System`'s.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            count(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as `alloc`.
        unsafe { System.dealloc(ptr, layout) };
        count(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as `alloc`.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            count(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Starts counting; returns the count to pass to [`untrack`].
pub fn track() -> isize {
    ON.store(true, Relaxed);
    LIVE.load(Relaxed)
}

/// Stops counting; returns the live heap's growth since `since` (frees of
/// memory allocated before counting started lower it slightly).
pub fn untrack(since: isize) -> isize {
    ON.store(false, Relaxed);
    LIVE.load(Relaxed) - since
}
