"""Online change: load a changed program file into a running engine without stopping it.

The change is prepared away from the scan thread: the new file is imported, its
programs compiled and verified against the grown layout, and a migration plan computed,
keyed on each variable's instance path and type:

* a variable of the same path and type keeps its value (it keeps its place in the
  image: nothing is copied);
* a new variable starts from its initial value;
* a variable whose type changed starts afresh in a new place, except a retained one:
  its value is converted when the new type holds every value of the old one (a
  widening: INT to DINT, REAL to LREAL, any integer to LREAL...), and the change is
  refused otherwise (restart with ``--cold`` to reset it, or keep the type);
* a variable no longer declared is dropped from the plan (its place stays allocated
  until the next restart, and bus maps bound to it keep their old variable);
* a program whose compiled form is unchanged keeps all its state (timers keep running);
  a changed compiled program's function blocks start afresh; a reference-mode program
  keeps each function-block instance whose attribute name and class are unchanged;
* forces stay on the variables that still exist.

Then the engine switches between two cycles (no missed cycle: the switch only moves
pointers and grows the image). Anything that does not load, compile or verify changes
nothing. Tasks cannot change online (their set, names and periods): that needs a
restart. :class:`OnlineLoader` keeps the previous program so that :meth:`rollback`
restores it.

Example::

    loader = OnlineLoader(engine, load_program_file("tank.py"))
    plan = loader.load("tank_v2.py", dry_run=True)   # the plan, nothing changed
    print(plan.text)
    loader.load("tank_v2.py")                        # switch
    loader.rollback()                                # back to tank.py
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from softplc import authoring
from softplc.compiler import compile_instance
from softplc.engine import Engine, _reference_runner, _wrap_python
from softplc.errors import ConfigError, StateError
from softplc.loader import ProgramFile, load_program_file
from softplc.stdlib.blocks import FunctionBlock

__all__ = ["OnlineLoader", "Plan"]

# Conversions that keep every value of the old type (a retained value may take them).
_WIDER = {
    "SINT": {"INT", "DINT", "LINT", "REAL", "LREAL"},
    "INT": {"DINT", "LINT", "REAL", "LREAL"},
    "DINT": {"LINT", "LREAL"},
    "USINT": {"UINT", "UDINT", "ULINT", "INT", "DINT", "LINT", "REAL", "LREAL"},
    "UINT": {"UDINT", "ULINT", "DINT", "LINT", "REAL", "LREAL"},
    "UDINT": {"ULINT", "LINT", "LREAL"},
    "REAL": {"LREAL"},
    "BOOL": {"SINT", "INT", "DINT", "LINT", "USINT", "UINT", "UDINT", "ULINT"},
}


@dataclass
class Plan:
    """What an online change does, variable by variable and program by program.

    ``refused`` lists why the change cannot be made (then nothing is changed); the
    other lists say what happens: ``kept``, ``added``, ``retyped`` (name, old type, new
    type, ``converted`` or ``reset``), ``dropped``; programs ``replaced``, ``added``,
    ``removed``, ``unchanged``, and ``state_kept`` / ``state_reset`` (function-block
    state). ``text`` says it in a few lines.
    """

    program: str
    kept: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    retyped: list[tuple[str, str, str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    programs_replaced: list[str] = field(default_factory=list)
    programs_added: list[str] = field(default_factory=list)
    programs_removed: list[str] = field(default_factory=list)
    state_kept: list[str] = field(default_factory=list)
    state_reset: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    applied: bool = False
    switched_at_cycle: int | None = None

    @property
    def text(self) -> str:
        """The plan in a few lines."""
        lines = [f"online change to {self.program}:"]
        if self.refused:
            lines += [f"  refused: {r}" for r in self.refused]
        lines.append(
            f"  variables: {len(self.kept)} kept, {len(self.added)} added"
            f"{' (' + ', '.join(self.added) + ')' if self.added else ''}, "
            f"{len(self.dropped)} dropped"
            f"{' (' + ', '.join(self.dropped) + ')' if self.dropped else ''}"
        )
        for name, old, new, how in self.retyped:
            lines.append(f"  {name}: {old} -> {new}, {how}")
        for what, names in (
            ("replaced", self.programs_replaced),
            ("added", self.programs_added),
            ("removed", self.programs_removed),
        ):
            if names:
                lines.append(f"  programs {what}: {', '.join(names)}")
        if self.state_kept:
            lines.append(f"  state kept: {', '.join(self.state_kept)}")
        if self.state_reset:
            lines.append(f"  state reset (changed program): {', '.join(self.state_reset)}")
        if self.applied:
            lines.append(f"  switched at cycle {self.switched_at_cycle}")
        elif not self.refused:
            lines.append("  (dry run: nothing changed)")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """The plan as plain data (the control channel's answer)."""
        d = {k: v for k, v in self.__dict__.items()}
        d["text"] = self.text
        return d


@dataclass
class _Prepared:
    plan: Plan
    retire: list[tuple[str, str]]
    declare: list[tuple[Any, ...]]
    convert: list[tuple[str, str]]
    tasks: list[tuple[str, list[tuple[str, str, Any, str | None]]]]
    binds: list[tuple[Any, dict[str, str]]]
    programs: list[tuple[str, str, str]]
    ir: dict[str, bytes]
    signature: str


class OnlineLoader:
    """Loads changed program files into a running engine (one at a time).

    Args:
        engine: the started engine.
        current: the program file it runs.
        mode: ``auto``/``compiled`` or ``reference`` (as the runtime runs programs).
    """

    def __init__(self, engine: Engine, current: ProgramFile, *, mode: str = "auto") -> None:
        self.engine = engine
        self.current = current
        self.previous: ProgramFile | None = None
        self.mode = "reference" if mode == "reference" else "compiled"
        self._lock = threading.Lock()
        self._tombstones = 0

    def __call__(
        self, path: str | None, *, dry_run: bool = False, rollback: bool = False
    ) -> dict[str, Any]:
        """The control channel's ``load`` operation."""
        plan = (
            self.rollback(dry_run=dry_run) if rollback else self.load(path or "", dry_run=dry_run)
        )
        return plan.as_dict()

    def load(self, path: str | Path, *, dry_run: bool = False) -> Plan:
        """Plans, and unless ``dry_run`` applies, the change to ``path``. A plan that is
        refused raises :class:`~softplc.ConfigError` with the plan's text (nothing
        changed); a file that does not load or compile raises its own error."""
        if not self._lock.acquire(blocking=False):
            raise StateError("another online change is in progress: try again when it ends")
        try:
            pf = load_program_file(path)
            return self._change(pf, dry_run=dry_run)
        finally:
            self._lock.release()

    def rollback(self, *, dry_run: bool = False) -> Plan:
        """Restores the program that ran before the last change."""
        if self.previous is None:
            raise StateError("nothing to roll back: no online change was made")
        if not self._lock.acquire(blocking=False):
            raise StateError("another online change is in progress: try again when it ends")
        try:
            pf = load_program_file(self.previous.path)
            return self._change(pf, dry_run=dry_run)
        finally:
            self._lock.release()

    # -- planning -----------------------------------------------------------------

    def _change(self, pf: ProgramFile, *, dry_run: bool) -> Plan:
        prep = self._prepare(pf)
        if prep.plan.refused:
            raise ConfigError(prep.plan.text)
        if dry_run:
            return prep.plan
        e = self.engine
        done = e.native.online_change(
            prep.retire,
            prep.declare,
            prep.tasks,
            convert=prep.convert,
            signature=prep.signature,
        )
        # The engine's own records follow the change.
        e._programs = prep.programs
        e._refresh_variables()
        for obj, names in prep.binds:
            authoring.bind(obj, {attr: e._var_index[full] for attr, full in names.items()})
        e._bind = prep.binds
        e._ir = prep.ir
        # A force on a variable that changed type stays on the old place: release it.
        forced = e.forced
        for _, tomb in prep.retire:
            if tomb in forced:
                e.unforce(tomb)
        prep.plan.applied = True
        prep.plan.switched_at_cycle = int(done["cycle"])
        self.previous, self.current = self.current, pf
        return prep.plan

    def _prepare(self, pf: ProgramFile) -> _Prepared:
        e = self.engine
        plan = Plan(program=str(pf.path))
        current = {v["name"]: v for v in e.variables}
        engine_tasks = [t["name"] for t in e.stats()]
        wanted: dict[str, list[Any]] = {}
        if pf.tasks:
            for t in pf.tasks:
                wanted[t.name] = list(t.programs)
            if set(wanted) != set(engine_tasks):
                plan.refused.append(
                    f"tasks changed ({', '.join(engine_tasks)} -> {', '.join(wanted)}): tasks "
                    "cannot change online; restart the runtime"
                )
        else:
            if engine_tasks != ["main"] and len(engine_tasks) != 1:
                plan.refused.append(
                    "the running program declares TASKS and the new file does not: restart"
                )
            wanted[engine_tasks[0]] = list(pf.programs)
        if pf.globals:
            plan.refused.append("module-level variables cannot change online yet: restart")
        old_programs = {name: (task, mode) for name, task, mode in e._programs}
        old_objects = {authoring.instance_name(o): o for o, _ in e._bind}
        declared: dict[str, str] = {}
        retire: list[tuple[str, str]] = []
        declare: list[tuple[Any, ...]] = []
        convert: list[tuple[str, str]] = []
        tasks_out: list[tuple[str, list[tuple[str, str, Any, str | None]]]] = []
        binds: list[tuple[Any, dict[str, str]]] = []
        programs: list[tuple[str, str, str]] = []
        irs: dict[str, bytes] = {}
        identity = hashlib.sha256()
        for task, items in wanted.items():
            plist: list[tuple[str, str, Any, str | None]] = []
            for item in items:
                obj = item() if isinstance(item, type) and authoring.is_program(item) else item
                if not authoring.is_program(obj):
                    name = getattr(obj, "__name__", None) or type(obj).__name__
                    replaces = name if name in old_programs else None
                    plist.append((name, "python", _wrap_python(obj), replaces))
                    programs.append((name, task, "python"))
                    (plan.programs_replaced if replaces else plan.programs_added).append(name)
                    continue
                pname = authoring.instance_name(obj)
                names: dict[str, str] = {}
                for spec in authoring.program_variables(obj):
                    full = f"{pname}.{spec.attr}"
                    names[spec.attr] = full
                    declared[full] = spec.type
                    old = current.get(full)
                    if old is not None and old["type"] == spec.type:
                        plan.kept.append(full)
                        continue
                    if old is not None:
                        self._tombstones += 1
                        tomb = f"{full}~{self._tombstones}"
                        retire.append((full, tomb))
                        if old.get("retain"):
                            if spec.type in _WIDER.get(old["type"], set()):
                                convert.append((tomb, full))
                                how = "converted"
                            else:
                                plan.refused.append(
                                    f"{full} is {old['retain']} and its type changes from "
                                    f"{old['type']} to {spec.type}, which does not hold every "
                                    "value: keep the type, or restart with --cold"
                                )
                                how = "refused"
                        else:
                            how = "reset"
                        plan.retyped.append((full, old["type"], spec.type, how))
                    else:
                        plan.added.append(full)
                    declare.append(
                        (full, spec.area, spec.type, spec.address, spec.initial, spec.safe,
                         spec.unit, spec.min, spec.max, spec.writable,
                         None if spec.values is None else list(spec.values), spec.retain)
                    )  # fmt: skip
                replaces = pname if pname in old_programs else None
                if self.mode == "compiled":
                    ir = compile_instance(obj)
                    irs[pname] = ir
                    identity.update(pname.encode() + b"\0" + ir)
                    plist.append((pname, "compiled", ir, replaces))
                    if replaces is not None:
                        # The engine keeps the state of an unchanged compiled form.
                        same = e._ir.get(pname) == ir
                        (plan.state_kept if same else plan.state_reset).append(pname)
                else:
                    old_obj = old_objects.get(pname)
                    if old_obj is not None:
                        kept = _carry_blocks(old_obj, obj)
                        plan.state_kept += [f"{pname}.{a}" for a in kept]
                    plist.append((pname, "python", _reference_runner(obj), replaces))
                binds.append((obj, names))
                programs.append((pname, task, self.mode))
                (plan.programs_replaced if replaces else plan.programs_added).append(pname)
            tasks_out.append((task, plist))
        new_names = {p[0] for _, ps in tasks_out for p in ps}
        plan.programs_removed = sorted(n for n in old_programs if n not in new_names)
        # Variables of the old programs that nothing declares now (tombstones of earlier
        # changes are not listed again).
        plan.dropped = sorted(
            n
            for n in current
            if n not in declared and "~" not in n and n.split(".", 1)[0] in old_programs
        )
        return _Prepared(
            plan, retire, declare, convert, tasks_out, binds, programs, irs,
            identity.hexdigest(),
        )  # fmt: skip


def _carry_blocks(old: Any, new: Any) -> list[str]:
    """Reference mode: the new instance takes over each function-block instance of the
    old one with the same attribute and class (its timers and counters run on)."""
    kept = []
    for attr, block in list(new.__dict__.items()):
        before = old.__dict__.get(attr)
        if isinstance(block, FunctionBlock) and type(before) is type(block):
            new.__dict__[attr] = before
            kept.append(attr)
    return kept
