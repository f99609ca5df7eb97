//! Max pods for every row of the instance table, checked against the CSV read by the test itself.

use pdipam::limits::{max_pods, InstanceLimits, MaxPodsOptions, PodCap};

fn csv_rows() -> Vec<Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/instance-limits.csv");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

#[test]
fn uncapped_secondary_ip_max_pods_matches_the_formula_for_every_row() {
    let rows = csv_rows();
    assert_eq!(rows.len(), 1392);
    let opts = MaxPodsOptions {
        show_max_allowed: true,
        ..Default::default()
    };
    for row in &rows {
        let enis: u32 = row[1].parse().unwrap();
        let ips: u32 = row[2].parse().unwrap();
        let got = max_pods(&row[0], &opts).unwrap();
        assert_eq!(got.max_pods, enis * (ips - 1) + 2, "{}", row[0]);
        assert_eq!(got.cap, PodCap::Skipped);
    }
    assert_eq!(InstanceLimits::all().len(), rows.len());
}

#[test]
fn capped_prefix_mode_for_every_row() {
    let opts = MaxPodsOptions {
        prefix_delegation: true,
        ..Default::default()
    };
    for row in csv_rows() {
        let enis: u32 = row[1].parse().unwrap();
        let ips: u32 = row[2].parse().unwrap();
        let pd_ok = row[4] == "nitro" || row[5] == "true";
        let per_eni = if pd_ok { (ips - 1) * 16 } else { ips - 1 };
        let uncapped = enis * per_eni + 2;
        match row[6].parse::<u32>() {
            Ok(vcpus) => {
                let cap = if vcpus <= 30 { 110 } else { 250 };
                let got = max_pods(&row[0], &opts).unwrap();
                assert_eq!(got.max_pods, uncapped.min(cap), "{}", row[0]);
                assert_eq!(got.prefix_mode, pd_ok, "{}", row[0]);
                assert_eq!(got.fallback.is_some(), !pd_ok, "{}", row[0]);
            }
            Err(_) => assert!(max_pods(&row[0], &opts).is_err(), "{}", row[0]),
        }
    }
}
