"""Did each zoo variant do what it was trained to do? Checks on the upstream task, before
chapter 11 compares a variant with the reference (issue 14, item 5), and the dead and
constant neurons of every zoo model.

Every check reads the model itself on its own upstream task (Fashion-MNIST classes 0-4:
:data:`N_TRAIN` training and :data:`N_TEST` test images, drawn once with seed 0), through its
penultimate ``Linear -> ReLU`` layer:

* **adversarial** (``cnn_adv``): robust accuracy (the card's PGD-20 at the training radius)
  above the reference's by :data:`ROBUST_GAIN`;
* **Matryoshka** (``cnn_mrl``): a probe on its first k neurons beats probes on k random
  ones (mean of :data:`NESTED_SEEDS`) at the nested widths it was trained on
  (:data:`NESTED_WIDTHS`), by more than :data:`MRL_MIN_GAIN` points on average, and by more
  than the reference's first k neurons do (whose order means nothing);
* **DeCov** (``cnn_decov``): the off-diagonal share of the penultimate covariance
  (:func:`offdiag_share`, the quantity the DeCov penalty shrinks, made scale-free) below the
  reference's for every pair of training seeds;
* **dropout** (``cnn_dropout<r>``): with a share r of the penultimate neurons dropped at
  test time (its own rate, inverted scaling, :data:`N_MASKS` masks), its own classifier loses
  less upstream accuracy than the reference's does, by more than :data:`DROP_MARGIN` points.

Dead neurons (always 0 on the upstream test images) and constant ones are counted per model.
The subset curves count them as neurons of the layer, as the paper counts a layer's width:
the probes standardise every column with the training mean and std, so a constant column
becomes 0 and adds nothing, and a random subset of k neurons holds on average
(1 - dead share) k live ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from .. import zoo
from ..curves import cached_frames, curve_from_features
from ..datasets import load_dataset
from .predictors import constant_share

N_TRAIN, N_TEST = 6000, 2000
UPSTREAM_SEED = 0
ROBUST_GAIN = 0.1  # adversarial training worked: robust accuracy above the reference's by this (share)
NESTED_WIDTHS = (8, 16, 32)  # the Matryoshka prefixes checked (the larger ones saturate on 5 classes)
NESTED_SEEDS = (1, 2, 3)
MRL_MIN_GAIN = 1.0  # points: Matryoshka's first-k neurons above k random ones, on average over the widths
DROP_RATES = (0.1, 0.3, 0.5, 0.8)
N_MASKS = 20
DROP_MARGIN = 0.5  # points: a dropout model loses less than the reference by more than this
REFERENCE = "cnn_ce"
EASY_SHARE = 0.95  # k random neurons within this share of the full layer: the upstream task leaves no room
NESTED_COLUMNS = ["model", "selector", "k", "accuracy", "accuracy_std"]
CHECK_COLUMNS = ["variant", "trained to", "measured", "needed", "passed"]


def upstream_images(classes, split: str, n: int) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` upstream images of ``split`` (classes relabelled 0..), in [0, 1], ``(n, 1, 28, 28)``."""
    data = load_dataset("fashion_mnist", split)
    keep = np.flatnonzero(np.isin(data.labels, classes))
    idx = np.sort(np.random.default_rng(UPSTREAM_SEED).permutation(keep)[:n])
    x = torch.from_numpy(np.ascontiguousarray(data.images[idx])).float().div_(255.0)
    x = x[:, None] if x.ndim == 3 else x.mean(-1)[:, None]
    return x, np.searchsorted(np.asarray(classes), data.labels[idx])


@torch.no_grad()
def penultimate(model: torch.nn.Module, x01: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """The penultimate activations ``(n, K)`` of a zoo model for images in [0, 1]."""
    model.eval()
    out = [model.forward_head(model.forward_features((x01[i:i + batch] - zoo.ZOO_MEAN[0]) / zoo.ZOO_STD[0]),
                              pre_logits=True) for i in range(0, len(x01), batch)]
    return torch.cat(out).numpy()


def offdiag_share(H) -> float:
    """The share of the squared covariance mass of ``H (n, d)`` that lies off the diagonal:
    0 for uncorrelated neurons, 1 - 1/d for d identical copies; NaN when every neuron is constant."""
    C = np.cov(np.asarray(H, np.float64), rowvar=False)
    total = float((C ** 2).sum())
    return float(1.0 - (np.diag(C) ** 2).sum() / total) if total > 0 else float("nan")


def mean_abs_correlation(H) -> float:
    """Mean |Pearson correlation| over pairs of live (non-constant) neurons of ``H (n, d)``."""
    H = np.asarray(H, np.float64)
    live = H[:, H.std(0) > 0]
    if live.shape[1] < 2:
        return float("nan")
    R = np.corrcoef(live, rowvar=False)
    return float(np.abs(R[~np.eye(len(R), dtype=bool)]).mean())


@torch.no_grad()
def drop_losses(classifier: torch.nn.Module, H, y, rates=DROP_RATES, n_masks: int = N_MASKS,
                seed: int = 0) -> list[dict]:
    """Points of accuracy the model's own ``classifier`` loses when a share ``rate`` of the
    penultimate neurons ``H (n, K)`` is zeroed (the rest scaled by 1/(1-rate)), mean of ``n_masks``."""
    h = torch.as_tensor(np.asarray(H, np.float32))
    y = torch.as_tensor(np.asarray(y))
    clean = float((classifier(h).argmax(1) == y).float().mean())
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for rate in rates:
        accs = [float((classifier(h * (torch.rand(h.shape, generator=gen) >= rate) / (1 - rate)).argmax(1) == y)
                      .float().mean()) for _ in range(n_masks)]
        rows.append({"rate": rate, "clean": clean, "dropped": float(np.mean(accs)),
                     "loss_points": 100 * (clean - float(np.mean(accs)))})
    return rows


def nested_rows(Htr, ytr, Hte, yte, widths=NESTED_WIDTHS, seeds=NESTED_SEEDS) -> pd.DataFrame:
    """Upstream test accuracy of probes on the first k and on k random neurons, per k."""
    d = Htr.shape[1]
    curve = curve_from_features(Htr, ytr, Hte, yte, [k / d for k in widths if k < d], list(seeds),
                                selector=["first", "random"])
    return (curve.groupby(["selector", "k"]).accuracy.agg(["mean", "std"]).reset_index()
            .rename(columns={"mean": "accuracy", "std": "accuracy_std"}).assign(model="")[NESTED_COLUMNS])


def model_frames(name: str, n_train: int = N_TRAIN, n_test: int = N_TEST, nested: bool = False):
    """One zoo model's neuron statistics (a dict), drop-loss rows and nested-probe rows."""
    model, card = zoo.load_zoo_model(name)
    classes = card["config"]["upstream_classes"]
    x_te, y_te = upstream_images(classes, "test", n_test)
    H_te = penultimate(model, x_te)
    const, dead = constant_share(H_te)
    stats = {"model": name, "variant": card["config"]["variant"], "train_seed": card["config"]["seed"],
             "dropout": float(card["config"]["dropout"]), "width": H_te.shape[1], "dead_share": dead, "constant_share": const,
             "offdiag_share": offdiag_share(H_te), "mean_abs_corr": mean_abs_correlation(H_te)}
    drops = pd.DataFrame(drop_losses(model.head.classifier, H_te, y_te)).assign(model=name)
    stats["upstream_clean"] = float(drops.clean.iloc[0])
    nest = pd.DataFrame(columns=NESTED_COLUMNS)
    if nested:
        x_tr, y_tr = upstream_images(classes, "train", n_train)
        nest = nested_rows(penultimate(model, x_tr), y_tr, H_te, y_te).assign(model=name)
    return stats, drops, nest


def upstream_study(models, n_train: int = N_TRAIN, n_test: int = N_TEST):
    """``(neurons, drops, nested)`` for every zoo model in ``models`` (cached: keyed by the
    weights' sha256, the sizes and this module's code). Nested probes only for the Matryoshka
    models and the reference."""
    models = sorted(models)
    spec = {"models": {m: zoo.read_card(m)["sha256"] for m in models}, "n_train": n_train, "n_test": n_test,
            "rates": list(DROP_RATES), "n_masks": N_MASKS, "widths": list(NESTED_WIDTHS), "seeds": list(NESTED_SEEDS)}

    def compute():
        parts = [model_frames(m, n_train, n_test, nested=m.startswith(("cnn_mrl", REFERENCE + "_")))
                 for m in models]
        return (pd.DataFrame([p[0] for p in parts]), pd.concat([p[1] for p in parts], ignore_index=True),
                pd.concat([p[2] for p in parts], ignore_index=True))
    (neurons, drops, nested), _ = cached_frames("zoo_upstream", spec, compute, n=3)
    return neurons, drops, nested


def _gain(nested: pd.DataFrame, models) -> pd.Series:
    """Per model: first-k minus random-k accuracy (points), averaged over the nested widths."""
    g = nested[nested.model.isin(models)].pivot_table(index=["model", "k"], columns="selector", values="accuracy")
    if not {"first", "random"} <= set(g.columns):
        return pd.Series(dtype=float)
    return (100 * (g["first"] - g["random"])).groupby(level="model").mean()


def _models(neurons: pd.DataFrame, variant: str) -> list:
    return list(neurons[neurons.variant == variant].model)


def adversarial_check(cards: pd.DataFrame) -> list[dict]:
    adv, ref = cards[cards.variant == "cnn_adv"], cards[cards.variant == REFERENCE]
    if adv.empty or ref.empty:
        return []
    gain = float(adv.robust_accuracy.mean() - ref.robust_accuracy.mean())
    return [{"variant": "cnn_adv", "trained to": "resist ℓ2 attacks",
             "measured": f"robust accuracy {100 * gain:+.1f} points against the reference",
             "needed": f"more than {100 * ROBUST_GAIN:+.0f}", "passed": gain > ROBUST_GAIN}]


def matryoshka_check(neurons: pd.DataFrame, nested: pd.DataFrame) -> list[dict]:
    mrl, ref = _gain(nested, _models(neurons, "cnn_mrl")), _gain(nested, _models(neurons, REFERENCE))
    if mrl.empty or ref.empty:
        return []
    m, r = float(mrl.mean()), float(ref.mean())
    ks = ", ".join(str(k) for k in NESTED_WIDTHS)
    seeds = ", ".join(f"{v:+.1f}" for v in mrl)
    return [{"variant": "cnn_mrl", "trained to": "put the task in its first neurons",
             "measured": f"first-k minus random-k {m:+.1f} points at k = {ks} (training seeds {seeds}); "
                         f"the reference's first k {r:+.1f}",
             "needed": f"more than {MRL_MIN_GAIN:+.1f} and more than the reference's",
             "passed": m > MRL_MIN_GAIN and m > r}]


def decov_check(neurons: pd.DataFrame) -> list[dict]:
    dec = neurons[neurons.variant == "cnn_decov"].offdiag_share
    ref = neurons[neurons.variant == REFERENCE].offdiag_share
    if dec.empty or ref.empty:
        return []
    return [{"variant": "cnn_decov", "trained to": "decorrelate its penultimate neurons",
             "measured": f"off-diagonal share of the covariance {dec.mean():.3f} against the reference's "
                         f"{ref.mean():.3f} (seeds {dec.min():.3f}-{dec.max():.3f} vs {ref.min():.3f}-{ref.max():.3f})",
             "needed": "below the reference's, every seed against every seed", "passed": bool(dec.max() < ref.min())}]


def dropout_checks(neurons: pd.DataFrame, drops: pd.DataFrame) -> list[dict]:
    ref = drops[drops.model.isin(_models(neurons, REFERENCE))].groupby("rate").loss_points.mean()
    rows = []
    for variant, g in neurons[neurons.variant.str.startswith("cnn_dropout")].groupby("variant"):
        rate = float(g.dropout.iloc[0])
        own = drops[drops.model.isin(g.model) & np.isclose(drops.rate, rate)].loss_points.mean()
        if rate not in ref.index or np.isnan(own):
            continue
        rows.append({"variant": variant, "trained to": f"cope with {100 * rate:.0f}% of its penultimate neurons dropped",
                     "measured": f"upstream accuracy lost with {100 * rate:.0f}% dropped: {own:.1f} points against "
                                 f"the reference's {ref[rate]:.1f}",
                     "needed": f"at least {DROP_MARGIN:.1f} points less than the reference",
                     "passed": bool(ref[rate] - own > DROP_MARGIN)})
    return rows


def checks(cards: pd.DataFrame, neurons: pd.DataFrame | None, drops: pd.DataFrame | None,
           nested: pd.DataFrame | None) -> pd.DataFrame:
    """One row per checked variant: what it was trained to do, what was measured, what the
    rule needs, and whether it passed. A variant not in the run, or a study not run, is left out."""
    rows = adversarial_check(cards)
    if neurons is not None and len(neurons):
        rows += matryoshka_check(neurons, nested if nested is not None else pd.DataFrame(columns=NESTED_COLUMNS))
        rows += decov_check(neurons) + dropout_checks(neurons, drops)
    return pd.DataFrame(rows, columns=CHECK_COLUMNS)


def neuron_table(neurons: pd.DataFrame) -> pd.DataFrame:
    """Dead and constant neurons and the penultimate covariance, per zoo model, for reading."""
    t = neurons.assign(dead=(100 * neurons.dead_share).round(1), constant=(100 * neurons.constant_share).round(1),
                       offdiag=neurons.offdiag_share.round(3), corr=neurons.mean_abs_corr.round(3))
    return t[["model", "width", "dead", "constant", "offdiag", "corr"]].rename(columns={
        "width": "width", "dead": "dead neurons (%)", "constant": "constant neurons (%)",
        "offdiag": "off-diagonal covariance share", "corr": "mean |correlation|"}).set_index("model")


def rules_sentence() -> str:
    """The checks' rules, stated in the chapter before their results."""
    ks = ", ".join(str(k) for k in NESTED_WIDTHS)
    return (f"Each check runs on the upstream task ({N_TRAIN:,} training and {N_TEST:,} test images of the five "
            f"upstream classes). The adversarially trained model must keep more than {100 * ROBUST_GAIN:.0f} points "
            "more accuracy under attack than the reference. The Matryoshka model's first k neurons, probed alone, "
            f"must beat k random ones (mean of {len(NESTED_SEEDS)} subsets) at k = {ks}, its nested widths, by more "
            f"than {MRL_MIN_GAIN:.1f} point on average and by more than the reference's first k neurons do. The "
            "DeCov model's off-diagonal share of the penultimate covariance must be below the reference's, every "
            "training seed against every seed. A dropout model, with its own rate of penultimate neurons dropped "
            f"at test time (mean of {N_MASKS} masks), must lose at least {DROP_MARGIN:.1f} points less upstream "
            "accuracy than the reference.")


def neuron_quotes(neurons: pd.DataFrame, nested: pd.DataFrame) -> dict:
    """The dead-neuron range over the zoo, how many models have any, and how close a few
    random neurons already come to the full layer on the upstream task (Matryoshka's check)."""
    out = {"n_upstream_test": N_TEST, "dead_lo": float("nan"), "dead_hi": float("nan"), "dead_models": 0,
           "const_hi": float("nan"), "easy_sentence": "", "easy_k": NESTED_WIDTHS[0], "easy_random": float("nan"), "easy_full": float("nan")}
    if neurons.empty:
        return out
    dead = 100 * neurons.dead_share
    out |= {"dead_lo": float(dead.min()), "dead_hi": float(dead.max()), "dead_models": int((dead > 0).sum()),
            "const_hi": float(100 * neurons.constant_share.max())}
    mrl = nested[nested.model.isin(_models(neurons, "cnn_mrl")) & (nested.selector == "random")
                 & (nested.k == NESTED_WIDTHS[0])] if len(nested) else nested
    full = neurons[neurons.variant == "cnn_mrl"].upstream_clean if "upstream_clean" in neurons else pd.Series(dtype=float)
    if len(mrl) and len(full):
        out |= {"easy_random": 100 * float(mrl.accuracy.mean()), "easy_full": 100 * float(full.mean())}
    share = out["easy_random"] / out["easy_full"] if out["easy_full"] > 0 else float("nan")
    out["easy_sentence"] = (
        f"On the upstream task, {out['easy_k']} random neurons of the Matryoshka models already reach "
        f"{out['easy_random']:.1f}% test accuracy, {100 * share:.0f}% of the whole layer's {out['easy_full']:.1f}% "
        "with the model's own classifier" + (": five easy classes leave the first neurons little room to beat random "
                                             "ones, so this upstream task cannot show much of what the training changes."
                                             if share >= EASY_SHARE else ".")) if share == share else ""
    return out
