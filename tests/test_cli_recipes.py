"""flatnn train: presets, the recipe table and the flags that override it."""

import numpy as np
import pytest
from conftest import shared_data

import flatnn
from flatnn import cli
from flatnn.cli import app, train_options
from flatnn.cli import presets as recipes
from flatnn.training.recipes import learning_rate_schedule


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def resolve(*argv):
    return train_options.resolve(app.parse(["train", *argv]))


def test_fast_is_the_default_and_keeps_the_measured_mnist_job():
    cfg = resolve()
    assert cfg["sizes"] == (784, 192, 10) and cfg["epochs"] == 5 and cfg["lam"] == 0.0
    assert cfg["batch_size"] == 128 and cfg["learning_rate"] == 0.2
    assert cfg["schedule"] == "cosine" and cfg["method"] == "momentum"
    tools = (cfg["dropout"], cfg["input_dropout"], cfg["max_norm"], cfg["augment"])
    assert tools == (0, 0, None, 0)
    assert resolve("--preset", "fast") == cfg
    assert recipes.DEFAULTS is recipes.PRESETS["fast"]


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist", "captcha", "xor"])
def test_best_preset_reads_the_recipe_table(dataset):
    cfg = resolve("--preset", "best", "--dataset", dataset)
    table = recipes.recipe(dataset, "best")
    for key in (
        "sizes",
        "epochs",
        "batch_size",
        "learning_rate",
        "schedule",
        "lam",
        "dropout",
        "input_dropout",
        "max_norm",
        "augment",
        "momentum",
        "train_captchas",
    ):
        assert cfg[key] == table[key], key
    assert cfg["dtype"] == np.dtype(table["dtype"])


def test_best_differs_from_fast_where_it_was_tuned():
    for dataset in ("mnist", "fashion-mnist"):
        assert recipes.recipe(dataset, "best") != recipes.recipe(dataset, "fast")
        assert recipes.recipe(dataset, "best")["dropout"] > 0


def test_flags_win_over_the_preset():
    cfg = resolve(
        "--preset",
        "best",
        "--dropout",
        "0.3",
        "--input-dropout",
        "0",
        "--max-norm",
        "0",
        "--augment",
        "1",
        "--schedule",
        "exponential",
        "--warmup",
        "2",
        "--epochs",
        "3",
        "--dtype",
        "float64",
    )
    tools = (cfg["dropout"], cfg["input_dropout"], cfg["max_norm"], cfg["augment"])
    assert tools == (0.3, 0, None, 1)
    assert cfg["schedule"] == "exponential" and cfg["warmup"] == 2 and cfg["epochs"] == 3
    assert cfg["dtype"] == np.float64


def test_recipe_rejects_unknown_names():
    with pytest.raises(ValueError, match="preset"):
        recipes.recipe("mnist", "slow")
    with pytest.raises(ValueError, match="dataset"):
        recipes.recipe("cifar", "best")


def test_learning_rate_schedules_from_flags():
    cfg = resolve("--schedule", "cosine", "--epochs", "4", "--warmup", "1")
    lr = learning_rate_schedule(cfg)
    assert lr == flatnn.optimizers.warmup(flatnn.optimizers.cosine_decay(0.2, 4), 1)
    assert learning_rate_schedule(resolve()) == flatnn.optimizers.cosine_decay(0.2, 5)
    cfg = resolve("--schedule", "exponential", "--lr-decay", "0.6")
    assert learning_rate_schedule(cfg) == flatnn.optimizers.exponential_decay(0.2, 0.6)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (["--dataset", "xor", "--dropout", "0.2"], ["--dropout", "SGD rules", "L-BFGS-B"]),
        (["--dataset", "xor", "--schedule", "cosine"], ["--schedule cosine"]),
        (["--dropout", "1"], ["--dropout", "[0, 1)"]),
        (["--augment", "1.5"], ["--augment", "whole number"]),
        (["--dataset", "captcha", "--augment", "1", "--limit", "5"], ["square images", "260"]),
        (["--train-captchas", "10"], ["--train-captchas", "captcha", "mnist"]),
        (
            ["--dataset", "captcha", "--train-captchas", "1000000000000"],
            ["--train-captchas 1000000000000", "PB of memory", "render fewer"],
        ),
        (
            [
                "--dataset",
                "xor",
                "--preset",
                "best",
                "--method",
                "L-BFGS-B",
                "--input-dropout",
                "0.1",
            ],
            ["--input-dropout", "SGD rules", "L-BFGS-B"],
        ),
        (
            ["--preset", "best", "--method", "L-BFGS-B"],
            ["--dropout (from --preset best)", "--max-norm (from --preset best)"],
        ),
    ],
)
def test_bad_recipe_flags_are_one_line(capsys, tmp_path, argv, fragments):
    code, _, err = run(capsys, "train", *argv, "--out", str(tmp_path / "m.npz"))
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def _train(capsys, tmp_path, name, *argv):
    path = tmp_path / name
    code, out, err = run(
        capsys,
        "train",
        "--data-dir",
        str(shared_data()),
        "--no-download",
        "--limit",
        "600",
        "--preset",
        "best",
        "--sizes",
        "784-32-32-10",
        "--epochs",
        "2",
        "--quiet",
        "--out",
        str(path),
        *argv,
    )
    assert code == 0, err
    return path, out


def test_best_preset_trains_reproducibly_and_plots(capsys, tmp_path):
    a, _ = _train(capsys, tmp_path, "a.npz", "--plot", "--seed", "3")
    b, _ = _train(capsys, tmp_path, "b.npz", "--seed", "3")
    c, _ = _train(capsys, tmp_path, "c.npz", "--seed", "4")
    pa, pb, pc = (flatnn.load(p)[1] for p in (a, b, c))
    assert pa.dtype == np.float32
    assert pa.tobytes() == pb.tobytes() != pc.tobytes()
    png = a.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not b.with_suffix(".png").exists()


def test_final_fit_learns_from_training_and_validation_data(capsys, tmp_path):
    code, out, err = run(
        capsys,
        "train",
        "--data-dir",
        str(shared_data()),
        "--no-download",
        "--limit",
        "600",
        "--sizes",
        "784-16-10",
        "--epochs",
        "1",
        "--final-fit",
        "--out",
        str(tmp_path / "g.npz"),
    )
    assert code == 0
    assert "1200 training samples" in out and "training + validation" in out
    assert "val_acc" not in out + err and "epoch 1/1" in err


def test_best_mnist_is_the_measured_command_of_the_readme():
    explicit = resolve(
        "--preset",
        "best",
        "--sizes",
        "784-1024-1024-10",
        "--epochs",
        "30",
        "--batch-size",
        "128",
        "--learning-rate",
        "0.05",
        "--schedule",
        "cosine",
        "--momentum",
        "0.9",
        "--lam",
        "0",
        "--input-dropout",
        "0.1",
        "--dropout",
        "0.3",
        "--max-norm",
        "3.5",
        "--augment",
        "2",
    )
    assert resolve("--preset", "best") == explicit


def test_best_fashion_is_the_measured_command_of_the_readme():
    explicit = resolve(
        "--dataset",
        "fashion-mnist",
        "--preset",
        "best",
        "--sizes",
        "784-1024-1024-10",
        "--epochs",
        "60",
        "--batch-size",
        "128",
        "--learning-rate",
        "0.05",
        "--schedule",
        "cosine",
        "--momentum",
        "0.9",
        "--lam",
        "0",
        "--input-dropout",
        "0.1",
        "--dropout",
        "0.3",
        "--max-norm",
        "3.5",
        "--augment",
        "0",
    )
    assert resolve("--dataset", "fashion-mnist", "--preset", "best") == explicit


def test_best_captcha_renders_more_training_captchas():
    split = flatnn.datasets.CAPTCHA_SPLITS["train"][1]
    fast = recipes.recipe("captcha", "fast")["train_captchas"]
    assert split < fast < recipes.recipe("captcha", "best")["train_captchas"]
    assert (
        resolve("--dataset", "captcha", "--preset", "best", "--train-captchas", "7")[
            "train_captchas"
        ]
        == 7
    )
    for dataset in ("mnist", "fashion-mnist", "xor"):
        assert recipes.recipe(dataset, "best")["train_captchas"] is None


def test_captcha_reports_heldout_characters_and_whole_captchas(capsys, tmp_path):
    pytest.importorskip("captcha")
    path = tmp_path / "c.npz"
    code, out, err = run(
        capsys,
        "train",
        "--dataset",
        "captcha",
        "--train-captchas",
        "30",
        "--epochs",
        "3",
        "--limit",
        "400",
        "--out",
        str(path),
    )
    assert code == 0, err
    assert "captcha: 120 training samples" in out
    last = out.strip().splitlines()[-1]
    assert "held-out captchas (seed 4, used by no split)" in last and "(100 captchas)" in last
    net, params, meta = flatnn.load(path)
    assert meta["train_captchas"] == 30 and meta["heldout_captchas"] == 100
    held = flatnn.datasets.load_captcha_heldout(100)
    predicted = net.predict(params, held.X)
    assert meta["heldout_accuracy"] == pytest.approx(np.mean(predicted == held.y))
    whole = flatnn.datasets.whole_captcha_accuracy(held.y, predicted)
    assert meta["heldout_captcha_accuracy"] == pytest.approx(whole)
    assert f"characters {100 * meta['heldout_accuracy']:.2f}%" in last
    assert f"whole captchas {100 * whole:.2f}%" in last
    # three epochs on 120 characters: above chance (1/36), far from perfect
    assert 1 / 36 < meta["heldout_accuracy"] < 0.99


def test_best_captcha_is_the_measured_command_of_the_readme():
    explicit = resolve(
        "--dataset",
        "captcha",
        "--preset",
        "best",
        "--sizes",
        "260-512-512-36",
        "--method",
        "momentum",
        "--momentum",
        "0.9",
        "--learning-rate",
        "0.05",
        "--schedule",
        "cosine",
        "--batch-size",
        "128",
        "--lam",
        "0",
        "--input-dropout",
        "0.1",
        "--dropout",
        "0.3",
        "--max-norm",
        "3.5",
        "--dtype",
        "float32",
        "--epochs",
        "20",
        "--train-captchas",
        "32000",
    )
    assert resolve("--dataset", "captcha", "--preset", "best") == explicit


@pytest.mark.parametrize("method", ["adam", "rmsprop"])
def test_another_rule_brings_its_own_schedule_and_says_so(capsys, tmp_path, method):
    cfg = resolve("--method", method)
    assert cfg["learning_rate"] == 0.001 and cfg["lr_decay"] == 1.0
    assert cfg["schedule"] == "exponential"
    code, out, err = run(
        capsys,
        "train",
        "--method",
        method,
        "--sizes",
        "784-8-10",
        "--epochs",
        "1",
        "--limit",
        "100",
        "--data-dir",
        str(shared_data()),
        "--no-download",
        "--out",
        str(tmp_path / "m.npz"),
    )
    assert code == 0, err
    first = out.splitlines()[0]
    assert f"learning rate 0.001 constant ({method}'s default schedule)" in first


def test_a_schedule_flag_wins_over_the_rule_s_own():
    assert resolve("--method", "adam", "--lr-decay", "0.9")["lr_decay"] == 0.9
    cfg = resolve("--method", "adam", "--schedule", "cosine")
    assert cfg["schedule"] == "cosine" and cfg["learning_rate"] == 0.001
    # the SGD rules keep the recipe's schedule; the recipe's own rule keeps everything
    assert resolve("--method", "sgd")["schedule"] == "cosine"
    assert resolve("--method", "sgd")["learning_rate"] == 0.1
    assert resolve("--method", "momentum") == resolve()
    xor = resolve("--dataset", "xor", "--method", "momentum")
    assert xor["learning_rate"] == 0.05 and xor["lr_decay"] == 1.0


# ------------------------------------------------------------ config files
def test_presets_are_toml_files_inside_the_package():
    from importlib import resources

    files = resources.files("flatnn.cli.presets")
    for name in ("fast", "best", "rules"):
        text = files.joinpath(f"{name}.toml").read_text(encoding="utf-8")
        assert "[mnist]" in text or "[adam]" in text
    assert recipes.RULE_DEFAULTS["adam"] == {
        "learning_rate": 0.001,
        "schedule": "exponential",
        "lr_decay": 1.0,
    }


def print_config(capsys, *argv):
    code, out, err = run(capsys, "train", *argv, "--print-config")
    assert code == 0, err
    return out


def test_print_config_reads_back_to_the_same_settings(capsys, tmp_path):
    for argv in (
        ["--preset", "best", "--epochs", "3"],
        ["--dataset", "xor"],
        ["--dataset", "captcha", "--preset", "best", "--max-norm", "0"],
        ["--method", "adam", "--sizes", "784-100-10", "--hidden", "sigmoid"],
    ):
        text = print_config(capsys, *argv)
        path = tmp_path / "run.toml"
        path.write_text(text)
        assert print_config(capsys, "--config", str(path)) == text
    # off is written as the flag's 0, so that the preset's 3.5 does not come back
    text = print_config(capsys, "--dataset", "captcha", "--preset", "best", "--max-norm", "0")
    assert "max_norm = 0\n" in text


def test_a_flag_wins_over_the_config_file_which_wins_over_the_preset(capsys, tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('preset = "best"\nepochs = 4\nlearning_rate = 0.02\nsizes = [784, 64, 10]\n')
    text = print_config(capsys, "--config", str(path), "--epochs", "2")
    assert "epochs = 2\n" in text and "learning_rate = 0.02\n" in text
    assert "sizes = [784, 64, 10]\n" in text and "dropout = 0.3\n" in text


def test_training_from_a_config_file_is_the_run_of_its_flags(capsys, tmp_path):
    flags = ["--dataset", "xor", "--method", "adam", "--epochs", "30", "--seed", "3"]
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    code, _, err = run(capsys, "train", *flags, "--quiet", "--out", str(a))
    assert code == 0, err
    config = tmp_path / "run.toml"
    config.write_text(print_config(capsys, *flags))
    code, _, err = run(capsys, "train", "--config", str(config), "--quiet", "--out", str(b))
    assert code == 0, err
    assert flatnn.load(a)[1].tobytes() == flatnn.load(b)[1].tobytes()


@pytest.mark.parametrize(
    "text, fragments",
    [
        ("epochs = 0\n", ["epochs", ">= 1"]),
        ("learning_rte = 0.1\n", ["unknown setting learning_rte", "learning_rate"]),
        ('dtype = "float16"\n', ["dtype", "float32"]),
        ("dropout = 1.0\n", ["dropout", "[0, 1)"]),
        ("sizes = 784\n", ["sizes", "784-256-10"]),
        ("epochs = [1\n", ["not valid TOML"]),
        ("dropout = true\n", ["dropout", "expected a number"]),
    ],
)
def test_bad_config_files_are_one_line(capsys, tmp_path, text, fragments):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    code, _, err = run(capsys, "train", "--config", str(path), "--out", str(tmp_path / "m.npz"))
    assert code == 2 and len(err.splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err
    assert not (tmp_path / "m.npz").exists()


def test_a_missing_config_file_and_settings_from_it_are_named(capsys, tmp_path):
    code, _, err = run(capsys, "train", "--config", str(tmp_path / "none.toml"))
    assert code == 2 and "--config" in err and "none.toml" in err
    path = tmp_path / "sgd.toml"
    path.write_text('method = "L-BFGS-B"\ndropout = 0.2\n')
    code, _, err = run(capsys, "train", "--config", str(path), "--dataset", "xor")
    assert code == 2 and f"--dropout (from --config {path})" in err


def small_table(folder):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    lines = ["a,b,c,label"] + [",".join(f"{v:.6f}" for v in x) + f",{t}" for x, t in zip(X, y)]
    path = folder / "t.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_table_settings_go_through_config_files(capsys, tmp_path):
    table = small_table(tmp_path)
    flags = ["--data", str(table), "--val-split", "0.25", "--scale", "minmax", "--sizes", "3-4-2"]
    text = print_config(capsys, *flags, "--epochs", "5")
    assert f'data = "{table}"\n' in text and 'scale = "minmax"\n' in text
    assert "val_split = 0.25\n" in text
    config = tmp_path / "run.toml"
    config.write_text(text)
    assert print_config(capsys, "--config", str(config)) == text
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert run(capsys, "train", *flags, "--epochs", "5", "--quiet", "--out", str(a))[0] == 0
    assert run(capsys, "train", "--config", str(config), "--quiet", "--out", str(b))[0] == 0
    assert flatnn.load(a)[1].tobytes() == flatnn.load(b)[1].tobytes()


def test_a_model_s_recorded_settings_rerun_it_bit_for_bit(capsys, tmp_path):
    table = small_table(tmp_path)
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    flags = ["--data", str(table), "--preset", "best", "--augment", "0", "--sizes", "3-8-8-2"]
    code, _, err = run(
        capsys, "train", *flags, "--method", "adam", "--epochs", "3", "--quiet", "--out", str(a)
    )
    assert code == 0, err
    code, text, err = run(capsys, "info", str(a), "--config")
    assert code == 0, err
    config = tmp_path / "run.toml"
    config.write_text(text)
    code, _, err = run(capsys, "train", "--config", str(config), "--quiet", "--out", str(b))
    assert code == 0, err
    assert flatnn.load(a)[1].tobytes() == flatnn.load(b)[1].tobytes()
