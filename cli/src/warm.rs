//! The address mode and warm-pool flags `explain` and `simulate` share, with the CNI's names.

use clap::{Args, ValueEnum};
use pdipam::{planner::WarmSettings, AddressMode};

#[derive(Clone, Copy, ValueEnum)]
enum Mode {
    Prefix,
    Secondary,
}

#[derive(Args)]
pub struct WarmArgs {
    /// Prefix delegation or secondary IPs.
    #[arg(long, value_enum, default_value = "prefix")]
    mode: Mode,
    /// WARM_PREFIX_TARGET (default: 1, as every shipped manifest sets it).
    #[arg(long, value_name = "N", default_value_t = 1)]
    warm_prefix_target: u32,
    /// WARM_IP_TARGET (0: unset).
    #[arg(long, value_name = "N", default_value_t = 0)]
    warm_ip_target: u32,
    /// MINIMUM_IP_TARGET (0: unset).
    #[arg(long, value_name = "N", default_value_t = 0)]
    minimum_ip_target: u32,
    /// WARM_ENI_TARGET.
    #[arg(long, value_name = "N", default_value_t = 1)]
    warm_eni_target: u32,
}

impl WarmArgs {
    pub fn mode(&self) -> AddressMode {
        match self.mode {
            Mode::Prefix => AddressMode::Prefix,
            Mode::Secondary => AddressMode::Secondary,
        }
    }

    pub fn settings(&self) -> WarmSettings {
        WarmSettings::new()
            .warm_eni_target(self.warm_eni_target)
            .warm_ip_target(self.warm_ip_target)
            .minimum_ip_target(self.minimum_ip_target)
            .warm_prefix_target(self.warm_prefix_target)
            .max_pods(None)
    }
}
