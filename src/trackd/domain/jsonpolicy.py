"""The JSON trackd accepts: one rule for every request body and every stored JSON column.

What is accepted must always be readable back, on both stores and by every client:
- numbers are finite (NaN and Infinity are not JSON, and PostgreSQL's JSONB refuses them);
- integers fit in 64 bits, signed: SQLite's JSON functions hold nothing wider exactly, and
  most JSON clients read wider ones back as something else;
- strings and keys are valid Unicode without NUL: a lone surrogate cannot be encoded as
  UTF-8, and PostgreSQL's JSONB cannot hold U+0000;
- nesting is bounded (`max_depth` containers), so reading a value back never recurses deeply.
A problem names where it is (`metadata.a[2].b`), so the client knows what to change.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Final

DEFAULT_MAX_DEPTH: Final = 32
# Stored JSON columns refuse anything deeper than this, whatever a deployment's setting says:
# the store's own ceiling, so no path (an API setting raised, a source, a script) can store a
# value that later breaks reads.
STORE_MAX_DEPTH: Final = 64
INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**63 - 1
_SHOWN_KEY = 40


class JsonRefused(ValueError):
    """A JSON value the policy refuses; `where` is the path to the offending part."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class JsonPolicy:
    """The limits applied; one instance comes from the settings, the store uses its own."""

    max_depth: int = DEFAULT_MAX_DEPTH


STORE_POLICY: Final = JsonPolicy(max_depth=STORE_MAX_DEPTH)


def parse(text: bytes | str, *, where: str = "body") -> Any:
    """Parse JSON text without judging its values (`check` does that); `where` names the
    text in errors.

    Raises:
        JsonRefused: the text is not JSON, or nests deeper than the parser can follow.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise JsonRefused(where, "nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
        raise JsonRefused(where, f"not valid JSON ({exc})") from None


def check(value: Any, policy: JsonPolicy, *, where: str = "", skip: str | None = None) -> None:
    """Raise if `value` holds anything the policy refuses.

    Args:
        value: a parsed JSON value (dicts, lists, str, int, float, bool, None).
        policy: the limits.
        where: the path of `value` itself, prefixed to every path reported.
        skip: a top-level key whose list items are left unchecked: a batch's items are
            judged one by one by the route that takes them, so one bad item does not
            refuse the others.

    Raises:
        JsonRefused: the first problem found, with its path.
    """
    if skip is None and policy.max_depth <= _FAST_DEPTH and _acceptable(value, policy.max_depth):
        return
    for path, depth, item in _walk(value, where, skip):
        if depth > policy.max_depth:
            raise JsonRefused(
                _shown(path), f"nested deeper than {policy.max_depth} levels; flatten it"
            )
        problem = _problem(item)
        if problem is not None:
            raise JsonRefused(_shown(path), problem)


def text_passes(text: str, policy: JsonPolicy) -> bool:
    """Whether JSON text written by `json.dumps(..., allow_nan=False)` surely holds nothing
    `check` refuses, judged from the text alone at the speed of a string search: no escaped
    NUL, valid Unicode, no run of 19 digits (an integer past 64 bits has one), nesting within
    the policy's depth. False means: let `check` judge the value itself (a float's digits or a
    backslash in a string can look like what is refused).

    For bulk writes of values trackd writes as text anyway (a snapshot's canonical JSON):
    the text is looked at once, the value is not walked."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return encoded_passes(raw, policy)


def encoded_passes(raw: bytes, policy: JsonPolicy) -> bool:
    """`text_passes` for JSON already encoded as UTF-8 (which holds no lone surrogate)."""
    if b"\\u0000" in raw or _DIGIT_RUN in raw.translate(_DIGITS_ONLY):
        return False
    if raw.count(b"[") + raw.count(b"{") <= policy.max_depth:
        return True
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", raw.decode("utf-8"))):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest <= policy.max_depth


# Every digit as "0", anything else as a space: a run of 19 digits is then a plain search.
_DIGITS_ONLY: Final = bytes(0x30 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_DIGIT_RUN: Final = b"0" * 19
_STRINGS: Final = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_BRACKETS: Final = re.compile(r"[\[\]{}]")


def _acceptable(value: Any, max_depth: int) -> bool:
    """Whether `check` would find nothing, answered without building paths: the common case
    pays for one pass; `_walk` runs only to name a problem. Nesting beyond `max_depth`, or
    beyond what this recursion allows, answers False (the walk then decides)."""
    kind = type(value)
    if kind is dict:
        return (
            max_depth >= 1
            and _keys_acceptable(value)
            and _all_acceptable(value.values(), max_depth)
        )
    if kind is list:
        return max_depth >= 1 and _all_acceptable(value, max_depth)
    return _all_acceptable((value,), max_depth + 1)


def _keys_acceptable(value: dict[Any, Any]) -> bool:
    for key in value:
        if type(key) is not str or "\x00" in key or not (key.isascii() or _encodable(key)):
            return False
    return True


def _all_acceptable(children: Iterable[Any], max_depth: int) -> bool:
    """Whether every child of a container at depth budget `max_depth` is acceptable. Scalars
    are judged here, inline: most of a document's leaves cost no call."""
    for child in children:
        kind = type(child)
        if kind is str:
            if "\x00" in child or not (child.isascii() or _encodable(child)):
                return False
        elif kind is float:
            if not math.isfinite(child):
                return False
        elif kind is int:
            if not INT_MIN <= child <= INT_MAX:
                return False
        elif kind is dict or kind is list:
            if not _acceptable(child, max_depth - 1):
                return False
        elif child is not None and kind is not bool:
            return False
    return True


_CONTAINERS: Final = (dict, list)
# Deeper bounds than this are checked by the walk alone (the fast check recurses).
_FAST_DEPTH: Final = 200


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _walk(value: Any, where: str, skip: str | None) -> Iterator[tuple[str, int, Any]]:
    # Iterative, so a deep value is reported, not a RecursionError. Keys are yielded as
    # values of their own so that they are checked like strings.
    stack: list[tuple[str, int, Any]] = [(where, 1 if _is_container(value) else 0, value)]
    while stack:
        path, depth, item = stack.pop()
        yield path, depth, item
        if isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{_key(key)}" if path else _key(key)
                yield child_path, depth, key
                if skip is not None and path == where and key == skip and isinstance(child, list):
                    continue
                stack.append((child_path, depth + _is_container(child), child))
        elif isinstance(item, list):
            for index, child in enumerate(item):
                stack.append((f"{path}[{index}]", depth + _is_container(child), child))


def _is_container(value: Any) -> int:
    return 1 if isinstance(value, dict | list) else 0


def _problem(item: Any) -> str | None:
    if isinstance(item, str):
        if "\x00" in item:
            return "contains a NUL character (\\u0000); remove it"
        try:
            item.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate (an unpaired \\ud800-\\udfff); send valid Unicode"
        return None
    if isinstance(item, bool) or item is None:
        return None
    if isinstance(item, int):
        if not INT_MIN <= item <= INT_MAX:
            return "integer outside the signed 64-bit range; send it as a string"
        return None
    if isinstance(item, float):
        if not math.isfinite(item):
            return "not a finite number (NaN and Infinity are not JSON)"
        return None
    if isinstance(item, dict | list):
        return None
    return f"{type(item).__name__} is not a JSON value"


def _key(key: Any) -> str:
    # A key is shown in error messages, which must themselves be valid UTF-8 JSON.
    text = str(key).encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= _SHOWN_KEY else text[:_SHOWN_KEY] + "…"


def _shown(path: str) -> str:
    return path or "body"
