//! The pooling allocator's instance slots, counted: an instance takes a
//! slot before it is made, and gives it back when dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Semaphore;

/// The pooling allocator's instance slots. It fails outright when it runs
/// out, so every instance first takes a permit here; slots given back are
/// counted, so the trimmer knows when memory may have come free.
pub(super) struct EngineSlots {
    permits: Semaphore,
    /// Slots given back since start: the trimmer's sign that memory may
    /// have come free.
    pub(super) released: AtomicU64,
}

impl EngineSlots {
    pub(super) fn new(max_instances: u32) -> Arc<Self> {
        Arc::new(Self { permits: Semaphore::new(max_instances as usize), released: AtomicU64::new(0) })
    }

    /// A slot, if one is free.
    pub(super) fn take(self: &Arc<Self>) -> Option<Slot> {
        self.permits.try_acquire().ok()?.forget();
        Some(Slot { slots: self.clone() })
    }
}

/// One instance's engine slot, given back when the instance is dropped.
pub(super) struct Slot {
    slots: Arc<EngineSlots>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.permits.add_permits(1);
        self.slots.released.fetch_add(1, Ordering::Relaxed);
    }
}
