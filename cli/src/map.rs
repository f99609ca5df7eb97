//! `--map FILE.svg`: a picture of a subnet, one cell per /28, coloured by what holds it, with a
//! legend. Every cell carries a tooltip naming its /28 and its holder.

use crate::census::{Cell, Census, CELL_ADDRESSES};
use ipnet::{IpNet, Ipv4Net};
use std::net::IpAddr;
use std::path::Path;
use svg::node::element::{Group, Rectangle, Text, Title};
use svg::Document;

/// Maps stop here: a /12's 65536 cells are already a 1.5k-pixel square.
const MAX_CELLS: usize = 1 << 16;

const FREE: &str = "#eeeeee";
const RESERVED: &str = "#fbe29f";
const SINGLES: &str = "#d62728";
/// The legend's swatch for the reservations' outline.
const DASHED: &str = "dashed";
/// Prefix owners' colours (red and grey are taken); they repeat past the last.
const OWNERS: [&str; 10] = [
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#bcbd22",
    "#393b79", "#637939",
];
/// Legend lines for owners before "and N more".
const LEGEND_OWNERS: usize = 12;
/// The outline of a region a defragmentation plan reserves, and its moved addresses' marks.
const PLANNED: &str = "#009e73";
/// The legend's swatch for planned regions.
const PLANNED_SWATCH: &str = "planned";
/// The legend's swatch for moved addresses.
const MOVED_SWATCH: &str = "moved";

/// What a defragmentation plan adds to a map: the regions it reserves (a solid outline) and the
/// addresses it moves out of them (a dot in their /28).
#[derive(Default)]
pub struct Marks {
    /// Regions to reserve.
    pub regions: Vec<Ipv4Net>,
    /// Addresses to move.
    pub moved: Vec<IpAddr>,
}

/// What a cell shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shade {
    Free,
    /// Free, inside a reservation.
    Reserved,
    /// Broken by single or reserved addresses: no prefix fits.
    Singles,
    /// Holds (part of) a prefix of this owner.
    Prefix(usize),
}

/// Who holds prefixes: names for the legend, and the owner of each prefix.
pub struct Owners<'a> {
    /// Legend names, e.g. `node-3`.
    pub names: Vec<String>,
    /// Index into `names` of a prefix's owner.
    pub owner_of: &'a dyn Fn(IpNet) -> usize,
}

fn shade(cell: &Cell, owners: &Owners<'_>) -> Shade {
    match cell.prefix {
        Some(p) => Shade::Prefix((owners.owner_of)(p)),
        None if cell.singles + cell.reserved > 0 => Shade::Singles,
        None if cell.reservation.is_some() => Shade::Reserved,
        None => Shade::Free,
    }
}

fn colour(shade: Shade) -> &'static str {
    match shade {
        Shade::Free => FREE,
        Shade::Reserved => RESERVED,
        Shade::Singles => SINGLES,
        Shade::Prefix(k) => OWNERS[k % OWNERS.len()],
    }
}

fn tooltip(census: &Census, i: usize, cell: &Cell, shade: Shade, owners: &Owners<'_>) -> String {
    let mut text = format!("{}: ", census.cell_net(i));
    match shade {
        Shade::Free => text.push_str("free"),
        Shade::Reserved => text.push_str("free"),
        Shade::Singles => {
            text.push_str(&format!("{} single address(es)", cell.singles));
            if cell.reserved > 0 {
                text.push_str(&format!(", {} reserved by the subnet", cell.reserved));
            }
            text.push_str(&format!(", {} free", cell.free()));
        }
        Shade::Prefix(k) => {
            let p = cell.prefix.expect("a prefix shade has a prefix");
            text.push_str(&format!("prefix {p} on {}", owners.names[k]));
            if cell.in_prefix < CELL_ADDRESSES {
                text.push_str(&format!("; {} single, {} free", cell.singles, cell.free()));
            }
        }
    }
    if let Some(r) = cell.reservation {
        text.push_str(&format!("; in {} reservation {}", r.kind, r.cidr));
    }
    text
}

/// Whether a map of `subnet` can be drawn (one cell per /28, at most 65536): checked before
/// long work, so that a map that cannot be drawn fails fast.
///
/// # Errors
/// An IPv6 subnet, one smaller than a /28, or one larger than a /12, named.
pub fn check(path: &Path, subnet: IpNet) -> Result<(), String> {
    match subnet {
        IpNet::V4(n) if (12..=28).contains(&n.prefix_len()) => Ok(()),
        other => Err(format!(
            "--map {}: maps draw IPv4 subnets from a /12 (65536 /28s) to a /28, not {other}",
            path.display()
        )),
    }
}

/// Writes the map of `census` to `path`.
///
/// # Errors
/// A subnet with more than 65536 /28s, or a file that cannot be written, named.
pub fn write(path: &Path, census: &Census, owners: &Owners<'_>) -> Result<(), String> {
    write_marked(path, census, owners, &Marks::default())
}

/// [`write`], with a defragmentation plan's regions and moved addresses marked.
///
/// # Errors
/// As [`write`].
pub fn write_marked(
    path: &Path,
    census: &Census,
    owners: &Owners<'_>,
    marks: &Marks,
) -> Result<(), String> {
    let count = census.cells.len();
    if count > MAX_CELLS {
        return Err(format!(
            "--map {}: {} has {count} /28s; maps stop at 65536 (a /12)",
            path.display(),
            census.subnet
        ));
    }
    let doc = render(census, owners, marks);
    svg::save(path, &doc).map_err(|e| format!("--map {}: {e}", path.display()))
}

/// The rectangle around `span` cells from cell `i`: an aligned block is either inside one row
/// or whole rows.
fn outline(
    i: usize,
    span: usize,
    cols: usize,
    px: usize,
    (left, top): (usize, usize),
) -> Rectangle {
    let (w, h) = if span <= cols {
        (span, 1)
    } else {
        (cols, span / cols)
    };
    Rectangle::new()
        .set("x", left + (i % cols) * px)
        .set("y", top + (i / cols) * px)
        .set("width", w * px - 1)
        .set("height", h * px - 1)
}

fn render(census: &Census, owners: &Owners<'_>, marks: &Marks) -> Document {
    let count = census.cells.len();
    let log2 = count.trailing_zeros();
    // Rows of a power-of-two width: every aligned block larger than a row is whole rows.
    let cols = 1usize << log2.div_ceil(2);
    let rows = count / cols;
    // About 512 pixels wide, cells between 6 and 24 pixels.
    let px = (512 / cols).clamp(6, 24);
    let (left, top) = (120, 44);
    let grid_w = cols * px;
    let grid_h = rows * px;

    let mut cells = Group::new().set("id", "cells");
    let mut tally = vec![0usize; 3 + owners.names.len()];
    for (i, cell) in census.cells.iter().enumerate() {
        let shade = shade(cell, owners);
        tally[match shade {
            Shade::Free => 0,
            Shade::Reserved => 1,
            Shade::Singles => 2,
            Shade::Prefix(k) => 3 + k,
        }] += 1;
        let rect = Rectangle::new()
            .set("x", left + (i % cols) * px)
            .set("y", top + (i / cols) * px)
            .set("width", px - 1)
            .set("height", px - 1)
            .set("fill", colour(shade))
            .add(Title::new(tooltip(census, i, cell, shade, owners)));
        cells = cells.add(rect);
    }

    let mut labels = Group::new()
        .set("id", "row-labels")
        .set("font-family", "monospace")
        .set("font-size", 10)
        .set("text-anchor", "end");
    let every = (rows / 32).max(1);
    for r in (0..rows).step_by(every) {
        labels = labels.add(
            Text::new(census.cell_net(r * cols).network().to_string())
                .set("x", left - 6)
                .set("y", top + r * px + px - 2),
        );
    }

    let mut reservations = Group::new().set("id", "reservations");
    let mut seen = Vec::new();
    for (i, cell) in census.cells.iter().enumerate() {
        let Some(r) = cell.reservation else { continue };
        if seen.contains(&r.cidr) {
            continue;
        }
        seen.push(r.cidr);
        // An aligned block is either inside one row or whole rows.
        let span = census.cells[i..]
            .iter()
            .take_while(|c| c.reservation == Some(r))
            .count();
        reservations = reservations.add(
            outline(i, span, cols, px, (left, top))
                .set("fill", "none")
                .set("stroke", "#000000")
                .set("stroke-width", 1.5)
                .set("stroke-dasharray", "4 2")
                .add(Title::new(format!("{} reservation {}", r.kind, r.cidr))),
        );
    }

    // The plan's regions: aligned blocks of whole cells, each within a row or whole rows.
    let mut planned = Group::new().set("id", "plan");
    for r in &marks.regions {
        let i = census.index_of(IpAddr::V4(r.network()));
        let span = ((1usize << (32 - r.prefix_len())) / CELL_ADDRESSES as usize).max(1);
        planned = planned.add(
            outline(i, span, cols, px, (left, top))
                .set("fill", "none")
                .set("stroke", PLANNED)
                .set("stroke-width", 2.5)
                .add(Title::new(format!("the plan reserves {r}"))),
        );
    }
    for a in &marks.moved {
        let i = census.index_of(*a);
        planned = planned.add(
            svg::node::element::Circle::new()
                .set("cx", left + (i % cols) * px + px / 2)
                .set("cy", top + (i / cols) * px + px / 2)
                .set("r", (px / 5).max(2))
                .set("fill", PLANNED)
                .add(Title::new(format!("the plan moves {a}"))),
        );
    }

    let mut legend = Group::new()
        .set("id", "legend")
        .set("font-family", "sans-serif")
        .set("font-size", 12);
    let mut entries: Vec<(&str, String)> = vec![
        (FREE, format!("free ({} /28s)", tally[0])),
        (RESERVED, format!("free, in a reservation ({})", tally[1])),
        (
            SINGLES,
            format!("broken by single or reserved addresses ({})", tally[2]),
        ),
    ];
    for (k, name) in owners.names.iter().enumerate().take(LEGEND_OWNERS) {
        entries.push((
            OWNERS[k % OWNERS.len()],
            format!("prefixes on {name} ({} /28s)", tally[3 + k]),
        ));
    }
    if owners.names.len() > LEGEND_OWNERS {
        entries.push((
            "none",
            format!(
                "and {} more (colours repeat; each cell's tooltip names its holder)",
                owners.names.len() - LEGEND_OWNERS
            ),
        ));
    }
    entries.push((DASHED, "dashed outline: a subnet CIDR reservation".into()));
    if !marks.regions.is_empty() {
        entries.push((
            PLANNED_SWATCH,
            "green outline: a prefix reservation the plan creates".into(),
        ));
        entries.push((
            MOVED_SWATCH,
            "green dot: the plan moves an address out".into(),
        ));
    }
    let legend_top = top + grid_h + 24;
    for (n, (fill, label)) in entries.iter().enumerate() {
        let y = legend_top + n * 18;
        let mut swatch = Rectangle::new()
            .set("x", left)
            .set("y", y)
            .set("width", 12)
            .set("height", 12)
            .set("stroke", "#555555");
        swatch = match *fill {
            DASHED => swatch.set("fill", "none").set("stroke-dasharray", "4 2"),
            PLANNED_SWATCH => swatch
                .set("fill", "none")
                .set("stroke", PLANNED)
                .set("stroke-width", 2.5),
            MOVED_SWATCH => swatch.set("fill", PLANNED),
            other => swatch.set("fill", other),
        };
        legend = legend.add(swatch).add(
            Text::new(label.as_str())
                .set("x", left + 18)
                .set("y", y + 10),
        );
    }

    let width = (left + grid_w + 20).max(left + 520);
    let height = legend_top + entries.len() * 18 + 10;
    Document::new()
        .set("width", width)
        .set("height", height)
        .set("viewBox", (0, 0, width, height))
        .add(Title::new(format!(
            "pdipam map of {}: one cell per /28",
            census.subnet
        )))
        .add(
            Rectangle::new()
                .set("width", width)
                .set("height", height)
                .set("fill", "#ffffff"),
        )
        .add(
            Text::new(format!(
                "{}: {count} cells, one per /28, {cols} per row",
                census.subnet
            ))
            .set("x", left)
            .set("y", 26)
            .set("font-family", "sans-serif")
            .set("font-size", 16),
        )
        .add(labels)
        .add(cells)
        .add(reservations)
        .add(planned)
        .add(legend)
}

#[cfg(test)]
mod tests;
