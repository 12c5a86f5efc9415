"""flatnn train's progress: a bar on a terminal (through a pseudo-terminal), lines elsewhere."""

import os
import re
import subprocess
import sys

import pytest
from conftest import shared_data

from flatnn import cli
from flatnn.cli.progress import fit_fields

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def train_argv(tmp_path, *extra):
    return [
        "train",
        "--limit",
        "2000",
        "--sizes",
        "784-32-10",
        "--epochs",
        "3",
        "--batch-size",
        "8",
        "--data-dir",
        str(shared_data()),
        "--no-download",
        "--out",
        str(tmp_path / "m.npz"),
        *extra,
    ]


def run_on_a_terminal(argv, columns):
    """Run flatnn with stderr on a pseudo-terminal of ``columns``; (status, stdout, screen)."""
    pty = pytest.importorskip("pty")
    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    import select
    import struct

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    env = {k: v for k, v in ENV.items() if k not in ("COLUMNS", "LINES")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flatnn", *argv],
        stdout=subprocess.PIPE,
        stderr=slave,
        env=env,
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            proc.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal's other side closed: the process is gone
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    out = proc.stdout.read().decode()
    proc.wait(timeout=60)
    return proc.returncode, out, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_the_bar_fits_the_terminal_and_tells_the_time_remaining(tmp_path, columns):
    code, out, screen = run_on_a_terminal(train_argv(tmp_path), columns)
    assert code == 0, screen
    pieces = [ANSI.sub("", p) for p in re.split(r"[\r\n]", screen)]
    too_wide = [p for p in pieces if len(p.rstrip()) > columns]
    assert not too_wide, too_wide
    bars = [p for p in pieces if "%|" in p]
    assert bars, screen
    assert any(re.search(r"\d\d:\d\d left", p) for p in bars)  # the time remaining
    epochs = [p for p in pieces if re.match(r"epoch \d/3  cost ", p)]
    assert len(epochs) == 3, screen
    if columns >= 80:
        assert all("val_acc" in p for p in epochs)
    assert "Traceback" not in screen
    # stdout holds the plan and the result only
    lines = out.splitlines()
    assert len(lines) == 2 and lines[-1].startswith("test accuracy")


def test_without_a_terminal_each_epoch_is_one_plain_line(capsys, tmp_path):
    code = cli.main(train_argv(tmp_path))
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = err.splitlines()
    assert len(lines) == 3 and all(
        line.startswith(f"epoch {i + 1}/3") for i, line in enumerate(lines)
    )
    assert "\r" not in err and "\x1b" not in err
    assert "val_acc" in lines[0] and "lr" in lines[0]
    assert len(out.splitlines()) == 2


def test_quiet_is_the_result_only(capsys, tmp_path):
    code = cli.main(train_argv(tmp_path, "--quiet"))
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert len(out.splitlines()) == 1 and out.startswith("test accuracy")


def test_quiet_on_a_terminal_draws_no_bar(tmp_path):
    code, out, screen = run_on_a_terminal(train_argv(tmp_path, "--quiet"), 80)
    assert code == 0 and screen.strip() == ""


def test_fit_fields_drops_from_the_end_and_keeps_the_head():
    fields = ["epoch 1/3", "cost 0.1", "val_acc 90%", "lr 0.1"]
    assert fit_fields(fields, 200) == "epoch 1/3  cost 0.1  val_acc 90%  lr 0.1"
    assert fit_fields(fields, 40) == "epoch 1/3  cost 0.1  val_acc 90%"
    assert fit_fields(fields, 24) == "epoch 1/3  cost 0.1"
    assert fit_fields(fields, 10) == "epoch 1/3"
