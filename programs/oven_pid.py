"""Oven temperature loop: a PID drives the heater of a simulated oven.

The setpoint ramps from the temperature at start-up to `setpoint` over `ramp_time`
(RAMP), the PID (anti-windup, output limited to 0..100 %) follows it, and an
over-temperature alarm with a dead band (HYSTERESIS) cuts the heater. With `auto`
FALSE the heater follows `manual_out`; switching back to auto is bumpless.

The plant is a first-order thermal model: the heater adds up to `power` degC/s, the
walls lose `loss` of the excess over ambient per second.

Run it:  softplc run programs/oven_pid.py --virtual --cycles 60000 --cycle 10ms
"""

from softplc import BOOL, REAL, Input, Memory, Output, program
from softplc.stdlib import HYSTERESIS, PID, RAMP, s

AMBIENT = 20.0


@program
class OvenPid:
    temp = Input(REAL, "%ID0", unit="degC")
    auto = Input(BOOL, "%IX4.0", initial=True)
    manual_out = Input(REAL, "%ID8", unit="%")
    heater = Output(REAL, "%QD0", unit="%")
    over_temp = Output(BOOL, "%QX4.0")
    ramp_sp = Output(REAL, "%QD8", unit="degC")
    setpoint = Memory(REAL, 180.0, unit="degC")
    limit = Memory(REAL, 230.0, unit="degC")
    start_temp = Memory(REAL)
    started = Memory(BOOL)
    ramp = RAMP(TR=s(120))
    pid = PID(KP=8.0, TI=s(60), TD=s(2), OUT_MIN=0.0, OUT_MAX=100.0)
    alarm = HYSTERESIS(EPS=5.0)

    def scan(self):
        if not self.started:
            self.start_temp = self.temp
            self.started = True
        self.ramp(RUN=True, X0=self.start_temp, X1=self.setpoint)
        self.ramp_sp = self.ramp.XOUT
        self.alarm(XIN1=self.temp, XIN2=self.limit)
        self.over_temp = self.alarm.Q
        self.pid(AUTO=self.auto, PV=self.temp, SP=self.ramp.XOUT, X0=self.manual_out)
        if self.over_temp:
            self.heater = 0.0
        else:
            self.heater = self.pid.XOUT


class OvenPlant:
    """First-order oven: dT/dt = power * heater/100 - loss * (T - ambient)."""

    def __init__(self, temp=AMBIENT, power=4.0, loss=0.01, name="oven_pid"):
        self.temp = temp
        self.power = power
        self.loss = loss
        self.name = name

    def step(self, io, dt):
        heat = min(100.0, max(0.0, io[f"{self.name}.heater"]))
        self.temp += (self.power * heat / 100.0 - self.loss * (self.temp - AMBIENT)) * dt
        io[f"{self.name}.temp"] = self.temp


PLANT = OvenPlant
