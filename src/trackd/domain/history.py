"""Snapshot history rules: what changed between two snapshots, and how long history is kept.

Pure functions, no I/O. Snapshot data is JSON (objects, arrays, strings, numbers, booleans,
null); two values are the same when their canonical JSON is, so 1 and 1.0 or 1 and true
differ, as they do for whoever reads the data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

ChangeKind = Literal["added", "removed", "changed"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One leaf that differs. `path` joins nested object keys with dots ("stats.rating");
    arrays are compared whole. `old` is None for an added field, `new` for a removed one."""

    path: str
    kind: ChangeKind
    old: Any = None
    new: Any = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "old": self.old, "new": self.new}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> FieldChange:
        return cls(raw["path"], raw["kind"], raw.get("old"), raw.get("new"))


def canonical_json(data: Any) -> str:
    """`data` as JSON with sorted keys and no spaces: equal data, equal text.

    Raises:
        TypeError: `data` holds something JSON cannot represent (a datetime, a set, ...).
        ValueError: it holds NaN or an infinity, which JSON has no spelling for.
    """
    return json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def canonical_many(objects: Sequence[Mapping[str, Any]]) -> list[str]:
    """`canonical_json` of each object, for many objects whose values are often the very same
    objects (a reading shared by every user's snapshot): each distinct value is written once.

    Raises:
        TypeError, ValueError: as `canonical_json`.
    """
    # The ids stay those of the same objects: `objects` holds them until the end.
    seen: set[int] = set()
    shared: dict[int, str | None] = {}
    for data in objects:
        for value in data.values():
            if type(value) in (dict, list):
                if id(value) in seen:
                    shared[id(value)] = None
                seen.add(id(value))
    texts = []
    for data in objects:
        if type(data) is not dict or not all(type(key) is str for key in data):
            texts.append(canonical_json(data))
            continue
        parts = []
        for key in sorted(data):
            value = data[key]
            text = shared.get(id(value))
            if text is None:
                text = canonical_json(value)
                if id(value) in shared:
                    shared[id(value)] = text
            parts.append(f"{canonical_json(key)}:{text}")
        texts.append("{" + ",".join(parts) + "}")
    return texts


def normalize(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` as it will read back from the store: tuples become lists, keys strings."""
    normal: dict[str, Any] = json.loads(canonical_json(data))
    return normal


def digest(data: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of `data` (hex): equal exactly when the data is."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()


def _same(a: Any, b: Any) -> bool:
    return a is b or canonical_json(a) == canonical_json(b)


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """The leaves that differ between `old` and `new`, sorted by path.

    Nested objects are walked; anything else (arrays, scalars, an object replaced by a scalar)
    is one leaf compared whole.
    """
    changes: list[FieldChange] = []
    _walk(old, new, "", changes)
    changes.sort(key=lambda c: c.path)
    return changes


def _walk(
    old: Mapping[str, Any], new: Mapping[str, Any], prefix: str, out: list[FieldChange]
) -> None:
    for key in old.keys() | new.keys():
        path = f"{prefix}{key}"
        if key not in new:
            out.append(FieldChange(path, "removed", old=old[key]))
        elif key not in old:
            out.append(FieldChange(path, "added", new=new[key]))
        elif isinstance(old[key], Mapping) and isinstance(new[key], Mapping):
            _walk(old[key], new[key], f"{path}.", out)
        elif not _same(old[key], new[key]):
            out.append(FieldChange(path, "changed", old=old[key], new=new[key]))


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of one history is kept: the newest `keep` snapshots, none older than
    `max_age` — except the newest, which is always kept (the next change is found against it).
    """

    keep: int = 1000
    max_age: timedelta = timedelta(days=365)

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ValueError("retention must keep at least one snapshot")
        if self.max_age <= timedelta(0):
            raise ValueError("retention max_age must be positive")

    def cutoff(self, now: datetime) -> datetime:
        """Snapshots taken before this are expired."""
        return now - self.max_age
