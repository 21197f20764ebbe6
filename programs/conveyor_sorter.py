"""Conveyor sorter: counts items with edge detection and counters, and pushes big
items off the belt when they reach the pusher.

An item passes the entry photo-eye (`entry_eye`), where a gauge says whether it is
big. It takes `travel` to reach the pusher; big items are pushed off (a `push_time`
pulse on `pusher`), small ones ride on to the exit eye. The belt stops when a batch of
`batch` items has entered (`batch_done`) until `reset` is pressed. Up to four big items
can be on their way at once: each takes a slot, a structure in an array (`slots[i].busy`
and `slots[i].serial`, the item's number, which traces show), with one timer each in an
array of blocks; a fifth is counted in `lost`.

The pusher makes one stroke per big item. TP ignores its input while its pulse runs, so
a big item that reaches the pusher during a stroke (items closer together than
`push_time`) would get no stroke of its own; instead its request waits in a queue
(`push_queue`) and the pusher strokes again as soon as it has been back for one scan.
This assumes the pusher zone is long enough for an item to still be in front of the
pusher one stroke later.

Run it:  softplc run programs/conveyor_sorter.py --virtual --cycles 3000 --cycle 10ms
"""

from softplc import ARRAY, BOOL, INT, TIME, Field, Input, Memory, Output, program, struct
from softplc.stdlib import CTU, CTUD, R_TRIG, TO_INT, TON, TP, ms

SLOTS = 4


@struct
class Slot:
    """A big item on its way to the pusher."""

    busy = Field(BOOL)
    serial = Field(INT)  # the item's number (the entry count when it entered)


def free_slot(slots):
    """The first slot not in use, or SLOTS when all are (the array by reference)."""
    for i in range(SLOTS):
        if not slots[i].busy:
            return TO_INT(i)
    return TO_INT(SLOTS)


@program
class ConveyorSorter:
    run_cmd = Input(BOOL, "%IX0.0")
    entry_eye = Input(BOOL, "%IX0.1")
    big = Input(BOOL, "%IX0.2")
    exit_eye = Input(BOOL, "%IX0.3")
    reset = Input(BOOL, "%IX0.4")
    motor = Output(BOOL, "%QX0.0")
    pusher = Output(BOOL, "%QX0.1")
    batch_done = Output(BOOL, "%QX0.2")
    small_count = Output(INT, "%QW2")
    big_count = Output(INT, "%QW4")
    on_belt = Output(INT, "%QW6")
    lost = Output(INT, "%QW8")
    push_queue = Output(INT, "%QW10")
    batch = Memory(INT, 10)
    travel = Memory(TIME, ms(1500))
    slots = Memory(ARRAY(Slot, SLOTS))
    stroke_cmd = Memory(BOOL)
    entry_edge = R_TRIG()
    exit_edge = R_TRIG()
    reset_edge = R_TRIG()
    items = CTU()
    bigs = CTU(PV=32767)
    belt = CTUD(PV=32767)
    push = TP(PT=ms(300))
    delays = [TON() for _ in range(SLOTS)]  # noqa: RUF012 (an array of blocks)

    def scan(self):
        self.entry_edge(CLK=self.entry_eye)
        self.exit_edge(CLK=self.exit_eye)
        self.reset_edge(CLK=self.reset)
        arrived = self.entry_edge.Q and self.motor
        self.items(CU=arrived, R=self.reset_edge.Q, PV=self.batch)
        self.bigs(CU=arrived and self.big, R=self.reset_edge.Q)
        self.batch_done = self.items.Q
        self.motor = self.run_cmd and not self.items.Q

        if arrived and self.big:
            free = free_slot(self.slots)
            if free < SLOTS:
                slot = self.slots[free]
                slot.busy = True
                slot.serial = self.items.CV
            else:
                self.lost += 1  # more big items in flight than slots

        pushed = False
        for i in range(SLOTS):
            self.delays[i](IN=self.slots[i].busy, PT=self.travel)
            if self.delays[i].Q:
                self.slots[i].busy = False
                pushed = True
                self.push_queue += 1
        # A stroke starts on a rising edge of TP's input, so the command is given for
        # one scan, only while the pusher is back (not during a stroke, nor in the scan
        # after a command, when its input must drop for the next edge).
        self.stroke_cmd = self.push_queue > 0 and not self.push.Q and not self.stroke_cmd
        if self.stroke_cmd:
            self.push_queue -= 1
        self.push(IN=self.stroke_cmd)
        self.pusher = self.push.Q

        self.belt(CU=arrived, CD=self.exit_edge.Q or pushed, R=self.reset_edge.Q)
        self.on_belt = self.belt.CV
        self.big_count = self.bigs.CV
        self.small_count = self.items.CV - self.bigs.CV
