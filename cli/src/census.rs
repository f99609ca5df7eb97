//! One record per /28 of an IPv4 subnet: what holds its addresses. The map draws it and `frag`'s
//! reservation advice counts over it; both speak in /28s because that is what a prefix needs.

use ipnet::{IpNet, Ipv4Net};
use pdipam::{Holder, Reservation, Subnet};
use std::net::{IpAddr, Ipv4Addr};

/// The prefix length of one cell.
pub const CELL_LEN: u8 = 28;
/// Addresses in one cell.
pub const CELL_ADDRESSES: u32 = 16;

/// What holds the addresses of one /28.
#[derive(Clone, Debug, Default)]
pub struct Cell {
    /// Addresses held one by one (interfaces' primary and secondary addresses).
    pub singles: u32,
    /// Addresses the subnet's profile reserves (AWS: the first four and the last).
    pub reserved: u32,
    /// Addresses inside delegated prefixes.
    pub in_prefix: u32,
    /// A prefix covering part or all of the cell.
    pub prefix: Option<IpNet>,
    /// A reservation covering part or all of the cell.
    pub reservation: Option<Reservation>,
}

impl Cell {
    /// Addresses nobody holds.
    pub fn free(&self) -> u32 {
        CELL_ADDRESSES - self.singles - self.reserved - self.in_prefix
    }

    /// Entirely free: a /28 could be delegated here now (if the reservations allow).
    pub fn is_free(&self) -> bool {
        self.free() == CELL_ADDRESSES
    }
}

/// Every /28 of a subnet, in address order.
pub struct Census {
    /// The subnet.
    pub subnet: Ipv4Net,
    /// One per /28.
    pub cells: Vec<Cell>,
}

impl Census {
    /// Counts a subnet's allocations and reservations into /28 cells.
    ///
    /// # Errors
    /// An IPv6 subnet, or one smaller than a /28, named.
    pub fn of(subnet: &Subnet) -> Result<Census, String> {
        let net = match subnet.cidr() {
            IpNet::V4(n) if n.prefix_len() <= CELL_LEN => n,
            other => {
                return Err(format!(
                    "subnet {other}: /28 counts need an IPv4 subnet of /28 or larger"
                ))
            }
        };
        let count = 1usize << (CELL_LEN - net.prefix_len());
        let mut census = Census {
            subnet: net,
            cells: vec![Cell::default(); count],
        };
        for holder in subnet.allocations() {
            match holder {
                Holder::Reserved(a) => census.cell_mut(a).reserved += 1,
                Holder::Address(a) => census.cell_mut(a).singles += 1,
                Holder::Prefix(p) => {
                    for (i, overlap) in census.overlaps(p) {
                        let cell = &mut census.cells[i];
                        cell.in_prefix += overlap;
                        cell.prefix.get_or_insert(p);
                    }
                }
            }
        }
        for r in subnet.reservations() {
            for (i, _) in census.overlaps(r.cidr) {
                census.cells[i].reservation.get_or_insert(r);
            }
        }
        Ok(census)
    }

    /// The /28 of cell `i`.
    pub fn cell_net(&self, i: usize) -> Ipv4Net {
        let base = u32::from(self.subnet.network()) + (i as u32) * CELL_ADDRESSES;
        Ipv4Net::new(Ipv4Addr::from(base), CELL_LEN).expect("28 is a valid IPv4 prefix length")
    }

    /// The cell holding `addr` (an address of the subnet).
    pub fn index_of(&self, addr: IpAddr) -> usize {
        let IpAddr::V4(a) = addr else {
            unreachable!("an IPv4 subnet holds only IPv4 addresses")
        };
        ((u32::from(a) - u32::from(self.subnet.network())) / CELL_ADDRESSES) as usize
    }

    fn cell_mut(&mut self, addr: IpAddr) -> &mut Cell {
        let i = self.index_of(addr);
        &mut self.cells[i]
    }

    /// The cells `net` touches, each with the number of its addresses inside `net`.
    fn overlaps(&self, net: IpNet) -> impl Iterator<Item = (usize, u32)> {
        let first = self.index_of(net.network());
        let last = self.index_of(net.broadcast());
        let size = 1u64 << (32 - net.prefix_len());
        let per_cell = size.min(u64::from(CELL_ADDRESSES)) as u32;
        (first..=last).map(move |i| (i, per_cell))
    }
}
