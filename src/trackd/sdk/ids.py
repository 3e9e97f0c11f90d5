"""Event, task and trace ids: unique across processes, and cheap enough for every call.

An id is a random per-process prefix plus a counter. That is a few hundred nanoseconds where
a uuid4 costs microseconds, and an SDK call makes three ids. The prefix is drawn again in a
forked child, which would otherwise repeat its parent's ids (and trackd drops repeated ids as
duplicates).
"""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_counter = itertools.count(1)


def _reseed() -> None:
    global _prefix, _counter
    _prefix = secrets.token_hex(8)
    _counter = itertools.count(1)


_reseed()
os.register_at_fork(after_in_child=_reseed)


def new_id() -> str:
    """A new id, e.g. `3f9a0c1d2b4e5f60-1a`; at most 34 characters."""
    # next() on itertools.count is atomic under the GIL, so threads never share an id.
    return f"{_prefix}-{next(_counter):x}"
