//! Prints the memory table of BENCHMARKS.md: heap bytes per tracked unit, empty and full.
//!
//! `cargo run --release --example memory`

use pdipam::{ReservedProfile, Subnet, SubnetError, SubnetOptions};

fn main() -> Result<(), SubnetError> {
    println!("| subnet | state | bytes | bits per unit |");
    println!("|---|---|---|---|");
    let cases = [
        ("10.0.0.0/16", false),
        ("10.0.0.0/16", true),
        ("10.0.0.0/8", false),
        ("10.0.0.0/8", true),
        ("2001:db8::/64", false),
        ("2001:db8::/48", false),
        ("2001:db8::/44", false),
    ];
    for (cidr, fill) in cases {
        let opts = SubnetOptions::default().profile(ReservedProfile::None);
        let subnet = Subnet::with_options(cidr.parse().expect("valid CIDR"), opts)?;
        let default_len = if cidr.contains(':') { 80 } else { 28 };
        if fill {
            while subnet.allocate_prefix(default_len).is_ok() {}
        }
        let units = subnet.stats().total;
        let bytes = subnet.heap_bytes();
        println!(
            "| {cidr} | {} | {bytes} | {:.3} |",
            if fill {
                format!("full of /{default_len}s")
            } else {
                "empty".into()
            },
            bytes as f64 * 8.0 / units as f64
        );
    }
    Ok(())
}
