"""A press cell controller polling the press's LS Electric XGK PLC over XGT (FEnet).

The hydraulic press has its own XGK PLC; this program supervises it from the cell, by
the PLC's own device names (see `xgt_press.toml`): it reads the pressure (`D100`), the
stroke count (`D102`, a double word) and the press's running and fault bits (`M0000`,
`M0001`), and writes the speed setpoint (`D200`) and the enable bit (`M0100`). No Modbus
map has to be configured in the press PLC.

Control: the press is enabled while the cell is started (`start`), the press reports no
fault, and every press input is known (GOOD quality). The speed setpoint follows the
recipe (`speed`). Over-pressure (`max_pressure`), a press fault, or a press PLC that no
longer answers disables the press and raises the alarm; enabling again needs a new
`start` after the cause is gone. `comms_ok` is the PLC's health variable (`health_var`
in the I/O file), `batch_done` says `batch` strokes were made since the start.

Run it against the simulated press PLC (softplc answering as an XGK PLC):
    softplc run programs/xgt_press_plc.py --io programs/xgt_press_plc.toml &
    softplc run programs/xgt_press.py --io programs/xgt_press.toml --duration 30s
"""

from softplc import BOOL, DINT, GOOD, QUALITY, REAL, Input, Memory, Output, program
from softplc.stdlib import R_TRIG


@program
class XgtPress:
    pressure = Input(REAL, "%ID0", unit="bar")
    strokes = Input(DINT, "%ID1")
    running = Input(BOOL, "%IX8.0")
    fault = Input(BOOL, "%IX8.1")
    comms_ok = Input(BOOL, "%IX8.2")
    start = Input(BOOL, "%IX8.3")
    enable = Output(BOOL, "%QX0.0")
    alarm = Output(BOOL, "%QX0.1")
    batch_done = Output(BOOL, "%QX0.2")
    speed_sp = Output(REAL, "%QD1", unit="%")
    speed = Memory(REAL, 60.0, min=0.0, max=100.0)
    max_pressure = Memory(REAL, 80.0)
    batch = Memory(DINT, 100)
    first_stroke = Memory(DINT)
    latched = Memory(BOOL)
    start_edge = R_TRIG()

    def scan(self):
        known = (
            QUALITY(self.pressure) == GOOD
            and QUALITY(self.running) == GOOD
            and QUALITY(self.fault) == GOOD
        )
        trip = not known or self.fault or self.pressure > self.max_pressure
        self.start_edge(CLK=self.start)
        if trip:
            self.latched = True
        elif self.start_edge.Q:
            self.latched = False
            self.first_stroke = self.strokes
        self.enable = self.start and not self.latched
        self.alarm = self.latched and self.start
        if self.enable:
            self.speed_sp = self.speed
        else:
            self.speed_sp = 0.0
        self.batch_done = self.enable and self.strokes - self.first_stroke >= self.batch
