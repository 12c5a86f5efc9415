"""Settings written as TOML read back by tomllib."""

from __future__ import annotations

import math
import sys

import pytest

from flatnn.io import toml_text

tomllib = pytest.importorskip("tomllib") if sys.version_info >= (3, 11) else None


def test_settings_round_trip_through_tomllib():
    if tomllib is None:
        pytest.skip("tomllib needs Python 3.11")
    settings = {
        "method": "momentum",
        "sizes": [784, 30, 10],
        "lam": 0.5,
        "epochs": 6,
        "final_fit": False,
        "preset": None,
        "schedule": {"kind": "step", "gamma": 0.5},
        "odd key": 'quote " and \\ back',
        "limit": math.inf,
    }
    back = tomllib.loads(toml_text.dumps(settings))
    expected = {k: v for k, v in settings.items() if v is not None}
    assert back == expected


def test_values_toml_cannot_hold_are_named():
    with pytest.raises(TypeError, match="setting 'a' is a set"):
        toml_text.dumps({"a": {1}})
