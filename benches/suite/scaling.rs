//! How the cost of an allocation grows with the subnet and with its fill: a /28 allocate +
//! release pair and a single-address pair, on subnets from a /24 to a /8 with 0%, 50%, 90% and
//! 99% of their /28s taken (the lowest ones, so a naive scan walks the whole taken part), pdipam
//! beside the naive model. The group also draws the chart BENCHMARKS.md embeds: written to
//! `target/criterion/scaling.svg`, and to the path in `PDIPAM_SCALING_SVG` when it is set.

use super::Alloc;
use criterion::{BenchmarkId, Criterion};
use ipnet::{IpNet, Ipv4Net};
use pdipam::testing::NaiveSubnet;
use pdipam::{ReservedProfile, Subnet, SubnetOptions};
use plotters::prelude::*;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::net::Ipv4Addr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Subnet prefix lengths measured.
const LENGTHS: [u8; 5] = [24, 20, 16, 12, 8];
/// Percent of the /28s taken before measuring.
const FILLS: [u32; 4] = [0, 50, 90, 99];

/// Per-op times seen by every sample of a case, for the chart: (impl, op, fill, length).
type Key = (&'static str, &'static str, u32, u8);
static SEEN: Mutex<BTreeMap<Key, Vec<f64>>> = Mutex::new(BTreeMap::new());

fn subnet_net(len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::new(10, 0, 0, 0), len).expect("a valid length"))
}

fn options() -> SubnetOptions {
    SubnetOptions::default().profile(ReservedProfile::None)
}

/// A subnet of length `len` with the lowest `fill`% of its /28s allocated.
fn filled<A: Alloc>(len: u8, fill: u32, make: impl Fn(IpNet) -> A) -> A {
    let mut a = make(subnet_net(len));
    let blocks = 1u32 << (28 - len);
    let taken = (u64::from(blocks) * u64::from(fill) / 100) as u32;
    for b in 0..taken {
        let net = Ipv4Net::new(Ipv4Addr::from(0x0a00_0000 + b * 16), 28).expect("a /28");
        a.prefix_at(IpNet::V4(net));
    }
    a
}

fn pair(a: &mut impl Alloc, op: &str) {
    if op == "prefix" {
        let p = a.prefix(28).expect("a free /28 remains");
        a.release(black_box(p));
    } else {
        let ip = a.ip().expect("a free address remains");
        a.release(IpNet::from(black_box(ip)));
    }
}

fn measure<A: Alloc>(a: &mut A, key: Key, iters: u64) -> Duration {
    let t = Instant::now();
    for _ in 0..iters {
        pair(a, key.1);
    }
    let d = t.elapsed();
    SEEN.lock()
        .expect("no panic while holding it")
        .entry(key)
        .or_default()
        .push(d.as_nanos() as f64 / iters as f64);
    d
}

pub fn benches(c: &mut Criterion) {
    for op in ["prefix", "single"] {
        let mut g = c.benchmark_group(format!("scaling_{op}_pair"));
        g.sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_millis(800));
        for len in LENGTHS {
            for fill in FILLS {
                let param = format!("{len}/{fill}pct");
                let mut fast = filled(len, fill, |n| Subnet::with_options(n, options()).unwrap());
                g.bench_function(BenchmarkId::new("pdipam", &param), |b| {
                    b.iter_custom(|iters| measure(&mut fast, ("pdipam", op, fill, len), iters))
                });
                drop(fast);
                let mut naive = filled(len, fill, |n| {
                    NaiveSubnet::with_options(n, options()).unwrap()
                });
                g.bench_function(BenchmarkId::new("naive", &param), |b| {
                    b.iter_custom(|iters| measure(&mut naive, ("naive", op, fill, len), iters))
                });
            }
        }
        g.finish();
    }
    if let Err(e) = draw() {
        eprintln!("scaling chart not drawn: {e}");
    }
}

/// The median of what a case's samples saw.
fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn draw() -> Result<(), Box<dyn std::error::Error>> {
    let seen = SEEN.lock().expect("no panic while holding it").clone();
    let mut paths = vec![std::path::PathBuf::from("target/criterion/scaling.svg")];
    if let Some(p) = std::env::var_os("PDIPAM_SCALING_SVG") {
        paths.push(p.into());
    }
    for path in paths {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let root = SVGBackend::new(&path, (1100, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let panels = root.split_evenly((1, 2));
        for (panel, op) in panels.iter().zip(["prefix", "single"]) {
            let max = seen
                .iter()
                .filter(|(k, _)| k.1 == op)
                .map(|(_, v)| median(v))
                .fold(10.0, f64::max);
            let title = match op {
                "prefix" => "/28 allocate + release",
                _ => "single address allocate + release",
            };
            let mut chart = ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                // x: log2 of the subnet's addresses, so larger subnets lie to the right.
                .build_cartesian_2d(7.5f64..24.5f64, (5.0f64..max * 2.0).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("subnet (each step: 16 times the addresses)")
                .y_desc("ns per pair (log)")
                .x_labels(17)
                // A tick per step of 16: /24, /20, /16, /12, /8.
                .x_label_formatter(&|x| {
                    let k = x.round() as i64;
                    if k % 4 == 0 {
                        format!("/{}", 32 - k)
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|y| format!("{y:.0}"))
                .draw()?;
            for (i, fill) in FILLS.iter().enumerate() {
                let colour = Palette99::pick(i).to_rgba();
                for imp in ["pdipam", "naive"] {
                    let points: Vec<(f64, f64)> = LENGTHS
                        .iter()
                        .filter_map(|len| {
                            seen.get(&(imp, op, *fill, *len))
                                .map(|v| (f64::from(32 - *len), median(v)))
                        })
                        .collect();
                    let style = if imp == "pdipam" {
                        colour.stroke_width(3)
                    } else {
                        colour.stroke_width(1)
                    };
                    chart
                        .draw_series(LineSeries::new(points.clone(), style))?
                        .label(format!("{imp}, {fill}% of /28s taken"))
                        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
                    chart
                        .draw_series(points.iter().map(|p| Circle::new(*p, 3, colour.filled())))?;
                }
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK)
                .position(SeriesLabelPosition::UpperLeft)
                .label_font(("sans-serif", 11))
                .draw()?;
        }
        root.present()?;
    }
    Ok(())
}
