//! The serialized intermediate form, as the Python compiler writes it.
//!
//! Encoding: one MessagePack map (see `docs/programs.md`, "Intermediate form"):
//!
//! | key | value |
//! |---|---|
//! | `format` | `"softplc-ir"` |
//! | `version` | `1` |
//! | `program` | instance name |
//! | `source` | source file, for messages |
//! | `vars` | `[[engine_name, TYPE], ...]`: process-image variables the code uses |
//! | `tables` | `[[var_index, ...], ...]`: arrays of image variables (one type each) |
//! | `cells` | `[[TYPE, initial], ...]`: the program's own typed memory (a `STRING(n)` cell holds the length and initial text; the `STRDATA` cells after it its bytes, eight a cell) |
//! | `code` | `[[op, [operand, ...]], ...]`: instructions, operands are integers |
//! | `lines` | source line of each instruction (0 = unknown) |
//! | `files` | optional: source files, when code comes from more than `source` |
//! | `file_of` | optional: index into `files` of each instruction's line |
//! | `messages` | texts for `trap` and `chk`, and names of indexed arrays |
//! | `ctables` | optional: `[[cell, ...], ...]`: cell tables (cells, or block instances) |
//! | `index_names` | optional: `[[instruction, message], ...]`: the array an indexed instruction reads, for its fault |
//! | `symbols` | optional: `[[path, TYPE, role, cell], ...]`: the stateful cells (block instance fields) |
//!
//! Nothing here is trusted: [`crate::verify`] checks every index and type before a
//! program is built from it.

use serde::{Deserialize, Serialize};

/// The format tag in every document.
pub const FORMAT: &str = "softplc-ir";
/// The version this crate reads and writes.
pub const VERSION: u32 = 2;

/// An initial value as written in the document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Init {
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// The text of a STRING (single-byte characters, code points 0..=255).
    Text(String),
}

/// The whole document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Program instance name.
    pub program: String,
    /// Source file the program came from (for messages only).
    #[serde(default)]
    pub source: String,
    /// Process-image variables: full engine name and IEC type name.
    pub vars: Vec<(String, String)>,
    /// Arrays of image variables, as indices into `vars`.
    #[serde(default)]
    pub tables: Vec<Vec<u32>>,
    /// Cells: IEC type name and initial value.
    pub cells: Vec<(String, Init)>,
    /// Instructions: operation name and integer operands.
    pub code: Vec<(String, Vec<i64>)>,
    /// Source line per instruction, or empty.
    #[serde(default)]
    pub lines: Vec<u32>,
    /// Source files of the lines when helpers from other modules were inlined (else
    /// empty: every line is in `source`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    /// Per instruction, the index into `files` of its line (empty with `files`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_of: Vec<u32>,
    /// Messages for `trap` and `chk`, and array names.
    #[serde(default)]
    pub messages: Vec<String>,
    /// Cell tables: each an array of cell indices (`ldt`/`stt`) or block instance
    /// bases (`fbt`), indexed at run time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ctables: Vec<Vec<u32>>,
    /// `(instruction, message)`: the name of the array an indexed instruction reads or
    /// writes, for the message of an index fault.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub index_names: Vec<(u32, u32)>,
    /// The symbol table: `(path, type, role, cell)` of every cell that holds state
    /// across scans (the fields of block instances), role `input`, `output` or
    /// `internal`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<(String, String, String, u32)>,
}

impl Document {
    /// An empty document for a program name (used by tests and the Rust benchmarks).
    pub fn new(program: &str) -> Document {
        Document {
            format: FORMAT.to_string(),
            version: VERSION,
            program: program.to_string(),
            source: String::new(),
            vars: Vec::new(),
            tables: Vec::new(),
            cells: Vec::new(),
            code: Vec::new(),
            lines: Vec::new(),
            files: Vec::new(),
            file_of: Vec::new(),
            messages: Vec::new(),
            ctables: Vec::new(),
            index_names: Vec::new(),
            symbols: Vec::new(),
        }
    }

    /// Decodes MessagePack bytes. The error text names what is malformed.
    pub fn decode(bytes: &[u8]) -> Result<Document, String> {
        let doc: Document = rmp_serde::from_slice(bytes)
            .map_err(|e| format!("malformed intermediate form: {e}"))?;
        if doc.format != FORMAT {
            return Err(format!(
                "not a softplc intermediate form (format {:?}, expected {FORMAT:?})",
                doc.format
            ));
        }
        if doc.version != VERSION {
            return Err(format!(
                "intermediate form version {} is not supported (this build reads version {VERSION}); recompile the program",
                doc.version
            ));
        }
        Ok(doc)
    }

    /// Encodes as MessagePack with named fields (the layout the Python side writes).
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("an IR document always serializes")
    }

    /// Appends a variable and returns its index.
    pub fn var(&mut self, name: &str, ty: &str) -> i64 {
        self.vars.push((name.to_string(), ty.to_string()));
        self.vars.len() as i64 - 1
    }

    /// Appends a cell and returns its index.
    pub fn cell(&mut self, ty: &str, init: Init) -> i64 {
        self.cells.push((ty.to_string(), init));
        self.cells.len() as i64 - 1
    }

    /// Appends an instruction and returns its index.
    pub fn op(&mut self, op: &str, args: &[i64]) -> i64 {
        self.code.push((op.to_string(), args.to_vec()));
        self.code.len() as i64 - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_through_msgpack() {
        let mut d = Document::new("p");
        d.var("p.x", "INT");
        d.cell("REAL", Init::Float(1.5));
        d.cell("ULINT", Init::UInt(u64::MAX));
        d.cell("BOOL", Init::Bool(true));
        d.op("ld", &[0, 0]);
        let back = Document::decode(&d.encode()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn wrong_format_or_version_is_rejected_with_a_reason() {
        let mut d = Document::new("p");
        d.version = 99;
        assert!(Document::decode(&d.encode())
            .unwrap_err()
            .contains("version 99"));
        assert!(Document::decode(b"\x01\x02")
            .unwrap_err()
            .contains("malformed"));
    }
}
