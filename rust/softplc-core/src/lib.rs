//! softplc-core: the process image, the scan engine, its clocks and tasks, the driver
//! interface and the simulation driver. No Python and no async here: `cargo test` on
//! this crate needs neither.
#![deny(missing_docs)]

pub mod access;
pub mod address;
pub mod clock;
pub mod driver;
pub mod engine;
pub mod event;
pub mod image;
pub mod observer;
pub mod program;
pub mod retain;
pub mod rt;
pub mod sim;
pub mod stats;
pub mod task;
pub mod timing;
pub mod trace;
pub mod types;

pub use access::{Domain, WriteRefused, WriteRule};
pub use address::{Address, Area};
pub use clock::{ClockKind, EngineClock};
pub use driver::{Driver, DriverMonitor, IoCtx, IoError, IoStatus, PlcState, SafeState, StartCtx};
pub use engine::{Engine, EngineBuilder, EngineError, EngineLink, FaultInfo, FaultKind};
pub use event::{Event, EventKind, EventSink, IoEvent, IoEventKind};
pub use image::{
    ConfigError, Image, Layout, LayoutBuilder, LookupError, Quality, Slot, VarDecl, VarId, VarInfo,
};
pub use observer::{CycleInfo, CycleObserver};
pub use program::{FnProgram, Interrupt, Program, ProgramFault, ProgramKind, ScanCtx};
pub use sim::{Plant, SimDriver};
pub use task::{TaskConfig, TaskId, TaskInfo};
pub use timing::{OverrunPolicy, Schedule, Watchdog};
pub use types::{IecType, Value};
