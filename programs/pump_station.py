"""A pump station: two pumps empty a wet well, driven over Modbus TCP.

The station's controller I/O is a Modbus TCP device (see `pump_station.toml`): a level
transmitter, a high-level float switch, run feedback of both pumps and an outflow
meter come in; the pump commands, a speed setpoint and an alarm lamp go out.

Control: the lead pump starts above `start1`, the lag pump joins above `start2`, both
stop below `stop_level`. A float switch that is up (and known to be: its quality is
GOOD) runs both pumps whatever the transmitter says: it is the last line of defence
against an overflow. Only inputs of GOOD quality are trusted; on a BAD or STALE input
the program uses none of its kept value:
- level not GOOD, float switch GOOD: the station runs on the float switch alone, both
  pumps while it is up, none while it is down;
- float switch not GOOD (the device stopped answering or has not answered yet: all its
  inputs are then unknown): both pumps are commanded off and the alarm is on. Nothing
  reaches the device while it is silent anyway; when it answers again, the outputs
  written first are "off" (a pump never starts on data from before the outage), and
  the pumps restart from fresh readings.
A pump commanded without run feedback for `feedback_time` raises the alarm. `comms_ok`
is the device's health variable (`health_var` in the I/O file), kept for an HMI.

Run it against the simulated device:
    python programs/pump_station_device.py --port 5020 &
    softplc run programs/pump_station.py --io programs/pump_station.toml --duration 30s
"""

from softplc import BOOL, GOOD, INT, QUALITY, REAL, TIME, Input, Memory, Output, program, s
from softplc.stdlib import TON


@program
class PumpStation:
    level = Input(REAL, "%ID0", unit="%")
    outflow = Input(REAL, "%ID1", unit="m3/h")
    float_high = Input(BOOL, "%IX8.0")
    pump1_running = Input(BOOL, "%IX8.1")
    pump2_running = Input(BOOL, "%IX8.2")
    comms_ok = Input(BOOL, "%IX8.3")
    pump1 = Output(BOOL, "%QX0.0")
    pump2 = Output(BOOL, "%QX0.1")
    alarm = Output(BOOL, "%QX0.2")
    speed = Output(REAL, "%QD1", unit="%")
    start1 = Memory(REAL, 60.0)
    start2 = Memory(REAL, 80.0)
    stop_level = Memory(REAL, 30.0)
    demand = Memory(INT, 0)
    feedback_time = Memory(TIME, s(3))
    no_feedback1 = TON()
    no_feedback2 = TON()

    def scan(self):
        level_ok = QUALITY(self.level) == GOOD
        float_ok = QUALITY(self.float_high) == GOOD
        if not float_ok:
            # The device is silent: its float switch (and everything else) is unknown.
            self.demand = 0
        elif self.float_high or not level_ok:
            # Fall back on the float switch: it is wired to the device, not to the
            # transmitter, and is the last line of defence against an overflow.
            if self.float_high:
                self.demand = 2
            else:
                self.demand = 0
        elif self.level > self.start2:
            self.demand = 2
        elif self.level > self.start1:
            if self.demand < 1:  # compiled programs have MAX, not max()
                self.demand = 1
        elif self.level < self.stop_level:
            self.demand = 0
        self.pump1 = self.demand >= 1
        self.pump2 = self.demand >= 2
        if self.demand >= 2:
            self.speed = 100.0
        elif self.demand == 1:
            self.speed = 70.0
        else:
            self.speed = 0.0
        self.no_feedback1(IN=self.pump1 and not self.pump1_running, PT=self.feedback_time)
        self.no_feedback2(IN=self.pump2 and not self.pump2_running, PT=self.feedback_time)
        self.alarm = (
            not float_ok
            or self.float_high
            or not level_ok
            or self.no_feedback1.Q
            or self.no_feedback2.Q
        )
