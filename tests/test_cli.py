"""The flatnn command line, in process through ``flatnn.cli.main`` and as real processes."""

import importlib
import io as _io
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import flatnn
import flatnn.cli.parser
import flatnn.datasets
from flatnn import cli, load, save
from flatnn.datasets import images

ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_usage_error(code, err, *fragments):
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("flatnn: error: ")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def xor_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("xor") / "xor.npz"
    assert cli.main(["train", "--dataset", "xor", "--out", str(path), "--quiet"]) == 0
    return path


# ----------------------------------------------------------- processes
def test_python_m_flatnn_help():
    proc = subprocess.run(
        [sys.executable, "-m", "flatnn", "--help"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert proc.returncode == 0
    for command in ("train", "evaluate", "predict", "gradcheck", "compare"):
        assert command in proc.stdout


def test_console_script_trains_xor(tmp_path):
    script = os.path.join(os.path.dirname(sys.executable), "flatnn")
    exe = [script] if os.path.exists(script) else [sys.executable, "-m", "flatnn"]
    path = tmp_path / "xor.npz"
    proc = subprocess.run(
        [*exe, "train", "--dataset", "xor", "--out", str(path)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy 100.00%" in proc.stdout
    net, params, meta = load(path)
    assert net.sizes == (2, 4, 2) and meta["dataset"] == "xor"
    assert meta["test_accuracy"] == 1.0


# ------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "argv, fragments",
    [
        ([], ["required"]),
        (["fly"], ["invalid choice"]),
        (["train", "--dataset", "imagenet"], ["unknown dataset 'imagenet'"]),
        (["train", "--sizes", "784-x-10"], ["--sizes", "784-x-10"]),
        (["train", "--sizes", "784"], ["at least two sizes"]),
        (["train", "--sizes", "784-0-10"], ["784-0-10"]),
        (["train", "--dataset", "xor", "--sizes", "3-4-2"], ["first size must be 2"]),
        (["train", "--dataset", "xor", "--sizes", "2-4-3"], ["last size must be 2"]),
        (["train", "--dataset", "xor", "--hidden", "swish"], ["swish"]),
        (["train", "--dataset", "xor", "--loss", "hinge"], ["hinge"]),
        (["train", "--method", "sgdx"], ["unknown method 'sgdx'"]),
        (["train", "--optimizer", "sgd"], ["unrecognized arguments: --optimizer"]),
        (["train", "--learning-rate", "-1"], ["--learning-rate"]),
        (["train", "--epochs", "0"], ["--epochs"]),
        (["train", "--dataset", "xor", "--method", "adam", "--momentum", "0.5"], ["--momentum"]),
        (["train", "--dataset", "xor", "--out", "/nonexistent/dir/m.npz"], ["does not exist"]),
        (["train", "--data-dir", "/nonexistent/data"], ["no such folder"]),
        (["evaluate", "missing.npz"], ["missing.npz", "does not exist"]),
        (["predict", "missing.npz", "x.pgm"], ["missing.npz"]),
        (["gradcheck", "--sizes", "3"], ["at least two sizes"]),
        (["gradcheck", "--hidden", "nope"], ["nope"]),
    ],
)
def test_bad_input_is_one_line_and_status_2(capsys, tmp_path, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, *argv)
    assert_usage_error(code, err, *fragments)


def test_missing_data_files(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("FLATNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    code, out, err = run(
        capsys,
        "train",
        "--data-dir",
        str(tmp_path),
        "--no-download",
        "--out",
        str(tmp_path / "m.npz"),
    )
    # the whole message, every line of it: where it looked and what to do
    assert code == 2 and "Traceback" not in err
    lines = err.splitlines()
    assert lines[0].startswith(
        "flatnn: error: mnist: train-images-idx3-ubyte[.gz] was found nowhere"
    )
    assert f"  --data-dir: {tmp_path}" in lines
    assert any("Only the folder given is searched" in line for line in lines)
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("corruption", ["text", "truncated", "tampered"])
def test_corrupt_model_file(capsys, tmp_path, xor_model, corruption):
    path = tmp_path / "bad.npz"
    if corruption == "text":
        path.write_text("not a model")
    elif corruption == "truncated":
        path.write_bytes(xor_model.read_bytes()[:200])
    else:
        with np.load(xor_model) as z:
            np.savez(path, params=z["params"][:-2], header=z["header"])
    for command in (["evaluate", str(path)], ["predict", str(path), "img.pgm"]):
        code, out, err = run(capsys, *command)
        assert_usage_error(code, err, "bad.npz")


def test_model_that_does_not_fit_the_data(capsys, tmp_path):
    path = tmp_path / "m.npz"
    net = flatnn.Network((3, 2))
    save(path, net, net.init(0), dataset="xor")
    code, out, err = run(capsys, "evaluate", str(path))
    assert_usage_error(code, err, "first size must be 2")
    save(path, net, net.init(0))
    code, out, err = run(capsys, "evaluate", str(path))
    assert_usage_error(code, err, "--dataset")


# ------------------------------------------------------------- training
@pytest.mark.parametrize("method", flatnn.cli.parser.METHODS)
def test_every_method_trains_xor(capsys, tmp_path, method):
    path = tmp_path / "m.npz"
    argv = [
        "train",
        "--dataset",
        "xor",
        "--method",
        method.lower(),
        "--out",
        str(path),
        "--maxiter",
        "300",
    ]
    if method in flatnn.optimizers.RULES:
        argv += [
            "--epochs",
            "300",
            "--batch-size",
            "2",
            "--learning-rate",
            "0.05" if method in ("adam", "rmsprop") else "0.5",
        ]
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    net, params, meta = load(path)
    assert meta["method"] == method
    assert net.accuracy(params, *flatnn.datasets.xor()) == 1.0
    lines = [line for line in err.splitlines() if line.startswith(("epoch", "iter"))]
    assert lines, err
    assert "cost" in lines[0] and "val_acc" in lines[0]
    assert out.splitlines()[-1].startswith("test accuracy 100.00%")


def test_flags_reach_the_network_and_the_file(capsys, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "xor",
        "--sizes",
        "2,3,3,1",
        "--hidden",
        "tanh,sigmoid",
        "--output",
        "sigmoid",
        "--loss",
        "squared_error",
        "--dtype",
        "float32",
        "--lam",
        "0.01",
        "--seed",
        "3",
        "--out",
        str(path),
        "--quiet",
    )
    assert code == 0, err
    net, params, meta = load(path)
    assert net == flatnn.Network(
        (2, 3, 3, 1), hidden=("tanh", "sigmoid"), output="sigmoid", loss="squared_error"
    )
    assert params.dtype == np.float32
    assert meta["lam"] == 0.01 and meta["seed"] == 3
    assert len(out.splitlines()) == 1  # --quiet: only the result line


@pytest.fixture(scope="module")
def mnist_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("mnist") / "mnist.npz"
    out, err = _io.StringIO(), _io.StringIO()
    old = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    try:
        code = cli.main(["train", "--limit", "3000", "--epochs", "3", "--out", str(path)])
    finally:
        sys.stdout, sys.stderr = old
    assert code == 0
    return path, out.getvalue(), err.getvalue()


def test_quick_mnist_training(mnist_model):
    path, out, err = mnist_model
    lines = out.splitlines()
    assert lines[0].startswith("mnist: 3000 training samples") and len(lines) == 2
    epochs = [line for line in err.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 3 and "/3" in epochs[0] and "val_acc" in epochs[0]
    net, params, meta = load(path)
    assert net == flatnn.Network((784, 192, 10), hidden="relu")
    assert params.dtype == np.float32
    assert meta["dataset"] == "mnist" and meta["class_names"] == list("0123456789")
    assert meta["limit"] == 3000 and meta["interrupted"] is False
    assert meta["test_accuracy"] > 0.85
    assert f"test accuracy {100 * meta['test_accuracy']:.2f}% (3000 samples)" in lines[-1]


def test_evaluate(capsys, mnist_model):
    path, _, _ = mnist_model
    code, out, err = run(capsys, "evaluate", str(path), "--limit", "500")
    assert code == 0, err
    net, params, _ = load(path)
    splits = flatnn.datasets.load_mnist(dtype=np.float32)
    X, y = splits.X_test[:500], splits.y_test[:500]
    pred = net.predict(params, X)
    assert f"accuracy {100 * np.mean(pred == y):.2f}%" in out
    lines = out.splitlines()
    start = lines.index("confusion matrix (rows: true class, columns: predicted)")
    matrix = np.array([[int(v) for v in line.split()[1:]] for line in lines[start + 2 :]])
    expected = np.zeros((10, 10), dtype=int)
    np.add.at(expected, (y, pred), 1)
    np.testing.assert_array_equal(matrix, expected)
    per_class = lines[lines.index("per-class accuracy") + 2]
    assert per_class.split()[:2] == ["0", str(np.sum(y == 0))]


def _pgm_p5(path, img):
    h, w = img.shape
    path.write_bytes(b"P5\n# an MNIST digit\n%d %d\n255\n" % (w, h) + img.tobytes())


def _pgm_p2(path, img):
    h, w = img.shape
    rows = "\n".join(" ".join(map(str, row)) for row in img)
    path.write_text(f"P2\n{w} {h}\n# comment\n255\n{rows}\n")


def test_predict_pgm_and_png(capsys, tmp_path, mnist_model):
    path, _, _ = mnist_model
    net, params, _ = load(path)
    splits = flatnn.datasets.load_mnist(dtype=np.float32)
    digits = (np.round(splits.X_test[:3] * 255)).astype(np.uint8).reshape(3, 28, 28)
    files = [tmp_path / "a.pgm", tmp_path / "b.pgm", tmp_path / "c.png"]
    _pgm_p5(files[0], digits[0])
    _pgm_p2(files[1], digits[1])
    from PIL import Image

    Image.fromarray(digits[2], mode="L").save(files[2])
    code, out, err = run(capsys, "predict", str(path), *map(str, files))
    assert code == 0, err
    X = digits.reshape(3, -1).astype(np.float32) / 255
    proba = net.forward(params, X)
    labels = proba.argmax(axis=1)
    assert out.splitlines() == [
        f"{f}: {labels[i]} ({proba[i, labels[i]]:.3f})" for i, f in enumerate(files)
    ]
    # dark ink on white paper, read with --invert, gives the same answers
    _pgm_p5(files[0], 255 - digits[0])
    code, out, err = run(capsys, "predict", "--invert", str(path), str(files[0]))
    assert out.strip() == f"{files[0]}: {labels[0]} ({proba[0, labels[0]]:.3f})"


def test_predict_bad_images(capsys, tmp_path, xor_model):
    # the xor model takes 2 inputs: a 2x1 image fits, anything else does not
    good = tmp_path / "good.pgm"
    _pgm_p5(good, np.array([[0], [255]], dtype=np.uint8))
    code, out, err = run(capsys, "predict", str(xor_model), str(good))
    assert code == 0 and out.strip() == f"{good}: 1 ({out.split('(')[1][:5]})"
    big = tmp_path / "big.pgm"
    _pgm_p5(big, np.zeros((28, 30), dtype=np.uint8))
    truncated = tmp_path / "cut.pgm"
    truncated.write_bytes(b"P5\n1 2\n255\n" + bytes(1))  # the size fits, the pixels do not
    ppm = tmp_path / "colour.ppm"
    ppm.write_bytes(b"P6\n1 2\n255\n" + bytes(6))
    from PIL import Image

    rgb = tmp_path / "rgb.png"
    Image.new("RGB", (2, 1)).save(rgb)
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG not really")
    for image, fragment in [
        (big, "30x28"),
        (truncated, "truncated"),
        (ppm, "P6"),
        (rgb, "RGB"),
        (junk, "not a readable image"),
        (tmp_path / "none.pgm", "no such image"),
    ]:
        # the bad image is reported, the good one still classified, and the status is 2
        code, out, err = run(capsys, "predict", str(xor_model), str(image), str(good))
        assert_usage_error(code, err, fragment)
        assert out.startswith(f"{good}: 1 (")


def test_read_image_pgm_variants(tmp_path):
    img = np.arange(6, dtype=np.uint16).reshape(2, 3) * 1000
    p16 = tmp_path / "deep.pgm"
    p16.write_bytes(b"P5 3 2 65535\n" + img.astype(">u2").tobytes())
    np.testing.assert_allclose(images.read_image(p16), img / 65535)
    p2 = tmp_path / "small.pgm"
    p2.write_text("P2\n#c\n3 2\n#c\n15\n0 1 2\n3 4 15\n")
    np.testing.assert_allclose(images.read_image(p2), np.array([[0, 1, 2], [3, 4, 15]]) / 15)
    bad = tmp_path / "bad.pgm"
    bad.write_text("P2\n2 1\n15\n0 16\n")
    with pytest.raises(ValueError, match="maxval"):
        images.read_image(bad)


# ----------------------------------------------------------- Ctrl-C
def test_sigint_stops_training_and_saves_the_model(tmp_path):
    path = tmp_path / "m.npz"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "flatnn",
            "train",
            "--limit",
            "5000",
            "--epochs",
            "1000",
            "--batch-size",
            "16",
            "--learning-rate",
            "0.02",
            "--out",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for the first finished epoch
            line = proc.stderr.readline()
            lines.append(line)
            if line.startswith("epoch") or not line:
                break
        assert lines[-1].startswith("epoch"), lines
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    assert "saved" in out
    net, params, meta = load(path)
    assert meta["interrupted"] is True
    assert meta["test_accuracy"] > 0.8


def test_sigint_during_scipy_training_stops_at_the_next_iteration(tmp_path):
    path = tmp_path / "m.npz"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-u",
            "-m",
            "flatnn",
            "train",
            "--limit",
            "5000",
            "--method",
            "L-BFGS-B",
            "--maxiter",
            "100000",
            "--out",
            str(path),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        iterations = []
        deadline = time.monotonic() + 60
        while len(iterations) < 3 and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            if line.startswith("iter"):
                iterations.append(line)
        assert len(iterations) == 3, iterations
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    net, params, meta = load(path)
    assert meta["interrupted"] is True and meta["method"] == "L-BFGS-B"


def test_train_gives_sigint_back_as_it_found_it(capsys, tmp_path):
    before = signal.getsignal(signal.SIGINT)
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", str(tmp_path / "m.npz"))
    assert code == 0, err
    assert signal.getsignal(signal.SIGINT) is before


# --------------------------------------------------------- gradcheck
@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--sizes", "4-6-5-3", "--hidden", "relu,tanh", "--lam", "0"],
        ["--sizes", "3-2-1", "--output", "sigmoid"],
        ["--sizes", "3-4-2", "--output", "identity", "--loss", "squared_error", "--coords", "7"],
    ],
)
def test_gradcheck_passes(capsys, argv):
    code, out, err = run(capsys, "gradcheck", *argv)
    assert code == 0, out + err
    assert "max relative error" in out and out.strip().endswith("OK (rtol 1e-06)")
    if "--coords" in argv:
        assert "over 7 coordinates" in out


def test_gradcheck_fails_above_rtol(capsys):
    code, out, err = run(capsys, "gradcheck", "--rtol", "1e-300")
    assert code == 1 and "FAILED" in out


@pytest.mark.parametrize("rate", ["1000000", "1e30"])
def test_a_diverged_run_fails_with_one_line_and_no_warning(tmp_path, rate):
    path = tmp_path / "m.npz"
    proc = subprocess.run(
        [
            sys.executable,
            "-W",
            "error::RuntimeWarning",
            "-m",
            "flatnn",
            "train",
            "--method",
            "sgd",
            "--learning-rate",
            rate,
            "--limit",
            "2000",
            "--epochs",
            "3",
            "--out",
            str(path),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("training failed: the cost")
    assert "learning rate" in lines[0] and "or less" in lines[0]
    assert "Warning" not in proc.stderr and "Traceback" not in proc.stderr
    assert "test accuracy" not in proc.stdout


@pytest.mark.parametrize("command", ["train", "evaluate", "gradcheck"])
def test_threads_apply_to_the_command_only(capsys, monkeypatch, command):
    seen = []
    module = importlib.import_module(f"flatnn.cli.{command}")
    monkeypatch.setattr(module, "run", lambda args, out: seen.append(flatnn.get_num_threads()) or 0)
    before = flatnn.get_num_threads()
    argv = [command, "--threads", "3"] + (["model.npz"] if command == "evaluate" else [])
    code, _, _ = run(capsys, *argv)
    assert code == 0 and seen == [3]
    assert flatnn.get_num_threads() == before


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_bad_thread_count_is_a_usage_error(capsys, bad):
    code, _, err = run(capsys, "gradcheck", "--threads", bad)
    assert_usage_error(code, err, "--threads")


def test_gradcheck_with_threads(capsys):
    code, out, _ = run(capsys, "gradcheck", "--threads", "2", "--samples", "5000")
    assert code == 0 and "OK" in out
