"""The package's shape: layers, sizes, public names, typed public API, lazy import.

These are the structural rules README and the module docstrings promise; each is
read off the source with :mod:`ast` or :mod:`inspect`, so a change that breaks one
fails here rather than in review.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "flatnn"
TESTS = ROOT / "tests"

# A module may import flatnn modules of its own rank or lower, never higher.
RANKS = {
    "base": 0,
    "core": 1,
    "datasets": 1,
    "training": 2,
    "io": 2,
    "backends": 3,
    "reports": 3,
    "curvature": 3,
    "landscape": 3,
    "compare": 4,
    "sklearn": 5,
    "cli": 6,
}
FACES = {"optimizers", "dropout", "augment", "threads", "distributed", "gpu"}

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else None


def flatnn_imports(tree: ast.Module) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "flatnn":
                found += [f"flatnn.{a.name}" for a in node.names]
            elif node.module.startswith("flatnn."):
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.startswith("flatnn.")]
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_import_points_upward_and_no_face_is_used_inside(path):
    name = module_name(path)
    own = layer(name)
    if own is None or own in FACES or name == "flatnn.__main__":
        return
    rank = RANKS[own]
    for target in flatnn_imports(ast.parse(path.read_text())):
        other = layer(target)
        assert other not in FACES, f"{name} imports the public face {target}"
        if other is None or other == own:
            continue
        assert RANKS[other] <= rank, f"{name} (layer {own}) imports {target} (layer {other})"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_and_function_sizes(path):
    text = path.read_text()
    assert text.count("\n") <= MAX_MODULE_LINES, f"{path.name}: over {MAX_MODULE_LINES} lines"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = node.end_lineno - start + 1
            assert length <= MAX_FUNCTION_LINES, f"{path.name}:{node.lineno} {node.name}: {length}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_public_module_declares_all(path):
    name = module_name(path)
    if name.endswith("__main__") or any(part.startswith("_") for part in name.split(".")):
        return
    tree = ast.parse(path.read_text())
    assigned = {
        t.id
        for node in tree.body
        if isinstance(node, (ast.Assign, ast.AnnAssign))
        for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(t, ast.Name)
    }
    imported = {
        a.asname or a.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom)
        for a in node.names
    }
    assert "__all__" in assigned | imported, f"{name} has no __all__"


def public_callables():
    seen = set()
    for path in modules():
        name = module_name(path)
        if name.endswith("__main__") or name.startswith("flatnn.cli"):
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as exc:  # an optional extra that is not installed
            pytest.skip(f"{name}: {exc}")
        for public in getattr(module, "__all__", ()):
            obj = getattr(module, public, None)
            if inspect.isclass(obj):
                members = [
                    (f"{public}.{n}", m)
                    for n, m in vars(obj).items()
                    if not n.startswith("_") and inspect.isfunction(m)
                ]
                init = vars(obj).get("__init__")
                # an attrs class types its constructor through its fields (checked below)
                if inspect.isfunction(init) and not attrs.has(obj):
                    members.append((f"{public}.__init__", init))
                elif attrs.has(obj):
                    untyped = [f.name for f in attrs.fields(obj) if f.init and f.type is None]
                    assert not untyped, f"{name}.{public}: untyped fields {untyped}"
            elif inspect.isfunction(obj):
                members = [(public, obj)]
            else:
                continue
            for label, fn in members:
                if fn.__module__.startswith("flatnn") and id(fn) not in seen:
                    seen.add(id(fn))
                    yield f"{fn.__module__}.{label}", fn


def test_public_functions_and_methods_are_typed():
    missing = []
    for label, fn in public_callables():
        sig = inspect.signature(fn)
        untyped = [
            p.name
            for p in sig.parameters.values()
            if p.annotation is inspect.Parameter.empty and p.name not in ("self", "cls")
        ]
        if untyped or (
            sig.return_annotation is inspect.Signature.empty and "__init__" not in label
        ):
            missing.append(f"{label}({', '.join(untyped)})")
    assert not missing, "untyped public API:\n" + "\n".join(missing)


PRIVATE_ACCESS = re.compile(r"\b(?!self\b|os\b|sys\b)([A-Za-z_][A-Za-z0-9_]*)\._[a-z][A-Za-z0-9_]*")


@pytest.mark.parametrize("path", sorted(TESTS.rglob("*.py")), ids=lambda p: p.name)
def test_tests_speak_the_public_api(path):
    text = path.read_text()
    bad = [m.group(0) for m in PRIVATE_ACCESS.finditer(text)]
    bad += re.findall(r"from flatnn[\w.]* import .*\b_[a-z]\w*", text)
    assert not bad, f"{path.name} reaches private names: {sorted(set(bad))}"


def test_import_flatnn_is_lazy():
    code = (
        "import sys, time; t = time.perf_counter(); import flatnn; "
        "print('numpy' in sys.modules, 'scipy' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
