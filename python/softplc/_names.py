"""Looking up a variable name the way users write it, with suggestions when it is wrong.

A name is found by its full name (``tank.level``), or by a last part that only one
variable has (``level``, ``pending[0]``). An unknown name gets the closest known names
(``difflib``), so that a typo in a stimulus column, a bench call, a strategy or a
temporal assertion says what was probably meant. Callers turn :class:`NameLookupError`
into their own error class (``ConfigError``, Hypothesis's ``InvalidArgument``), with
their own context in front of the message.

Example:
    >>> idx = NameIndex(["tank.level", "tank.pump", "mixer.level"])
    >>> idx.resolve("pump")
    'tank.pump'
    >>> idx.resolve("levle")
    Traceback (most recent call last):
    ...
    softplc._names.NameLookupError: no variable 'levle' (did you mean tank.level, mixer.level?)
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["NameIndex", "NameLookupError"]

# Shown when nothing is close: the first known names, no more (a program may have
# thousands of variables).
_LISTED = 8


class NameLookupError(LookupError):
    """A name that is unknown or ambiguous; the message says which and suggests names."""

    def __str__(self) -> str:
        # LookupError would quote the message like a key.
        return str(self.args[0]) if self.args else ""


class NameIndex:
    """Full names and their unique last parts.

    Args:
        names: the full names, in the order to list them.
        what: the word for one name in messages (``variable``, ``signal``).
    """

    def __init__(self, names: Iterable[str], *, what: str = "variable") -> None:
        self.names: list[str] = list(names)
        self.what = what
        self._full = set(self.names)
        self._by_suffix: dict[str, list[str]] = {}
        for n in self.names:
            # Every dot-boundary suffix: "a.b.c" is found as "b.c" and "c".
            rest = n
            while "." in rest:
                rest = rest.split(".", 1)[1]
                self._by_suffix.setdefault(rest, []).append(n)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._full

    def __len__(self) -> int:
        return len(self.names)

    def resolve(self, name: str) -> str:
        """The full name ``name`` stands for; raises :class:`NameLookupError` for an
        unknown name (with suggestions) or a last part several names share."""
        if name in self._full:
            return name
        hits = self._by_suffix.get(name, [])
        if len(hits) == 1:
            return hits[0]
        if hits:
            raise NameLookupError(
                f"{self.what} name {name!r} is ambiguous: {', '.join(hits)} (use the full name)"
            )
        raise NameLookupError(f"no {self.what} {name!r}{self.hint(name)}")

    def suggest(self, name: str, *, n: int = 3) -> list[str]:
        """The known names closest to ``name`` (full names, or the full names of close
        last parts), best first."""
        pool = list(self._full) + list(self._by_suffix)
        out: list[str] = []
        for match in difflib.get_close_matches(name, pool, n=n * 2, cutoff=0.6):
            for full in [match] if match in self._full else self._by_suffix[match]:
                if full not in out:
                    out.append(full)
        return out[:n]

    def hint(self, name: str) -> str:
        """`` (did you mean a, b?)``, or the first known names when none is close."""
        close = self.suggest(name)
        if close:
            return f" (did you mean {', '.join(close)}?)"
        if not self.names:
            return f" (there are no {self.what}s)"
        shown = ", ".join(self.names[:_LISTED])
        more = f", ... ({len(self.names)} in all)" if len(self.names) > _LISTED else ""
        return f" (known: {shown}{more})"
