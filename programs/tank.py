"""A tank filled by a pump, with a simulated plant.

The controller keeps the level between a low and a high limit: it starts the pump below
`low_limit` and stops it above `high_limit` (a two-point controller with hysteresis),
and raises `alarm` if the level leaves the band by more than 10 %.
The plant model fills the tank while the pump runs and drains it by a constant outflow.

Run it:  softplc run programs/tank.py --virtual --cycles 20000 --cycle 10ms
"""

from softplc import BOOL, REAL, Input, Memory, Output, program


@program
class Tank:
    level = Input(REAL, "%ID0", unit="%")
    enable = Input(BOOL, "%IX4.0", initial=True)
    pump = Output(BOOL, "%QX0.0")
    alarm = Output(BOOL, "%QX0.1")
    low_limit = Memory(REAL, 40.0)
    high_limit = Memory(REAL, 60.0)

    def scan(self):
        if not self.enable:
            self.pump = False
        elif self.level < self.low_limit:
            self.pump = True
        elif self.level > self.high_limit:
            self.pump = False
        self.alarm = self.level < self.low_limit - 10.0 or self.level > self.high_limit + 10.0


class TankPlant:
    """Level in percent; the pump adds `inflow` %/s, the outlet drains `outflow` %/s."""

    def __init__(self, level=50.0, inflow=12.0, outflow=5.0):
        self.level = level
        self.inflow = inflow
        self.outflow = outflow

    def step(self, io, dt):
        if io["tank.pump"]:
            self.level += self.inflow * dt
        self.level = max(0.0, min(100.0, self.level - self.outflow * dt))
        io["tank.level"] = self.level


PLANT = TankPlant
