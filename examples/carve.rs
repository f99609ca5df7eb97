//! Carves one subnet the way EC2 does and the way pdipam does, and prints what each leaves behind.
//!
//! `cargo run --release --example carve`
//!
//! A /22 receives 400 single secondary addresses (secondary-IP nodes) and then as many /28
//! prefixes as it will take (prefix-delegation nodes). With cloud-like scattered placement the
//! singles spoil almost every aligned /28, and prefix delegation fails with
//! `InsufficientCidrBlocks` while hundreds of addresses are free. With `Pack` the same singles
//! share a few /28s and the prefixes keep coming.

use pdipam::{Placement, ReservationKind, Subnet, SubnetError, SubnetOptions, SubnetStats};

const SUBNET: &str = "10.20.0.0/22";
const SINGLES: usize = 400;

fn carve(title: &str, options: SubnetOptions, reserve: bool) -> Result<(), SubnetError> {
    let subnet = Subnet::with_options(SUBNET.parse().expect("valid CIDR"), options)?;
    if reserve {
        // What AWS recommends against fragmentation: set space aside for prefixes.
        subnet.add_reservation(
            "10.20.2.0/23".parse().expect("valid CIDR"),
            ReservationKind::Prefix,
        )?;
    }
    for _ in 0..SINGLES {
        subnet.allocate_ip()?;
    }
    let mut prefixes = 0;
    let failure = loop {
        match subnet.allocate_prefix(28) {
            Ok(_) => prefixes += 1,
            Err(e) => break e,
        }
    };
    let stats = subnet.stats();
    println!("== {title}");
    println!("   {SINGLES} secondary addresses, then {prefixes} /28 prefixes delegated");
    print_stats(&stats);
    println!("   next /28: {failure}");
    if matches!(failure, SubnetError::InsufficientCidrBlocks { .. }) {
        let why = subnet.explain_prefix_failure(28)?;
        for line in why.to_string().lines().take(6) {
            println!("   | {line}");
        }
    }
    subnet.verify().expect("invariants hold");
    println!();
    Ok(())
}

fn print_stats(s: &SubnetStats) {
    println!(
        "   {}: {} addresses, {} free ({} available as AWS counts them), {} free /28s, largest free block {}, fragmentation {:.2}",
        s.cidr,
        s.total,
        s.free,
        s.available,
        s.free_blocks_of(28),
        s.largest_free_block.map_or("none".to_string(), |b| b.to_string()),
        s.fragmentation
    );
}

fn main() -> Result<(), SubnetError> {
    carve(
        "cloud-like scatter (Random)",
        SubnetOptions::default().placement(Placement::Random { seed: 42 }),
        false,
    )?;
    carve(
        "cloud-like scatter, with a /23 prefix reservation",
        SubnetOptions::default().placement(Placement::Random { seed: 42 }),
        true,
    )?;
    carve("pdipam Pack", SubnetOptions::default(), false)?;
    Ok(())
}
