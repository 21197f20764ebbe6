//! The server's nodes: the namespace, the address space built from the [`Plan`], and
//! the node manager that answers writes (external writes through the engine link) and
//! the engine's methods (gated by role). Reads, browsing and subscriptions are the
//! in-memory node manager's own: the sampler pushes values into the address space and
//! async-opcua notifies the monitored items.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use opcua::server::address_space::{
    AccessLevel, AddressSpace, MethodBuilder, NodeType, ObjectBuilder, VariableBuilder,
};
use opcua::server::diagnostics::NamespaceMetadata;
use opcua::server::node_manager::memory::{InMemoryNodeManager, InMemoryNodeManagerImpl};
use opcua::server::node_manager::{MethodCall, RequestContext, ServerContext, WriteNode};
use opcua::sync::RwLock;
use opcua::types::{
    AttributeId, DataTypeId, DataValue, NodeId, ObjectId, ObjectTypeId, QualifiedName, Range,
    StatusCode, VariableTypeId, Variant,
};
use softplc_core::types::{int_range, IecType};
use softplc_core::{Area, EngineLink, PlcState, Value, WriteRefused};

use crate::auth::PlcAuth;
use crate::space::{ExposedVar, NodeKind, Plan};
use crate::stats::ServerStats;
use crate::types;

/// The namespace of the PLC's nodes.
pub const NAMESPACE_URI: &str = "urn:softplc:plc";

/// The node manager as async-opcua holds it.
pub type PlcNodeManager = InMemoryNodeManager<PlcNodes>;

/// The NodeId string of a server node (the `@` keeps them apart from variables).
pub fn server_node(path: &str) -> String {
    format!("@{path}")
}

/// The NodeIds of the engine object's nodes.
#[derive(Clone, Debug)]
pub struct EngineNodes {
    /// The engine object.
    pub object: NodeId,
    /// State (String: RUN, STOP, FAULT).
    pub state: NodeId,
    /// Fault cause (String, empty when none).
    pub fault: NodeId,
    /// Cycles of the first task (UInt64).
    pub cycles: NodeId,
    /// Overruns of every task (UInt64).
    pub overruns: NodeId,
    /// Per task: (name, [Cycles, Overruns, LatencyP50Us, LatencyP99Us, LatencyMaxUs,
    /// ExecP50Us, ExecP99Us, ExecMaxUs]).
    pub tasks: Vec<(String, Vec<NodeId>)>,
    /// Per driver: (name, Status JSON, Running).
    pub drivers: Vec<(String, NodeId, NodeId)>,
    /// Methods.
    pub start: NodeId,
    /// Methods.
    pub stop: NodeId,
    /// Methods.
    pub clear_fault: NodeId,
}

/// The per-task statistics variables, in the order of [`EngineNodes::tasks`].
pub const TASK_FIGURES: [&str; 8] = [
    "Cycles",
    "Overruns",
    "LatencyP50Us",
    "LatencyP99Us",
    "LatencyMaxUs",
    "ExecP50Us",
    "ExecP99Us",
    "ExecMaxUs",
];

impl EngineNodes {
    fn new(ns: u16, link: Option<&EngineLink>) -> EngineNodes {
        let id = |p: &str| NodeId::new(ns, server_node(p));
        let tasks = link
            .map(|l| {
                l.tasks()
                    .iter()
                    .map(|t| {
                        let ids = TASK_FIGURES
                            .iter()
                            .map(|f| id(&format!("engine.tasks.{}.{f}", t.name)))
                            .collect();
                        (t.name.clone(), ids)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let drivers = link
            .map(|l| {
                l.driver_names()
                    .into_iter()
                    .map(|n| {
                        let s = id(&format!("engine.drivers.{n}.Status"));
                        let r = id(&format!("engine.drivers.{n}.Running"));
                        (n, s, r)
                    })
                    .collect()
            })
            .unwrap_or_default();
        EngineNodes {
            object: id("engine"),
            state: id("engine.State"),
            fault: id("engine.Fault"),
            cycles: id("engine.Cycles"),
            overruns: id("engine.Overruns"),
            tasks,
            drivers,
            start: id("engine.Start"),
            stop: id("engine.Stop"),
            clear_fault: id("engine.ClearFault"),
        }
    }
}

/// Everything the node manager needs, fixed at start.
pub struct NodesSetup {
    /// The exposed variables.
    pub plan: Arc<Plan>,
    /// Per plan variable: the driver that supplies it from a device, if one does.
    pub supplied: Vec<Option<String>>,
    /// The engine (None when the driver runs without one, in tests).
    pub link: Option<EngineLink>,
    /// Users and roles.
    pub auth: Arc<PlcAuth>,
    /// Counters.
    pub stats: Arc<ServerStats>,
    /// The sampling interval, advertised as each variable's MinimumSamplingInterval.
    pub sampling_ms: f64,
}

/// The node manager's own part: writes and method calls.
pub struct PlcNodes {
    ns: u16,
    setup: NodesSetup,
    by_node: HashMap<NodeId, usize>,
    engine: EngineNodes,
}

impl PlcNodes {
    /// Builds the nodes into `space` (async-opcua calls this while building the
    /// server).
    pub fn build(setup: NodesSetup, context: ServerContext, space: &mut AddressSpace) -> PlcNodes {
        let ns = context
            .type_tree
            .write()
            .namespaces_mut()
            .add_namespace(NAMESPACE_URI);
        space.add_namespace(NAMESPACE_URI, ns);
        let engine = EngineNodes::new(ns, setup.link.as_ref());
        populate(space, ns, &setup, &engine);
        let by_node = setup
            .plan
            .vars
            .iter()
            .enumerate()
            .map(|(i, v)| (NodeId::new(ns, v.name.clone()), i))
            .collect();
        PlcNodes {
            ns,
            setup,
            by_node,
            engine,
        }
    }

    /// The namespace index.
    pub fn ns(&self) -> u16 {
        self.ns
    }

    /// The engine object's NodeIds.
    pub fn engine(&self) -> &EngineNodes {
        &self.engine
    }

    /// The NodeId of plan variable `i`.
    pub fn var_node(&self, i: usize) -> NodeId {
        NodeId::new(self.ns, self.setup.plan.vars[i].name.clone())
    }

    fn write_one(&self, context: &RequestContext, w: &WriteNode) -> StatusCode {
        let value = w.value();
        let Some(&i) = self.by_node.get(&value.node_id) else {
            return StatusCode::BadNotWritable;
        };
        if value.attribute_id != AttributeId::Value {
            return StatusCode::BadNotWritable;
        }
        if value.index_range.has_range() {
            return StatusCode::BadWriteNotSupported;
        }
        let var = &self.setup.plan.vars[i];
        if !var.rule.writable || self.setup.supplied[i].is_some() {
            return StatusCode::BadNotWritable;
        }
        if !self
            .setup
            .auth
            .role(context.user_token())
            .is_some_and(|r| r.may_write())
        {
            return StatusCode::BadUserAccessDenied;
        }
        let Some(v) = value.value.value.as_ref() else {
            return StatusCode::BadTypeMismatch;
        };
        let v = match types::from_variant(var.slot.ty, v) {
            Ok(v) => v,
            Err(s) => return s,
        };
        let Some(link) = self.setup.link.as_ref() else {
            return StatusCode::BadNotWritable;
        };
        match link.write(var.id, v) {
            Ok(()) => StatusCode::Good,
            Err(WriteRefused::ReadOnly) => StatusCode::BadNotWritable,
            Err(_) => StatusCode::BadOutOfRange,
        }
    }

    fn call_one(&self, context: &RequestContext, m: &MethodCall) -> StatusCode {
        let e = &self.engine;
        let which = m.method_id();
        if which != &e.start && which != &e.stop && which != &e.clear_fault {
            return StatusCode::BadMethodInvalid;
        }
        if m.object_id() != &e.object {
            return StatusCode::BadMethodInvalid;
        }
        if !m.arguments().is_empty() {
            return StatusCode::BadTooManyArguments;
        }
        if !self
            .setup
            .auth
            .role(context.user_token())
            .is_some_and(|r| r.may_control())
        {
            return StatusCode::BadUserAccessDenied;
        }
        let Some(link) = self.setup.link.as_ref() else {
            return StatusCode::BadInvalidState;
        };
        if which == &e.start {
            // FAULT is left through ClearFault, as everywhere else.
            if link.state() == PlcState::Fault {
                return StatusCode::BadInvalidState;
            }
            link.run();
        } else if which == &e.stop {
            link.stop();
        } else {
            link.clear_fault();
        }
        StatusCode::Good
    }
}

#[async_trait::async_trait]
impl InMemoryNodeManagerImpl for PlcNodes {
    async fn init(&self, _space: &mut AddressSpace, _context: ServerContext) {}

    fn name(&self) -> &str {
        "softplc"
    }

    fn namespaces(&self) -> Vec<NamespaceMetadata> {
        vec![NamespaceMetadata {
            namespace_uri: NAMESPACE_URI.to_string(),
            namespace_index: self.ns,
            ..Default::default()
        }]
    }

    async fn write(
        &self,
        context: &RequestContext,
        _space: &RwLock<AddressSpace>,
        nodes_to_write: &mut [&mut WriteNode],
    ) -> Result<(), StatusCode> {
        for w in nodes_to_write.iter_mut() {
            let s = self.write_one(context, w);
            let counter = if s.is_good() {
                &self.setup.stats.writes_accepted
            } else {
                &self.setup.stats.writes_refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            w.set_status(s);
        }
        Ok(())
    }

    async fn call(
        &self,
        context: &RequestContext,
        _space: &RwLock<AddressSpace>,
        methods_to_call: &mut [&mut &mut MethodCall],
    ) -> Result<(), StatusCode> {
        for m in methods_to_call.iter_mut() {
            let s = self.call_one(context, m);
            let counter = if s.is_good() {
                &self.setup.stats.calls_accepted
            } else {
                &self.setup.stats.calls_refused
            };
            counter.fetch_add(1, Ordering::Relaxed);
            if s.is_good() {
                m.set_outputs(Vec::new());
            }
            m.set_status(s);
        }
        Ok(())
    }
}

fn qn(ns: u16, name: &str) -> QualifiedName {
    QualifiedName::new(ns, name)
}

/// The last component of a path: the browse and display name.
fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// True when a variable is an AnalogItem: a number with a unit or a declared range.
fn is_analog(v: &ExposedVar) -> bool {
    v.slot.ty != IecType::Bool
        && (!v.unit.is_empty() || v.rule.min.is_some() || v.rule.max.is_some())
}

/// The EURange of a variable: its declared bounds, the type's own where one is missing.
fn eu_range(v: &ExposedVar) -> Range {
    let ty = v.slot.ty;
    let (lo, hi) = match ty {
        IecType::Real => (-(f32::MAX as f64), f32::MAX as f64),
        IecType::Lreal => (-f64::MAX, f64::MAX),
        IecType::Time => {
            let (a, b) = int_range(ty);
            (a as f64 / 1e6, b as f64 / 1e6)
        }
        _ => {
            let (a, b) = int_range(ty);
            (a as f64, b as f64)
        }
    };
    Range {
        low: v.rule.min.map(types::range_bound).unwrap_or(lo),
        high: v.rule.max.map(types::range_bound).unwrap_or(hi),
    }
}

fn folder(space: &mut AddressSpace, id: &NodeId, name: &str, ns: u16) {
    ObjectBuilder::new(id, qn(ns, name), name)
        .is_folder()
        .organized_by(ObjectId::ObjectsFolder)
        .insert(space);
}

fn read_only_var(
    space: &mut AddressSpace,
    id: &NodeId,
    name: &str,
    ns: u16,
    parent: &NodeId,
    ty: DataTypeId,
    value: Variant,
) {
    VariableBuilder::new(id, qn(ns, name), name)
        .data_type(ty)
        .value(value)
        .value_rank(-1)
        .access_level(AccessLevel::CURRENT_READ)
        .user_access_level(AccessLevel::CURRENT_READ)
        .has_type_definition(VariableTypeId::BaseDataVariableType)
        .component_of(parent.clone())
        .insert(space);
}

/// Inserts the PLC's nodes: Programs (and Globals) with the exposed variables, and
/// the Engine object with its state, statistics, drivers and methods.
fn populate(space: &mut AddressSpace, ns: u16, setup: &NodesSetup, e: &EngineNodes) {
    let programs = NodeId::new(ns, server_node("programs"));
    let globals = NodeId::new(ns, server_node("globals"));
    folder(space, &programs, "Programs", ns);
    let plan = &setup.plan;
    if plan.vars.iter().any(|v| !v.name.contains('.')) {
        folder(space, &globals, "Globals", ns);
    }
    for (path, kind, parent) in plan.ordered() {
        let id = NodeId::new(ns, path);
        let name = leaf(path);
        match kind {
            NodeKind::Program => {
                ObjectBuilder::new(&id, qn(ns, name), name)
                    .has_type_definition(ObjectTypeId::BaseObjectType)
                    .description("program instance")
                    .organized_by(programs.clone())
                    .insert(space);
            }
            NodeKind::Instance => {
                ObjectBuilder::new(&id, qn(ns, name), name)
                    .has_type_definition(ObjectTypeId::BaseObjectType)
                    .description("function block instance")
                    .component_of(NodeId::new(ns, parent.unwrap_or_default()))
                    .insert(space);
            }
            NodeKind::Variable(i) => {
                let v = &plan.vars[i];
                let writable = v.rule.writable && setup.supplied[i].is_none();
                let level = if writable {
                    AccessLevel::CURRENT_READ | AccessLevel::CURRENT_WRITE
                } else {
                    AccessLevel::CURRENT_READ
                };
                let area = match v.area {
                    Area::Input => "input",
                    Area::Output => "output",
                    Area::Memory => "memory",
                };
                let mut desc = format!("{} {} {area}", v.address, v.slot.ty);
                if let Some(d) = &setup.supplied[i] {
                    desc.push_str(&format!(", supplied by driver {d}"));
                }
                let analog = is_analog(v);
                let b = VariableBuilder::new(&id, qn(ns, name), name)
                    .data_type(types::data_type(v.slot.ty))
                    .value(types::to_variant(v.slot.ty.zero()))
                    .value_rank(-1)
                    .access_level(level)
                    .user_access_level(level)
                    .minimum_sampling_interval(setup.sampling_ms)
                    .description(desc.as_str())
                    .has_type_definition(if analog {
                        VariableTypeId::AnalogItemType
                    } else {
                        VariableTypeId::BaseDataVariableType
                    });
                let b = match parent {
                    Some(p) => b.component_of(NodeId::new(ns, p)),
                    None => b.organized_by(globals.clone()),
                };
                b.insert(space);
                if analog {
                    property(
                        space,
                        ns,
                        &id,
                        &v.name,
                        "EURange",
                        DataTypeId::Range,
                        eu_range(v).into(),
                    );
                    if !v.unit.is_empty() {
                        let eu = types::eu_information(&v.unit);
                        property(
                            space,
                            ns,
                            &id,
                            &v.name,
                            "EngineeringUnits",
                            DataTypeId::EUInformation,
                            eu.into(),
                        );
                    }
                }
                // No cycle has run yet: the value is the type's zero until the first
                // frame, and says so.
                if let Some(NodeType::Variable(var)) = space.find_mut(&id) {
                    var.set_data_value(DataValue {
                        value: Some(types::to_variant(v.slot.ty.zero())),
                        status: Some(StatusCode::UncertainInitialValue),
                        ..DataValue::null()
                    });
                }
            }
        }
    }
    // The engine.
    ObjectBuilder::new(&e.object, qn(ns, "Engine"), "Engine")
        .has_type_definition(ObjectTypeId::BaseObjectType)
        .description("the scan engine: state, fault, statistics, drivers; Start, Stop, ClearFault")
        .organized_by(ObjectId::ObjectsFolder)
        .insert(space);
    let o = &e.object;
    read_only_var(
        space,
        &e.state,
        "State",
        ns,
        o,
        DataTypeId::String,
        Variant::from("STOP"),
    );
    read_only_var(
        space,
        &e.fault,
        "Fault",
        ns,
        o,
        DataTypeId::String,
        Variant::from(""),
    );
    read_only_var(
        space,
        &e.cycles,
        "Cycles",
        ns,
        o,
        DataTypeId::UInt64,
        Variant::UInt64(0),
    );
    read_only_var(
        space,
        &e.overruns,
        "Overruns",
        ns,
        o,
        DataTypeId::UInt64,
        Variant::UInt64(0),
    );
    if !e.tasks.is_empty() {
        let tasks = NodeId::new(ns, server_node("engine.tasks"));
        ObjectBuilder::new(&tasks, qn(ns, "Tasks"), "Tasks")
            .has_type_definition(ObjectTypeId::FolderType)
            .component_of(o.clone())
            .insert(space);
        for (name, ids) in &e.tasks {
            let t = NodeId::new(ns, server_node(&format!("engine.tasks.{name}")));
            ObjectBuilder::new(&t, qn(ns, name), name.as_str())
                .has_type_definition(ObjectTypeId::BaseObjectType)
                .component_of(tasks.clone())
                .insert(space);
            for (k, (fig, id)) in TASK_FIGURES.iter().zip(ids).enumerate() {
                let (ty, zero) = if k < 2 {
                    (DataTypeId::UInt64, Variant::UInt64(0))
                } else {
                    (DataTypeId::Double, Variant::Double(0.0))
                };
                read_only_var(space, id, fig, ns, &t, ty, zero);
            }
        }
    }
    if !e.drivers.is_empty() {
        let drivers = NodeId::new(ns, server_node("engine.drivers"));
        ObjectBuilder::new(&drivers, qn(ns, "Drivers"), "Drivers")
            .has_type_definition(ObjectTypeId::FolderType)
            .component_of(o.clone())
            .insert(space);
        for (name, status, running) in &e.drivers {
            let d = NodeId::new(ns, server_node(&format!("engine.drivers.{name}")));
            ObjectBuilder::new(&d, qn(ns, name), name.as_str())
                .has_type_definition(ObjectTypeId::BaseObjectType)
                .component_of(drivers.clone())
                .insert(space);
            read_only_var(
                space,
                status,
                "Status",
                ns,
                &d,
                DataTypeId::String,
                Variant::from("{}"),
            );
            read_only_var(
                space,
                running,
                "Running",
                ns,
                &d,
                DataTypeId::Boolean,
                Variant::Boolean(false),
            );
        }
    }
    for (id, name, what) in [
        (
            &e.start,
            "Start",
            "RUN from STOP (FAULT needs ClearFault first)",
        ),
        (&e.stop, "Stop", "STOP: outputs take their safe values"),
        (&e.clear_fault, "ClearFault", "leave FAULT for STOP"),
    ] {
        MethodBuilder::new(id, qn(ns, name), name)
            .description(what)
            .component_of(o.clone())
            .executable(true)
            .user_executable(true)
            .insert(space);
    }
}

fn property(
    space: &mut AddressSpace,
    ns: u16,
    var: &NodeId,
    var_name: &str,
    name: &str,
    ty: DataTypeId,
    value: Variant,
) {
    VariableBuilder::new(
        &NodeId::new(ns, format!("{var_name}#{name}")),
        QualifiedName::new(0, name),
        name,
    )
    .data_type(ty)
    .value(value)
    .value_rank(-1)
    .access_level(AccessLevel::CURRENT_READ)
    .user_access_level(AccessLevel::CURRENT_READ)
    .has_type_definition(VariableTypeId::PropertyType)
    .property_of(var.clone())
    .insert(space);
}

/// The value of a plan variable from its bits, for the sampler.
pub fn value_of(v: &ExposedVar, bits: u64) -> Value {
    Value::from_bits(v.slot.ty, bits)
}
