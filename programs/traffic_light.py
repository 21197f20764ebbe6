"""Traffic light: a state machine on an enumeration and a timer, with a pedestrian
request.

Phases: RED (pedestrians walk) -> RED_YELLOW -> GREEN -> YELLOW -> RED. GREEN lasts
`green_time`, or ends early once it has run `min_green` after a pedestrian pressed the
button. With `enable` FALSE the light flashes yellow at 1 Hz and restarts at RED.

The phase is an enumeration: traces and `softplc trace show` name it (GREEN, not 2),
and a write from outside (the API, a bus client) can only set one of its members.

Run it:  softplc run programs/traffic_light.py --virtual --cycles 6000 --cycle 10ms
"""

import enum

from softplc import BOOL, TIME, Input, Memory, Output, program
from softplc.stdlib import SR, TON, TP, ms, now, s


class Phase(enum.IntEnum):
    RED = 0
    RED_YELLOW = 1
    GREEN = 2
    YELLOW = 3


@program
class TrafficLight:
    enable = Input(BOOL, "%IX0.0", initial=True)
    request = Input(BOOL, "%IX0.1")  # pedestrian push button
    red = Output(BOOL, "%QX0.0")
    yellow = Output(BOOL, "%QX0.1")
    green = Output(BOOL, "%QX0.2")
    walk = Output(BOOL, "%QX0.3")
    phase = Memory(Phase)
    red_time = Memory(TIME, s(5))
    green_time = Memory(TIME, s(20))
    min_green = Memory(TIME, s(5))
    step = TON()  # time spent in the current phase
    waiting = SR()  # a pedestrian is waiting
    beep = TP(PT=ms(200))  # acknowledge the button

    def scan(self):
        self.beep(IN=self.request)
        if not self.enable:
            self.phase = Phase.RED
            self.step(IN=False)
            self.waiting(S1=False, R=True)
            flash = (now() // ms(500)) % 2 == 0
            self.set_lamps(False, flash, False)
            self.walk = False
            return
        self.waiting(S1=self.request and self.phase != Phase.RED, R=self.phase == Phase.RED)
        match self.phase:
            case Phase.RED:
                duration = self.red_time
            case Phase.GREEN:
                duration = self.green_time
            case Phase.RED_YELLOW:
                duration = s(1)
            case _:
                duration = s(3)
        self.step(IN=True, PT=duration)
        done = self.step.Q
        if self.phase == Phase.GREEN and self.waiting.Q1 and self.step.ET >= self.min_green:
            done = True
        if done:
            self.phase = next_phase(self.phase)
            self.step(IN=False)  # restart the phase timer on the next scan
        match self.phase:
            case Phase.RED:
                self.set_lamps(True, False, False)
            case Phase.RED_YELLOW:
                self.set_lamps(True, True, False)
            case Phase.GREEN:
                self.set_lamps(False, False, True)
            case Phase.YELLOW:
                self.set_lamps(False, True, False)
        self.walk = self.phase == Phase.RED

    def set_lamps(self, red, yellow, green):
        self.red = red
        self.yellow = yellow
        self.green = green


def next_phase(p):
    match p:
        case Phase.RED:
            return Phase.RED_YELLOW
        case Phase.RED_YELLOW:
            return Phase.GREEN
        case Phase.GREEN:
            return Phase.YELLOW
        case _:
            return Phase.RED
