//! LS Electric XGT dedicated protocol over Ethernet (FEnet, TCP 2004): the client
//! driver ([`client::XgtClient`]), the server driver ([`server::XgtServer`]), and the
//! pure part they share (no I/O, no threads, no panics on any input):
//!
//! - [`header`]: the 20-byte application header and frame delimiting in a byte stream
//!   ([`header::FrameDecoder`] says how many more bytes a frame needs and never trusts
//!   a length beyond the largest valid frame).
//! - [`codec`]: read and write requests and responses, individual (1 to 16 blocks of
//!   X/B/W/D/L) and continuous (byte blocks of up to 1,400 bytes, 512 on XGB CPUs).
//! - [`error`]: LS's NAK codes and the codec's own errors, each with the NAK a server
//!   answers it with.
//! - [`device`]: device names as users write them (`D100`, `M172C`, `%MW100`) and as
//!   they travel.
//! - [`plan`]: a set of mappings turned into the fewest request frames.
//! - [`cpu`]: CPU types, their header codes, naming conventions and limits.
//! - [`value`]: PLC-side types and the conversion of values with scaling.
//! - [`bind`]: configured mappings bound to the image, and the server's default map.
//!
//! Written from the protocol facts in docs/io.md (LS's FEnet manuals, cross-checked
//! against independent implementations), not from any implementation's code.

pub mod bind;
pub mod client;
pub mod codec;
pub mod cpu;
pub mod device;
pub mod error;
pub mod header;
pub mod plan;
pub mod server;
pub mod value;

pub use codec::{DataType, Name, Request, RequestFrame, Response, ResponseFrame, WriteItem};
pub use cpu::Cpu;
pub use device::{Address, Device, Naming};
pub use error::{DecodeError, EncodeError, NakCode};
pub use header::{FrameDecoder, Header};
