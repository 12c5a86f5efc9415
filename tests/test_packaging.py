"""The wheel ships the license and the typing marker, and the version has one source."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

import flatnn

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from 3.11")


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_version_is_pyprojects_only_literal():
    version = pyproject()["project"]["version"]
    assert flatnn.__version__ == metadata.version("flatnn") == version
    source = (ROOT / "flatnn" / "__init__.py").read_text(encoding="utf-8")
    assert version not in source


def test_the_metadata_names_the_license_classifiers_and_urls():
    project = pyproject()["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "Typing :: Typed" in project["classifiers"]
    assert {"Homepage", "Documentation", "Source", "Changelog"} <= set(project["urls"])
    assert (ROOT / "CHANGELOG.md").is_file()


def test_the_wheel_holds_license_and_py_typed(tmp_path):
    try:
        import setuptools
    except ImportError:
        pytest.skip("setuptools is not installed: building the wheel would need a download")
    major = int(setuptools.__version__.split(".")[0])
    if major < 77:
        pytest.skip(f"setuptools {setuptools.__version__} predates PEP 639 license-files (77)")
    # A copy of the sources, so that the build's build/ and egg-info never touch the checkout.
    source = tmp_path / "src"
    shutil.copytree(
        ROOT / "flatnn", source / "flatnn", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + [str(source), "-w", str(tmp_path / "dist")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    [wheel] = (tmp_path / "dist").glob("flatnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "flatnn/py.typed" in names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(meta).decode()
    assert "License-Expression: MIT" in text
    assert "Classifier: Typing :: Typed" in text
