//! The event log: a bounded in-memory log of [`Event`]s that Python reads and traces
//! record.
//!
//! Events go into the log that Python reads and traces record. The scan
//! thread never touches the log's lock on its own behalf: [`EventSink::try_push`] puts
//! the event into a pre-allocated lock-free queue, and whoever reads the log (or pushes
//! from an ordinary thread) first moves the queued events into it, in order. So a reader
//! that holds the log for a while (cloning thousands of events) costs the scan thread
//! nothing; an event is lost only when the queue is full, and then it is counted.
//!
//! The log keeps the latest events: when it is full the oldest is forgotten, and a
//! reader that asks for events by sequence number sees the jump.
//!
//! ```
//! use softplc_core::{Event, EventKind, EventSink};
//!
//! let log = EventSink::new();
//! let ev = |t| Event::new(t, EventKind::Info, None, String::new());
//! assert!(log.try_push(ev(1))); // scan thread
//! log.push(ev(2)); // any other thread
//! let (events, next) = log.since(0);
//! assert_eq!(events.iter().map(|e| e.t_ns).collect::<Vec<_>>(), [1, 2]);
//! assert_eq!((next, log.dropped()), (2, 0));
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_queue::ArrayQueue;

use super::Event;

/// Events the log keeps by default.
pub const LOG_CAPACITY: usize = 4096;
/// Events the scan thread can hand over before a reader or pusher moves them into the
/// log, by default.
pub const QUEUE_CAPACITY: usize = 1024;

pub(crate) struct Log {
    events: VecDeque<Event>,
    /// Sequence number of `events[0]`.
    first_seq: u64,
    capacity: usize,
}

impl Log {
    /// Appends, forgetting the oldest event when full. Never grows the deque past the
    /// capacity reserved at creation, so it never allocates.
    fn insert(&mut self, ev: Event) {
        if self.events.len() == self.capacity {
            self.events.pop_front();
            self.first_seq += 1;
        }
        self.events.push_back(ev);
    }

    /// Moves every queued event into the log, oldest first.
    fn drain(&mut self, queue: &ArrayQueue<Event>) {
        while let Some(ev) = queue.pop() {
            self.insert(ev);
        }
    }
}

struct Inner {
    /// Written by the scan thread (`try_push`), emptied by whoever holds `log`.
    queue: ArrayQueue<Event>,
    log: Mutex<Log>,
    /// Events lost because the queue was full; written by `try_push` only.
    dropped: AtomicU64,
}

/// A cloneable handle that pushes events into the engine's log.
#[derive(Clone)]
pub struct EventSink {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSink")
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl Default for EventSink {
    fn default() -> Self {
        EventSink::new()
    }
}

impl EventSink {
    /// An empty log holding the last [`LOG_CAPACITY`] events, with a scan-thread queue of
    /// [`QUEUE_CAPACITY`] events.
    pub fn new() -> EventSink {
        EventSink::with_capacity(LOG_CAPACITY, QUEUE_CAPACITY)
    }

    /// An empty log holding the last `log` events, with a scan-thread queue of `queue`
    /// events (each at least 1). Allocates both up front. Off the scan thread.
    pub fn with_capacity(log: usize, queue: usize) -> EventSink {
        let log = log.max(1);
        EventSink {
            inner: Arc::new(Inner {
                queue: ArrayQueue::new(queue.max(1)),
                log: Mutex::new(Log {
                    events: VecDeque::with_capacity(log),
                    first_seq: 0,
                    capacity: log,
                }),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Log> {
        let mut log = self.inner.log.lock().unwrap_or_else(|p| p.into_inner());
        log.drain(&self.inner.queue);
        log
    }

    /// Pushes from a non-real-time thread: waits for the log's lock, moves the events
    /// the scan thread queued into the log first (so the order is kept), then appends.
    pub fn push(&self, ev: Event) {
        self.lock().insert(ev);
    }

    /// Pushes from the scan thread: never waits, never allocates. The event goes into the
    /// pre-allocated queue; when the queue is half full and the log is free, the queue is
    /// moved into the log on the way (which may free the text of the oldest events).
    /// Returns false, and counts the event in [`EventSink::dropped`], only when the queue
    /// is full and a reader holds the log.
    pub fn try_push(&self, ev: Event) -> bool {
        let inner = &*self.inner;
        match inner.queue.push(ev) {
            Ok(()) => {
                if inner.queue.len() * 2 >= inner.queue.capacity() {
                    if let Ok(mut log) = inner.log.try_lock() {
                        log.drain(&inner.queue);
                    }
                }
                true
            }
            Err(ev) => match inner.log.try_lock() {
                Ok(mut log) => {
                    log.drain(&inner.queue);
                    log.insert(ev);
                    true
                }
                Err(_) => {
                    inner.dropped.fetch_add(1, Ordering::Relaxed);
                    false
                }
            },
        }
    }

    /// Events with sequence number >= `since`, and the next sequence number to ask for.
    /// Events the log has already forgotten are skipped: the caller sees how many from
    /// the difference between `since` and the sequence number of the first returned.
    /// Off the scan thread (locks and allocates).
    pub fn since(&self, since: u64) -> (Vec<Event>, u64) {
        let log = self.lock();
        let end = log.first_seq + log.events.len() as u64;
        let start = since.clamp(log.first_seq, end);
        let skip = (start - log.first_seq) as usize;
        (log.events.iter().skip(skip).cloned().collect(), end)
    }

    /// The sequence number the next event will get (events from here on are new).
    /// Off the scan thread.
    pub fn next_seq(&self) -> u64 {
        let log = self.lock();
        log.first_seq + log.events.len() as u64
    }

    /// Events lost because the scan thread's queue was full while a reader held the log.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Holds the log as a slow reader would (tests only).
    #[cfg(test)]
    pub(crate) fn hold_log_for_test(&self) -> std::sync::MutexGuard<'_, Log> {
        self.inner.log.lock().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::EventKind;
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};

    fn ev(t: u64) -> Event {
        Event::new(t, EventKind::Info, None, String::new())
    }

    #[test]
    fn since_returns_only_new_events_and_survives_wraparound() {
        let s = EventSink::new();
        s.push(ev(1));
        let (got, next) = s.since(0);
        assert_eq!((got.len(), next), (1, 1));
        for t in 0..(LOG_CAPACITY as u64 + 10) {
            s.push(ev(t));
        }
        let (got, next) = s.since(next);
        assert_eq!(got.len(), LOG_CAPACITY);
        assert_eq!(next, LOG_CAPACITY as u64 + 11);
        assert_eq!(s.since(u64::MAX).0.len(), 0);
        assert_eq!(s.next_seq(), next);
    }

    #[test]
    fn a_reader_holding_the_log_costs_the_scan_thread_no_event_until_the_queue_is_full() {
        let s = EventSink::with_capacity(100, 8);
        s.push(ev(0));
        {
            // A reader in the middle of a long `since`.
            let _busy = s.inner.log.lock().unwrap();
            for t in 1..=8 {
                assert!(s.try_push(ev(t)), "event {t} lost to a busy reader");
            }
            assert!(!s.try_push(ev(9)), "the queue is full: this one is lost");
            assert_eq!(s.dropped(), 1);
        }
        // Pushes from other threads come after what the scan thread queued.
        s.push(ev(10));
        let (got, next) = s.since(0);
        let times: Vec<u64> = got.iter().map(|e| e.t_ns).collect();
        assert_eq!(times, [0, 1, 2, 3, 4, 5, 6, 7, 8, 10]);
        assert_eq!(next, 10);
    }

    #[test]
    fn the_scan_thread_moves_its_queue_into_a_free_log_itself() {
        let s = EventSink::with_capacity(1000, 4);
        // Nobody reads: the queue never fills, since try_push empties it when it can.
        for t in 0..500 {
            assert!(s.try_push(ev(t)));
        }
        assert_eq!(s.dropped(), 0);
        let (got, _) = s.since(0);
        assert_eq!(got.len(), 500);
        assert!(got.windows(2).all(|w| w[0].t_ns + 1 == w[1].t_ns));
    }

    #[test]
    fn a_reader_polling_all_the_time_loses_the_scan_thread_no_event() {
        let n = 20_000u64;
        // A log that forgets nothing, so only the hand-over from the scan thread is tested;
        // a queue that covers 80 ms of events, so a reader preempted while it holds the
        // log (the machine is shared) does not fill it. The old design, which took the
        // log with try_lock, lost an event whenever this reader held it.
        let s = EventSink::with_capacity(n as usize, 8192);
        let stop = Arc::new(AtomicBool::new(false));
        let reader = {
            let (s, stop) = (s.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut next = 0;
                let mut seen = Vec::new();
                loop {
                    let done = stop.load(Ordering::Acquire);
                    let (got, n) = s.since(next);
                    assert_eq!(got.len() as u64, n - next, "the reader fell behind the log");
                    seen.extend(got.iter().map(|e| e.t_ns));
                    next = n;
                    if done {
                        return seen;
                    }
                }
            })
        };
        let t0 = Instant::now();
        for t in 0..n {
            assert!(s.try_push(ev(t)), "event {t} lost");
            // One event every 10 us, far more than a real scan raises.
            let until = t0 + Duration::from_micros(10 * (t + 1));
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
        stop.store(true, Ordering::Release);
        let seen = reader.join().unwrap();
        assert_eq!(s.dropped(), 0);
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
    }
}
