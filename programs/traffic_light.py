"""Traffic light: a state machine on timers, with a pedestrian request.

Phases: RED (pedestrians walk) -> RED_YELLOW -> GREEN -> YELLOW -> RED. GREEN lasts
`green_time`, or ends early once it has run `min_green` after a pedestrian pressed the
button. With `enable` FALSE the light flashes yellow at 1 Hz and restarts at RED.

Run it:  softplc run programs/traffic_light.py --virtual --cycles 6000 --cycle 10ms
"""

from softplc import BOOL, INT, TIME, Input, Memory, Output, program
from softplc.stdlib import MUX, SR, TON, TP, ms, now, s

RED, RED_YELLOW, GREEN, YELLOW = 0, 1, 2, 3


@program
class TrafficLight:
    enable = Input(BOOL, "%IX0.0", initial=True)
    request = Input(BOOL, "%IX0.1")  # pedestrian push button
    red = Output(BOOL, "%QX0.0")
    yellow = Output(BOOL, "%QX0.1")
    green = Output(BOOL, "%QX0.2")
    walk = Output(BOOL, "%QX0.3")
    phase = Memory(INT)
    red_time = Memory(TIME, s(5))
    green_time = Memory(TIME, s(20))
    min_green = Memory(TIME, s(5))
    step = TON()  # time spent in the current phase
    waiting = SR()  # a pedestrian is waiting
    beep = TP(PT=ms(200))  # acknowledge the button

    def scan(self):
        self.beep(IN=self.request)
        if not self.enable:
            self.phase = RED
            self.step(IN=False)
            self.waiting(S1=False, R=True)
            flash = (now() // ms(500)) % 2 == 0
            self.set_lamps(False, flash, False)
            self.walk = False
            return
        self.waiting(S1=self.request and self.phase != RED, R=self.phase == RED)
        duration = MUX(self.phase, self.red_time, s(1), self.green_time, s(3))
        self.step(IN=True, PT=duration)
        done = self.step.Q
        if self.phase == GREEN and self.waiting.Q1 and self.step.ET >= self.min_green:
            done = True
        if done:
            self.phase = (self.phase + 1) % 4
            self.step(IN=False)  # restart the phase timer on the next scan
        self.set_lamps(
            self.phase == RED or self.phase == RED_YELLOW,
            self.phase == RED_YELLOW or self.phase == YELLOW,
            self.phase == GREEN,
        )
        self.walk = self.phase == RED

    def set_lamps(self, red, yellow, green):
        self.red = red
        self.yellow = yellow
        self.green = green
