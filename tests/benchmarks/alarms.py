"""The alarm-handler benchmark program: 256 channels, an array of structures in the
inputs, one user function block per channel (an on-delay and an edge, latched until
acknowledged), scanned in one loop with a runtime index. ``benches/src/main.rs``
(``alarms``) has the hand-written Rust equivalent; the benchmark cross-checks their
outputs. The channel count, names and limits here are what the Rust side assumes."""

from __future__ import annotations

from softplc import ARRAY, BOOL, DINT, REAL, Field, Input, Output, function_block, program, struct
from softplc.stdlib import R_TRIG, TON, ms

CHANNELS = 256


@struct
class Channel:
    """One measurement and its limits."""

    value = Field(REAL)
    hi = Field(REAL, 80.0)
    lo = Field(REAL, 20.0)
    enabled = Field(BOOL, True)


@function_block
class Alarm:
    """Active while the value is out of its limits for 50 ms; latched from the rising
    edge of that until acknowledged once the value is back."""

    value = Input(REAL)
    hi = Input(REAL)
    lo = Input(REAL)
    ack = Input(BOOL)
    active = Output(BOOL)
    latched = Output(BOOL)
    count = Output(DINT)
    delay = TON(PT=ms(50))
    edge = R_TRIG()

    def scan(self):
        self.delay(IN=self.value > self.hi or self.value < self.lo)
        self.edge(CLK=self.delay.Q)
        if self.edge.Q:
            self.latched = True
            self.count += 1
        if self.ack and not self.delay.Q:
            self.latched = False
        self.active = self.delay.Q


@program
class Alarms:
    ch = Input(ARRAY(Channel, CHANNELS))
    ack = Input(BOOL)
    active = Output(ARRAY(BOOL, CHANNELS))
    latched = Output(ARRAY(BOOL, CHANNELS))
    total = Output(DINT)
    units = [Alarm() for _ in range(CHANNELS)]  # noqa: RUF012 (an array of blocks)

    def scan(self):
        n = 0
        for i in range(CHANNELS):
            c = self.ch[i]
            if c.enabled:
                self.units[i](value=c.value, hi=c.hi, lo=c.lo, ack=self.ack)
            self.active[i] = self.units[i].active
            self.latched[i] = self.units[i].latched
            if self.units[i].latched:
                n += 1
        self.total = n
