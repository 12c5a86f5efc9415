"""Every example of README.md and docs/ runs as written.

- README.md: each ```python block runs on its own, in a fresh interpreter; each ```bash or
  ```console block runs with bash (the venv's ``flatnn`` first on PATH).
- docs/: each page's ```python blocks run in order, in one interpreter and one namespace.

Each README block and each docs page runs in a fresh temporary working directory with
``FLATNN_DATA`` set to an absolute path, as ``__main__`` (so an ``if __name__ == "__main__":``
guard runs). A block whose first line is ``# skip: <reason>`` is not run: its test is skipped
with that reason. The block between README's ``<!-- ci-test -->`` markers is CI's own command
(``.ci/run`` runs it) and is skipped. No example may change the source tree: ``git status`` (or,
outside a git checkout, a listing of the files) is compared before and after.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SKIP = re.compile(r"#\s*skip:\s*(?P<reason>.*\S)")
FENCE = re.compile(r"^(?P<indent>[ ]{0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
RUN_LANGUAGES = {"python", "py", "bash", "console", "sh", "shell"}
TIMEOUT = 600  # seconds for one README block or one docs page
IGNORED_PARTS = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".mypy_cache"}
IGNORED_PREFIXES = ("docs/_build", "docs/api/generated", "build", "dist")


def data_dir() -> str:
    """``$FLATNN_DATA`` resolved against the current folder, else ``<repo>/../shared/data``."""
    env = os.environ.get("FLATNN_DATA")
    return str((Path(env) if env else ROOT.parent / "shared" / "data").resolve())


def code_blocks(path: Path) -> list[dict]:
    """The fenced blocks of a Markdown file whose language runs: language, code, line, skip."""
    blocks, lines = [], path.read_text(encoding="utf-8").splitlines()
    in_ci, i = False, 0
    while i < len(lines):
        line = lines[i]
        if "<!-- ci-test -->" in line:
            in_ci = True
        elif "<!-- /ci-test -->" in line:
            in_ci = False
        opening = FENCE.match(line)
        if opening is None:
            i += 1
            continue
        fence, language = opening["fence"], opening["info"].lower().strip("{}")
        body, j = [], i + 1
        while j < len(lines) and not lines[j].lstrip().startswith(fence):
            body.append(lines[j][len(opening["indent"]) :])
            j += 1
        if language in RUN_LANGUAGES:
            first = next((b for b in body if b.strip()), "")
            skip = SKIP.match(first.strip())
            reason = skip["reason"] if skip else None
            if in_ci and reason is None:
                reason = "CI's own command (.ci/run runs it from README)"
            blocks.append(
                {
                    "language": language,
                    "code": "\n".join(body) + "\n",
                    "line": i + 1,
                    "skip": reason,
                }
            )
        i = j + 1
    return blocks


def source_tree_state() -> str:
    """What an example could change in the source tree: git status, else a listing."""
    try:
        done = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=all"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is not None and done.returncode == 0:
        return done.stdout
    listing = []
    for path in sorted(ROOT.rglob("*")):
        relative = path.relative_to(ROOT).as_posix()
        if IGNORED_PARTS.intersection(path.parts) or relative.startswith(IGNORED_PREFIXES):
            continue
        if path.is_file():
            listing.append(f"{relative} {path.stat().st_size} {path.stat().st_mtime_ns}")
    return "\n".join(listing)


def example_env() -> dict[str, str]:
    env = dict(os.environ)
    env["FLATNN_DATA"] = data_dir()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    return env


# Runs in a fresh interpreter: reads [{"code", "name", "skip"}] as JSON on stdin, executes the
# blocks in order in one namespace, and prints one result per block as JSON on the last line.
RUNNER = r"""
import json, sys, traceback
blocks, namespace, results = json.load(sys.stdin), {"__name__": "__main__"}, []
failed = None
for block in blocks:
    if block["skip"] is not None:
        results.append({"status": "skipped", "detail": block["skip"]})
    elif failed is not None:
        results.append({"status": "not run", "detail": failed})
    else:
        try:
            exec(compile(block["code"], block["name"], "exec"), namespace)
            results.append({"status": "ok", "detail": ""})
        except BaseException:
            failed = f"an earlier block ({block['name']}) failed"
            results.append({"status": "failed", "detail": traceback.format_exc()})
sys.stdout.flush()
print("\n" + json.dumps(results))
"""


@cache
def run_python(page: str, blocks: tuple[tuple[str, int, str | None], ...], tmp: str) -> list[dict]:
    """Run one page's Python blocks in order in one interpreter; one result per block."""
    payload = json.dumps([{"code": c, "name": f"{page}:{n}", "skip": s} for c, n, s in blocks])
    try:
        done = subprocess.run(
            [sys.executable, "-c", RUNNER],
            input=payload,
            cwd=tmp,
            env=example_env(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return [{"status": "failed", "detail": f"{page} ran over {TIMEOUT} s"}] * len(blocks)
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        detail = f"exit status {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return [{"status": "failed", "detail": detail}] * len(blocks)


def shell_commands(block: dict) -> str:
    """A bash or console block as a script: a console block's commands are its ``$`` lines."""
    if block["language"] != "console":
        return block["code"]
    return "\n".join(
        line.strip()[2:] for line in block["code"].splitlines() if line.strip().startswith("$ ")
    )


def readme_cases() -> list:
    return [
        pytest.param(block, id=f"README.md:{block['line']}")
        for block in code_blocks(ROOT / "README.md")
    ]


def docs_cases() -> list:
    cases = []
    for page in sorted(DOCS.rglob("*.md")):
        if IGNORED_PARTS.intersection(page.parts) or "_build" in page.parts:
            continue
        blocks = [b for b in code_blocks(page) if b["language"] in {"python", "py"}]
        name = page.relative_to(ROOT).as_posix()
        for index, block in enumerate(blocks):
            cases.append(pytest.param(name, index, id=f"{name}:{block['line']}"))
    return cases


@pytest.fixture
def unchanged_source_tree():
    before = source_tree_state()
    yield
    after = source_tree_state()
    assert after == before, f"an example changed the source tree:\n{after}\n(before:\n{before})"


@pytest.fixture(scope="session")
def page_folders(tmp_path_factory):
    folders: dict[str, str] = {}

    def folder(page: str) -> str:
        if page not in folders:
            folders[page] = str(tmp_path_factory.mktemp(re.sub(r"\W", "_", page)))
        return folders[page]

    return folder


@pytest.mark.parametrize("block", readme_cases())
def test_readme_example(block, tmp_path, unchanged_source_tree):
    if block["skip"] is not None:
        pytest.skip(block["skip"])
    if block["language"] in {"python", "py"}:
        [result] = run_python("README.md", ((block["code"], block["line"], None),), str(tmp_path))
        assert result["status"] == "ok", result["detail"]
        return
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", shell_commands(block)],
        cwd=tmp_path,
        env=example_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert done.returncode == 0, f"exit status {done.returncode}\n{done.stdout}\n{done.stderr}"


@pytest.mark.parametrize(("page", "index"), docs_cases())
def test_docs_example(page, index, page_folders, unchanged_source_tree):
    blocks = [b for b in code_blocks(ROOT / page) if b["language"] in {"python", "py"}]
    key = tuple((b["code"], b["line"], b["skip"]) for b in blocks)
    result = run_python(page, key, page_folders(page))[index]
    if result["status"] == "skipped":
        pytest.skip(result["detail"])
    assert result["status"] == "ok", result["detail"]


def test_code_blocks_are_found_and_skips_read(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "```python\nx = 1\n```\n\n````bash\n# skip: needs a GPU\nflatnn train\n````\n\n"
        "```text\nnot code\n```\n<!-- ci-test -->\n```bash\nmake test\n```\n<!-- /ci-test -->\n",
        encoding="utf-8",
    )
    blocks = code_blocks(page)
    assert [(b["language"], b["line"], b["skip"]) for b in blocks] == [
        ("python", 1, None),
        ("bash", 5, "needs a GPU"),
        ("bash", 14, "CI's own command (.ci/run runs it from README)"),
    ]
    assert blocks[0]["code"] == "x = 1\n"


def test_python_blocks_of_a_page_share_one_namespace_in_order(tmp_path):
    blocks = (
        ("x = 41", 1, None),
        ("print('skipped')", 5, "not here"),
        ("assert x + 1 == 42", 9, None),
    )
    results = run_python("page.md", blocks, str(tmp_path))
    assert [r["status"] for r in results] == ["ok", "skipped", "ok"]
    failing = run_python("page.md", (("1 / 0", 1, None), ("x = 1", 5, None)), str(tmp_path))
    assert [r["status"] for r in failing] == ["failed", "not run"]
    assert "ZeroDivisionError" in failing[0]["detail"]
