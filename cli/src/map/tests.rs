//! The map's layout, read back from the SVG it writes: cells on a grid in address order,
//! outlines over exactly their reservations' cells, a label per row (or every few rows), a
//! legend below the grid, and a page that holds all of it.

use super::*;
use pdipam::{ReservationKind, ReservedProfile, Subnet, SubnetOptions};

/// A rectangle as drawn, with its tooltip (if any) and fill.
#[derive(Debug, Clone, PartialEq)]
struct Rect {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    fill: String,
    dashed: bool,
    title: String,
}

impl Rect {
    fn right(&self) -> f64 {
        self.x + self.w
    }
    fn bottom(&self) -> f64 {
        self.y + self.h
    }
}

/// Text as drawn: its anchor point and content.
#[derive(Debug)]
struct Label {
    x: f64,
    y: f64,
    text: String,
}

/// A drawn map, in parts.
#[derive(Debug)]
struct Drawn {
    width: f64,
    height: f64,
    view_box: String,
    title: String,
    heading: String,
    cells: Vec<Rect>,
    outlines: Vec<Rect>,
    row_labels: Vec<Label>,
    swatches: Vec<Rect>,
    legend: Vec<Label>,
}

fn num(n: roxmltree::Node<'_, '_>, name: &str) -> f64 {
    n.attribute(name)
        .unwrap_or_else(|| panic!("{name} missing on {n:?}"))
        .parse()
        .unwrap()
}

fn rect(n: roxmltree::Node<'_, '_>) -> Rect {
    Rect {
        x: n.attribute("x").map_or(0.0, |v| v.parse().unwrap()),
        y: n.attribute("y").map_or(0.0, |v| v.parse().unwrap()),
        w: num(n, "width"),
        h: num(n, "height"),
        fill: n.attribute("fill").unwrap_or_default().to_string(),
        dashed: n.attribute("stroke-dasharray").is_some(),
        title: n
            .children()
            .find(|c| c.has_tag_name("title"))
            .and_then(|t| t.text())
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

fn label(n: roxmltree::Node<'_, '_>) -> Label {
    Label {
        x: num(n, "x"),
        y: num(n, "y"),
        text: n.text().unwrap_or_default().trim().to_string(),
    }
}

/// The `tag` elements directly inside the group with id `id`.
fn children<'a, 'i>(
    svg: roxmltree::Node<'a, 'i>,
    id: &str,
    tag: &'static str,
) -> impl Iterator<Item = roxmltree::Node<'a, 'i>> {
    svg.descendants()
        .find(|n| n.attribute("id") == Some(id))
        .unwrap_or_else(|| panic!("no {id} group"))
        .children()
        .filter(move |n| n.has_tag_name(tag))
}

fn draw(subnet: &Subnet, names: &[&str], owner_of: &dyn Fn(IpNet) -> usize) -> Drawn {
    let census = Census::of(subnet).unwrap();
    let owners = Owners {
        names: names.iter().map(|s| s.to_string()).collect(),
        owner_of,
    };
    let text = render(&census, &owners, &super::Marks::default()).to_string();
    let doc = roxmltree::Document::parse(&text).expect("the map is well-formed XML");
    let svg = doc.root_element();
    let rects = |id| children(svg, id, "rect").map(rect).collect();
    let texts = |id| children(svg, id, "text").map(label).collect();
    let top_level = |tag: &str| {
        svg.children()
            .find(|n| n.has_tag_name(tag))
            .and_then(|n| n.text())
            .unwrap()
            .trim()
            .to_string()
    };
    Drawn {
        width: num(svg, "width"),
        height: num(svg, "height"),
        view_box: svg.attribute("viewBox").unwrap().to_string(),
        title: top_level("title"),
        heading: top_level("text"),
        cells: rects("cells"),
        outlines: rects("reservations"),
        row_labels: texts("row-labels"),
        swatches: rects("legend"),
        legend: texts("legend"),
    }
}

fn subnet(cidr: &str, profile: ReservedProfile) -> Subnet {
    let opts = SubnetOptions::default().profile(profile);
    Subnet::with_options(cidr.parse().unwrap(), opts).unwrap()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

/// Everything every map must satisfy: cells `pitch` apart with a one-pixel gap, `cols` to a
/// row, in address order; row labels left of the rows they name; the legend below the grid,
/// its lines 18 pixels apart; all of it inside the page.
fn check_layout(d: &Drawn, census: &Census, cols: usize, pitch: f64) {
    assert_eq!(d.cells.len(), census.cells.len());
    let (left, top) = (d.cells[0].x, d.cells[0].y);
    for (i, c) in d.cells.iter().enumerate() {
        let (col, row) = ((i % cols) as f64, (i / cols) as f64);
        assert_eq!(
            (c.x, c.y),
            (left + col * pitch, top + row * pitch),
            "cell {i}"
        );
        assert_eq!((c.w, c.h), (pitch - 1.0, pitch - 1.0), "cell {i}");
        let net = census.cell_net(i);
        assert!(c.title.starts_with(&format!("{net}: ")), "{}", c.title);
    }
    let grid_right = d.cells.iter().map(Rect::right).fold(0.0, f64::max);
    let grid_bottom = d.cells.iter().map(Rect::bottom).fold(0.0, f64::max);
    let rows = census.cells.len() / cols;
    assert_eq!(grid_bottom, top + rows as f64 * pitch - 1.0);

    // Labels: ending 6 pixels left of the grid, each on the baseline 2 pixels above the
    // bottom of the row it names.
    for l in &d.row_labels {
        assert_eq!(l.x, left - 6.0, "{l:?}");
        let row = ((l.y - top) / pitch).floor() as usize;
        assert_eq!(l.y, top + (row + 1) as f64 * pitch - 2.0, "{l:?}");
        assert_eq!(
            l.text,
            census.cell_net(row * cols).network().to_string(),
            "{l:?}"
        );
    }
    // Rows are a power of two: every row labelled up to 32, then every second, fourth, ...
    assert_eq!(d.row_labels.len(), rows.min(32), "at most 32 row labels");

    // Legend: 24 pixels below the grid, one line per swatch, 18 pixels apart, text 6 pixels
    // right of its swatch on a baseline 2 pixels above the swatch's bottom.
    assert_eq!(d.swatches.len(), d.legend.len());
    assert_eq!(
        d.swatches[0].y,
        grid_bottom + 1.0 + 24.0,
        "{:?}",
        d.swatches[0]
    );
    for (k, (s, t)) in d.swatches.iter().zip(&d.legend).enumerate() {
        assert_eq!((s.x, s.w, s.h), (left, 12.0, 12.0), "{s:?}");
        assert_eq!(s.y, d.swatches[0].y + 18.0 * k as f64, "{s:?}");
        assert_eq!(
            (t.x, t.y),
            (s.right() + 6.0, s.bottom() - 2.0),
            "{t:?} beside {s:?}"
        );
    }

    // The page holds everything, with a margin right of the grid and below the legend.
    assert_eq!(d.view_box, format!("0 0 {} {}", d.width, d.height));
    assert!(
        d.width >= grid_right + 20.0 && d.width >= left + 520.0,
        "{}",
        d.width
    );
    let last = d.swatches.last().unwrap();
    assert_eq!(d.height, last.bottom() + 16.0, "{} vs {last:?}", d.height);
    for o in &d.outlines {
        assert!(
            o.right() <= grid_right && o.bottom() <= grid_bottom,
            "{o:?}"
        );
    }
    let subnet = census.subnet;
    let count = census.cells.len();
    assert_eq!(d.title, format!("pdipam map of {subnet}: one cell per /28"));
    assert_eq!(
        d.heading,
        format!("{subnet}: {count} cells, one per /28, {cols} per row")
    );
}

#[test]
fn cells_are_squares_on_a_grid_between_6_and_24_pixels() {
    // Cell size: about 512 pixels across, kept between 6 and 24; rows a power of two long.
    for (cidr, cols, pitch, width) in [
        ("10.0.0.0/28", 1, 24.0, 640.0),
        ("10.0.0.0/26", 2, 24.0, 640.0),
        ("10.0.0.0/22", 8, 24.0, 640.0),
        ("10.0.0.0/21", 16, 24.0, 640.0),
        ("10.0.0.0/16", 64, 8.0, 652.0),
        ("10.0.0.0/15", 128, 6.0, 908.0),
    ] {
        let s = subnet(cidr, ReservedProfile::Aws);
        let d = draw(&s, &[], &|_| 0);
        check_layout(&d, &Census::of(&s).unwrap(), cols, pitch);
        assert_eq!(d.width, width, "{cidr}");
    }
}

#[test]
fn a_tall_map_labels_every_few_rows_and_at_most_32() {
    let s = subnet("10.0.0.0/16", ReservedProfile::None);
    let d = draw(&s, &[], &|_| 0);
    // 64 rows of 64 cells: every other row labelled, from the first.
    let labels: Vec<&str> = d.row_labels.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(labels.len(), 32);
    assert_eq!(labels[..3], ["10.0.0.0", "10.0.8.0", "10.0.16.0"]);
    assert_eq!(labels[31], "10.0.248.0");
}

#[test]
fn outlines_cover_exactly_their_reservations_cells() {
    let s = subnet("10.0.0.0/22", ReservedProfile::Aws);
    // Whole rows (a /23: 32 cells, 4 rows of 8), part of a row (a /27: 2 cells) and one
    // reservation smaller than a cell (a /30 inside 10.0.1.0/28).
    s.add_reservation(net("10.0.2.0/23"), ReservationKind::Prefix)
        .unwrap();
    s.add_reservation(net("10.0.0.64/27"), ReservationKind::Explicit)
        .unwrap();
    s.add_reservation(net("10.0.1.4/30"), ReservationKind::Explicit)
        .unwrap();
    let census = Census::of(&s).unwrap();
    let d = draw(&s, &[], &|_| 0);
    check_layout(&d, &census, 8, 24.0);
    assert_eq!(d.outlines.len(), 3);
    for o in &d.outlines {
        assert!(o.dashed && o.fill == "none", "{o:?}");
        let cidr: IpNet = o.title.rsplit(' ').next().unwrap().parse().unwrap();
        let inside: Vec<&Rect> = d
            .cells
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                let cell = IpNet::V4(census.cell_net(*i));
                cidr.contains(&cell) || cell.contains(&cidr)
            })
            .map(|(_, c)| c)
            .collect();
        let x = inside.iter().map(|c| c.x).fold(f64::MAX, f64::min);
        let y = inside.iter().map(|c| c.y).fold(f64::MAX, f64::min);
        let right = inside.iter().map(|c| c.right()).fold(0.0, f64::max);
        let bottom = inside.iter().map(|c| c.bottom()).fold(0.0, f64::max);
        assert_eq!(
            (o.x, o.y, o.right(), o.bottom()),
            (x, y, right, bottom),
            "{o:?}"
        );
    }
    let titles: Vec<&str> = d.outlines.iter().map(|o| o.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "explicit reservation 10.0.0.64/27",
            "explicit reservation 10.0.1.4/30",
            "prefix reservation 10.0.2.0/23"
        ]
    );
    // The dashed swatch explains them; it is the legend's last line and the only dashed one.
    let dashed: Vec<usize> = (0..d.swatches.len())
        .filter(|&k| d.swatches[k].dashed)
        .collect();
    assert_eq!(dashed, [d.swatches.len() - 1]);
    assert_eq!(d.swatches[dashed[0]].fill, "none");
    assert_eq!(
        d.legend.last().unwrap().text,
        "dashed outline: a subnet CIDR reservation"
    );
}

#[test]
fn tooltips_say_what_holds_each_cell() {
    let s = subnet("10.0.0.0/24", ReservedProfile::Aws);
    s.allocate_prefix_at(net("10.0.0.16/28")).unwrap();
    s.allocate_prefix_at(net("10.0.0.32/29")).unwrap();
    s.allocate_ip_at("10.0.0.40".parse().unwrap()).unwrap();
    s.allocate_ip_at("10.0.0.50".parse().unwrap()).unwrap();
    s.add_reservation(net("10.0.0.64/28"), ReservationKind::Prefix)
        .unwrap();
    let d = draw(&s, &["node-a"], &|_| 0);
    let tips: Vec<&str> = d.cells[..5].iter().map(|c| c.title.as_str()).collect();
    assert_eq!(
        tips,
        [
            "10.0.0.0/28: 0 single address(es), 4 reserved by the subnet, 12 free",
            "10.0.0.16/28: prefix 10.0.0.16/28 on node-a",
            "10.0.0.32/28: prefix 10.0.0.32/29 on node-a; 1 single, 7 free",
            "10.0.0.48/28: 1 single address(es), 15 free",
            "10.0.0.64/28: free; in prefix reservation 10.0.0.64/28",
        ]
    );
    assert_eq!(d.cells[5].title, "10.0.0.80/28: free");
    // Free cells are grey, or yellow inside a reservation; broken ones red.
    let fills: Vec<&str> = d.cells[..6].iter().map(|c| c.fill.as_str()).collect();
    assert_eq!(
        fills,
        [SINGLES, OWNERS[0], OWNERS[0], SINGLES, RESERVED, FREE]
    );
    assert_eq!(
        d.cells[15].title,
        "10.0.0.240/28: 0 single address(es), 1 reserved by the subnet, 15 free"
    );
}

#[test]
fn owners_past_the_palette_repeat_its_colours_and_the_legend_stops_at_12() {
    // Cell k holds a prefix of owner k.
    let s = subnet("10.0.0.0/24", ReservedProfile::None);
    for k in 0..13 {
        s.allocate_prefix_at(net(&format!("10.0.0.{}/28", 16 * k)))
            .unwrap();
    }
    let owner_of = |p: IpNet| match p {
        IpNet::V4(n) => (n.network().octets()[3] / 16) as usize,
        IpNet::V6(_) => unreachable!(),
    };
    let names: Vec<String> = (0..13).map(|k| format!("node-{k}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();

    let d = draw(&s, &names, &owner_of);
    let fills: Vec<&str> = d.cells.iter().map(|c| c.fill.as_str()).collect();
    assert_eq!(fills[..10], OWNERS);
    assert_eq!(fills[10..13], OWNERS[..3]);
    assert_eq!(fills[13..], [FREE, FREE, FREE]);
    let legend: Vec<&str> = d.legend.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(
        legend[..3],
        [
            "free (3 /28s)",
            "free, in a reservation (0)",
            "broken by single or reserved addresses (0)"
        ]
    );
    assert_eq!(legend[3], "prefixes on node-0 (1 /28s)");
    assert_eq!(legend[14], "prefixes on node-11 (1 /28s)");
    assert_eq!(
        legend[15],
        "and 1 more (colours repeat; each cell's tooltip names its holder)"
    );
    assert_eq!(legend.len(), 17);
    // Each owner's swatch has its cells' colour; the 11th and 12th repeat the first two.
    for (k, fill) in fills.iter().enumerate().take(12) {
        assert_eq!(d.swatches[3 + k].fill, *fill, "node-{k}");
    }

    // Exactly 12 owners: all in the legend, no "more" line.
    let d = draw(&s, &names[..12], &|p| owner_of(p).min(11));
    let legend: Vec<&str> = d.legend.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(legend.len(), 16);
    assert_eq!(legend[14], "prefixes on node-11 (2 /28s)");
    assert!(!legend.iter().any(|l| l.starts_with("and ")), "{legend:?}");
}

#[test]
fn check_takes_ipv4_subnets_from_a_12_to_a_28() {
    let path = Path::new("m.svg");
    for ok in ["10.0.0.0/12", "10.0.0.0/20", "10.0.0.0/28"] {
        assert_eq!(check(path, net(ok)), Ok(()), "{ok}");
    }
    for bad in ["10.0.0.0/11", "10.0.0.0/8", "10.0.0.0/29", "2600:1f14::/64"] {
        assert_eq!(
            check(path, net(bad)),
            Err(format!(
                "--map m.svg: maps draw IPv4 subnets from a /12 (65536 /28s) to a /28, not {bad}"
            ))
        );
    }
}

#[test]
fn write_draws_up_to_65536_cells() {
    let dir = std::env::temp_dir().join(format!("pdipam-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.svg");
    let owners = Owners {
        names: vec![],
        owner_of: &|_| 0,
    };
    let big = Census::of(&subnet("10.0.0.0/11", ReservedProfile::None)).unwrap();
    assert_eq!(
        write(&path, &big, &owners),
        Err(format!(
            "--map {}: 10.0.0.0/11 has 131072 /28s; maps stop at 65536 (a /12)",
            path.display()
        ))
    );
    assert!(!path.exists());
    let most = Census::of(&subnet("10.0.0.0/12", ReservedProfile::None)).unwrap();
    assert_eq!(write(&path, &most, &owners), Ok(()));
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.matches("<rect").count(), 65536 + 1 + 4);
    std::fs::remove_dir_all(dir).unwrap();
}
