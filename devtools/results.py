"""Module and core results made comparable between runs: the store's location and what varies by run
taken out (standard library only; tests/support/golden.py and devtools/matrix.py use it)."""

from __future__ import annotations

from typing import Any, Iterable


def normalized(value: Any, root: str, drop: Iterable[str]) -> Any:
    """``value`` with every key in ``drop`` removed at any depth, keys sorted and ``root`` written as <root>."""
    dropped = frozenset(drop)
    if isinstance(value, dict):
        return {key: normalized(item, root, dropped) for key, item in sorted(value.items()) if key not in dropped}
    if isinstance(value, list):
        return [normalized(item, root, dropped) for item in value]
    if isinstance(value, str):
        return value.replace(root, "<root>")
    return value
