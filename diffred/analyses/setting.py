"""Why one model's whole-layer accuracy on one task reads differently from chapter to chapter
(issue 14, item 6): each chapter's sample sizes and resolution against chapter 02's headline
setting, in one sentence a chapter glues beside its own full-layer number.

The headline setting is read from chapter 02's ``parameters`` cell (and scaled like every
run, :meth:`diffred.config.RunConfig.scaled`), so the sentence follows that chapter when its
defaults change.
"""

from __future__ import annotations

from ..config import RunConfig
from ..params import chapter_parameters, chapter_path

HEADLINE = "02_random_subsets"
#: The settings that change a full-layer accuracy, in the order the sentence names them.
FIELDS = (("n_train", "training images"), ("n_test", "test images"), ("image_size", "px"), ("probe", "probe"))


def headline_config() -> RunConfig:
    """Chapter 02's headline run: its first model and dataset with its defaults, scaled."""
    p = chapter_parameters(chapter_path(HEADLINE))
    return RunConfig(model=p["model"], dataset=p["datasets"][0], n_train=p["n_train"], n_test=p["n_test"],
                     image_size=p["image_size"], probe=p.get("probe", "logistic")).scaled()


def _value(cfg: RunConfig, field: str, unit: str) -> str:
    v = getattr(cfg, field)
    if field == "image_size":
        return "the model's own input size" if v is None else f"{v} px"
    if field == "probe":
        return f"the {v} probe"
    return f"all {unit}" if v is None else f"{v:,} {unit}"


def describe(cfg: RunConfig) -> str:
    """The settings of ``cfg`` that shape a full-layer accuracy, in words."""
    return ", ".join(_value(cfg, f, unit) for f, unit in FIELDS)


def setting_note(cfg: RunConfig, full_accuracy: float) -> str:
    """One sentence: this chapter's full-layer accuracy (a share), its setting, and how it
    differs from chapter 02's headline setting (:func:`headline_config`)."""
    head = headline_config()
    here = (f"Here the whole layer of {cfg.model} on {cfg.dataset} reaches {100 * full_accuracy:.1f}% "
            f"({describe(cfg)}).")
    if (cfg.model, cfg.dataset) != (head.model, head.dataset):
        return f"{here} Chapter 02's headline is another model or task ({head.model} on {head.dataset})."
    diff = [f"{_value(cfg, f, u)} here against {_value(head, f, u)}" for f, u in FIELDS
            if getattr(cfg, f) != getattr(head, f)]
    if not diff:
        return f"{here} That is chapter 02's headline setting, so the two numbers differ only by the probe's noise."
    return f"{here} Chapter 02's headline for the same model and task differs in its setting: {'; '.join(diff)}."


def note_for(model: str, dataset: str, full_accuracy: float, n_train=None, n_test=None, image_size=112,
             probe: str = "logistic") -> str:
    """:func:`setting_note` for a chapter's own settings (its parameters, scaled like its runs)."""
    cfg = RunConfig(model=model, dataset=dataset, n_train=n_train, n_test=n_test, image_size=image_size,
                    probe=probe).scaled()
    return setting_note(cfg, full_accuracy)
