"""Chapter 10's live example: re-run a chapter through the command line on the kind of inputs
a researcher brings (an image folder, a checkpoint nested under ``state_dict`` with
DataParallel's ``module.`` prefix), then read the cached result back and compare it with the
built-in model of the same weights."""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pandas as pd

from .. import datasets, models
from ..bookcache import inputs_digest
from ..config import cache_dir
from ..store import atomic_write_text, json_digest, sha256_file
from ..curves import run_curves, summarise
from . import Result

CHAPTER = "02_random_subsets"  # the chapter the example re-runs
CHECKPOINT_LABEL = "checkpoint (nested, module. prefix)"


def write_inputs(model: str, source_dataset: str, per_class: int, test_per_class: int,
                 root: Path | None = None) -> tuple[Path, Path]:
    """The example's image folder (train/test layout) and checkpoint under ``root`` (default:
    ``<cache>/rerun-demo``), each written once; returns (folder, checkpoint)."""
    root = Path(root or cache_dir() / "rerun-demo")
    folder = root / f"{source_dataset}_{per_class}_{test_per_class}"
    if not folder.exists():
        datasets.write_image_folder(source_dataset, folder, per_class, test_per_class)
    checkpoint = root / f"{model}_dataparallel.pth"
    if not checkpoint.exists():
        models.save_checkpoint(models.load_encoder(model), checkpoint, nest="state_dict", prefix="module.")
    return folder, checkpoint


def cli_command(checkpoint: Path, arch: str, folder: Path, out: Path, fractions, seeds, image_size) -> list[str]:
    """The ``diffred run`` command line (through this interpreter) that re-runs :data:`CHAPTER`."""
    return [sys.executable, "-m", "diffred.cli", "run", CHAPTER, "--quiet", "--out", str(out),
            "-p", f"model={checkpoint}", "-p", f"arch={arch}", "-p", f"datasets={folder}",
            "-p", f"fractions={fractions}", "-p", f"seeds={seeds}", "-p", f"image_size={image_size}"]


def run_cli(command: list[str]) -> str:
    """Run ``command``; its standard output, or a RuntimeError with the end of its errors."""
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"diffred run failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip()


#: What the command's output depends on besides its arguments (parts of
#: :func:`diffred.bookcache.inputs_digest`).
CLI_INPUTS = ("diffred", "data", "pyproject.toml", "packages", "settings", "system datasets")


def cli_output(command: list[str], results: Path) -> tuple[str, Path]:
    """:func:`run_cli`, once per (command, inputs): its standard output is kept under
    ``results`` with a key made of the arguments, the re-run chapter's source, the library,
    the data, the packages and the settings, so re-executing chapter 10 with nothing changed
    reads the earlier run (its output folder must still be there) instead of repeating it.
    Returns the standard output and the run's output folder."""
    root = Path(__file__).resolve().parents[2]
    parts = inputs_digest(root)
    key = json_digest({"arguments": [without_machine_paths(c) for c in command[1:]],
                       "chapter": sha256_file(root / "chapters" / f"{CHAPTER}.md"),
                       **{k: parts[k] for k in CLI_INPUTS}})
    record = results / f"cli-{key[:16]}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        kept = json.loads(record.read_text())
        if (results / kept["out"]).is_dir():
            return kept["stdout"], results / kept["out"]
    before = set(results.glob(f"{CHAPTER}__*")) if results.is_dir() else set()
    stdout = run_cli(command)
    made = sorted(set(results.glob(f"{CHAPTER}__*")) - before) or sorted(results.glob(f"{CHAPTER}__*"))
    atomic_write_text(record, json.dumps({"stdout": stdout, "out": made[-1].name}))
    return stdout, made[-1]


#: Sub-folders the listing shows as one line (the page's site: hundreds of theme files).
SUMMARISED = ("site",)


def file_listing(folder: Path) -> pd.DataFrame:
    """Every file under ``folder``, sorted: its relative path and size in bytes; each folder of
    :data:`SUMMARISED` is one row, ``site/ (N files)``, with their total size."""
    rows = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = f.relative_to(folder)
        key = rel.parts[0] if rel.parts[0] in SUMMARISED and len(rel.parts) > 1 else str(rel)
        n, size = rows.get(key, (0, 0))
        rows[key] = (n + 1, size + f.stat().st_size)
    names = [f"{k}/ ({n} files)" if k in SUMMARISED else k for k, (n, _) in rows.items()]
    return pd.DataFrame({"file": names, "bytes": [size for _, size in rows.values()]})


def run(model: str, arch: str, source_dataset: str, per_class: int, test_per_class: int, image_size: int,
        fractions, seeds) -> Result:
    """Chapter 10: write the inputs, run the CLI on them, read its cached curve back through
    the checkpoint and compute the same curve through the built-in ``model``."""
    params = dict(model=model, arch=arch, source_dataset=source_dataset, per_class=per_class,
                  test_per_class=test_per_class, image_size=image_size, fractions=fractions, seeds=seeds)
    folder, checkpoint = write_inputs(model, source_dataset, per_class, test_per_class)
    results = folder.parent / "results"
    command = cli_command(checkpoint, arch, folder, results, fractions, seeds, image_size)
    stdout, out = cli_output(command, results)
    settings = dict(n_train=None, n_test=None, image_size=image_size, fractions=fractions, seeds=seeds)
    from_checkpoint = run_curves(str(checkpoint), [str(folder)], arch=arch, **settings)
    from_builtin = run_curves(model, [str(folder)], **settings)
    curves = pd.concat([from_checkpoint.assign(model=CHECKPOINT_LABEL),
                        from_builtin.assign(model=f"built-in {model}")], ignore_index=True)
    frames = {"from_checkpoint": from_checkpoint, "from_builtin": from_builtin, "curves": curves,
              "summary": summarise(curves.assign(dataset=folder.name)), "files": file_listing(out)}
    values = {"command": command, "stdout": stdout, "folder": folder, "checkpoint": checkpoint, "out": out}
    return Result(params, frames, values)


def without_machine_paths(text: str, root: Path | None = None) -> str:
    """``text`` with this machine's cache folder written as ``$DIFFRED_CACHE`` (a page must
    not show where the build machine keeps its files)."""
    root = Path(root or cache_dir())
    for spelling in sorted({str(root), str(root.resolve())}, key=len, reverse=True):
        text = text.replace(spelling, "$DIFFRED_CACHE")
    return text


def transcript(result: Result) -> str:
    """The command as a user types it, and what it printed, with the cache folder written as
    ``$DIFFRED_CACHE``."""
    shown = "\n".join(["$ " + shlex.join(["diffred", *result.command[3:]]), result.stdout])
    return without_machine_paths(shown)


def listing(result: Result) -> str:
    """The files the run wrote, one line each with its size."""
    return "\n".join(f"{r.file:40s} {r.bytes:>10,d} bytes" for r in result.files.itertuples())


def accuracy_table(result: Result) -> pd.DataFrame:
    """Mean probe accuracy per fraction, through the checkpoint and through the built-in model."""
    return result.summary.pivot_table(index=["fraction", "k"], columns="model", values="acc_mean").round(3)


def quotes(result: Result) -> dict:
    """Every number and word chapter 10 quotes: whether the two routes agree exactly, the
    folder's training images and the full layer's accuracy through the checkpoint."""
    ck, bi = result.from_checkpoint, result.from_builtin
    same = bool((ck.accuracy.to_numpy() == bi.accuracy.to_numpy()).all())
    return {"same_word": "identical" if same else "not identical",
            "n_folder_train": int(result.params["per_class"] * ck.filter(like="acc_").shape[1]),
            "demo_full": 100 * float(ck[ck.fraction == 1.0].accuracy.mean())}
