"""The Setup chapter's evidence: which models and data this build used, and that the
model is pre-trained (ImageNet predictions on real photos; a random-weight control)."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pandas as pd
import skimage.data
import torch
from timm.data import ImageNetInfo

from ..config import RunConfig
from ..curves import scale_note, subset_curve
from ..datasets import load_dataset
from ..models import load_encoder
from ..versions import table as versions_lock_table
from . import Result
from .setting import note_for


SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
#: The random-weight control counts as "a fair feature extractor" when its full-layer
#: accuracy is at least this many times chance (1 / number of classes).
FAIR_TIMES_CHANCE = 3.0


def imagenet_predictions(model: str = "efficientnet_lite0", photos=SKIMAGE_PHOTOS, top: int = 1) -> pd.DataFrame:
    """The encoder's ImageNet top prediction on real photos shipped by scikit-image."""

    enc = load_encoder(model)
    info = ImageNetInfo()
    rows = []
    for name in photos:
        img = getattr(skimage.data, name)()
        if img.ndim == 2:
            img = np.stack([img] * 3, -1)
        h, w = img.shape[:2]
        s = min(h, w)
        crop = np.ascontiguousarray(img[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s, :3])
        with torch.no_grad():
            p = torch.softmax(enc.logits(enc.preprocess(crop[None])), 1)[0]
        conf, idx = p.topk(top)
        for c, i in zip(conf.tolist(), idx.tolist()):
            rows.append({"photo": f"skimage.data.{name}()", "prediction": info.index_to_description(i),
                         "probability": c})
    return pd.DataFrame(rows)


def describe_models(names) -> pd.DataFrame:
    """Source, licence, architecture, width and weights checksum of each encoder."""
    rows = []
    for n in names:
        e = load_encoder(n)
        n_params = sum(p.numel() for p in e.model.parameters())
        rows.append({"model": n, "architecture": e.arch, "source": e.source, "licence": e.licence,
                     "parameters (M)": round(n_params / 1e6, 2), "feature width": e.width,
                     "native input (px)": e.native_size, "weights sha256": e.weights_sha256[:16]})
    return pd.DataFrame(rows)


def describe_datasets(names, n_train=None, n_test=None) -> pd.DataFrame:
    """Source, sizes, classes and a content checksum of each dataset's splits."""
    rows = []
    for n in names:
        tr, te = load_dataset(n, "train"), load_dataset(n, "test")
        h = hashlib.sha256()
        for part in (tr, te):
            if isinstance(part.images, np.ndarray):
                h.update(np.ascontiguousarray(part.images).tobytes())
            h.update(part.labels.tobytes())
        shape = tr.images.shape[1:] if isinstance(tr.images, np.ndarray) else "files"
        rows.append({"dataset": n, "source": tr.source, "train": len(tr), "test": len(te),
                     "classes": len(tr.classes), "image": "x".join(map(str, shape)),
                     "content sha256": h.hexdigest()[:16]})
    return pd.DataFrame(rows)


def pretrained_vs_random(cfg: RunConfig, random_model: str = "efficientnet_lite0_random") -> pd.DataFrame:
    """Full-layer probe accuracy of the pre-trained encoder and a randomly initialised copy."""
    rows = []
    for model in (cfg.model, random_model):
        c = dataclasses.replace(cfg, model=model, fractions=(1.0,), seeds=(1,))
        df = subset_curve(c)
        rows.append({"model": model, "dataset": cfg.dataset, "n_train": c.n_train, "accuracy": float(df.accuracy.mean())})
    return pd.DataFrame(rows)



def run(models, datasets, compare_dataset: str = "fashion_mnist", compare_n_train: int = 3000,
        compare_n_test: int | None = 2000, image_size: int | None = 112) -> Result:
    """Everything the Setup chapter shows: the models and datasets tables, the first
    model's ImageNet predictions on real photos, and its full-layer probe accuracy beside a
    randomly initialised copy's (``compare_n_train`` and ``compare_n_test`` images of
    ``compare_dataset``)."""
    params = {"models": list(models), "datasets": list(datasets), "compare_dataset": compare_dataset,
              "compare_n_train": compare_n_train, "compare_n_test": compare_n_test, "image_size": image_size}
    cfg = RunConfig(model=params["models"][0], dataset=compare_dataset, n_train=compare_n_train,
                    n_test=compare_n_test, image_size=image_size).scaled()
    return Result(params, {"models": describe_models(params["models"]),
                           "datasets": describe_datasets(params["datasets"]),
                           "predictions": imagenet_predictions(params["models"][0]),
                           "versus": pretrained_vs_random(cfg)})


def versions_table() -> pd.DataFrame:
    """The package versions this build ran with beside the ones ``requirements.lock`` pins
    (:func:`diffred.versions.table`), with readable headers and yes/no/— for the check."""
    t = versions_lock_table()
    same = t.as_locked.map(lambda v: "—" if v is None else ("yes" if v else "no"))
    return pd.DataFrame({"Package": t.package, "Locked version": t.locked.fillna("—"),
                         "Installed version": t.installed.fillna("—"), "As locked": same})


def random_sentence(acc_rand: float, n_classes: int) -> str:
    """Whether the random-weight copy is a usable feature extractor here, from its accuracy
    against chance (:data:`FAIR_TIMES_CHANCE`)."""
    times = acc_rand * n_classes
    if times >= FAIR_TIMES_CHANCE:
        return (f"A random convolutional network is still a fair feature extractor for these images "
                f"({times:.1f} times the chance accuracy of {100 / n_classes:.0f}%), which is why the control "
                "appears again in later chapters")
    return (f"The random network's features are close to useless here ({times:.1f} times the chance accuracy "
            f"of {100 / n_classes:.0f}%); later chapters still show it as the control")


def predictions_table(result: Result) -> pd.DataFrame:
    """The predictions as the chapter shows them (probabilities to three decimals)."""
    return result.predictions.round(3)


def quotes(result: Result) -> dict:
    """Every number and word the Setup chapter's prose quotes. The first row of ``versus``
    is the pre-trained model, the second its random-weight copy (as
    :func:`pretrained_vs_random` builds it)."""
    acc_pre, acc_rand = (float(a) for a in result.versus.accuracy.iloc[:2])
    better = acc_pre > acc_rand
    return {"scale_note": scale_note(),
            "cat_label": result.predictions.prediction.iloc[0],
            "cat_p": float(result.predictions.probability.iloc[0]),
            "acc_pre": 100 * acc_pre, "acc_rand": 100 * acc_rand,
            "cmp_n": int(result.versus.n_train.iloc[0]),
            "versus_sentence": "the pre-trained features carry knowledge a random network's do not" if better
            else "the random network is as good here, which would cast doubt on the weights",
            "random_sentence": random_sentence(acc_rand, _n_classes(result)),
            "fair_times": FAIR_TIMES_CHANCE,
            "setting_note": note_for(str(result.versus.model.iloc[0]), result.params["compare_dataset"], acc_pre,
                                     n_train=result.params.get("compare_n_train"),
                                     image_size=result.params.get("image_size", 112))}


def _n_classes(result: Result) -> int:
    rows = result.datasets[result.datasets.dataset == result.params["compare_dataset"]]
    return int(rows.classes.iloc[0]) if len(rows) else 10
