//! The embedded EC2 instance-limits table (`data/instance-limits.csv`), parsed once on first use.

use super::{Hypervisor, InstanceLimits};
use crate::sync::OnceLock;

/// The CSV, compiled into the crate so that max-pods needs no file and no network at run time.
const CSV: &str = include_str!("../../data/instance-limits.csv");

const HEADER: &str = "instance_type,max_enis,ipv4_per_eni,ipv6_per_eni,hypervisor,bare_metal,\
default_vcpus,network_card_count,max_enis_all_cards,is_trunking_compatible,branch_interface";

/// Every known instance type, sorted by name (the file is sorted; `parse` checks it).
pub(crate) fn all() -> &'static [InstanceLimits] {
    static TABLE: OnceLock<Vec<InstanceLimits>> = OnceLock::new();
    TABLE.get_or_init(|| parse(CSV).unwrap_or_else(|e| panic!("embedded table: {e}")))
}

/// Parses the table. The embedded file is part of the crate and checked by a test, so an error
/// here is a build defect (reported with the line), never a run-time condition.
fn parse(text: &str) -> Result<Vec<InstanceLimits>, String> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.trim_end() == HEADER => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    let mut rows: Vec<InstanceLimits> = Vec::with_capacity(1400);
    for (n, line) in lines {
        let line = line.trim_end();
        if line.is_empty() {
            continue;
        }
        let row = parse_row(line).map_err(|e| format!("line {}: {e}: {line}", n + 1))?;
        if let Some(prev) = rows.last() {
            if prev.instance_type >= row.instance_type {
                return Err(format!("line {}: not sorted by name", n + 1));
            }
        }
        rows.push(row);
    }
    Ok(rows)
}

fn parse_row(line: &str) -> Result<InstanceLimits, String> {
    let f: Vec<&str> = line.split(',').collect();
    if f.len() != 11 {
        return Err(format!("{} fields, expected 11", f.len()));
    }
    let num = |i: usize| -> Result<u32, String> {
        f[i].parse()
            .map_err(|_| format!("field {} is not a number", i + 1))
    };
    let opt_num = |i: usize| -> Result<Option<u32>, String> {
        if f[i].is_empty() {
            Ok(None)
        } else {
            num(i).map(Some)
        }
    };
    let flag = |i: usize| -> Result<Option<bool>, String> {
        match f[i] {
            "" => Ok(None),
            "true" => Ok(Some(true)),
            "false" => Ok(Some(false)),
            _ => Err(format!("field {} is not a boolean", i + 1)),
        }
    };
    Ok(InstanceLimits {
        instance_type: f[0].to_owned(),
        max_enis: num(1)?,
        ipv4_per_eni: num(2)?,
        ipv6_per_eni: opt_num(3)?,
        hypervisor: match f[4] {
            "nitro" => Hypervisor::Nitro,
            "xen" => Hypervisor::Xen,
            "unknown" | "" => Hypervisor::Unknown,
            other => return Err(format!("unknown hypervisor {other}")),
        },
        bare_metal: flag(5)?.ok_or("bare_metal is empty")?,
        default_vcpus: opt_num(6)?,
        network_card_count: num(7)?,
        max_enis_all_cards: num(8)?,
        trunking_compatible: flag(9)?,
        branch_interfaces: opt_num(10)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_table_parses_completely() {
        assert_eq!(all().len(), 1392);
        assert_eq!(CSV.lines().count(), 1393);
    }

    #[test]
    fn bad_rows_are_reported_with_their_line() {
        let bad = format!("{HEADER}\na1.large,3,x,10,nitro,false,2,1,3,true,9\n");
        assert!(parse(&bad).unwrap_err().contains("line 2"));
        let unsorted = format!(
            "{HEADER}\nb.large,3,10,10,nitro,false,2,1,3,true,9\na.large,3,10,10,nitro,false,2,1,3,true,9\n"
        );
        assert!(parse(&unsorted).unwrap_err().contains("not sorted"));
        assert!(parse("nope\n").is_err());
    }
}
