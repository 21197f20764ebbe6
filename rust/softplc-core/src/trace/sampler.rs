//! The sampler: the part of a trace that runs on the scan thread.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::event::EventSink;
use crate::image::{ConfigError, Image, Layout, Slot};
use crate::observer::{CycleInfo, CycleObserver};
use crate::types::IecType;

use super::config::{TraceConfig, TraceMode, Trigger};
use super::pool::{Gap, Meta, Pool, TriggerMark};
use super::signals::{RowLayout, PREFIX_BYTES, TIMING_BYTES};
use super::writer::Writer;
use super::{Shared, TraceSink};

/// The last cycle of a task as the sampler saw it.
#[derive(Clone, Copy, Default)]
struct TaskTiming {
    scheduled_ns: u64,
    start_ns: u64,
    exec_ns: u64,
    /// Sticky: any overrun since the previous row.
    overrun: bool,
    /// False until the sampler has seen a cycle of the task. Rows taken before then
    /// hold exec_time -1 (a real cycle never takes negative time), so a reader tells
    /// "no cycle yet" from a real cycle whose fields are all 0 (virtual time at t = 0).
    seen: bool,
}

/// The exec_time written for a task the sampler has not seen a cycle of yet.
pub(crate) const EXEC_NOT_SEEN: i64 = -1;

/// A trigger condition bound to a slot.
#[derive(Clone, Copy)]
enum Cond {
    Manual,
    Rising(Slot),
    Falling(Slot),
    Above(Slot, f64),
    Below(Slot, f64),
    Cross(Slot, f64),
}

impl Cond {
    fn slot(&self) -> Option<Slot> {
        match *self {
            Cond::Manual => None,
            Cond::Rising(s) | Cond::Falling(s) => Some(s),
            Cond::Above(s, _) | Cond::Below(s, _) | Cond::Cross(s, _) => Some(s),
        }
    }

    /// True when the condition is met going from `prev` to `cur`.
    fn met(&self, prev: f64, cur: f64) -> bool {
        match *self {
            Cond::Manual => false,
            Cond::Rising(_) => prev == 0.0 && cur != 0.0,
            Cond::Falling(_) => prev != 0.0 && cur == 0.0,
            Cond::Above(_, l) => prev < l && cur >= l,
            Cond::Below(_, l) => prev > l && cur <= l,
            Cond::Cross(_, l) => (prev < l && cur >= l) || (prev > l && cur <= l),
        }
    }
}

#[derive(Clone, Copy)]
enum Phase {
    /// Continuous mode.
    Continuous,
    /// Triggered mode, waiting for the writer to free a capture buffer.
    Waiting,
    /// Triggered mode, keeping pre-trigger rows in the ring of the held buffer.
    Armed { w: usize, filled: usize },
    /// Triggered mode, taking post-trigger rows.
    Post {
        start: usize,
        w: usize,
        rows: usize,
        mark: TriggerMark,
    },
    /// Triggered mode, all captures taken.
    Done,
}

struct Run {
    rows: Arc<RowLayout>,
    pool: Arc<Pool>,
    decimate: u32,
    /// Cycles of the trace task to skip before the next row.
    countdown: u32,
    timing: Box<[TaskTiming]>,
    backpressure: bool,
    /// Buffer held, if any.
    cur: Option<usize>,
    /// Next buffer to take, in ring order.
    next: usize,
    /// Rows in the held buffer (continuous mode).
    n: usize,
    seq: u64,
    /// Rows dropped since the last buffer handed over.
    gap: Gap,
    /// Rows dropped so far in the block being dropped.
    dropping: usize,
    phase: Phase,
    cond: Cond,
    prev: Option<f64>,
    post: usize,
    captures_max: u64,
    captures: u64,
    /// Set when the image does not fit the plan; the sampler stops recording.
    broken: bool,
}

struct Pending {
    config: TraceConfig,
    sink: Box<dyn TraceSink>,
    events: Option<EventSink>,
}

/// The scan-thread side of a trace: a [`CycleObserver`] that copies the chosen
/// variables into pre-allocated buffers. Build it with [`super::new_trace`].
pub struct TraceSampler {
    shared: Arc<Shared>,
    pending: Option<Pending>,
    run: Option<Run>,
}

impl TraceSampler {
    pub(crate) fn new(
        config: TraceConfig,
        sink: Box<dyn TraceSink>,
        events: Option<EventSink>,
        shared: Arc<Shared>,
    ) -> TraceSampler {
        TraceSampler {
            shared,
            pending: Some(Pending {
                config,
                sink,
                events,
            }),
            run: None,
        }
    }

    fn start(
        &mut self,
        layout: &Layout,
        task_names: &[String],
        periods_ns: &[u64],
    ) -> Result<(), String> {
        let Pending {
            config,
            sink,
            events,
        } = self
            .pending
            .take()
            .ok_or_else(|| "the trace sampler was attached twice".to_string())?;
        let Plan {
            rows,
            cond,
            buffers,
            cap_rows,
        } = plan(&config, layout, task_names, periods_ns).map_err(|e| e.message)?;
        let (post, captures_max) = match &config.mode {
            TraceMode::Continuous => (0, 0),
            TraceMode::Triggered { post, captures, .. } => (*post as usize, *captures as u64),
        };
        let pool = Pool::try_new(buffers, cap_rows, rows.row_size)?;
        let rows = Arc::new(rows);
        let pool = Arc::new(pool);
        let phase = match config.mode {
            TraceMode::Continuous => Phase::Continuous,
            TraceMode::Triggered { .. } => {
                if pool.try_acquire(0) {
                    Phase::Armed { w: 0, filled: 0 }
                } else {
                    Phase::Waiting
                }
            }
        };
        let cur = matches!(phase, Phase::Armed { .. }).then_some(0);
        let next = if cur.is_some() { 1 % pool.len() } else { 0 };
        let writer = Writer::new(
            config.clone(),
            sink,
            events,
            rows.clone(),
            pool.clone(),
            self.shared.clone(),
        );
        let shared = self.shared.clone();
        let handle = std::thread::Builder::new()
            .name("softplc-trace".to_string())
            .spawn(move || {
                // A panic must not cross the thread edge: report it and let the handle
                // and the sampler see the writer as done.
                let run = std::panic::AssertUnwindSafe(move || writer.run());
                if std::panic::catch_unwind(run).is_err() {
                    shared.set_error(
                        "the trace writer failed (panic); the file may lack its index".to_string(),
                    );
                    shared.writer_done.store(true, Ordering::Release);
                }
            })
            .map_err(|e| format!("cannot start the trace writer thread: {e}"))?;
        *self.shared.writer.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        self.run = Some(Run {
            timing: vec![TaskTiming::default(); task_names.len()].into_boxed_slice(),
            rows,
            pool,
            decimate: config.decimate,
            countdown: 0,
            backpressure: config.backpressure,
            cur,
            next,
            n: 0,
            seq: 0,
            gap: Gap::default(),
            dropping: 0,
            phase,
            cond,
            prev: None,
            post,
            captures_max,
            captures: 0,
            broken: false,
        });
        Ok(())
    }
}

/// What a configuration comes to on a given layout.
pub(crate) struct Plan {
    rows: RowLayout,
    cond: Cond,
    /// Buffers to allocate.
    buffers: usize,
    /// Rows per buffer.
    cap_rows: usize,
}

/// Resolves the signals and the trigger of `config` on `layout` and sizes the buffers,
/// checking every limit. Off the scan thread (allocates); allocates no buffer.
pub(crate) fn plan(
    config: &TraceConfig,
    layout: &Layout,
    task_names: &[String],
    periods_ns: &[u64],
) -> Result<Plan, ConfigError> {
    let rows = RowLayout::new(
        layout,
        task_names,
        periods_ns,
        &config.signals,
        config.timing,
        config.task.as_deref(),
    )?;
    let cond = match &config.mode {
        TraceMode::Continuous => Cond::Manual,
        TraceMode::Triggered { trigger, .. } => bind_trigger(layout, trigger)?,
    };
    let (buffers, cap_rows) = config.buffer_plan(rows.row_size, 2 + rows.signals.len())?;
    Ok(Plan {
        rows,
        cond,
        buffers,
        cap_rows,
    })
}

fn bind_trigger(layout: &Layout, trigger: &Trigger) -> Result<Cond, ConfigError> {
    let Some(name) = trigger.variable() else {
        return Ok(Cond::Manual);
    };
    let id = layout
        .find(name)
        .map_err(|e| ConfigError::new(format!("trigger: {}", e.message)))?;
    let slot = layout.var(id).slot;
    let is_bool = slot.ty == IecType::Bool;
    if let IecType::String(_) = slot.ty {
        return Err(ConfigError::new(format!(
            "trigger: {name:?} is a {} (a trigger watches a BOOL or a number)",
            slot.ty
        )));
    }
    Ok(match trigger {
        Trigger::Rising(_) | Trigger::Falling(_) if !is_bool => {
            return Err(ConfigError::new(format!(
                "trigger: {} is an edge trigger, but {name:?} is {} (edges are for BOOL; \
                 use NAME>LEVEL or NAME<LEVEL)",
                trigger, slot.ty
            )));
        }
        Trigger::Rising(_) => Cond::Rising(slot),
        Trigger::Falling(_) => Cond::Falling(slot),
        Trigger::Above(_, l) => Cond::Above(slot, *l),
        Trigger::Below(_, l) => Cond::Below(slot, *l),
        Trigger::Cross(_, l) => Cond::Cross(slot, *l),
        Trigger::Manual => Cond::Manual,
    })
}

impl Run {
    /// Writes one row into ring position `pos` of the held buffer.
    #[inline]
    fn write_row(&mut self, pos: usize, image: &Image, info: &CycleInfo) {
        let Some(b) = self.cur else { return };
        let rs = self.pool.row_size;
        // SAFETY: the sampler holds buffer `b`.
        let buf = unsafe { self.pool.rows_mut(b) };
        let row = &mut buf[pos * rs..(pos + 1) * rs];
        row[0..8].copy_from_slice(&info.cycle.to_le_bytes());
        row[8..16].copy_from_slice(&info.scheduled_ns.to_le_bytes());
        if self.rows.timing {
            for (k, t) in self.timing.iter_mut().enumerate() {
                let o = PREFIX_BYTES + k * TIMING_BYTES;
                let exec = if t.seen {
                    t.exec_ns as i64
                } else {
                    EXEC_NOT_SEEN
                };
                row[o..o + 8].copy_from_slice(&t.scheduled_ns.to_le_bytes());
                row[o + 8..o + 16].copy_from_slice(&t.start_ns.to_le_bytes());
                row[o + 16..o + 24].copy_from_slice(&exec.to_le_bytes());
                row[o + 24] = t.overrun as u8;
                t.overrun = false;
            }
        }
        self.rows.copy_vars(image, row);
    }

    /// Publishes the held buffer.
    #[inline]
    fn publish(&mut self, meta: Meta, shared: &Shared) {
        if let Some(b) = self.cur.take() {
            // SAFETY: the sampler holds buffer `b`.
            unsafe { self.pool.publish(b, meta) };
            shared.flush_req.store(false, Ordering::Relaxed);
        }
    }

    /// Takes the next buffer in ring order. With back-pressure, waits for it (virtual
    /// time only) unless the writer has gone.
    #[inline]
    fn acquire(&mut self, shared: &Shared) -> bool {
        loop {
            if self.pool.try_acquire(self.next) {
                self.cur = Some(self.next);
                self.next = (self.next + 1) % self.pool.len();
                shared.flush_req.store(false, Ordering::Relaxed);
                return true;
            }
            if !self.backpressure || shared.writer_done.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    fn sample_continuous(&mut self, image: &Image, info: &CycleInfo, shared: &Shared) {
        if self.cur.is_none() && self.dropping == 0 {
            self.acquire(shared);
            self.n = 0;
        }
        if self.cur.is_none() {
            // No buffer at the block boundary: this whole block is dropped.
            self.gap.add_row(info.cycle, info.scheduled_ns);
            self.dropping += 1;
            shared.rows_sampled.fetch_add(1, Ordering::Relaxed);
            shared.dropped_rows.fetch_add(1, Ordering::Relaxed);
            if self.dropping == self.pool.cap_rows {
                self.end_dropped_block(shared);
            }
            return;
        }
        let n = self.n;
        self.write_row(n, image, info);
        self.n += 1;
        shared.rows_sampled.fetch_add(1, Ordering::Relaxed);
        if self.n == self.pool.cap_rows || shared.flush_req.load(Ordering::Relaxed) {
            let meta = Meta {
                start: 0,
                rows: self.n,
                seq: self.seq,
                gap: self.gap,
                trigger: None,
            };
            self.seq += 1;
            self.gap = Gap::default();
            self.publish(meta, shared);
            self.n = 0;
        }
    }

    fn end_dropped_block(&mut self, shared: &Shared) {
        self.dropping = 0;
        self.gap.blocks += 1;
        self.seq += 1;
        shared.dropped_blocks.fetch_add(1, Ordering::Relaxed);
    }

    fn cycle_triggered(&mut self, image: &Image, info: &CycleInfo, due: bool, shared: &Shared) {
        // The condition is evaluated every cycle so that decimation never hides an edge.
        let mut fired = false;
        let mut forced = false;
        if let Some(slot) = self.cond.slot() {
            let cur = image.load(slot).as_f64();
            if let Some(prev) = self.prev {
                fired = self.cond.met(prev, cur);
            }
            self.prev = Some(cur);
        }
        if matches!(self.phase, Phase::Waiting) && self.acquire(shared) {
            self.phase = Phase::Armed { w: 0, filled: 0 };
        }
        let cap = self.pool.cap_rows;
        match self.phase {
            Phase::Armed { w, filled } => {
                // A forced trigger is used up by the capture it starts, also when the
                // condition fires on the same cycle: left pending, it would start the
                // next capture the moment the trace re-arms.
                if shared.force.load(Ordering::Relaxed) {
                    forced = shared.force.swap(false, Ordering::AcqRel);
                }
                if fired || forced {
                    self.write_row(w, image, info);
                    self.countdown = self.decimate - 1;
                    shared.rows_sampled.fetch_add(1, Ordering::Relaxed);
                    shared.triggers.fetch_add(1, Ordering::Relaxed);
                    let mark = TriggerMark {
                        capture: self.captures,
                        pre_rows: filled,
                        cycle: info.cycle,
                        t_ns: info.scheduled_ns,
                        forced: forced && !fired,
                        complete: false,
                    };
                    let start = (w + cap - filled) % cap;
                    self.phase = Phase::Post {
                        start,
                        w: (w + 1) % cap,
                        rows: filled + 1,
                        mark,
                    };
                    if self.post == 0 {
                        self.finish_capture(shared, true);
                    }
                } else if due {
                    self.write_row(w, image, info);
                    shared.rows_sampled.fetch_add(1, Ordering::Relaxed);
                    let pre = cap - 1 - self.post;
                    self.phase = Phase::Armed {
                        w: (w + 1) % cap,
                        filled: (filled + 1).min(pre),
                    };
                }
            }
            Phase::Post {
                start,
                w,
                rows,
                mark,
            } => {
                if due {
                    self.write_row(w, image, info);
                    shared.rows_sampled.fetch_add(1, Ordering::Relaxed);
                    self.phase = Phase::Post {
                        start,
                        w: (w + 1) % cap,
                        rows: rows + 1,
                        mark,
                    };
                    if rows + 1 == mark.pre_rows + 1 + self.post {
                        self.finish_capture(shared, true);
                    }
                }
            }
            Phase::Continuous | Phase::Waiting | Phase::Done => {}
        }
    }

    /// Hands the capture in the held buffer to the writer and re-arms if more are wanted.
    fn finish_capture(&mut self, shared: &Shared, complete: bool) {
        let Phase::Post {
            start,
            rows,
            mut mark,
            ..
        } = self.phase
        else {
            return;
        };
        mark.complete = complete;
        let meta = Meta {
            start,
            rows,
            seq: self.seq,
            gap: Gap::default(),
            trigger: Some(mark),
        };
        self.seq += 1;
        self.captures += 1;
        self.publish(meta, shared);
        if self.captures_max != 0 && self.captures >= self.captures_max {
            self.phase = Phase::Done;
        } else if complete && self.acquire(shared) {
            self.phase = Phase::Armed { w: 0, filled: 0 };
        } else {
            self.phase = Phase::Waiting;
        }
    }
}

impl CycleObserver for TraceSampler {
    /// Resolves the signals, allocates and pre-faults the buffers, and starts the writer
    /// thread. Off the scan thread. An error (unknown signal, ...) is reported through
    /// the handle and leaves the sampler inert.
    fn attach(&mut self, layout: &Layout, task_names: &[String], periods_ns: &[u64]) {
        if self.run.is_some() {
            // A second attach (the engine reloading its layout) would mix two layouts in
            // one file: stop recording instead.
            if let Some(r) = self.run.as_mut() {
                r.broken = true;
            }
            self.shared.set_error(
                "the engine re-attached the trace (new layout); recording stopped".to_string(),
            );
            return;
        }
        match self.start(layout, task_names, periods_ns) {
            Ok(()) => self.shared.set_attached(None),
            Err(e) => self.shared.set_attached(Some(e)),
        }
    }

    /// Copies one row when the cycle is the trace task's and decimation says so.
    /// Scan thread: no allocation, no locks, no syscalls (except with back-pressure,
    /// which is meant for virtual time and may sleep while the writer catches up).
    fn on_cycle(&mut self, image: &Image, info: &CycleInfo) {
        let Some(run) = self.run.as_mut() else { return };
        if run.broken {
            return;
        }
        if let Some(t) = run.timing.get_mut(info.task.index()) {
            t.scheduled_ns = info.scheduled_ns;
            t.start_ns = info.start_ns;
            t.exec_ns = info.exec_ns;
            t.overrun |= info.overrun;
            t.seen = true;
        }
        if info.task != run.rows.trace_task {
            return;
        }
        if !run.rows.fits(image) {
            run.broken = true;
            return;
        }
        let due = run.countdown == 0;
        run.countdown = if due {
            run.decimate - 1
        } else {
            run.countdown - 1
        };
        let shared = &*self.shared;
        match run.phase {
            Phase::Continuous => {
                if due {
                    run.sample_continuous(image, info, shared);
                }
            }
            Phase::Done => {}
            _ => run.cycle_triggered(image, info, due, shared),
        }
    }
}

impl Drop for TraceSampler {
    /// Hands over the last partial block (or capture) and tells the writer to close
    /// the file. Runs where the sampler is dropped: normally off the scan thread, after
    /// the engine has given it back.
    fn drop(&mut self) {
        if let Some(run) = self.run.as_mut() {
            let shared = &*self.shared;
            match run.phase {
                Phase::Continuous => {
                    if run.cur.is_some() && run.n > 0 {
                        let meta = Meta {
                            start: 0,
                            rows: run.n,
                            seq: run.seq,
                            gap: run.gap,
                            trigger: None,
                        };
                        run.seq += 1;
                        run.gap = Gap::default();
                        run.publish(meta, shared);
                    } else if let Some(b) = run.cur.take() {
                        run.pool.give_back(b);
                    }
                    if run.dropping > 0 {
                        run.end_dropped_block(shared);
                    }
                }
                Phase::Post { .. } => run.finish_capture(shared, false),
                Phase::Armed { .. } | Phase::Waiting | Phase::Done => {
                    if let Some(b) = run.cur.take() {
                        run.pool.give_back(b);
                    }
                }
            }
            if !run.gap.is_empty() {
                *shared.tail_gap.lock().unwrap_or_else(|p| p.into_inner()) = Some(run.gap);
            }
        }
        self.shared.sampler_gone.store(true, Ordering::Release);
        let writer = self.shared.writer.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = writer.as_ref() {
            w.thread().unpark();
        }
    }
}
