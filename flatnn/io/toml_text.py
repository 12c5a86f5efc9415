"""Settings as TOML text, for run records that can be read back with :mod:`tomllib`.

:func:`dumps` writes a mapping of settings: strings, booleans, integers,
floats (``inf``, ``nan`` included), lists of these, and nested mappings as
``[tables]``. ``None`` has no TOML form: such keys are left out (a missing key
means the default).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping

__all__ = ["dumps"]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)


def _value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, where) for v in value if v is not None) + "]"
    raise TypeError(f"setting {where!r} is a {type(value).__name__}, which TOML cannot hold here")


def dumps(settings: Mapping, _prefix: str = "") -> str:
    """The mapping as TOML text (keys in the mapping's order; None values left out).

    Raises
    ------
    TypeError
        Naming a key whose value has no TOML form (an object, a set).
    """
    lines, tables = [], []
    for key, value in settings.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            tables.append((key, value))
            continue
        lines.append(f"{_key(key)} = {_value(value, _prefix + key)}")
    for key, value in tables:
        name = f"{_prefix}{_key(key)}"
        lines.append(f"\n[{name}]")
        body = dumps(value, name + ".")
        if body:
            lines.append(body.rstrip("\n"))
    return "\n".join(lines).lstrip("\n") + ("\n" if lines else "")
