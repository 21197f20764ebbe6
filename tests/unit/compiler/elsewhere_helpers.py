"""Helpers that programs in test_compiled_semantics.py import from another module: a
compile error inside them must name this file, with the line and column of the
construct."""

from softplc.stdlib import TO_INT


def big_cmp(k):
    if k < 100000000000000000000000:  # E:too-big
        return TO_INT(1)
    return TO_INT(0)


def ratio(a, b):
    return a // b  # E:div
