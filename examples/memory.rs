//! Prints the memory table of BENCHMARKS.md: bytes per tracked unit, empty and full. Measured as
//! the `Subnet` value itself (whose first page, summaries included, lives inline) plus every live
//! heap byte it holds, counted by a global allocator; beside it the structure's own count
//! (`Subnet::heap_bytes` plus the value's size).
//!
//! `cargo run --release --example memory`

use pdipam::{ReservedProfile, Subnet, SubnetError, SubnetOptions};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Relaxed);
        LIVE.fetch_sub(layout.size(), Relaxed);
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() -> Result<(), SubnetError> {
    println!("| subnet | state | measured bytes | bits per unit | size + heap_bytes() |");
    println!("|---|---|---|---|---|");
    let cases = [
        ("10.0.0.0/16", false),
        ("10.0.0.0/16", true),
        ("10.0.0.0/8", false),
        ("10.0.0.0/8", true),
        ("2001:db8::/64", false),
        ("2001:db8::/64", true),
        ("2001:db8::/48", false),
        ("2001:db8::/44", false),
    ];
    for (cidr, fill) in cases {
        let before = LIVE.load(Relaxed);
        let opts = SubnetOptions::default().profile(ReservedProfile::None);
        let subnet = Subnet::with_options(cidr.parse().expect("valid CIDR"), opts)?;
        let default_len = if cidr.contains(':') { 80 } else { 28 };
        if fill {
            while subnet.allocate_prefix(default_len).is_ok() {}
        }
        let own = std::mem::size_of_val(&subnet);
        let measured = LIVE.load(Relaxed) - before + own;
        let units = subnet.stats().total;
        println!(
            "| {cidr} | {} | {measured} | {:.3} | {} |",
            if fill {
                format!("full of /{default_len}s")
            } else {
                "empty".into()
            },
            measured as f64 * 8.0 / units as f64,
            own + subnet.heap_bytes()
        );
    }
    Ok(())
}
