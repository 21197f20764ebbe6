//! The writer thread: turns handed-over row buffers into columnar block frames, adds
//! engine events, gaps and triggers, and closes the file with an index.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::clock::ClockKind;
use crate::event::{Event, EventSink};
use crate::task::TaskId;

use super::config::{TraceConfig, TraceMode};
use super::format::{self, V};
use super::pool::{Gap, Meta, Pool, TriggerMark};
use super::signals::{dtype, RowLayout};
use super::{Shared, TraceSink};

/// Longest the writer sleeps between looks at the buffers and the event log.
const POLL: Duration = Duration::from_millis(10);
/// Rows transposed together, so a tile of rows stays in cache while every column of
/// it is copied out.
const TILE: usize = 64;

pub(crate) struct Writer {
    config: TraceConfig,
    sink: Box<dyn TraceSink>,
    events: Option<EventSink>,
    ev_next: u64,
    /// The sink's `dropped()` count already accounted for.
    ev_dropped: u64,
    rows: Arc<RowLayout>,
    pool: Arc<Pool>,
    shared: Arc<Shared>,
    /// (row offset, width) of every column: cycle, time, then the signals.
    cols: Vec<(usize, usize)>,
    offset: u64,
    failed: bool,
    buf: Vec<u8>,
    index_blocks: Vec<V>,
    index_records: Vec<V>,
    block_seq: u64,
    summary: Summary,
}

#[derive(Default)]
struct Summary {
    rows: u64,
    blocks: u64,
    dropped_blocks: u64,
    dropped_rows: u64,
    captures: u64,
    incomplete_captures: u64,
    events: u64,
    events_lost: u64,
    first: Option<(u64, u64)>,
    last: Option<(u64, u64)>,
}

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// One event as an events frame lists it. An I/O event also carries its typed form
/// under `io` (format 1.2): kind, link, device and the count it sums up.
fn event_record(e: &Event) -> V {
    let mut m = vec![
        ("t_ns", V::U(e.t_ns)),
        ("kind", V::s(e.kind.name())),
        ("task", V::I(TaskId::code(e.task))),
        ("a", V::I(e.a)),
        ("b", V::I(e.b)),
        ("text", V::s(&e.text)),
    ];
    if let Some(io) = e.kind.io() {
        let index = |i: Option<u32>| i.map_or(V::Nil, |i| V::U(u64::from(i)));
        m.push((
            "io",
            V::M(vec![
                ("kind", V::s(io.kind.name())),
                ("link", index(io.link)),
                ("device", index(io.device)),
                ("suppressed", V::U(io.suppressed)),
            ]),
        ));
    }
    V::M(m)
}

fn pairs(entries: &[(String, String)]) -> V {
    V::MS(entries.iter().map(|(k, v)| (k.clone(), V::s(v))).collect())
}

impl Writer {
    pub fn new(
        config: TraceConfig,
        sink: Box<dyn TraceSink>,
        events: Option<EventSink>,
        rows: Arc<RowLayout>,
        pool: Arc<Pool>,
        shared: Arc<Shared>,
    ) -> Writer {
        // Events from now on belong to the trace: start after the last one logged.
        let ev_next = events.as_ref().map_or(0, |e| e.next_seq());
        let ev_dropped = events.as_ref().map_or(0, |e| e.dropped());
        let mut cols = vec![(0, 8), (8, 8)];
        cols.extend(rows.signals.iter().map(|s| (s.row_off, s.width())));
        Writer {
            config,
            sink,
            events,
            ev_next,
            ev_dropped,
            rows,
            pool,
            shared,
            cols,
            offset: 0,
            failed: false,
            buf: Vec::new(),
            index_blocks: Vec::new(),
            index_records: Vec::new(),
            block_seq: 0,
            summary: Summary::default(),
        }
    }

    /// The thread's body. Never panics out: a panic is caught by the thread and
    /// reported by [`super::TraceHandle::finish`].
    pub fn run(mut self) {
        if let Err(e) = self.sink.begin() {
            self.fail(format!("preparing the trace file failed: {e}"));
        }
        self.put_raw(format::MAGIC);
        self.write_header();
        let pool = self.pool.clone();
        let mut next = 0;
        let mut last_flush = Instant::now();
        loop {
            // Read `sampler_gone` before draining: the sampler publishes its last buffer
            // before it sets the flag, so a drain after seeing it misses nothing.
            let gone = self.shared.sampler_gone.load(Ordering::Acquire);
            let mut worked = false;
            while pool.is_ready(next) {
                // SAFETY: the buffer is READY and released only below.
                let (meta, data) = unsafe { pool.ready(next) };
                self.take(meta, data);
                pool.release(next);
                next = (next + 1) % pool.len();
                worked = true;
            }
            self.poll_events();
            if gone {
                break;
            }
            if last_flush.elapsed() >= self.config.flush_interval {
                self.shared.flush_req.store(true, Ordering::Relaxed);
                last_flush = Instant::now();
            }
            if !worked {
                std::thread::park_timeout(POLL);
            }
        }
        let tail = self
            .shared
            .tail_gap
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(gap) = tail {
            self.write_gap(&gap, None);
        }
        self.summary.dropped_blocks = self.shared.dropped_blocks.load(Ordering::Relaxed);
        self.summary.dropped_rows = self.shared.dropped_rows.load(Ordering::Relaxed);
        self.write_index();
        if !self.failed {
            if let Err(e) = self.sink.flush().and_then(|_| self.sink.sync()) {
                self.fail(format!("closing the trace file failed: {e}"));
            }
        }
        self.shared.writer_done.store(true, Ordering::Release);
    }

    fn fail(&mut self, message: String) {
        self.failed = true;
        self.shared.set_error(message);
    }

    fn put_raw(&mut self, bytes: &[u8]) {
        if self.failed {
            return;
        }
        match self.sink.write_all(bytes) {
            Ok(()) => {
                self.offset += bytes.len() as u64;
                self.shared
                    .bytes_written
                    .store(self.offset, Ordering::Relaxed);
            }
            Err(e) => self.fail(format!("writing the trace file failed: {e}")),
        }
    }

    /// Writes the frame in `self.buf`; returns its offset.
    fn put_buf(&mut self) -> u64 {
        let at = self.offset;
        let buf = std::mem::take(&mut self.buf);
        self.put_raw(&buf);
        self.buf = buf;
        at
    }

    /// Encodes `v` as one frame into `self.buf`; false (and the trace failed) when it
    /// is too large for a frame.
    fn encode_frame(&mut self, v: &V) -> bool {
        self.buf.clear();
        match format::frame(v, &mut self.buf) {
            Ok(()) => true,
            Err(e) => {
                self.fail(e.to_string());
                false
            }
        }
    }

    fn put_record(&mut self, v: &V, kind: &'static str) {
        if !self.encode_frame(v) {
            return;
        }
        let at = self.put_buf();
        self.index_records.push(V::A(vec![V::U(at), V::s(kind)]));
    }

    fn write_header(&mut self) {
        let r = &*self.rows;
        let period = r.periods_ns.get(r.trace_task.index()).copied().unwrap_or(0);
        let trigger = match &self.config.mode {
            TraceMode::Continuous => V::Nil,
            TraceMode::Triggered {
                trigger,
                pre,
                post,
                captures,
            } => V::M(vec![
                ("condition", V::S(trigger.to_string())),
                ("pre", V::U(*pre as u64)),
                ("post", V::U(*post as u64)),
                ("captures", V::U(*captures as u64)),
            ]),
        };
        let tasks = r
            .tasks
            .iter()
            .zip(r.periods_ns.iter())
            .map(|(n, p)| V::M(vec![("name", V::s(n)), ("period_ns", V::U(*p))]))
            .collect();
        let signals = r
            .signals
            .iter()
            .map(|s| {
                V::M(vec![
                    ("name", V::s(&s.name)),
                    ("type", V::S(s.ty.full_name().into_owned())),
                    ("dtype", V::S(dtype(s.ty).into_owned())),
                    ("unit", V::s(&s.unit)),
                    ("address", V::opt_s(s.address.as_deref())),
                    ("kind", V::s(s.kind.name())),
                    ("task", V::opt_s(s.task.as_deref())),
                ])
            })
            .collect();
        let col = |name: &str| V::M(vec![("name", V::s(name)), ("dtype", V::s("<u8"))]);
        let start = self.config.start;
        let clock_ref = start.map_or(V::Nil, |st| {
            V::M(vec![
                (
                    "clock",
                    V::s(match st.clock {
                        ClockKind::Real => "monotonic",
                        ClockKind::Virtual => "virtual",
                    }),
                ),
                ("engine_ns", V::U(st.engine_ns)),
                ("unix_ns", V::U(st.unix_ns)),
            ])
        });
        let engine_state = start.map_or(V::Nil, |st| V::s(st.state.name()));
        let header = V::M(vec![
            ("type", V::s("header")),
            ("format", V::s("softplc-trace")),
            (
                "version",
                V::A(vec![V::U(format::VERSION.0), V::U(format::VERSION.1)]),
            ),
            (
                "created_unix_ns",
                V::U(start.map_or_else(unix_ns, |st| st.unix_ns)),
            ),
            ("clock_ref", clock_ref),
            ("engine_state", engine_state),
            ("engine_version", V::s(env!("CARGO_PKG_VERSION"))),
            (
                "writer",
                V::S(format!("softplc-core {}", env!("CARGO_PKG_VERSION"))),
            ),
            ("program", pairs(&self.config.program)),
            ("meta", pairs(&self.config.meta)),
            ("mode", V::s(self.config.mode.name())),
            ("trigger", trigger),
            ("decimate", V::U(self.config.decimate as u64)),
            ("trace_task", V::s(&r.tasks[r.trace_task.index()])),
            ("tasks", V::A(tasks)),
            ("cycle_period_ns", V::U(period)),
            (
                "sample_period_ns",
                V::U(period * self.config.decimate as u64),
            ),
            ("block_rows", V::U(self.config.block_rows as u64)),
            ("columns", V::A(vec![col("cycle"), col("t_ns")])),
            ("signals", V::A(signals)),
        ]);
        if self.encode_frame(&header) {
            self.put_buf();
        }
    }

    fn write_gap(&mut self, gap: &Gap, before_seq: Option<u64>) {
        let v = V::M(vec![
            ("type", V::s("gap")),
            ("before_seq", before_seq.map_or(V::Nil, V::U)),
            ("blocks", V::U(gap.blocks)),
            ("rows", V::U(gap.rows)),
            ("first_cycle", V::U(gap.first_cycle)),
            ("last_cycle", V::U(gap.last_cycle)),
            ("t_first_ns", V::U(gap.t_first_ns)),
            ("t_last_ns", V::U(gap.t_last_ns)),
            ("reason", V::s("writer_behind")),
        ]);
        self.put_record(&v, "gap");
    }

    fn write_trigger(&mut self, m: &TriggerMark) {
        let condition = match &self.config.mode {
            TraceMode::Triggered { trigger, .. } => trigger.to_string(),
            TraceMode::Continuous => String::new(),
        };
        let v = V::M(vec![
            ("type", V::s("trigger")),
            ("capture", V::U(m.capture)),
            ("cycle", V::U(m.cycle)),
            ("t_ns", V::U(m.t_ns)),
            ("pre_rows", V::U(m.pre_rows as u64)),
            ("condition", V::S(condition)),
            ("forced", V::Bool(m.forced)),
            ("complete", V::Bool(m.complete)),
        ]);
        self.put_record(&v, "trigger");
    }

    /// Writes one handed-over buffer: its gap, its trigger, then its rows as blocks.
    fn take(&mut self, meta: Meta, data: &[u8]) {
        if !meta.gap.is_empty() {
            self.write_gap(&meta.gap, Some(meta.seq));
        }
        let capture = meta.trigger.map(|m| m.capture);
        if let Some(m) = &meta.trigger {
            self.write_trigger(m);
            self.summary.captures += 1;
            if !m.complete {
                self.summary.incomplete_captures += 1;
                self.shared
                    .incomplete_captures
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let max = self.config.block_rows as usize;
        let cap = self.pool.cap_rows;
        let mut done = 0;
        while done < meta.rows {
            let n = max.min(meta.rows - done);
            let seq = match self.config.mode {
                TraceMode::Continuous => meta.seq,
                TraceMode::Triggered { .. } => self.block_seq,
            };
            self.write_block(data, cap, (meta.start + done) % cap, n, seq, capture);
            done += n;
        }
        if meta.trigger.is_some() {
            self.shared.captures_written.fetch_add(1, Ordering::Release);
        }
    }

    fn row_u64(data: &[u8], row_size: usize, pos: usize, off: usize) -> u64 {
        let s = pos * row_size + off;
        u64::from_le_bytes(data[s..s + 8].try_into().expect("8 bytes"))
    }

    /// Encodes `n` rows starting at ring position `start` as one block frame.
    fn write_block(
        &mut self,
        data: &[u8],
        cap: usize,
        start: usize,
        n: usize,
        seq: u64,
        capture: Option<u64>,
    ) {
        let rs = self.pool.row_size;
        let first = start;
        let last = (start + n - 1) % cap;
        let first_cycle = Self::row_u64(data, rs, first, 0);
        let last_cycle = Self::row_u64(data, rs, last, 0);
        let t_first = Self::row_u64(data, rs, first, 8);
        let t_last = Self::row_u64(data, rs, last, 8);

        let mut out = std::mem::take(&mut self.buf);
        out.clear();
        let at = format::begin_frame(&mut out);
        let meta = V::M(vec![
            ("type", V::s("block")),
            ("seq", V::U(seq)),
            ("rows", V::U(n as u64)),
            ("first_cycle", V::U(first_cycle)),
            ("last_cycle", V::U(last_cycle)),
            ("t_first_ns", V::U(t_first)),
            ("t_last_ns", V::U(t_last)),
            ("capture", capture.map_or(V::Nil, V::U)),
        ]);
        // The map has one more entry than `meta`: "columns", written last by hand.
        let V::M(entries) = &meta else { unreachable!() };
        rmp::encode::write_map_len(&mut out, entries.len() as u32 + 1).expect("vec write");
        for (k, v) in entries {
            rmp::encode::write_str(&mut out, k).expect("vec write");
            format::encode(v, &mut out);
        }
        rmp::encode::write_str(&mut out, "columns").expect("vec write");
        rmp::encode::write_array_len(&mut out, self.cols.len() as u32).expect("vec write");
        let mut starts = Vec::with_capacity(self.cols.len());
        let mut total = out.len();
        for &(_, w) in &self.cols {
            total += 5;
            starts.push(total);
            total += n * w;
        }
        // Bin headers first, then the data is transposed in place. The block size was
        // checked against the frame limit at attach; checked again here, never wrapped.
        let Ok(bin_len) = self
            .cols
            .iter()
            .map(|&(_, w)| u32::try_from(n * w))
            .collect::<Result<Vec<u32>, _>>()
        else {
            self.buf = out;
            self.fail(format!(
                "a trace block of {n} rows is too large for the format"
            ));
            return;
        };
        out.resize(total, 0);
        for (c, len) in bin_len.iter().enumerate() {
            let h = starts[c] - 5;
            out[h] = 0xc6;
            out[h + 1..h + 5].copy_from_slice(&len.to_be_bytes());
        }
        let mut t0 = 0;
        while t0 < n {
            let t1 = (t0 + TILE).min(n);
            for (c, &(off, w)) in self.cols.iter().enumerate() {
                let dst = &mut out[starts[c] + t0 * w..starts[c] + t1 * w];
                for r in t0..t1 {
                    let src = ((start + r) % cap) * rs + off;
                    let d = (r - t0) * w;
                    dst[d..d + w].copy_from_slice(&data[src..src + w]);
                }
            }
            t0 = t1;
        }
        let framed = format::end_frame(&mut out, at);
        self.buf = out;
        if let Err(e) = framed {
            self.fail(e.to_string());
            return;
        }
        let offset = self.put_buf();
        self.index_blocks.push(V::A(vec![
            V::U(offset),
            V::U(seq),
            V::U(n as u64),
            V::U(first_cycle),
            V::U(last_cycle),
            V::U(t_first),
            V::U(t_last),
            capture.map_or(V::Nil, V::U),
        ]));
        self.block_seq += 1;
        let s = &mut self.summary;
        s.rows += n as u64;
        s.blocks += 1;
        if s.first.is_none() {
            s.first = Some((first_cycle, t_first));
        }
        s.last = Some((last_cycle, t_last));
        if !self.failed {
            self.shared
                .rows_written
                .fetch_add(n as u64, Ordering::Relaxed);
            self.shared.blocks_written.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn poll_events(&mut self) {
        let Some(sink) = &self.events else { return };
        let (evs, next) = sink.since(self.ev_next);
        // Lost: events the log forgot before we read them, and events the scan thread
        // could not hand over at all (its queue was full).
        let expected = next.saturating_sub(self.ev_next);
        let dropped = sink.dropped();
        let lost =
            expected.saturating_sub(evs.len() as u64) + dropped.saturating_sub(self.ev_dropped);
        self.ev_dropped = dropped;
        self.ev_next = next;
        if evs.is_empty() && lost == 0 {
            return;
        }
        let items = evs.iter().map(event_record).collect();
        let v = V::M(vec![
            ("type", V::s("events")),
            ("events", V::A(items)),
            ("lost", V::U(lost)),
        ]);
        self.put_record(&v, "events");
        self.summary.events += evs.len() as u64;
        self.summary.events_lost += lost;
        self.shared.events_lost.fetch_add(lost, Ordering::Relaxed);
        if !self.failed {
            self.shared
                .events_written
                .fetch_add(evs.len() as u64, Ordering::Relaxed);
        }
    }

    fn write_index(&mut self) {
        let s = &self.summary;
        let error = self
            .shared
            .status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .error
            .clone();
        let summary = V::M(vec![
            ("rows", V::U(s.rows)),
            ("blocks", V::U(s.blocks)),
            ("dropped_blocks", V::U(s.dropped_blocks)),
            ("dropped_rows", V::U(s.dropped_rows)),
            ("captures", V::U(s.captures)),
            ("incomplete_captures", V::U(s.incomplete_captures)),
            ("events", V::U(s.events)),
            ("events_lost", V::U(s.events_lost)),
            ("first_cycle", s.first.map_or(V::Nil, |f| V::U(f.0))),
            ("last_cycle", s.last.map_or(V::Nil, |l| V::U(l.0))),
            ("t_first_ns", s.first.map_or(V::Nil, |f| V::U(f.1))),
            ("t_last_ns", s.last.map_or(V::Nil, |l| V::U(l.1))),
            ("closed_unix_ns", V::U(unix_ns())),
            ("error", error.map_or(V::Nil, V::S)),
        ]);
        let index = V::M(vec![
            ("type", V::s("index")),
            ("blocks", V::A(std::mem::take(&mut self.index_blocks))),
            ("records", V::A(std::mem::take(&mut self.index_records))),
            ("summary", summary),
        ]);
        if !self.encode_frame(&index) {
            return;
        }
        let at = self.put_buf();
        self.buf.clear();
        format::end_record(at, &mut self.buf);
        self.put_buf();
    }
}
