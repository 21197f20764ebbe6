//! The exposed variables as one cycle left them, handed from the scan thread to the
//! server's thread.
//!
//! The server asks for a frame (an atomic flag) at its sampling interval; the next
//! `write_outputs` of any task copies the exposed variables' bits and qualities, the
//! cycle's time and the state into the input side of a triple buffer and publishes it.
//! Most cycles therefore cost one relaxed atomic load; a requested one costs a copy of
//! the exposed variables. Never a lock, a wait, an allocation or a syscall: all three
//! buffers are sized at bind. A frame is one cycle's values, so clients never see half
//! of one cycle and half of the next.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use softplc_core::{Image, PlcState, Quality, Slot, VarId};
use triple_buffer::{triple_buffer, Input, Output};

/// One cycle's exposed variables.
#[derive(Clone, Debug, PartialEq)]
pub struct Frame {
    /// Frames published so far (0: none yet).
    pub seq: u64,
    /// The cycle's `now` (engine clock, ns).
    pub now_ns: u64,
    /// The engine state in that cycle.
    pub state: PlcState,
    /// Each exposed variable's bits ([`softplc_core::Value::to_bits`]), in plan order.
    pub bits: Vec<u64>,
    /// Each exposed variable's quality, in plan order.
    pub quality: Vec<Quality>,
}

/// The scan's side.
pub struct Publisher {
    input: Input<Frame>,
    wanted: Arc<AtomicBool>,
    published: Arc<AtomicU64>,
    seq: u64,
    vars: Vec<(VarId, Slot)>,
}

/// The server's side.
pub struct Sampler {
    output: Output<Frame>,
    wanted: Arc<AtomicBool>,
    /// Frames published (for status).
    pub published: Arc<AtomicU64>,
}

/// A publisher/sampler pair for `vars` (in plan order).
pub fn channel(vars: Vec<(VarId, Slot)>) -> (Publisher, Sampler) {
    let n = vars.len();
    let blank = Frame {
        seq: 0,
        now_ns: 0,
        state: PlcState::Stop,
        bits: vec![0; n],
        quality: vec![Quality::Good; n],
    };
    let (input, output) = triple_buffer(&blank);
    let wanted = Arc::new(AtomicBool::new(true));
    let published = Arc::new(AtomicU64::new(0));
    (
        Publisher {
            input,
            wanted: wanted.clone(),
            published: published.clone(),
            seq: 0,
            vars,
        },
        Sampler {
            output,
            wanted,
            published,
        },
    )
}

impl Publisher {
    /// Scan thread, in `write_outputs`: publishes this cycle's values if the server
    /// asked for them. One atomic load when it did not; otherwise a copy of the exposed
    /// variables into a preallocated buffer. No allocation, locks or syscalls.
    pub fn offer(&mut self, image: &Image, now_ns: u64, state: PlcState) {
        if !self.wanted.load(Ordering::Relaxed) {
            return;
        }
        self.wanted.store(false, Ordering::Relaxed);
        self.seq += 1;
        let f = self.input.input_buffer_mut();
        f.seq = self.seq;
        f.now_ns = now_ns;
        f.state = state;
        for (k, (id, slot)) in self.vars.iter().enumerate() {
            f.bits[k] = image.load(*slot).to_bits();
            f.quality[k] = image.quality[id.index()];
        }
        self.input.publish();
        self.published.fetch_add(1, Ordering::Relaxed);
    }
}

impl Sampler {
    /// Asks the scan for the next cycle's frame.
    pub fn request(&self) {
        self.wanted.store(true, Ordering::Relaxed);
    }

    /// True when a frame newer than the one last taken is waiting.
    pub fn ready(&self) -> bool {
        self.output.updated()
    }

    /// The newest frame, if one arrived since the last call.
    pub fn take(&mut self) -> Option<&Frame> {
        if self.output.update() {
            Some(self.output.output_buffer())
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use softplc_core::types::IecType;
    use softplc_core::{Area, LayoutBuilder, Value, VarDecl};

    #[test]
    fn a_frame_is_published_only_when_asked_and_holds_one_cycle() {
        let mut b = LayoutBuilder::new();
        let a = b
            .declare(VarDecl::new("a", Area::Input, IecType::Int, None))
            .unwrap();
        let l = b.build().unwrap();
        let mut img = Image::new(&l);
        let (mut p, mut s) = channel(vec![(a, l.var(a).slot)]);
        // The first frame is asked for from the start.
        img.store(l.var(a).slot, Value::Int(IecType::Int, 7));
        img.quality[0] = Quality::Stale;
        p.offer(&img, 10, PlcState::Run);
        img.store(l.var(a).slot, Value::Int(IecType::Int, 8));
        p.offer(&img, 20, PlcState::Run);
        let f = s.take().unwrap();
        assert_eq!(
            (f.seq, f.now_ns, f.bits[0], f.quality[0]),
            (1, 10, 7, Quality::Stale)
        );
        assert!(s.take().is_none());
        s.request();
        p.offer(&img, 30, PlcState::Stop);
        assert!(s.ready());
        let f = s.take().unwrap();
        assert_eq!(
            (f.seq, f.now_ns, f.bits[0], f.state),
            (2, 30, 8, PlcState::Stop)
        );
    }
}
