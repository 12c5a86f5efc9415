"""Errors on the command line: no lost model, no traceback, whole messages, no overwrites."""

import importlib.util
import json
import os
import struct
import subprocess
import sys
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import MNIST_FILES, shared_data

import flatnn
from flatnn import cli, load, save
from flatnn.datasets import images

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("flatnn: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], err


# ------------------------------------------------------------------ --out
def test_out_that_cannot_be_written_fails_before_training(capsys, tmp_path):
    (tmp_path / "file").write_text("x")
    for out, fragment in [
        (tmp_path, "is a directory"),
        (tmp_path / "file" / "m.npz", "is a file, not a folder"),
        (tmp_path / "missing" / "m.npz", "does not exist"),
    ]:
        start = time.perf_counter()
        code, stdout, err = run(capsys, "train", "--dataset", "xor", "--out", str(out))
        one_line_error(code, err, "--out", fragment)
        assert stdout == ""  # nothing trained: not even the plan line
        assert time.perf_counter() - start < 5


def test_out_in_a_read_only_folder_fails_before_training(capsys, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        folder = ro if not os.access(ro, os.W_OK) else Path("/sys")
        if folder == Path("/sys") and (
            not folder.is_dir() or os.access(folder, os.W_OK) and _can_create(folder)
        ):
            pytest.skip("no read-only folder")
        code, stdout, err = run(capsys, "train", "--dataset", "xor", "--out", str(folder / "m.npz"))
        one_line_error(code, err, "--out", "not writable")
        assert stdout == ""
    finally:
        ro.chmod(0o755)


def _can_create(folder):
    try:
        fd = os.open(folder / ".probe", os.O_CREAT | os.O_WRONLY)
    except OSError:
        return False
    os.close(fd)
    os.unlink(folder / ".probe")
    return True


def test_existing_out_is_replaced_with_a_notice(capsys, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", str(path), "--quiet")
    assert code == 0 and "(replaced" not in out
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", str(path), "--quiet")
    assert code == 0 and out.strip().endswith(f"saved {path} (replaced the file that was there)")


def test_a_save_that_fails_after_training_keeps_the_model(capsys, tmp_path, monkeypatch):
    real_save = flatnn.io.models.save
    calls = []

    def failing_once(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 1:
            raise PermissionError(13, "Permission denied")
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(flatnn.io.models, "save", failing_once)
    code, out, err = run(
        capsys, "train", "--dataset", "xor", "--out", str(tmp_path / "m.npz"), "--quiet"
    )
    assert code == 0 and "Traceback" not in err
    assert "cannot save the model to" in err and "saved it to" in err
    fallback = calls[1]
    assert load(fallback)[0].sizes == (2, 4, 2)
    os.unlink(fallback)


# ---------------------------------------------------------- bad numbers
@pytest.mark.parametrize("command", [["train", "--dataset", "xor"], ["gradcheck"]])
def test_negative_seed_is_one_line(capsys, tmp_path, command):
    code, out, err = run(
        capsys,
        *command,
        "--seed",
        "-1",
        *(["--out", str(tmp_path / "m.npz")] if command[0] == "train" else []),
    )
    one_line_error(code, err, "--seed", "seed >= 0")


@pytest.mark.parametrize("command", ["train", "gradcheck"])
def test_layers_too_large_for_memory_say_how_much(capsys, tmp_path, command):
    extra = ["--out", str(tmp_path / "m.npz")] if command == "train" else []
    code, out, err = run(capsys, command, "--sizes", "784-100000000-10", *extra)
    one_line_error(code, err, "79,500,000,010 parameters", "TB of memory", "available")
    assert not (tmp_path / "m.npz").exists()


# ---------------------------------------------------------------- images
def _pgm_p2(path, header, pixels):
    path.write_text(f"P2\n{header}\n{pixels}\n")


@pytest.fixture(scope="module")
def xor_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("xor") / "xor.npz"
    assert cli.main(["train", "--dataset", "xor", "--out", str(path), "--quiet"]) == 0
    return path


@pytest.mark.parametrize(
    "header, pixels, fragment",
    [
        ("1 2\n255", "0 -5", "pixel 1 is '-5'"),
        ("1 2\n255", "0 +5", "pixel 1 is '+5'"),
        ("1 2\n255", "0 " + "9" * 20, "pixel 1 is '99999999999999999999'"),
        ("1 2\n255", "0 1_0", "pixel 1 is '1_0'"),
        ("1 " + "9" * 20 + "\n255", "0 1", "bad PGM header"),
        ("-1 2\n255", "0 1", "bad PGM header"),
    ],
)
def test_pgm_pixels_and_header_must_be_plain_decimals(
    capsys, tmp_path, xor_model, header, pixels, fragment
):
    image = tmp_path / "x.pgm"
    _pgm_p2(image, header, pixels)
    code, out, err = run(capsys, "predict", str(xor_model), str(image))
    one_line_error(code, err, fragment)


def _png(path, width, height, rows=b""):
    """A grayscale PNG whose header declares width x height; its data may be short."""

    def chunk(kind, data):
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [40000, 10000])  # Pillow's error, and its warning
def test_png_bomb_is_a_clean_error_without_a_pillow_warning(capsys, tmp_path, side):
    pytest.importorskip("PIL")
    model = tmp_path / "m.npz"
    net = flatnn.Network((side * side, 2))
    # a model taking side x side images would be huge: use the xor-sized one, the
    # declared size is refused either way (bomb, or not the model's size) before decoding
    bomb = tmp_path / "bomb.png"
    _png(bomb, side, side, b"\0" * 100)
    net = flatnn.Network((784, 10))
    save(model, net, net.init(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = run(capsys, "predict", str(model), str(bomb))
    one_line_error(code, err, "bomb.png")
    assert not caught, [str(w.message) for w in caught]
    assert "Warning" not in err
    # read_image with no expected size still refuses, through Pillow's own bound
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="too many pixels"):
            images.read_image(bomb)
    assert not caught


def test_predict_goes_on_after_an_unreadable_image(capsys, tmp_path, xor_model):
    good = tmp_path / "good.pgm"
    _pgm_p2(good, "1 2\n255", "0 255")
    bad = tmp_path / "bad.pgm"
    _pgm_p2(bad, "1 2\n255", "0 -1")
    code, out, err = run(
        capsys,
        "predict",
        str(xor_model),
        str(good),
        str(bad),
        str(tmp_path / "none.pgm"),
        str(good),
    )
    assert code == 2
    assert out.splitlines() == [f"{good}: 1 ({out.split('(')[1][:5]})"] * 2
    assert len(err.splitlines()) == 2 and "bad.pgm" in err and "none.pgm" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_predict_and_evaluate_refuse_fifos(capsys, tmp_path, xor_model):
    fifo = tmp_path / "x.pgm"
    os.mkfifo(fifo)
    code, out, err = run(capsys, "predict", str(xor_model), str(fifo))
    one_line_error(code, err, "not a regular file")
    code, out, err = run(capsys, "evaluate", str(fifo))
    one_line_error(code, err, "not a regular file")


@pytest.fixture(scope="module")
def digit_model(tmp_path_factory):
    """A model fitted to the first 2000 MNIST test images, and three of them as 8-bit images."""
    splits = flatnn.datasets.load_mnist(shared_data(), dtype=np.float64, train=False)
    net = flatnn.Network((784, 10))
    res = flatnn.minimize(
        net, net.init(0), splits.X_test[:2000], splits.y_test[:2000], 1.0, options={"maxiter": 30}
    )
    path = tmp_path_factory.mktemp("digits") / "m.npz"
    save(path, net, res.x, dataset="mnist", class_names=list("0123456789"))
    digits = np.round(splits.X_test[:3] * 255).astype(np.uint8).reshape(3, 28, 28)
    return path, digits


def _p5(path, img):
    h, w = img.shape
    path.write_bytes(b"P5\n%d %d\n255\n" % (w, h) + img.tobytes())


def test_dark_on_white_is_detected_per_image_and_invert_may_stand_anywhere(
    capsys, tmp_path, digit_model
):
    model, digits = digit_model
    white_on_black, dark_on_white = tmp_path / "a.pgm", tmp_path / "b.pgm"
    _p5(white_on_black, digits[0])
    _p5(dark_on_white, 255 - digits[0])
    code, out, err = run(capsys, "predict", str(model), str(white_on_black), str(dark_on_white))
    assert code == 0, err
    a, b = out.splitlines()
    assert a.startswith(f"{white_on_black}: 7 (") and not a.endswith("]")
    assert b == f"{dark_on_white}: {a.split(': ', 1)[1]} [inverted: light background]"
    # --invert between the images applies to every image; --no-invert keeps them as they are
    code, out, err = run(
        capsys, "predict", str(model), str(dark_on_white), "--invert", str(dark_on_white)
    )
    assert code == 0, err
    assert out.splitlines() == [f"{dark_on_white}: {a.split(': ', 1)[1]}"] * 2
    code, out, err = run(capsys, "predict", str(model), "--no-invert", str(dark_on_white))
    assert code == 0 and "inverted" not in out


def test_evaluate_offline_with_only_the_test_files(capsys, tmp_path, monkeypatch, digit_model):
    model, _ = digit_model
    data = shared_data()  # found before FLATNN_DATA is removed
    monkeypatch.delenv("FLATNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = tmp_path / "only-test" / "mnist"
    folder.mkdir(parents=True)
    for f in MNIST_FILES:
        if f.startswith("t10k"):
            (folder / (f + ".gz")).symlink_to(data / "mnist" / (f + ".gz"))
    code, out, err = run(
        capsys,
        "evaluate",
        str(model),
        "--data-dir",
        str(folder.parent),
        "--no-download",
        "--limit",
        "500",
    )
    assert code == 0, err
    assert "mnist test (500 samples)" in out
    code, out, err = run(
        capsys, "evaluate", str(model), "--data-dir", str(folder), "--no-download", "--split", "val"
    )
    assert code == 2 and "train-images-idx3-ubyte[.gz] was found nowhere" in err


# ----------------------------------------------------------- model files
def test_model_headers_too_deep_or_too_large_are_one_line(capsys, tmp_path):
    import io as _io

    deep = tmp_path / "deep.npz"
    net = flatnn.Network((2, 2))
    header = (
        json.dumps(
            {"format": "flatnn-model", "version": 1, "network": net.to_dict(), "metadata": {}}
        )[:-1]
        + ', "x": '
        + "[" * 100000
        + "]" * 100000
        + "}"
    )
    with open(deep, "wb") as f:
        np.savez(f, params=net.init(0), header=np.array(header))
    code, out, err = run(capsys, "evaluate", str(deep))
    one_line_error(code, err, "deep.npz", "nests too deeply")

    huge = tmp_path / "huge.npz"
    big = flatnn.Network((2**20, 2**20))
    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (big.n_params,)}
    )
    import zipfile

    with zipfile.ZipFile(huge, "w") as z:
        hbuf = _io.BytesIO()
        np.save(
            hbuf,
            np.array(
                json.dumps(
                    {
                        "format": "flatnn-model",
                        "version": 1,
                        "network": big.to_dict(),
                        "metadata": {},
                    }
                )
            ),
        )
        z.writestr("header.npy", hbuf.getvalue())
        z.writestr("params.npy", buf.getvalue() + bytes(64))
    code, out, err = run(capsys, "evaluate", str(huge))
    one_line_error(code, err, "huge.npz", "decompression bomb")


# --------------------------------------------------------------- messages
def test_captcha_install_hint_is_said_once(capsys, tmp_path, monkeypatch):
    def missing(*args, **kwargs):
        raise ImportError(
            "load_captcha needs the 'captcha' and 'Pillow' packages (No module "
            "named 'captcha'); install them with: pip install flatnn[captcha]"
        )

    monkeypatch.setattr(flatnn.datasets.captcha, "load_captcha", missing)
    code, out, err = run(capsys, "train", "--dataset", "captcha", "--out", str(tmp_path / "m.npz"))
    one_line_error(code, err, "pip install")
    assert err.count("pip install") == 1


def test_version_help_percent_and_compare_prog(capfd):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    lines = capfd.readouterr().out.splitlines()
    assert lines[0] == f"flatnn {flatnn.__version__}"
    assert f"NumPy: {np.__version__}" in lines and any(line.startswith("BLAS: ") for line in lines)
    import scipy

    assert f"SciPy: {scipy.__version__}" in lines
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    out = capfd.readouterr().out
    assert "98% test accuracy" in out and "%%" not in out
    assert cli.main(["compare", "--help"]) == 0
    assert capfd.readouterr().out.startswith("usage: flatnn compare ")


# ------------------------------------------------------------------ Ctrl-C
def test_ctrl_c_while_importing_exits_130_without_a_traceback():
    # deterministic: an import hook presses Ctrl-C when numpy is imported
    code = (
        "import sys\n"
        "class Press:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy':\n"
        "            raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Press())\n"
        "import flatnn.cli\n"
        "sys.exit(flatnn.cli.main())\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert proc.returncode == 130
    assert proc.stderr == "flatnn: interrupted\n"


def test_ctrl_c_at_any_early_moment_of_the_console_script_exits_130():
    script = Path(sys.executable).parent / "flatnn"
    if not script.exists():
        pytest.skip("the console script is not installed next to this python")
    import signal

    # -X importtime reports each import as it completes, on stderr: the Ctrl-C is sent
    # when start-up has reached a known point (no clock involved): while NumPy loads,
    # while SciPy loads, once the commands are imported, and during the run itself.
    for marker in ("numpy.linalg", "numpy", "scipy.sparse", "flatnn.cli.app"):
        proc = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "importtime",
                str(script),
                "gradcheck",
                "--sizes",
                "60-60-10",
                "--samples",
                "5000",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        seen = []
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("import time:") and line.split("|")[-1].strip() == marker:
                break
        else:
            pytest.fail(f"start-up never imported {marker}: {''.join(seen)[-2000:]}")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        err = "".join(
            line for line in seen + err.splitlines(True) if not line.startswith("import time:")
        )
        assert proc.returncode == 130, (marker, proc.returncode, err)
        assert err == "flatnn: interrupted\n", (marker, err)


# ------------------------------------------------------------- experiments
def _module(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "experiments" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _snapshot():
    folder = ROOT / "experiments" / "results"
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_quick_experiment_runs_never_touch_committed_results(capsys):
    before = _snapshot()
    reproduce = _module("reproduce")
    assert reproduce.main(["xor", "--quick"]) == 0
    where = capsys.readouterr().out.strip().splitlines()[-1]
    folder = Path(where.split(" to ", 1)[1])
    assert (folder / "reproduce_xor.json").exists() and (folder / "reproduce.md").exists()
    assert _snapshot() == before


# ------------------------------------------------------------- neighbours
def test_out_that_is_a_device_and_data_dir_for_generated_data_are_refused(capsys, tmp_path):
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", os.devnull)
    one_line_error(code, err, "not a regular file")
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "xor",
        "--data-dir",
        str(tmp_path),
        "--out",
        str(tmp_path / "m.npz"),
    )
    one_line_error(code, err, "--data-dir applies to mnist and fashion-mnist")


def test_gradcheck_with_too_many_samples_says_so(capsys):
    code, out, err = run(capsys, "gradcheck", "--samples", "1000000000")
    one_line_error(code, err, "1000000000 samples", "fewer --samples")


def test_download_progress_is_shown_on_stderr_and_logging_left_as_it_was(
    capsys, tmp_path, monkeypatch
):
    import logging

    def fake_load(name, **kwargs):
        logging.getLogger("flatnn.datasets.fetch").info("downloading http://mirror/%s", name)
        raise FileNotFoundError("mnist: nothing here")

    monkeypatch.setattr(flatnn.datasets, "load", fake_load)
    logger = logging.getLogger("flatnn")
    handlers, level = list(logger.handlers), logger.level
    code, out, err = run(capsys, "train", "--out", str(tmp_path / "m.npz"))
    assert code == 2
    assert err.splitlines()[0] == "flatnn: downloading http://mirror/mnist"
    code, out, err = run(capsys, "train", "--quiet", "--out", str(tmp_path / "m.npz"))
    assert "downloading" not in err
    assert logger.handlers == handlers and logger.level == level


def test_empty_data_dir_fails_even_when_flatnn_data_has_the_files(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FLATNN_DATA", str(shared_data()))
    (tmp_path / "empty").mkdir()
    code, out, err = run(
        capsys,
        "train",
        "--data-dir",
        str(tmp_path / "empty"),
        "--limit",
        "100",
        "--epochs",
        "1",
        "--out",
        str(tmp_path / "m.npz"),
    )
    assert code == 2 and "was found nowhere" in err and f"--data-dir: {tmp_path / 'empty'}" in err
    assert out == "" and not (tmp_path / "m.npz").exists()


# ------------------------------------------------- an objective that overflows
def test_a_lam_so_large_that_the_objective_overflows_fails_cleanly(capsys, tmp_path):
    path = tmp_path / "m.npz"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "xor",
        "--lam",
        "1e308",
        "--method",
        "L-BFGS-B",
        "--out",
        str(path),
    )
    assert code == 1 and "Traceback" not in err
    assert "the objective became inf" in err and "No model saved" in err
    assert not path.exists()
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "xor",
        "--lam",
        "1e308",
        "--method",
        "trust-ncg",
        "--out",
        str(path),
    )
    one_line_error(code, err, "hessp overflows", "lam 1e+308", "lower lam")


def test_scipy_status_codes_are_not_read_as_failures(capsys, tmp_path):
    # TNC's status 2 means "converged"; CG's 2 "precision loss": neither is a NaN
    path = tmp_path / "m.npz"
    code, out, err = run(capsys, "train", "--dataset", "xor", "--method", "TNC", "--out", str(path))
    assert code == 0 and "training failed" not in err, err
    assert load(path)[2]["diverged"] is False
    code, out, err = run(
        capsys, "train", "--dataset", "xor", "--lam", "1e308", "--method", "CG", "--out", str(path)
    )
    assert code == 0, err
    assert "note: CG stopped without success" in err and "saved" in out


# ------------------------------------------------- settings and broken models
@pytest.mark.parametrize("value", ["garbage", "0", "-2"])
@pytest.mark.parametrize("command", [["evaluate", "missing.npz"], ["gradcheck"]])
def test_a_bad_thread_variable_is_named_with_what_it_accepts(capsys, monkeypatch, value, command):
    monkeypatch.setenv("FLATNN_NUM_THREADS", value)
    code, out, err = run(capsys, *command)
    one_line_error(code, err, "FLATNN_NUM_THREADS", "integer >= 1", repr(value))
    # --threads decides instead of the variable
    monkeypatch.setenv("FLATNN_NUM_THREADS", value)
    assert run(capsys, "gradcheck", "--threads", "1")[0] == 0


@pytest.mark.parametrize("dtype, scale", [(np.float32, 1e30), (np.float64, 1e300)])
def test_a_model_with_huge_finite_weights_is_called_broken(capsys, tmp_path, dtype, scale):
    net = flatnn.Network((784, 8, 10), hidden="relu")
    model = tmp_path / "huge.npz"
    save(model, net, np.full(net.n_params, scale, dtype), dataset="mnist")
    data = ["--data-dir", str(shared_data()), "--no-download", "--limit", "50"]
    code, out, err = run(capsys, "evaluate", str(model), *data)
    one_line_error(code, err, str(model), "cannot be applied", f"{scale:.3g}", np.dtype(dtype).name)
    image = tmp_path / "digit.pgm"
    _p5(image, np.zeros((28, 28), np.uint8))
    code, out, err = run(capsys, "predict", str(model), str(image))
    one_line_error(code, err, str(model), "broken model")


@pytest.mark.parametrize("flag", ["--dropout", "--input-dropout"])
@pytest.mark.parametrize("value", ["-0.1", "1", "nan"])
def test_dropout_rates_name_the_half_open_interval(capsys, tmp_path, flag, value):
    code, out, err = run(capsys, "train", flag, value, "--out", str(tmp_path / "m.npz"))
    one_line_error(code, err, flag, "[0, 1)")


@pytest.mark.parametrize("method", ["SLSQP", "trust-krylov", "BFGS"])
def test_methods_with_an_n_by_n_matrix_say_what_helps(capsys, tmp_path, monkeypatch, method):
    out = ["--out", str(tmp_path / "m.npz")]
    code, _, err = run(capsys, "train", "--method", method, "--sizes", "784-10000-10", *out)
    one_line_error(code, err, method, "n x n matrix", "L-BFGS-B")
    assert "--batch-size" not in err

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(flatnn.training, "minimize", out_of_memory)
    code, _, err = run(capsys, "train", "--dataset", "xor", "--method", method, *out)
    one_line_error(code, err, "out of memory", "n x n matrix", "L-BFGS-B")
    assert "--batch-size" not in err and "--limit" not in err


def test_a_limited_captcha_run_renders_only_the_captchas_it_uses(capsys, tmp_path, monkeypatch):
    pytest.importorskip("captcha")
    rendered = []
    real = flatnn.datasets.captcha.load_captcha

    def recording(n, *args, **kwargs):
        rendered.append(n)
        return real(n, *args, **kwargs)

    monkeypatch.setattr(flatnn.datasets.captcha, "load_captcha", recording)
    argv = ["train", "--dataset", "captcha", "--preset", "best", "--limit", "200", "--epochs", "1"]
    code, out, err = run(capsys, *argv, "--quiet", "--out", str(tmp_path / "c.npz"))
    assert code == 0, err
    # 200 characters: the first 50 training captchas, not the preset's 32000
    assert rendered[0] == 50 and max(rendered) <= flatnn.datasets.CAPTCHA_SPLITS["test"][1]
    assert "(200 samples)" in out


def test_sgd_diverging_after_an_epoch_exits_1_not_2(tmp_path):
    model = tmp_path / "m.npz"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "flatnn",
            "train",
            "--method",
            "sgd",
            "--learning-rate",
            "1e300",
            "--dtype",
            "float64",
            "--sizes",
            "784-16-10",
            "--limit",
            "500",
            "--batch-size",
            "500",
            "--epochs",
            "3",
            "--quiet",
            "--data-dir",
            str(shared_data()),
            "--no-download",
            "--out",
            str(model),
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines()[-1].startswith("training failed: ")
    assert "Traceback" not in proc.stderr
    if model.exists():  # the best finite model so far
        assert np.isfinite(load(model)[1]).all()


# ------------------------------------------------------- files not replaced
def test_the_plot_never_replaces_the_model_or_a_file_not_named(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    model = tmp_path / "model.png"
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", str(model), "--plot")
    one_line_error(code, err, "the plot would be written to", "also the model's path")
    assert not model.exists()
    unrelated = tmp_path / "xp5.png"
    unrelated.write_bytes(b"not ours")
    argv = ["train", "--dataset", "xor", "--out", str(tmp_path / "xp5.npz"), "--plot"]
    code, out, err = run(capsys, *argv)
    one_line_error(code, err, str(unrelated), "exists", "--plot FILE")
    assert unrelated.read_bytes() == b"not ours" and not (tmp_path / "xp5.npz").exists()
    # named, it is replaced, and the last line says so
    code, out, err = run(capsys, *argv[:-1], "--plot", str(unrelated), "--quiet")
    assert code == 0, err
    assert out.strip().endswith(
        f"learning curves in {unrelated} (replaced the file that was there)"
    )
    assert unrelated.read_bytes()[:4] == b"\x89PNG"


def test_the_default_model_path_is_not_replaced_unless_named(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "flatnn-xor.npz").write_bytes(b"someone's model")
    code, out, err = run(capsys, "train", "--dataset", "xor", "--quiet")
    one_line_error(code, err, "flatnn-xor.npz exists", "--out PATH")
    assert (tmp_path / "flatnn-xor.npz").read_bytes() == b"someone's model"
    code, out, err = run(capsys, "train", "--dataset", "xor", "--out", "flatnn-xor.npz", "--quiet")
    assert code == 0 and out.strip().endswith("(replaced the file that was there)")


def test_the_plot_and_the_history_may_not_share_a_path(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    same = str(tmp_path / "run.png")
    argv = ["train", "--dataset", "xor", "--out", str(tmp_path / "m.npz")]
    code, out, err = run(capsys, *argv, "--plot", same, "--history", same)
    one_line_error(code, err, "the history would be written to", "the plot's path")
    assert not os.path.exists(same)
