//! The four Modbus data tables and the protocol's limits on them.

use std::fmt;

/// One of the four Modbus data tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Read/write bits (FC1, FC5, FC15).
    Coil,
    /// Read-only bits (FC2).
    DiscreteInput,
    /// Read-only registers (FC4).
    InputRegister,
    /// Read/write registers (FC3, FC6, FC16).
    HoldingRegister,
}

impl Table {
    /// All tables.
    pub const ALL: [Table; 4] = [
        Table::Coil,
        Table::DiscreteInput,
        Table::InputRegister,
        Table::HoldingRegister,
    ];

    /// Parses a table name (`coil`, `discrete_input`, `input_register`,
    /// `holding_register`, plurals and the short forms `discrete`, `input`, `holding`).
    pub fn parse(text: &str) -> Option<Table> {
        match text.to_ascii_lowercase().replace('-', "_").as_str() {
            "coil" | "coils" => Some(Table::Coil),
            "discrete_input" | "discrete_inputs" | "discrete" => Some(Table::DiscreteInput),
            "input_register" | "input_registers" | "input" => Some(Table::InputRegister),
            "holding_register" | "holding_registers" | "holding" => Some(Table::HoldingRegister),
            _ => None,
        }
    }

    /// The canonical name.
    pub fn name(self) -> &'static str {
        match self {
            Table::Coil => "coil",
            Table::DiscreteInput => "discrete_input",
            Table::InputRegister => "input_register",
            Table::HoldingRegister => "holding_register",
        }
    }

    /// True for coils and discrete inputs.
    pub fn is_bits(self) -> bool {
        matches!(self, Table::Coil | Table::DiscreteInput)
    }

    /// True for the tables the protocol lets a client write (coils, holding registers).
    pub fn is_writable(self) -> bool {
        matches!(self, Table::Coil | Table::HoldingRegister)
    }

    /// Index 0..4 for arrays indexed by table.
    pub fn index(self) -> usize {
        match self {
            Table::Coil => 0,
            Table::DiscreteInput => 1,
            Table::InputRegister => 2,
            Table::HoldingRegister => 3,
        }
    }

    /// Largest number of items one read request may carry (125 registers, 2000 bits).
    pub fn max_read(self) -> usize {
        if self.is_bits() {
            2000
        } else {
            125
        }
    }

    /// Largest number of items one write request may carry (123 registers, 1968 coils).
    pub fn max_write(self) -> usize {
        if self.is_bits() {
            1968
        } else {
            123
        }
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
