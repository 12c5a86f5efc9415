"""Run records in model files: settings, history, versions, data hash, seed; tampered fields."""

from __future__ import annotations

import json

import numpy as np
import pytest

import flatnn
from flatnn.datasets import fit_scaler
from flatnn.io import metadata


@pytest.fixture
def model():
    net = flatnn.Network((3, 4, 2))
    return net, net.init(0)


def write_raw(path, net, params, meta):
    """A model file written without save's checks (as a tamperer would)."""
    doc = {"format": "flatnn-model", "version": 1, "network": net.to_dict(), "metadata": meta}
    with open(path, "wb") as f:
        np.savez(f, params=params, header=np.array(json.dumps(doc)))
    return path


def test_run_metadata_round_trips_through_a_model_file(tmp_path, model):
    net, params = model
    history = [
        {"epoch": 0, "fun": np.float64(0.7), "val_cost": float("nan"), "x": np.zeros(3)},
        {"epoch": 1, "fun": 0.5, "val_cost": float("inf")},
    ]
    record = metadata.run_metadata(
        {"learning_rate": 0.1, "batch_size": 10, "method": "sgd"},
        history,
        seed=7,
        data_sha256="a" * 64,
    )
    flatnn.save(tmp_path / "m.npz", net, params, **record)
    _, _, meta = flatnn.load(tmp_path / "m.npz")
    assert meta["settings"] == {"learning_rate": 0.1, "batch_size": 10, "method": "sgd"}
    assert meta["history"] == [
        {"epoch": 0, "fun": 0.7, "val_cost": "nan"},
        {"epoch": 1, "fun": 0.5, "val_cost": "inf"},
    ]
    assert meta["seed"] == 7 and meta["data_sha256"] == "a" * 64
    assert set(meta["versions"]) == {"flatnn", "numpy", "scipy"}
    assert meta["versions"]["numpy"] == np.__version__


def test_run_metadata_refuses_a_bad_digest():
    with pytest.raises(ValueError, match="64 hex digits"):
        metadata.run_metadata({}, data_sha256="xyz")


def test_scaler_and_class_names_survive_a_round_trip(tmp_path, model):
    net, params = model
    scaler = fit_scaler(np.arange(12.0).reshape(4, 3))
    flatnn.save(
        tmp_path / "m.npz",
        net,
        params,
        class_names=[3, 7],
        scaler=scaler.to_dict(),
        features=["a", "b", "c"],
        task="classify",
    )
    _, _, meta = flatnn.load(tmp_path / "m.npz")
    assert meta["class_names"] == [3, 7] and meta["features"] == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("class_names", [3], "lists 1 classes; .* has 2 output units"),
        ("class_names", "ab", "expected a list"),
        ("class_names", [3, 3], "names a class twice"),
        ("class_names", [[1], 2], "a class name is text or a number"),
        ("class_names", [True, False], "a class name is text or a number"),
        ("scaler", {"kind": "standard", "offset": [0, 0], "scale": [1, 1]}, "scaler.offset has 2"),
        ("scaler", {"kind": "standard", "offset": [0, 0, 0], "scale": [1, -1, 1]}, "scaler.scale"),
        ("scaler", {"kind": "magic", "offset": [0, 0, 0], "scale": [1, 1, 1]}, "scaler.kind"),
        ("scaler", [], "keys kind, offset, scale"),
        ("features", ["a", "b"], "lists 2 columns"),
        ("task", "cluster", "expected 'classify' or 'regress'"),
        ("history", [{"fun": "abc"}], "entry 0 field 'fun'"),
        ("history", "abc", "a list of mappings"),
        ("seed", "x", "expected an integer"),
        ("data_sha256", "00", "64 lower-case hex digits"),
        ("settings", [1], "expected a mapping"),
        ("versions", {"numpy": 1}, "version strings"),
    ],
)
def test_tampered_fields_are_an_error_at_load_naming_the_field(
    tmp_path, model, field, value, pattern
):
    net, params = model
    path = write_raw(tmp_path / "m.npz", net, params, {field: value})
    with pytest.raises(ValueError, match=f"metadata '{field}': .*{pattern}"):
        flatnn.load(path)
    with pytest.raises(ValueError, match=f"metadata '{field}'"):
        flatnn.save(tmp_path / "n.npz", net, params, **{field: value})
    assert not (tmp_path / "n.npz").exists()
