"""The ``diffred`` command line.

    diffred list                               built-in models and datasets
    diffred extract --model M --dataset D      cache the features of both splits
    diffred curve --model M --dataset D        subset curve from cached features
    diffred curve --features F.npz --out c.csv bring your own features
    diffred train VARIANT --seeds 1,2          train a zoo model into data/models/
    diffred sweep GRID.yaml [--scheduler A]    many curves on Dask distributed, into the cache
    diffred run CHAPTER -p key=value ...       execute a chapter with other parameters
                                               (executed notebook + its page in results/)
    diffred cache ls|verify|prune|du [--json]  what the cache holds, whether it is sound
                                               and current for this code; remove the stale
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from . import cache, curves, sweep, train
from .config import (
    PAPER_FRACTIONS,
    PAPER_SEEDS,
    PROJECT_ROOT,
    RunConfig,
)
from .datasets import OFFLINE, available_datasets
from .device import DEVICE_ENV, resolve_device
from .figures import FIGURE_DIR_ENV, FIGURE_URL_ENV
from .models import BUILTIN
from .params import (
    chapter_parameters,
    chapter_path,
    check_inputs,
    parameter_types,
    parse_parameters,
)
from .rerun_site import build_site, redirect_page
from .store import atomic_write_text
from .zoo import read_card, zoo_names


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.replace(",", " ").split()]


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.replace(",", " ").split()]


def _print_summary(curve) -> None:
    s = curves.summarise(curve)
    dr = curves.dr_table(curve)
    for row in dr.itertuples():
        print(f"full-layer accuracy {row.full_accuracy:.4f}   DR(0.9) {row.dr_closest:.2f} "
              f"(closest ratio)  {row.dr_threshold:.2f} (threshold)")
    print(s[["fraction", "k", "acc_mean", "acc_std", "ratio"]].round(4).to_string(index=False))


def cmd_list(args) -> int:
    print("models (built-in; any timm name or a checkpoint path also works):")
    for name, spec in BUILTIN.items():
        print(f"  {name:28s} {spec.description}")
    names = zoo_names()
    if names:
        print("the project's own models (data/models/, trained with `diffred train`):")
        for name in names:
            card = read_card(name)
            print(f"  {name:28s} {card['summary']}; upstream accuracy {100 * card['upstream_accuracy']:.1f}%")
    print("datasets (or the path of an image folder):")
    for name in available_datasets():
        print(f"  {name:28s} {'offline' if name in OFFLINE else 'torchvision download (internet)'}")
    return 0


def _config(args) -> RunConfig:
    return RunConfig(model=args.model, dataset=args.dataset, fractions=tuple(args.fractions),
                     seeds=tuple(args.seeds), probe=args.probe, image_size=args.image_size,
                     n_train=args.n_train, n_test=args.n_test, device=args.device)


def cmd_extract(args) -> int:
    tr, te = curves.features_of(_config(args))
    print(f"train {tr.X.shape}  test {te.X.shape}  ({tr.meta.get('images_per_second')} img/s)")
    return 0


def load_feature_file(path: str):
    """``X_train, y_train, X_test, y_test`` from an .npz, with a clear error if absent."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"feature file {p} does not exist")
    try:
        z = np.load(p, allow_pickle=False)
    except Exception as err:
        raise ValueError(f"{p} is not a readable .npz file ({err})") from err
    need = ["X_train", "y_train", "X_test", "y_test"]
    missing = [k for k in need if k not in z.files]
    if missing:
        raise ValueError(f"{p} lacks arrays {missing}; it must hold {need} (found {z.files})")
    return [z[k] for k in need]


def cmd_curve(args) -> int:
    if args.features:
        Xtr, ytr, Xte, yte = load_feature_file(args.features)
        curve = curves.curve_from_features(Xtr, ytr, Xte, yte, args.fractions, args.seeds,
                                                args.selector, args.probe, device=args.device)
    else:
        curve = curves.subset_curve(_config(args), selector=args.selector)
    if args.out:
        atomic_write_text(Path(args.out), curve.to_csv(index=False))
        print(f"wrote {len(curve)} rows to {args.out}")
    _print_summary(curve.assign(model=curve.get("model", "features"), dataset=curve.get("dataset", "features")))
    return 0


def results_folder(chapter: Path, params: dict, root: Path) -> Path:
    """``<root>/<chapter>__<key>-<value>_...``: one folder per chapter and parameter set."""
    def word(v) -> str:
        text = ",".join(Path(str(x)).name for x in v) if isinstance(v, (list, tuple)) else Path(str(v)).name
        return "".join(c if c.isalnum() or c in "-.,+" else "_" for c in text)
    tag = "_".join(f"{k}-{word(v)}" for k, v in sorted(params.items())) or "defaults"
    return root / f"{chapter.stem}__{tag}"[:150]


#: tqdm's switch: set in the kernel's environment, no progress bar reaches the page.
TQDM_ENV = "TQDM_DISABLE"


def cmd_run(args) -> int:
    import os
    import shutil

    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = chapter_path(args.chapter)
    defaults = chapter_parameters(path)
    params = parse_parameters(args.p or [], defaults, parameter_types(path, defaults))
    if args.device:
        resolve_device(args.device)  # CUDA asked for on a machine without it: stop here
    print(f"checking the inputs of {path.stem} ...", flush=True)
    check_inputs({**defaults, **params})
    out_dir = results_folder(path, params, Path(args.out or PROJECT_ROOT / "results")).resolve()
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "figures").mkdir(parents=True)
    (work / "parameters.json").write_text(json.dumps(params, indent=2))
    saved = {k: os.environ.get(k) for k in (FIGURE_DIR_ENV, FIGURE_URL_ENV, DEVICE_ENV, TQDM_ENV)}
    os.environ[FIGURE_DIR_ENV] = str(work / "figures")
    os.environ[FIGURE_URL_ENV] = "figures"
    os.environ[TQDM_ENV] = "1"  # the kernel's progress bars would only fill stderr
    if args.device:
        os.environ[DEVICE_ENV] = args.device
    print(f"running {path.name} with {json.dumps(params)}; one progress step per cell", flush=True)
    nb_path = work / f"{path.stem}.ipynb"
    try:
        papermill.execute_notebook(jupytext.read(path), str(nb_path), parameters=params,
                                   cwd=str(path.parent), progress_bar=not args.quiet, kernel_name="python3")
        page = build_site(nb_path, work / "figures", work / "site")
        (work / f"{path.stem}.html").write_text(redirect_page(page.relative_to(work).as_posix()))
    except PapermillExecutionError as err:
        shutil.rmtree(work, ignore_errors=True)
        raise RuntimeError(f"{path.stem} stopped in cell {err.exec_count}: {err.ename}: "
                           f"{str(err.evalue)[:600]}") from None
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # nothing half-written is left behind
        raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(work, out_dir)
    print(f"wrote {out_dir}/: {path.stem}.ipynb, site/ (its page; {path.stem}.html opens it), figures/ "
          f"({len(list((out_dir / 'figures').iterdir()))} files), parameters.json")
    return 0


def cmd_sweep(args) -> int:
    if args.dry_run:
        jobs = sweep.load_grid(args.grid)
        status = sweep.dry_plan(jobs)
        counts = {s: sum(1 for _, x in status if x == s) for s in ("cached", "to run", sweep.UNKNOWN)}
        print(f"{len(jobs)} probe runs: {counts['cached']} in the cache, {counts['to run']} to run, "
              f"{counts[sweep.UNKNOWN]} {sweep.UNKNOWN} (timm hub weights: their hash is in the key)")
        for job, state in status:
            print(f"  {state}: {job.label()}")
        return 0
    table = sweep.sweep(args.grid, scheduler=args.scheduler, n_workers=args.workers, progress=not args.quiet)
    if args.out:
        atomic_write_text(Path(args.out), table.to_csv(index=False))
        print(f"wrote {args.out}")
    return 0


def cmd_train(args) -> int:
    for seed in args.seeds:
        cfg = train.variant_config(args.variant, seed=seed, **({"steps": args.steps} if args.steps else {}))
        print(f"training {cfg.name()}: {json.dumps(dataclasses.asdict(cfg))}", flush=True)
        model, info = train.train(cfg)
        train.save(model, cfg, info, root=Path(args.out) if args.out else None)
    return 0


def cmd_cache(args) -> int:
    root = Path(args.root) if args.root else None
    if args.action == "ls":
        items = cache.entries(root)
        print(json.dumps([e.to_dict() for e in items], indent=2) if args.json else cache.ls_text(items))
    elif args.action == "verify":
        bad = cache.verify(root, fix=args.remove)
        if args.json:
            print(json.dumps([{**e.to_dict(), "problem": why} for e, why in bad], indent=2))
        else:
            print(cache.verify_text(bad, removed=args.remove))
        return 1 if bad and not args.remove else 0
    elif args.action == "prune":
        gone = cache.prune(root, older_than=args.older_than, stale=not args.keep_stale, apply=args.yes)
        print(json.dumps([e.to_dict() for e in gone], indent=2) if args.json
              else cache.prune_text(gone, applied=args.yes))
    else:
        usage = cache.du(root)
        print(json.dumps(usage, indent=2) if args.json else cache.du_text(usage))
    return 0


def _help(text: str, default=None, example: str | None = None) -> str:
    """An option's help: what it is, its default and an example."""
    out = text + (f" (default: {default})" if default is not None else "")
    return out + (f"; e.g. {example}" if example else "")


def _run_opts(p) -> None:
    p.add_argument("--model", default="efficientnet_lite0", help=_help(
        "built-in model, timm name or checkpoint path (see `diffred list`)", "efficientnet_lite0",
        "--model resnet50.tv_in1k"))
    p.add_argument("--dataset", default="fashion_mnist", help=_help(
        "built-in dataset or an image folder with one sub-folder per class", "fashion_mnist", "--dataset digits"))
    p.add_argument("--fractions", type=_floats, default=list(PAPER_FRACTIONS), help=_help(
        "shares of the layer's neurons to keep, each in (0, 1]", "the paper's 15-point grid",
        "--fractions 0.01,0.1,0.2,1"))
    p.add_argument("--seeds", type=_ints, default=list(PAPER_SEEDS), help=_help(
        "subset seeds, one random subset per seed and fraction", "1,2,3,4,5", "--seeds 1,2"))
    p.add_argument("--probe", default="logistic", choices=["logistic", "ridge", "paper"], help=_help(
        "linear probe: batched logistic regression, closed-form ridge, or the paper's SGD recipe", "logistic",
        "--probe ridge"))
    p.add_argument("--image-size", type=int, default=112, help=_help(
        "input resolution in pixels", 112, "--image-size 64"))
    p.add_argument("--n-train", type=int, default=None, help=_help(
        "training images, a seeded sample", "the whole split", "--n-train 5000"))
    p.add_argument("--n-test", type=int, default=None, help=_help(
        "test images, a seeded sample", "the whole split", "--n-test 2000"))
    p.add_argument("--device", default="auto", help=_help(
        "auto, cpu, cuda or cuda:N", "auto: $DIFFRED_DEVICE, else CUDA when present, else the CPU", "--device cpu"))


def _add_compute(sub) -> None:
    p = sub.add_parser("extract", help="cache features of a model on a dataset")
    _run_opts(p)
    p.set_defaults(fn=cmd_extract)
    p = sub.add_parser("curve", help="accuracy vs fraction of random neurons")
    _run_opts(p)
    p.add_argument("--features", help=_help(".npz with X_train, y_train, X_test, y_test (bring your own "
                                            "features; --model and --dataset are then ignored)", "none",
                                            "--features my_features.npz"))
    p.add_argument("--selector", default="random", choices=["random", "first"], help=_help(
        "which neurons to keep: random subsets or the first k", "random", "--selector first"))
    p.add_argument("--out", help=_help("CSV to write, one row per (fraction, seed)", "print a summary only",
                                       "--out curve.csv"))
    p.set_defaults(fn=cmd_curve)
    p = sub.add_parser("train", help="train one of the project's own model variants (data/models/)")
    p.add_argument("variant", help="e.g. cnn_ce, cnn_adv, cnn_dropout50, cnn_decov, cnn_mrl, cnn_w64, cnn_up10, vit")
    p.add_argument("--seeds", type=_ints, default=[1], help=_help("training seeds", 1, "--seeds 1,2,3"))
    p.add_argument("--steps", type=int, help=_help("override the shared step budget (tests use a few)",
                                                   "the variant's budget", "--steps 20"))
    p.add_argument("--out", help=_help("folder for weights and cards", "data/models/", "--out /tmp/zoo"))
    p.set_defaults(fn=cmd_train)


def _add_run_and_sweep(sub) -> None:
    p = sub.add_parser("run", help="execute a chapter with parameters (papermill)")
    p.add_argument("chapter", help="chapter file name, stem or number, e.g. 02 or 02_random_subsets")
    p.add_argument("-p", action="append", metavar="KEY=VALUE", help=_help(
        "a chapter parameter (repeatable; Python literals, bare strings for names and paths)",
        "the chapter's own", "-p model=resnet50.tv_in1k -p n_train=5000"))
    p.add_argument("--out", help=_help("results folder", "results/", "--out /tmp/results"))
    p.add_argument("--device", help=_help("auto, cpu, cuda or cuda:N; cuda fails early without a GPU", "auto",
                                          "--device cpu"))
    p.add_argument("--quiet", action="store_true", help="no per-cell progress bar (default: shown)")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("sweep", help="a grid of models x datasets x selectors on Dask (LocalCluster or --scheduler)")
    p.add_argument("grid", help="YAML grid file, e.g. data/grids/default.yaml")
    p.add_argument("--scheduler", help=_help("address of a running Dask scheduler", "start a LocalCluster on "
                                             "this machine", "--scheduler tcp://host:8786"))
    p.add_argument("--workers", type=int, help=_help("LocalCluster workers", "one per GPU, else per core",
                                                     "--workers 2"))
    p.add_argument("--dry-run", action="store_true", help="list each job as cached, to run, or unknown until "
                   "its model is loaded, without building or downloading any model (default: run the grid)")
    p.add_argument("--out", help=_help("CSV with one row per probe run (status, seconds, cache path)", "none",
                                       "--out sweep.csv"))
    p.add_argument("--quiet", action="store_true", help="no progress bar (default: shown)")
    p.set_defaults(fn=cmd_sweep)


def _add_cache(sub) -> None:
    p = sub.add_parser("cache", help="list, verify, prune or measure the cache")
    p.add_argument("action", choices=["ls", "verify", "prune", "du"], help=(
        "ls: every entry (kind, model, dataset, split, size, created, config, current for this code); "
        "verify: re-hash every file; prune: remove entries not current or older than a date (a dry run "
        "unless --yes); du: disk use. E.g. diffred cache ls --json"))
    p.add_argument("--root", help=_help("cache folder", "$DIFFRED_CACHE, else <project>/.cache",
                                        "--root /data/diffred-cache"))
    p.add_argument("--json", action="store_true", help="machine-readable output (default: plain text)")
    p.add_argument("--remove", action="store_true", help="verify: remove the damaged entries (default: report only)")
    p.add_argument("--older-than", metavar="YYYY-MM-DD", help=_help(
        "prune: also entries created before this date", "none", "--older-than 2025-01-31"))
    p.add_argument("--keep-stale", action="store_true", help="prune: keep entries not current for this code "
                   "(default: they are pruned); with --older-than, prune by date only")
    p.add_argument("--yes", action="store_true", help="prune: really remove (default: a dry run that lists them)")
    p.set_defaults(fn=cmd_cache)


def build_parser() -> argparse.ArgumentParser:
    """The ``diffred`` argument parser: every option has a help text with its default and an example."""
    ap = argparse.ArgumentParser(prog="diffred", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="built-in models and datasets").set_defaults(fn=cmd_list)
    _add_compute(sub)
    _add_run_and_sweep(sub)
    _add_cache(sub)
    return ap


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as err:
        print(f"diffred: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
