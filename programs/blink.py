"""Blink: the hello-world of PLCs. A lamp on %QX0.0 toggles every half period.

Run it:  softplc run programs/blink.py --cycle 1ms --duration 5s

The half period is a setpoint an HMI may change (over Modbus: holding registers
4096-4099 with ``--modbus-server``); its range keeps a client from writing 0, which
would divide by zero, or a value too small for the cycle to show.
"""

from softplc import BOOL, TIME, Memory, Output, ms, now, program, s


@program
class Blink:
    lamp = Output(BOOL, "%QX0.0")
    half_period = Memory(TIME, ms(500), min=ms(10), max=s(10))

    def scan(self):
        # Stateless: the lamp is on in every odd half period since the clock's origin.
        self.lamp = (now() // self.half_period) % 2 == 1
