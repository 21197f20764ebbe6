//! The sampling loop on the server's thread: at each sampling tick it asks the scan
//! for a frame, waits (briefly) for the next cycle to publish it, and pushes the values
//! that changed into the address space, which notifies the monitored items. The engine
//! object's variables (state, fault, statistics, drivers' health) follow at the same
//! tick; the drivers' status once a second.
//!
//! SourceTimestamp is the cycle's time: engine time counted from the wall-clock time
//! the server started at (in real time that is the wall clock itself; in virtual time
//! the simulated time since start). A value that did not change keeps the timestamp of
//! the cycle where it last changed, as OPC UA asks.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use opcua::server::SubscriptionCache;
use opcua::types::{DataValue, DateTime, NodeId, StatusCode, Variant};
use softplc_core::{EngineLink, PlcState, Quality};

use crate::nodes::{value_of, PlcNodeManager};
use crate::safe::ServerSafe;
use crate::snapshot::Sampler;
use crate::space::Plan;
use crate::stats::ServerStats;
use crate::types;

/// How often the drivers' status variables are refreshed (their JSON is not small).
const DRIVER_STATUS_EVERY: Duration = Duration::from_secs(1);

/// Everything the loop works with.
pub struct SamplingLoop {
    /// The scan's frames.
    pub sampler: Sampler,
    /// The address space.
    pub nodes: Arc<PlcNodeManager>,
    /// Monitored items.
    pub subs: Arc<SubscriptionCache>,
    /// The exposed variables.
    pub plan: Arc<Plan>,
    /// The engine, when there is one.
    pub link: Option<EngineLink>,
    /// Unix time (ns) of engine time 0.
    pub epoch_ns: i64,
    /// The sampling interval.
    pub interval: Duration,
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// The watchdog's override of outputs.
    pub safe: Arc<ServerSafe>,
}

/// What was last pushed, to push only changes.
#[derive(Default)]
struct Pushed {
    vars: Vec<Option<(u64, Quality)>>,
    engine: Vec<Option<Variant>>,
    forced_safe: bool,
}

impl SamplingLoop {
    /// Runs until the thread is asked to stop (the caller drops the future).
    pub async fn run(mut self) {
        let ids: Vec<NodeId> = (0..self.plan.vars.len())
            .map(|i| self.nodes.inner().var_node(i))
            .collect();
        let mut pushed = Pushed {
            vars: vec![None; ids.len()],
            ..Pushed::default()
        };
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Wait at most half an interval (and 50 ms) for the next cycle: a slower
        // engine's frame is taken at a later tick.
        let budget = (self.interval / 2).min(Duration::from_millis(50));
        let mut last_drivers: Option<tokio::time::Instant> = None;
        loop {
            tick.tick().await;
            self.stats.samples.fetch_add(1, Ordering::Relaxed);
            if !self.sampler.ready() {
                self.sampler.request();
                let until = tokio::time::Instant::now() + budget;
                while !self.sampler.ready() && tokio::time::Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            self.stats.frames.store(
                self.sampler.published.load(Ordering::Relaxed),
                Ordering::Relaxed,
            );
            let mut changes: Vec<(&NodeId, DataValue)> = Vec::new();
            let now = DateTime::now();
            let mut state = None;
            match self.sampler.take() {
                Some(f) => {
                    let ts = types::datetime_from_unix_ns(self.epoch_ns + f.now_ns as i64);
                    state = Some((f.state, ts));
                    for (i, v) in self.plan.vars.iter().enumerate() {
                        let cur = (f.bits[i], f.quality[i]);
                        if pushed.vars[i] == Some(cur) {
                            continue;
                        }
                        pushed.vars[i] = Some(cur);
                        changes.push((
                            &ids[i],
                            DataValue {
                                value: Some(types::to_variant(value_of(v, cur.0))),
                                status: Some(types::quality_status(cur.1)),
                                source_timestamp: Some(ts),
                                server_timestamp: Some(now),
                                ..DataValue::null()
                            },
                        ));
                    }
                    pushed.forced_safe = false;
                }
                None => {
                    self.stats
                        .samples_without_frame
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            // The watchdog made the outputs safe while the scan is stuck: show it.
            if self.safe.is_forced() && !pushed.forced_safe {
                pushed.forced_safe = true;
                for (i, bits) in self.safe.outputs() {
                    let v = &self.plan.vars[i];
                    pushed.vars[i] = Some((bits, Quality::Good));
                    changes.push((
                        &ids[i],
                        DataValue {
                            value: Some(types::to_variant(value_of(v, bits))),
                            status: Some(StatusCode::Good),
                            source_timestamp: Some(now),
                            server_timestamp: Some(now),
                            ..DataValue::null()
                        },
                    ));
                }
            }
            let drivers_due = last_drivers.is_none_or(|t| t.elapsed() >= DRIVER_STATUS_EVERY);
            if drivers_due {
                last_drivers = Some(tokio::time::Instant::now());
            }
            let engine = self.engine_values(state, drivers_due);
            if pushed.engine.len() < engine.len() {
                pushed.engine.resize(engine.len(), None);
            }
            for (k, (id, v, ts)) in engine.iter().enumerate() {
                let Some(v) = v else { continue };
                if pushed.engine[k].as_ref() == Some(v) {
                    continue;
                }
                pushed.engine[k] = Some(v.clone());
                changes.push((
                    id,
                    DataValue {
                        value: Some(v.clone()),
                        status: Some(StatusCode::Good),
                        source_timestamp: Some(ts.unwrap_or(now)),
                        server_timestamp: Some(now),
                        ..DataValue::null()
                    },
                ));
            }
            if changes.is_empty() {
                continue;
            }
            let n = changes.len() as u64;
            let _ = self.nodes.set_values(
                &self.subs,
                changes.into_iter().map(|(id, dv)| (id, None, dv)),
            );
            self.stats.values_pushed.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The engine object's variables: (node, value or None to leave it, timestamp).
    fn engine_values(
        &self,
        state: Option<(PlcState, DateTime)>,
        drivers: bool,
    ) -> Vec<(NodeId, Option<Variant>, Option<DateTime>)> {
        let e = self.nodes.inner().engine();
        let mut out = Vec::new();
        let (st, ts) = match (state, &self.link) {
            (Some((s, ts)), _) => (Some(s), Some(ts)),
            (None, Some(l)) => (Some(l.state()), None),
            (None, None) => (None, None),
        };
        out.push((e.state.clone(), st.map(|s| Variant::from(s.name())), ts));
        let Some(link) = &self.link else {
            return out;
        };
        let fault = link.fault().map(|f| f.to_string()).unwrap_or_default();
        out.push((e.fault.clone(), Some(Variant::from(fault.as_str())), None));
        let stats = link.stats();
        let first = stats.first().map(|s| s.cycles).unwrap_or(0);
        let overruns: u64 = stats.iter().map(|s| s.overruns).sum();
        out.push((e.cycles.clone(), Some(Variant::UInt64(first)), None));
        out.push((e.overruns.clone(), Some(Variant::UInt64(overruns)), None));
        let us = |ns: u64| Variant::Double(ns as f64 / 1e3);
        for ((_, ids), s) in e.tasks.iter().zip(&stats) {
            let figs = [
                Variant::UInt64(s.cycles),
                Variant::UInt64(s.overruns),
                us(s.latency.p50),
                us(s.latency.p99),
                us(s.latency.max),
                us(s.exec.p50),
                us(s.exec.p99),
                us(s.exec.max),
            ];
            for (id, v) in ids.iter().zip(figs) {
                out.push((id.clone(), Some(v), None));
            }
        }
        let status = if drivers {
            link.driver_status()
        } else {
            Vec::new()
        };
        for (name, sid, rid) in &e.drivers {
            let json = status.iter().find(|(n, _)| n == name).map(|(_, j)| j);
            let running = json
                .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
                .and_then(|v| v.get("running").and_then(|r| r.as_bool()));
            out.push((sid.clone(), json.map(|j| Variant::from(j.as_str())), None));
            out.push((rid.clone(), running.map(Variant::Boolean), None));
        }
        out
    }
}
