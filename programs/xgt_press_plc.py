"""A simulated XGK PLC of a hydraulic press, for programs/xgt_press.py.

softplc answers as the press's LS Electric XGK PLC (`xgt_press_plc.toml`: an XGT server
with an explicit map in XGK names): the cell controller writes `enable` (`M0100`) and
`speed_sp` (`D200`, 0.1 % per count); the press runs while enabled with a setpoint and
no fault, its pressure (`D100`, 0.1 bar per count) follows the setpoint, and it counts
a stroke (`D102`) every `stroke_cycles` cycles. `fault` (`M0001`) can be set from
outside (an XGT client, the control channel) to simulate a press fault.

Run it:  softplc run programs/xgt_press_plc.py --io programs/xgt_press_plc.toml
"""

from softplc import BOOL, DINT, INT, Memory, program


@program
class XgtPressPlc:
    enable = Memory(BOOL)
    speed_sp = Memory(INT, min=0, max=1000)
    pressure = Memory(INT)
    strokes = Memory(DINT)
    running = Memory(BOOL)
    fault = Memory(BOOL)
    stroke_cycles = Memory(INT, 20)
    tick = Memory(INT)

    def scan(self):
        self.running = self.enable and self.speed_sp > 0 and not self.fault
        if self.running:
            # Working pressure: 0.6 bar per % of speed, approached by a tenth a cycle.
            target = self.speed_sp * 6 // 10
            self.pressure = self.pressure + (target - self.pressure) // 10
            if self.pressure < target:
                self.pressure = self.pressure + 1
            self.tick = self.tick + 1
            if self.tick >= self.stroke_cycles:
                self.tick = 0
                self.strokes = self.strokes + 1
        else:
            self.pressure = self.pressure - self.pressure // 10
