"""Where results go: a stdout that cannot be written, a model that cannot be saved."""

import os
import subprocess
import sys
import tempfile

import pytest
from conftest import shared_data

import flatnn
from flatnn import cli

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def flatnn_process(argv, stdout, tmp_path):
    return subprocess.run(
        [sys.executable, "-m", "flatnn", *argv],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=120,
    )


def closed_stdout(argv, tmp_path):
    # `flatnn ... >&-`: the process starts with file descriptor 1 closed
    return subprocess.run(
        [sys.executable, "-m", "flatnn", *argv],
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )


def full_device():
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full here")
    return open("/dev/full", "w")


@pytest.mark.parametrize("quiet", [[], ["--quiet"]])
@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_train_saves_the_model_and_says_the_output_was_lost(tmp_path, stdout, quiet):
    model = tmp_path / "m.npz"
    argv = ["train", "--dataset", "xor", "--out", str(model), *quiet]
    if stdout == "full":
        with full_device() as full:
            proc = flatnn_process(argv, full, tmp_path)
    else:
        proc = closed_stdout(argv, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    # told once, at the end (the progress lines above it are on stderr, as always)
    lines = proc.stderr.splitlines()
    assert lines[-1].startswith("flatnn: cannot write the output to stdout: ")
    assert proc.stderr.count("cannot write") == 1
    assert all(line.startswith("iter ") for line in lines[:-1]) and (len(lines) == 1) == bool(quiet)
    assert flatnn.load(model)[0].sizes == (2, 4, 2)


@pytest.mark.parametrize("stdout", ["full", "closed"])
def test_a_command_whose_result_is_its_output_fails_with_2(tmp_path, stdout):
    argv = ["gradcheck"]
    if stdout == "full":
        with full_device() as full:
            proc = flatnn_process(argv, full, tmp_path)
        assert "No space left" in proc.stderr
    else:
        proc = closed_stdout(argv, tmp_path)
        assert "it is closed" in proc.stderr
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr


def test_a_save_that_fails_twice_leaves_no_empty_file(capsys, tmp_path, monkeypatch):
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))

    def full_disk(path, *args, **kwargs):
        raise OSError(27, "File too large")

    monkeypatch.setattr(flatnn.io.models, "save", full_disk)
    model = tmp_path / "m.npz"
    code = cli.main(["train", "--dataset", "xor", "--out", str(model), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.splitlines()) == 1
    assert f"cannot save the model to {model}: [Errno 27] File too large" in err
    assert list(temp.iterdir()) == [] and not model.exists()


def test_a_save_that_fails_under_a_file_size_limit_leaves_nothing(tmp_path):
    resource = pytest.importorskip("resource")
    temp = tmp_path / "temp"
    temp.mkdir()
    limit = (
        "import resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
        "resource.setrlimit(resource.RLIMIT_FSIZE, (200 * 512, 200 * 512)); "
        "from flatnn.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    del resource
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            limit,
            "train",
            "--limit",
            "100",
            "--epochs",
            "1",
            "--quiet",
            "--sizes",
            "784-300-10",
            "--data-dir",
            str(shared_data()),
            "--no-download",
            "--out",
            str(tmp_path / "m.npz"),
        ],
        capture_output=True,
        text=True,
        env={**ENV, "TMPDIR": str(temp)},
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "cannot save the model" in proc.stderr and "Traceback" not in proc.stderr
    assert list(temp.iterdir()) == []
