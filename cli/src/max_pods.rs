//! `pdipam max-pods`: docs/rules.md, "Max pods", for one instance type or all of them.

use clap::Parser;
use pdipam::limits::{CniVersion, InstanceLimits, LimitsError, MaxPods, MaxPodsOptions};
use std::io::Write;

#[derive(Parser)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["instance_type", "all"])))]
pub struct Args {
    /// The instance type, e.g. m5.large.
    #[arg(long)]
    instance_type: Option<String>,
    /// Every known instance type, one line each (`instance_type max_pods`), sorted by name.
    #[arg(long)]
    all: bool,
    /// Prefix delegation (granted on Nitro or bare metal with CNI 1.9 or later).
    #[arg(long)]
    prefix_delegation: bool,
    /// Custom networking: the primary interface serves no pods.
    #[arg(long)]
    custom_networking: bool,
    /// Use at most this many interfaces (the CNI's MAX_ENI).
    #[arg(long, value_name = "N", value_parser = parse_max_eni)]
    max_eni: Option<u32>,
    /// The VPC CNI version (default: a current one).
    #[arg(long, value_name = "X.Y.Z")]
    cni_version: Option<String>,
    /// The uncapped value instead of the recommended 110 / 250 cap.
    #[arg(long)]
    show_max_allowed: bool,
    /// JSON output for machines.
    #[arg(long)]
    json: bool,
}

fn options(args: &Args) -> Result<MaxPodsOptions, LimitsError> {
    Ok(MaxPodsOptions {
        prefix_delegation: args.prefix_delegation,
        custom_networking: args.custom_networking,
        max_eni: args.max_eni,
        cni_version: match &args.cni_version {
            Some(v) => v.parse::<CniVersion>()?,
            None => CniVersion::default(),
        },
        show_max_allowed: args.show_max_allowed,
    })
}

fn json_of(instance_type: &str, r: &Result<MaxPods, LimitsError>) -> serde_json::Value {
    match r {
        Ok(m) => serde_json::json!({
            "instance_type": instance_type,
            "max_pods": m.max_pods,
            "uncapped": m.uncapped,
            "prefix_mode": m.prefix_mode,
            "fallback": m.fallback.as_ref().map(|f| f.to_string()),
            "interfaces": m.interfaces,
        }),
        Err(LimitsError::UnknownVcpus { uncapped, .. }) => serde_json::json!({
            "instance_type": instance_type,
            "max_pods": null,
            "uncapped": uncapped,
            "error": r.as_ref().err().map(|e| e.to_string()),
        }),
        Err(e) => serde_json::json!({ "instance_type": instance_type, "error": e.to_string() }),
    }
}

pub fn run(args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let opts = options(args)?;
    let mut out = std::io::stdout().lock();
    if let Some(t) = &args.instance_type {
        let limits = InstanceLimits::lookup(t)?;
        let r = limits.max_pods(&opts);
        if args.json {
            writeln!(out, "{}", json_of(t, &r))?;
            return Ok(());
        }
        let m = r?;
        if let Some(f) = &m.fallback {
            eprintln!("note: {f}");
        }
        writeln!(out, "{}", m.max_pods)?;
        return Ok(());
    }
    // --all: every type; those whose cap cannot be chosen are reported, not guessed.
    let mut unknown = 0;
    let mut rows = Vec::new();
    for limits in InstanceLimits::all() {
        let r = limits.max_pods(&opts);
        if args.json {
            rows.push(json_of(&limits.instance_type, &r));
            continue;
        }
        match r {
            Ok(m) => writeln!(out, "{} {}", limits.instance_type, m.max_pods)?,
            Err(_) => {
                unknown += 1;
                writeln!(out, "{} -", limits.instance_type)?;
            }
        }
    }
    if args.json {
        writeln!(out, "{}", serde_json::Value::Array(rows))?;
    } else if unknown > 0 {
        eprintln!(
            "note: {unknown} types have unknown vCPUs, so the 110/250 cap cannot be chosen \
             (shown as -); --show-max-allowed gives their uncapped value"
        );
    }
    Ok(())
}

/// `--max-eni`: at least 1. (ipamd ignores a `MAX_ENI` below 1; a command asked for one says so
/// rather than print a max pods that no node has.)
fn parse_max_eni(text: &str) -> Result<u32, String> {
    match text.parse::<u32>() {
        Ok(0) => Err("an instance has at least its primary interface: give 1 or more".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{text:?} is not a whole number")),
    }
}
