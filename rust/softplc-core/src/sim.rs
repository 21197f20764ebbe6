//! The simulation driver: a plant model stepped in lockstep with the scan.
//!
//! Inputs can also be set directly from Python (`Engine::write` on an input that no
//! driver supplies keeps its value); the plant model is for inputs that follow the
//! outputs through a model of the machine. The plant runs on the scan thread in
//! `read_inputs`, before the programs, with the outputs of the previous cycle, which
//! keeps virtual-time runs bit-for-bit reproducible.

use std::sync::Arc;

use crate::driver::{Driver, IoCtx, IoError, IoStatus, StartCtx};
use crate::image::{ConfigError, Image, Layout};

/// A model of the controlled machine.
pub trait Plant: Send {
    /// Advances the model by `dt_ns` to `now_ns`: reads outputs from `image`, writes the
    /// inputs it models. An error message faults the engine.
    fn step(
        &mut self,
        image: &mut Image,
        layout: &Arc<Layout>,
        now_ns: u64,
        dt_ns: u64,
    ) -> Result<(), String>;
}

/// Drives inputs from a [`Plant`].
pub struct SimDriver {
    name: String,
    plant: Box<dyn Plant>,
    layout: Option<Arc<Layout>>,
    fault: Option<String>,
}

impl SimDriver {
    /// A simulation driver around a plant model.
    pub fn new(name: &str, plant: Box<dyn Plant>) -> SimDriver {
        SimDriver {
            name: name.to_string(),
            plant,
            layout: None,
            fault: None,
        }
    }
}

impl Driver for SimDriver {
    fn name(&self) -> &str {
        &self.name
    }

    fn bind(&mut self, layout: &Layout) -> Result<(), ConfigError> {
        self.layout = Some(Arc::new(layout.clone()));
        Ok(())
    }

    fn start(&mut self, _cx: &StartCtx) -> Result<(), IoError> {
        Ok(())
    }

    /// Steps the plant. Runs on the scan thread; a Python plant takes the GIL here.
    fn read_inputs(&mut self, cx: &mut IoCtx<'_>) -> IoStatus {
        let Some(layout) = &self.layout else {
            return IoStatus::Failed;
        };
        match self.plant.step(cx.image, layout, cx.now_ns, cx.dt_ns) {
            Ok(()) => IoStatus::Ok,
            Err(msg) => {
                self.fault = Some(msg);
                IoStatus::Failed
            }
        }
    }

    fn write_outputs(&mut self, _cx: &mut IoCtx<'_>) -> IoStatus {
        IoStatus::Ok
    }

    fn stop(&mut self) {}

    fn take_fault(&mut self) -> Option<String> {
        self.fault.take()
    }
}
