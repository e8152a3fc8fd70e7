"""How a chapter's prose names the model and dataset its parameters chose.

A sentence such as "The ImageNet-pretrained EfficientNet-Lite0, frozen" must change when a
re-run passes ``-p model=...``, so the chapters glue these phrases instead of typing them.
"""

from __future__ import annotations

from pathlib import Path

from .models import BUILTIN, looks_like_path
from .zoo import zoo_names

#: The prose names of the built-in datasets; any other name is shown as given.
DATASET_WORDS = {"fashion_mnist": "Fashion-MNIST", "fashion_mnist_heldout": "held-out Fashion-MNIST classes 5-9",
                 "mnist5k": "MNIST-5k", "digits": "digits", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100",
                 "flowers102": "Flowers-102", "oxford_pets": "Oxford-IIIT Pets"}


def model_words(model: str, arch: str | None = None) -> str:
    """A noun phrase for ``model`` that can open a sentence after "The"/"A" is dropped:
    ``efficientnet_lite0`` -> "the ImageNet-pretrained EfficientNet-Lite0"; a random-weight
    built-in, a zoo model, a checkpoint file and a timm name each say what they are."""
    model = str(model)
    if model in BUILTIN:
        spec = BUILTIN[model]
        short = spec.description.split(",")[0]
        return f"the ImageNet-pretrained {short}" if spec.package else f"a randomly initialised {short}"
    if looks_like_path(model):
        return f"the checkpoint {Path(model).name}" + (f" ({arch})" if arch else "")
    if model in zoo_names():
        return f"the project's {model}"
    if not model.strip():
        raise ValueError("model is empty: give a built-in name, a timm name or a checkpoint path")
    return f"timm's {model}"


def short_model_words(model: str) -> str:
    """The model's name alone, for a sentence that named it before: ``efficientnet_lite0``
    -> "EfficientNet-Lite0", a checkpoint -> its file name, anything else as given."""
    model = str(model)
    if model in BUILTIN:
        return BUILTIN[model].description.split(",")[0]
    return Path(model).name if looks_like_path(model) else model


def dataset_words(name) -> str:
    """The prose name of a dataset: a built-in name, or "the image folder <name>"."""
    name = str(name)
    if name in DATASET_WORDS:
        return DATASET_WORDS[name]
    return f"the image folder {Path(name).name}" if looks_like_path(name) or "/" in name else name


def sentence_start(phrase: str) -> str:
    """``phrase`` with its first letter capitalised, to open a sentence."""
    return phrase[:1].upper() + phrase[1:]


def model_quotes(model: str, arch: str | None = None, key: str = "model") -> dict:
    """The glue values a chapter's prose names its model by: ``<key>_words`` (mid-sentence),
    ``<key>_words_cap`` (opening a sentence) and ``<key>_short`` (the bare name)."""
    words = model_words(model, arch)
    return {f"{key}_words": words, f"{key}_words_cap": sentence_start(words), f"{key}_short": short_model_words(model)}


def dataset_quotes(name, key: str = "dataset") -> dict:
    """The glue value a chapter's prose names its dataset by: ``<key>_words``."""
    return {f"{key}_words": dataset_words(name)}
