"""Small programs for the testing toolkit's tests (in a file: the compiler reads the
source of the programs it compiles)."""

from softplc import BOOL, INT, REAL, TON, Input, Memory, Output, ms, program


@program
class Motor:
    """A start/stop latch, a spin-up timer, a speed setpoint, and a division that faults
    when ``divisor`` is 0."""

    start = Input(BOOL, "%IX0.0")
    stop = Input(BOOL, "%IX0.1")
    divisor = Input(INT, initial=1)
    running = Output(BOOL, "%QX0.0")
    at_speed = Output(BOOL)
    speed = Output(REAL)
    ratio = Output(INT)
    speed_sp = Memory(REAL, 50.0)
    spin_up = TON(PT=ms(500))

    def scan(self):
        if self.start:
            self.running = True
        if self.stop:
            self.running = False
        self.spin_up(IN=self.running)
        self.at_speed = self.spin_up.Q
        if self.at_speed:
            self.speed = self.speed_sp
        else:
            self.speed = 0.0
        self.ratio = 100 // self.divisor


@program
class Fan:
    """Runs while the motor runs: another ``running``, so that the bare name is
    ambiguous next to Motor."""

    motor_on = Input(BOOL)
    running = Output(BOOL)

    def scan(self):
        self.running = self.motor_on
