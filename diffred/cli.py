"""The ``diffred`` command line.

    diffred list                               built-in models and datasets
    diffred extract --model M --dataset D      cache the features of both splits
    diffred curve --model M --dataset D        subset curve from cached features
    diffred curve --features F.npz --out c.csv bring your own features
    diffred train VARIANT --seeds 1,2          train a zoo model into data/models/
    diffred sweep GRID.yaml [--scheduler A]    many curves on Dask distributed, into the cache
    diffred run CHAPTER -p key=value ...       execute a chapter with other parameters
                                               (executed notebook + HTML in results/)
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from . import curves, sweep, train
from .config import PAPER_FRACTIONS, PAPER_SEEDS, PROJECT_ROOT, RunConfig, check_fractions
from .datasets import OFFLINE, available_datasets, check_images, load_dataset
from .device import DEVICE_ENV, resolve_device
from .figures import FIGURE_DIR_ENV, FIGURE_URL_ENV
from .models import BUILTIN, CHECKPOINT_SUFFIXES, load_encoder
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


def chapter_path(name: str) -> Path:
    """A chapter by file name, stem, or number prefix (``02``)."""
    chapters = sorted((PROJECT_ROOT / "chapters").glob("[0-9]*.md"))
    for p in chapters:
        if name in (p.name, p.stem) or p.stem.split("_")[0] == name or p.stem.split("_", 1)[-1] == name:
            return p
    raise ValueError(f"unknown chapter {name!r}; chapters: {', '.join(p.stem for p in chapters)}")


def chapter_parameters(path: Path) -> dict:
    """The literal defaults of a chapter's ``parameters`` cell."""
    import jupytext
    nb = jupytext.read(path)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            out = {}
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                    out[node.targets[0].id] = ast.literal_eval(node.value)
            return out
    raise ValueError(f"{path} has no cell tagged 'parameters'")


def parse_parameters(pairs: list[str], defaults: dict) -> dict:
    """``key=value`` strings -> typed values, checked against the chapter's parameters.

    Values are Python literals (``0.2``, ``[1, 2]``, ``None``); anything else is a string
    (a model name, a path). A bare string given for a list parameter becomes a one-item list
    (``-p datasets=/data/birds``)."""
    out = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"parameter {pair!r} must look like key=value")
        key, text = pair.split("=", 1)
        if key not in defaults:
            raise ValueError(f"unknown parameter {key!r}; this chapter takes: {', '.join(defaults)}")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text  # a bare string such as a model name or a path
        default = defaults[key]
        if isinstance(default, list) and isinstance(value, (str, tuple)):
            value = [value] if isinstance(value, str) else list(value)
        if default is not None and not isinstance(value, type(default)) and not (
                isinstance(default, float) and isinstance(value, int)) and not (
                isinstance(default, int) and value is None):
            raise ValueError(f"parameter {key}={text!r} should be a {type(default).__name__} "
                             f"like the default {default!r}")
        out[key] = value
    return out


def _as_list(value) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_inputs(params: dict) -> None:
    """Fail before a kernel starts on inputs that would fail inside it: fractions out of
    range, a checkpoint that is not one (or does not fit its architecture), an image folder
    with fewer than two classes or unreadable images."""
    if "fractions" in params:
        check_fractions(params["fractions"])
    for key in ("model", "models"):
        for m in _as_list(params.get(key, [])):
            if isinstance(m, str) and (Path(m).suffix in CHECKPOINT_SUFFIXES or "/" in m):
                load_encoder(m, arch=params.get("arch"))  # missing file, not a checkpoint, mismatch
    for key in ("dataset", "datasets", "compare_dataset"):
        for d in _as_list(params.get(key, [])):
            if isinstance(d, str) and ("/" in d or Path(d).expanduser().is_dir()):
                if not Path(d).expanduser().is_dir():
                    raise FileNotFoundError(f"dataset folder {d} does not exist")
                for split in ("train", "test"):
                    check_images(load_dataset(d, split).images)


def results_folder(chapter: Path, params: dict, root: Path) -> Path:
    """``<root>/<chapter>__<key>-<value>_...``: one folder per chapter and parameter set."""
    def word(v) -> str:
        text = ",".join(Path(str(x)).name for x in v) if isinstance(v, (list, tuple)) else Path(str(v)).name
        return "".join(c if c.isalnum() or c in "-.,+" else "_" for c in text)
    tag = "_".join(f"{k}-{word(v)}" for k, v in sorted(params.items())) or "defaults"
    return root / f"{chapter.stem}__{tag}"[:150]


GLUE_MIME = "application/papermill.record/"


def notebook_html(nb_path: Path) -> str:
    """A standalone HTML page of an executed chapter. Figures the chapter glued for the book
    (``myst_nb.glue``, invisible outside Jupyter Book) are shown where they were made; glued
    numbers appear in the book's prose only, so their records are dropped here."""
    import nbconvert
    import nbformat
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        outputs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            glued = {k[len(GLUE_MIME):]: v for k, v in data.items() if k.startswith(GLUE_MIME)}
            if not glued:
                outputs.append(out)
            elif any(k.startswith("image/") for k in glued):
                outputs.append(nbformat.v4.new_output("display_data", data=glued))
        cell["outputs"] = outputs if cell.cell_type == "code" else cell.get("outputs")
        if cell.cell_type != "code":
            cell.pop("outputs", None)
    html, _ = nbconvert.HTMLExporter().from_notebook_node(nb)
    return html


def cmd_run(args) -> int:
    import os
    import shutil

    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    path = chapter_path(args.chapter)
    defaults = chapter_parameters(path)
    params = parse_parameters(args.p or [], defaults)
    if args.device:
        resolve_device(args.device)  # CUDA asked for on a machine without it: stop here
    print(f"checking the inputs of {path.stem} ...", flush=True)
    check_inputs({**defaults, **params})
    out_dir = results_folder(path, params, Path(args.out or PROJECT_ROOT / "results")).resolve()
    work = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(work, ignore_errors=True)
    (work / "figures").mkdir(parents=True)
    (work / "parameters.json").write_text(json.dumps(params, indent=2))
    saved = {k: os.environ.get(k) for k in (FIGURE_DIR_ENV, FIGURE_URL_ENV, DEVICE_ENV)}
    os.environ[FIGURE_DIR_ENV] = str(work / "figures")
    os.environ[FIGURE_URL_ENV] = "figures"
    if args.device:
        os.environ[DEVICE_ENV] = args.device
    print(f"running {path.name} with {json.dumps(params)}; one progress step per cell", flush=True)
    nb_path = work / f"{path.stem}.ipynb"
    try:
        papermill.execute_notebook(jupytext.read(path), str(nb_path), parameters=params,
                                   cwd=str(path.parent), progress_bar=not args.quiet, kernel_name="python3")
        (work / f"{path.stem}.html").write_text(notebook_html(nb_path))
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
    print(f"wrote {out_dir}/: {path.stem}.ipynb, {path.stem}.html, figures/ "
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="diffred", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="built-in models and datasets").set_defaults(fn=cmd_list)

    def run_opts(p):
        p.add_argument("--model", default="efficientnet_lite0")
        p.add_argument("--dataset", default="fashion_mnist")
        p.add_argument("--fractions", type=_floats, default=list(PAPER_FRACTIONS))
        p.add_argument("--seeds", type=_ints, default=list(PAPER_SEEDS))
        p.add_argument("--probe", default="logistic", choices=["logistic", "ridge", "paper"])
        p.add_argument("--image-size", type=int, default=112)
        p.add_argument("--n-train", type=int, default=None)
        p.add_argument("--n-test", type=int, default=None)
        p.add_argument("--device", default="auto")

    p = sub.add_parser("extract", help="cache features of a model on a dataset")
    run_opts(p)
    p.set_defaults(fn=cmd_extract)
    p = sub.add_parser("curve", help="accuracy vs fraction of random neurons")
    run_opts(p)
    p.add_argument("--features", help=".npz with X_train, y_train, X_test, y_test (bring your own)")
    p.add_argument("--selector", default="random", choices=["random", "first"])
    p.add_argument("--out", help="CSV to write, one row per (fraction, seed)")
    p.set_defaults(fn=cmd_curve)
    p = sub.add_parser("run", help="execute a chapter with parameters (papermill)")
    p.add_argument("chapter")
    p.add_argument("-p", action="append", metavar="KEY=VALUE")
    p.add_argument("--out", help="results folder (default: results/)")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N; cuda fails early without a GPU")
    p.add_argument("--quiet", action="store_true", help="no per-cell progress bar")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("train", help="train one of the project's own model variants (data/models/)")
    p.add_argument("variant", help="e.g. cnn_ce, cnn_adv, cnn_dropout50, cnn_decov, cnn_mrl, cnn_w64, cnn_up10, vit")
    p.add_argument("--seeds", type=_ints, default=[1], help="training seeds, e.g. 1,2,3")
    p.add_argument("--steps", type=int, help="override the shared step budget (tests use a few)")
    p.add_argument("--out", help="folder for weights and cards (default: data/models/)")
    p.set_defaults(fn=cmd_train)
    p = sub.add_parser("sweep", help="a grid of models x datasets x selectors on Dask (LocalCluster or --scheduler)")
    p.add_argument("grid", help="YAML grid file, e.g. data/grids/default.yaml")
    p.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://host:8786 "
                                       "(default: start a LocalCluster on this machine)")
    p.add_argument("--workers", type=int, help="LocalCluster workers (default: one per GPU, else per core)")
    p.add_argument("--dry-run", action="store_true", help="list what is cached and what would run")
    p.add_argument("--out", help="CSV with one row per probe run (status, seconds, cache path)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(fn=cmd_sweep)
    args = ap.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, FileNotFoundError, RuntimeError, TypeError) as err:
        print(f"diffred: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
