"""Blink: the hello-world of PLCs. A lamp on %QX0.0 toggles every half period.

Run it:  softplc run programs/blink.py --cycle 1ms --duration 5s
"""

from softplc import BOOL, TIME, Memory, Output, ms, now, program


@program
class Blink:
    lamp = Output(BOOL, "%QX0.0")
    half_period = Memory(TIME, ms(500))

    def scan(self):
        # Stateless: the lamp is on in every odd half period since the clock's origin.
        self.lamp = (now() // self.half_period) % 2 == 1
