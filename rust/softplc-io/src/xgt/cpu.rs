//! CPU types of the XGT family: the CPU Info byte of the header, the naming convention
//! of their device memory, and the size of their continuous transfers.
//!
//! XGK and the XGB "MK" CPUs (XBM, XBC) name memory the XGK way (`D100`, `M172C`, direct
//! variables `%DW100`); XGI, XGR and the XGB "IEC" CPUs (XEC) use IEC direct variables
//! (`%MW100`, `%IX0.2.5`). XGB CPUs carry at most 512 bytes in one continuous block,
//! the others 1,400.

use std::fmt;
use std::str::FromStr;

/// Most bytes in one continuous block (XGK, XGI, XGR).
pub const MAX_CONTINUOUS: usize = 1400;
/// Most bytes in one continuous block on XGB CPUs.
pub const MAX_CONTINUOUS_XGB: usize = 512;

/// A CPU type of the XGT family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cpu {
    /// XGK: XGK-style names.
    Xgk,
    /// XGI: IEC names.
    Xgi,
    /// XGR (redundant): IEC names.
    Xgr,
    /// XGB "MK" type (XBM, XBC): XGK-style names, 512-byte continuous blocks.
    XgbMk,
    /// XGB "IEC" type (XEC): IEC names, 512-byte continuous blocks.
    XgbIec,
}

/// How a CPU family names its device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Family {
    /// XGK and XGB-MK: devices P, M, L, K, F, T, C, D, S, N, R, U, Z; user forms such as
    /// `D100` and `M172C` besides direct variables.
    Xgk,
    /// XGI, XGR and XGB-IEC: IEC direct variables on I, Q and M only.
    Iec,
}

/// One row per CPU: the type, its name in configuration files, the CPU Info byte.
const CPUS: [(Cpu, &str, u8); 5] = [
    (Cpu::Xgk, "XGK", 0xA0),
    (Cpu::Xgi, "XGI", 0xA4),
    (Cpu::Xgr, "XGR", 0xA8),
    (Cpu::XgbMk, "XGB-MK", 0xB0),
    (Cpu::XgbIec, "XGB-IEC", 0xB4),
];

impl Cpu {
    /// Every CPU type, in the order of the CPU Info codes.
    pub const ALL: [Cpu; 5] = [Cpu::Xgk, Cpu::Xgi, Cpu::Xgr, Cpu::XgbMk, Cpu::XgbIec];

    fn row(self) -> &'static (Cpu, &'static str, u8) {
        // CPUS holds one row per variant in declaration order.
        &CPUS[self as usize]
    }

    /// The CPU Info byte of the application header.
    pub fn code(self) -> u8 {
        self.row().2
    }

    /// The CPU whose CPU Info byte is `code`, if any.
    pub fn from_code(code: u8) -> Option<Cpu> {
        CPUS.iter().find(|r| r.2 == code).map(|r| r.0)
    }

    /// The name used in configuration files and messages (`XGK`, `XGB-MK`, ...).
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The naming convention of the CPU's device memory.
    pub fn family(self) -> Family {
        match self {
            Cpu::Xgk | Cpu::XgbMk => Family::Xgk,
            Cpu::Xgi | Cpu::Xgr | Cpu::XgbIec => Family::Iec,
        }
    }

    /// Most bytes in one continuous read or write block.
    pub fn max_continuous(self) -> usize {
        match self {
            Cpu::XgbMk | Cpu::XgbIec => MAX_CONTINUOUS_XGB,
            _ => MAX_CONTINUOUS,
        }
    }
}

impl fmt::Display for Cpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A CPU type name that is not one of `XGK`, `XGI`, `XGR`, `XGB-MK`, `XGB-IEC`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownCpu(pub String);

impl fmt::Display for UnknownCpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown CPU type {:?}", self.0)?;
        if self.0.eq_ignore_ascii_case("XGB") {
            // Both kinds are sold as "XGB" and name their memory differently.
            f.write_str(": XGB is two families, XGB-MK (XBM, XBC: names like D100, M172C) or XGB-IEC (XEC: names like %MW100)")
        } else {
            f.write_str("; expected one of XGK, XGI, XGR, XGB-MK, XGB-IEC")
        }
    }
}

impl std::error::Error for UnknownCpu {}

impl FromStr for Cpu {
    type Err = UnknownCpu;

    /// Parses a CPU type name, ignoring ASCII case.
    fn from_str(s: &str) -> Result<Cpu, UnknownCpu> {
        CPUS.iter()
            .find(|r| r.1.eq_ignore_ascii_case(s))
            .map(|r| r.0)
            .ok_or_else(|| UnknownCpu(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cpu_round_trips_through_its_code_and_name() {
        for c in Cpu::ALL {
            assert_eq!(Cpu::from_code(c.code()), Some(c));
            assert_eq!(c.name().parse::<Cpu>(), Ok(c));
            assert_eq!(c.name().to_ascii_lowercase().parse::<Cpu>(), Ok(c));
        }
        assert_eq!(Cpu::from_code(0x00), None);
    }

    #[test]
    fn the_header_codes_are_the_ones_of_the_manual() {
        let codes: Vec<u8> = Cpu::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(codes, vec![0xA0, 0xA4, 0xA8, 0xB0, 0xB4]);
    }

    #[test]
    fn xgb_cpus_carry_512_bytes_the_others_1400() {
        assert_eq!(Cpu::XgbMk.max_continuous(), 512);
        assert_eq!(Cpu::XgbIec.max_continuous(), 512);
        assert_eq!(Cpu::Xgk.max_continuous(), 1400);
        assert_eq!(Cpu::Xgi.max_continuous(), 1400);
        assert_eq!(Cpu::Xgr.max_continuous(), 1400);
    }

    #[test]
    fn a_bare_xgb_is_refused_with_the_two_families_named() {
        let e = "xgb".parse::<Cpu>().unwrap_err().to_string();
        assert!(e.contains("XGB-MK") && e.contains("XGB-IEC"), "{e}");
        let e = "S7-300".parse::<Cpu>().unwrap_err().to_string();
        assert!(e.contains("\"S7-300\"") && e.contains("XGK"), "{e}");
    }
}
