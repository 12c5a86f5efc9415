"""``flatnn train``: train a network on a built-in data set and save it.

The steps: resolve the settings (flags over ``--preset``'s recipe), check the
model path and the memory before any data is read, load the data, train with
:func:`flatnn.sgd` (update rules) or :func:`flatnn.minimize` (scipy methods),
save the best model, report. Exit status 0, 1 when training diverged (the best
finite model so far is saved when an epoch finished), 2 for bad input, 130 after
Ctrl-C (the best model so far is saved; a second Ctrl-C aborts without saving).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from flatnn import datasets, training
from flatnn.base import checks, memory, namespace
from flatnn.cli import common, presets, table_data, train_options
from flatnn.cli import parser as types
from flatnn.cli.parser import CLIError
from flatnn.cli.progress import Progress, sigint_handler
from flatnn.core.network import Network
from flatnn.io import models
from flatnn.reports import outputs, plots, scores
from flatnn.training import recipes, rules, transforms

__all__ = ["add_parser", "run", "WRITES_FILE"]

EXIT_OK, EXIT_FAILED, EXIT_INTERRUPTED = 0, 1, 130

WRITES_FILE = True
"""The product is the model file: a stdout that cannot be written does not fail the run."""


def add_parser(subparsers: Any) -> None:
    """Add ``flatnn train`` and its options to the command line's subparsers."""
    parser = subparsers.add_parser(
        "train",
        help="train a network and save it",
        description=f"Train a network and save it. With no arguments: {_default_job()} "
        "(>= 98% test accuracy). Defaults depend on --dataset; every one is a flag.",
    )
    train_options.add_arguments(parser)
    table_data.add_arguments(parser)
    # None until train_options.complete: a --config file may set it (default standard)
    parser.set_defaults(scale=None)
    types.add_threads_option(parser)


def _default_job() -> str:
    """The fast MNIST recipe in words: ``784-192-10 relu on MNIST with momentum SGD, ...``."""
    job = presets.recipe("mnist")
    sizes = "-".join(str(n) for n in job["sizes"])
    return (
        f"{sizes} {job['hidden']} on MNIST with {job['method']} SGD, {job['dtype']}, "
        f"{job['epochs']} epochs"
    )


def _check_outputs(args: argparse.Namespace) -> tuple[str, str | None, list[str]]:
    """The model and plot paths, checked now rather than after the whole run.

    Returns the model path, the plot path (None without --plot) and the paths of
    existing files that the run will replace (only paths the user named).
    """
    name = Path(args.data).stem if args.data else args.dataset
    path = args.out or f"flatnn-{name}.npz"
    try:
        models.check_writable(path)
    except (OSError, ValueError) as exc:
        raise CLIError(f"--out: {common.message(exc)}") from None
    wanted = [outputs.Output("the model", path, args.out is not None, "--out PATH")]
    plot_path = _plot_path(args, path)
    if plot_path is not None:
        named = isinstance(args.plot, str)
        wanted.append(outputs.Output("the plot", plot_path, named, "--plot FILE"))
    history = getattr(args, "history", None)  # against the model: table_data's own check
    try:
        replacing = outputs.check_outputs(wanted)
        if plot_path is not None and history is not None:
            outputs.check_outputs(
                [wanted[-1], outputs.Output("the history", history, True, "--history FILE")]
            )
    except ValueError as exc:
        raise CLIError(str(exc)) from None
    return path, plot_path, [o.path for o in replacing]


def _memory_advice(method: str) -> str:
    if method in memory.SQUARE_METHODS:
        return (
            f"{method} keeps an n x n matrix for n parameters: use smaller layers, or "
            f"L-BFGS-B, CG or an SGD rule, which need memory in proportion to n"
        )
    return "use smaller layers, --batch-size or --limit"


def _check_train_memory(net: Network, cfg: dict[str, Any]) -> None:
    method = cfg["method"]
    vectors = memory.method_vectors(method, net.n_params)
    if method in rules.RULES:
        common.check_memory(
            net,
            cfg["dtype"].itemsize,
            vectors,
            cfg["batch_size"],
            f"training them with {method} in {cfg['dtype']}",
        )
    else:  # scipy works in float64; BFGS keeps an n x n inverse Hessian
        advice = _memory_advice(method)
        common.check_memory(
            net, 8, vectors, 0, f"training them with {method}", advice[0].upper() + advice[1:] + "."
        )


def _training_data(
    args: argparse.Namespace, data: dict[str, Any], xp: Any
) -> tuple[Any, Any, tuple[Any, Any] | None]:
    """X, y and the validation pair of the run (--final-fit: training + validation rows)."""
    X, y = data["X_train"], data["y_train"]
    validation = (data["X_val"], data["y_val"]) if len(data["y_val"]) else None
    if args.final_fit and validation is not None and args.dataset != "xor":
        # xor's validation split is its training set
        X, y = np.concatenate([X, data["X_val"]]), np.concatenate([y, data["y_val"]])
    if args.final_fit:
        validation = None
    if xp is not None:  # copied to the GPU once; the whole run stays there
        X, y = xp.asarray(X), xp.asarray(y)
    return X, y, validation


def _plot_path(args: argparse.Namespace, path: str) -> str | None:
    if args.plot is None:
        return None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print(
            "flatnn: --plot needs matplotlib (pip install 'flatnn[plot]'); training without it",
            file=sys.stderr,
        )
        return None
    return args.plot if isinstance(args.plot, str) else str(Path(path).with_suffix(".png"))


def _fit(
    args: argparse.Namespace,
    net: Network,
    cfg: dict[str, Any],
    data: tuple[Any, Any, Any],
    xp: Any,
    progress: Progress,
    on_step: Any,
) -> Any:
    """Train: :func:`flatnn.sgd` for an update rule, :func:`flatnn.minimize` for a scipy method."""
    X, y, validation = data
    method = cfg["method"]
    params0 = net.init(args.seed, dtype=cfg["dtype"])
    with sigint_handler(progress.on_sigint):
        if method in rules.RULES:
            rates = (cfg["input_dropout"],) + (cfg["dropout"],) * (len(net.sizes) - 2)
            momentum = cfg["momentum"]
            with_beta: Any = rules.RULES[method]
            rule = (
                with_beta(momentum)
                if momentum is not None and method in ("momentum", "nesterov")
                else rules.get(method)
            )
            return training.sgd(
                net,
                params0,
                X,
                y,
                cfg["lam"],
                epochs=cfg["epochs"],
                batch_size=min(cfg["batch_size"], X.shape[0]),
                learning_rate=recipes.learning_rate_schedule(cfg),
                method=rule,
                rng=args.seed,
                validation=validation,
                callback=on_step,
                batch_callback=progress.on_batch,
                dropout=rates if any(rates) else None,
                max_norm=cfg["max_norm"],
                transform=(transforms.translate(cfg["augment"]) if cfg["augment"] else None),
                final_eval=False,  # the model is judged on held-out data, not on J at x
            )
        limit_key = "maxfun" if method == "TNC" else "maxiter"
        problem: tuple[Any, ...]
        if xp is None:
            problem = (net, X, y, cfg["lam"])
        else:
            from flatnn.backends import gpu_objective

            problem = (gpu_objective.GPUObjective(net, X, y, cfg["lam"], xp=xp), None, None, 0.0)
        return training.minimize(
            problem[0],
            params0,
            *problem[1:],
            method=method,
            options={limit_key: args.maxiter},
            validation=validation,
            callback=on_step,
        )


def _save_model(path: str, net: Network, params: np.ndarray, **metadata: Any) -> str:
    """flatnn.save, and if ``path`` became unwritable during training, a temporary file instead."""
    try:
        return models.save(path, net, params, **metadata)
    except (OSError, ValueError) as exc:
        import tempfile

        fd, fallback = tempfile.mkstemp(prefix="flatnn-", suffix=".npz")
        os.close(fd)
        try:
            models.save(fallback, net, params, **metadata)
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.remove(fallback)
            raise CLIError(f"cannot save the model to {path}: {common.message(exc)}") from None
        print(
            f"flatnn: cannot save the model to {path} ({common.message(exc)}); saved it to "
            f"{fallback} instead",
            file=sys.stderr,
        )
        return fallback


def _captchas_to_render(args: argparse.Namespace, cfg: dict[str, Any]) -> int | None:
    """--train-captchas, or fewer under --limit N: the first N characters are those of
    the first ceil(N / 4) captchas, whatever the number rendered."""
    n = cfg["train_captchas"]
    if args.limit is None or args.dataset != "captcha":
        return n
    needed = -(-args.limit // 4)
    default = datasets.CAPTCHA_SPLITS["train"][1]
    return needed if needed < (default if n is None else n) else n


def _prepare(args: argparse.Namespace) -> dict[str, Any]:
    """Every check that can fail before training, then the data: the run's state."""
    cfg = train_options.resolve(args)
    xp = common.cuda_namespace() if args.device == "cuda" else None  # before any data is read
    if args.data is not None:
        data = table_data.load(args, cfg["dtype"])
        net = table_data.network(args, cfg, data)
        path, plot_path, replacing = _check_outputs(args)
        _check_train_memory(net, cfg)
    else:
        table_data.load_checks(args)
        net = common.network(cfg["sizes"], cfg["hidden"], args.output, args.loss)
        path, plot_path, replacing = _check_outputs(args)
        _check_train_memory(net, cfg)
        data = common.load_data(
            args.dataset,
            data_dir=args.data_dir,
            download=not args.no_download,
            dtype=cfg["dtype"],
            limit=args.limit,
            train_captchas=_captchas_to_render(args, cfg),
        )
        common.check_fit(net, data, args.dataset)
    if cfg["augment"] and math.isqrt(net.sizes[0]) ** 2 != net.sizes[0]:
        raise CLIError(
            f"--augment shifts square images; {args.dataset} has {net.sizes[0]} input features"
        )
    return dict(
        cfg=cfg,
        xp=xp,
        net=net,
        path=path,
        replacing=replacing,
        data=data,
        train=_training_data(args, data, xp),
        plot_path=plot_path,
        history=table_data.history_writer(args),
    )


def options_parser() -> types.ArgumentParser:
    """A parser of every option of ``flatnn train`` (it checks a --config file's values)."""
    parser = types.ArgumentParser(prog="flatnn train", add_help=False)
    train_options.add_arguments(parser)
    table_data.add_arguments(parser)
    return parser


def run(args: argparse.Namespace, out: TextIO) -> int:
    """Run ``flatnn train``; return the exit status."""
    train_options.complete(args, options_parser())
    if args.print_config:
        cfg = train_options.resolve(args)
        header = "flatnn train settings: `flatnn train --config FILE` runs them (a flag still wins)"
        text = recipes.to_toml(train_options.settings(args, cfg), header)
        print(text, end="", file=out)
        return EXIT_OK
    state = _prepare(args)
    cfg, net = state["cfg"], state["net"]
    X, y, _ = state["train"]
    m = X.shape[0]
    batch_size = min(cfg["batch_size"], m)
    is_rule = cfg["method"] in rules.RULES
    if not args.quiet:
        plan = train_options.describe(
            cfg,
            batch_size,
            args.maxiter,
            args.final_fit,
            train_options.schedule_origin(args, cfg),
        )
        print(
            (f"{state['data']['table'].describe()}\n" if args.data else "")
            + f"{args.data or args.dataset}: {m} training samples; {net!r}, "
            f"{net.n_params} parameters, "
            f"{cfg['dtype']}; {plan}",
            file=out,
            flush=True,
        )
    progress = Progress(
        sys.stderr,
        math.ceil(m / batch_size) if is_rule else 1,
        cfg["epochs"] if is_rule else args.maxiter,
        args.quiet,
    )
    train_accuracy: list[float] = []
    on_step = table_data.recording(state["history"], progress.on_step)
    if state["plot_path"] is not None:
        # training accuracy for the plot, on a fixed slice: bounded cost per epoch
        X_acc, y_acc = X[:10000], y[:10000]

        def on_step(intermediate_result: Any) -> None:
            train_accuracy.append(net.accuracy(intermediate_result.x, X_acc, y_acc))
            return table_data.recording(state["history"], progress.on_step)(intermediate_result)

    start = time.perf_counter()
    try:
        res = _fit(args, net, cfg, state["train"], state["xp"], progress, on_step)
    except KeyboardInterrupt:
        progress.clear()
        print("aborted: no model saved", file=sys.stderr)
        return EXIT_INTERRUPTED
    except checks.NotFiniteError as exc:
        progress.clear()
        if not progress.steps:  # before any epoch or iteration: the settings, not the run
            raise CLIError(f"cannot train: {common.message(exc)}") from None
        # diverged after an epoch, where the driver could not say so in its result
        print(f"training failed: {common.message(exc)}. No model saved.", file=sys.stderr)
        return EXIT_FAILED
    except (ValueError, TypeError) as exc:
        raise CLIError(f"cannot train: {common.message(exc)}") from None
    except MemoryError:
        progress.clear()
        raise CLIError(
            f"cannot train: out of memory ({net.n_params:,} parameters, "
            f"{len(y)} samples); {_memory_advice(cfg['method'])}"
        ) from None
    state["seconds"] = time.perf_counter() - start
    progress.clear()
    return _finish(args, state, res, train_accuracy, out)


def _finish(
    args: argparse.Namespace,
    state: dict[str, Any],
    res: Any,
    train_accuracy: list[float],
    out: TextIO,
) -> int:
    """Save the best model, draw the plot, report; the exit status."""
    cfg, net, data = state["cfg"], state["net"], state["data"]
    method = cfg["method"]
    is_rule = method in rules.RULES
    interrupted = res.status == training.STATUS_STOPPED
    # scipy's own status codes overlap flatnn's (TNC's 2 is "converged"): not_finite
    failed = (
        res.status in (training.STATUS_NOT_FINITE, training.STATUS_DIVERGED)
        if is_rule
        else bool(res.get("not_finite"))
    )
    scores_ = [h.get("val_cost", h["fun"]) for h in res.history]
    if failed and not np.isfinite(scores_).any():  # res.x is params0
        print(f"training failed: {res.message} No model saved.", file=sys.stderr)
        return EXIT_FAILED

    params = namespace.to_numpy(res.x)  # from the GPU after --device cuda
    # a table's figures (accuracy, or R² for regression) come with table_data's metadata
    test_accuracy = None if args.data else net.accuracy(params, data["X_test"], data["y_test"])
    heldout = {}
    if args.dataset == "captcha":
        heldout = scores.captcha_heldout_scores(net, params, cfg["dtype"], args.limit)
    metadata = dict(
        dataset=args.dataset,
        class_names=list(data["class_names"]),
        test_accuracy=test_accuracy,
        method=method,
        seed=args.seed,
        epochs=cfg["epochs"] if is_rule else None,
        lam=cfg["lam"],
        train_seconds=round(state["seconds"], 2),
        limit=args.limit,
        interrupted=interrupted,
        diverged=failed,
        preset=args.preset,
        final_fit=args.final_fit,
        train_captchas=cfg["train_captchas"],
        **heldout,
    )
    metadata.update(table_data.model_metadata(args, cfg, data, res, net, params))
    path = _save_model(state["path"], net, params, **metadata)
    plot_path = _write_plot(state["plot_path"], res.history, train_accuracy)
    if failed:
        best = res.history[int(np.nanargmin(np.where(np.isfinite(scores_), scores_, np.nan)))]
        where = f"epoch {best['epoch'] + 1}" if "epoch" in best else f"iteration {best['nit']}"
        print(
            f"training failed: {res.message} Saved the best model so far ({where}"
            + (f", test accuracy {100 * test_accuracy:.2f}%" if test_accuracy is not None else "")
            + f") to {path}.",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if not is_rule and not res.success and not interrupted:
        print(f"note: {method} stopped without success: {res.message}", file=sys.stderr)
    if args.data:
        line = table_data.result_line(
            net, params, data, state["seconds"], path, path in state["replacing"]
        )
    else:
        assert test_accuracy is not None  # computed above for the built-in data sets
        line = _result_line(data, heldout, test_accuracy, state, path, plot_path)
    print(line, file=out, flush=True)
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def _write_plot(
    plot_path: str | None, history: list[dict[str, Any]], train_accuracy: list[float]
) -> str | None:
    if plot_path is None or not history:
        return None
    curves = [dict(h, train_accuracy=a) for h, a in zip(history, train_accuracy)]
    try:
        plots.write_learning_curves(plot_path, curves)
    except (OSError, ValueError) as exc:
        print(f"flatnn: cannot write the plot {plot_path}: {common.message(exc)}", file=sys.stderr)
        return None
    return plot_path


def _result_line(
    data: dict[str, Any],
    heldout: dict[str, Any],
    test_accuracy: float,
    state: dict[str, Any],
    path: str,
    plot_path: str | None,
) -> str:
    held = (
        f"held-out captchas (seed {datasets.CAPTCHA_HELDOUT[0]}, used by no split): "
        f"characters {100 * heldout['heldout_accuracy']:.2f}%, whole captchas "
        f"{100 * heldout['heldout_captcha_accuracy']:.2f}% "
        f"({heldout['heldout_captchas']} captchas); "
        if heldout
        else ""
    )
    return (
        f"test accuracy {100 * test_accuracy:.2f}% ({len(data['y_test'])} samples); "
        + held
        + f"trained in {state['seconds']:.1f}s; saved {path}"
        + (" (replaced the file that was there)" if path in state["replacing"] else "")
        + (f"; learning curves in {plot_path}" if plot_path else "")
        + (
            " (replaced the file that was there)"
            if plot_path is not None and plot_path in state["replacing"]
            else ""
        )
    )
