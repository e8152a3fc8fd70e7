"""One verdict contract for every claim of the book (issue 14).

A chapter states a :class:`Rule` *before* its result — the statistic, the threshold(s) and
the direction as named constants, printed as a plain-English :attr:`Rule.statement` — and
then glues the :class:`Verdict` the rule computes from the numbers. A verdict is one of
:data:`OUTCOMES`:

* ``holds`` / ``does not hold`` — the numbers decide, uncertainty included;
* ``holds partly`` — a rule applied to several groups (datasets, models, stages) holds in
  some of them and not in others (:func:`across`);
* ``inconclusive`` — the data cannot decide: the interval straddles the threshold, the
  difference is inside its uncertainty, or there are too few seeds for any p-value to
  reach alpha.

The rules (plain functions; a :class:`Rule` holds a reference to one and its constants):

* :func:`within` — a value with its interval against a threshold (e.g. the accuracy gap at
  20% of neurons against 5 points, or a stage's accuracy ratio against 0.9);
* :func:`difference` — a signed A-vs-B difference with a permutation p-value (and, with a
  ``margin``, a "no effect of that size" branch);
* :func:`correlation` — a signed rank correlation with its p-value;
* :func:`across` — one rule's verdicts over several groups.

Every rule reaches every outcome it names (``tests/test_verdicts.py`` builds each one).
This module imports nothing from diffred: the numbers come from :mod:`diffred.stats` and
:mod:`diffred.metrics`, the verdicts from here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping

import numpy as np

HOLDS, PARTLY, FAILS, UNDECIDED = "holds", "holds partly", "does not hold", "inconclusive"
OUTCOMES = (HOLDS, PARTLY, FAILS, UNDECIDED)
ALPHA = 0.05
LEVEL = 0.95
DIRECTIONS = ("at most", "at least")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What a rule concludes: the ``outcome`` (one of :data:`OUTCOMES`), the ``statistic``
    it was decided on, its ``interval`` and/or ``p_value``, the sample size ``n`` (an int,
    or ``(n_a, n_b)`` for a difference), and a one-sentence ``reason`` built from the
    numbers. ``parts`` holds the per-group verdicts of :func:`across`, by label."""

    outcome: str
    statistic: float
    reason: str
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    n: int | tuple | None = None
    rule: str | None = None
    parts: Mapping[str, Verdict] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome {self.outcome!r} is not one of {OUTCOMES}")

    def __str__(self) -> str:
        return self.outcome

    @property
    def holds(self) -> bool:
        return self.outcome == HOLDS

    def quotes(self, prefix: str) -> dict:
        """Everything a chapter glues about this verdict, keys prefixed ``<prefix>_``:
        ``verdict``, ``reason``, ``rule`` (the statement), ``statistic``, ``low``/``high``
        (interval ends) and ``p`` where they exist."""
        out = {f"{prefix}_verdict": self.outcome, f"{prefix}_reason": self.reason,
               f"{prefix}_statistic": self.statistic}
        if self.rule:
            out[f"{prefix}_rule"] = self.rule
        if self.interval is not None:
            out[f"{prefix}_low"], out[f"{prefix}_high"] = self.interval
        if self.p_value is not None:
            out[f"{prefix}_p"] = self.p_value
        return out

    def badge(self, claim: int) -> Badge:
        """The verdict as the chapter shows it for claim ``claim``: ``{glue}`claim<N>_badge```
        renders ``<span class="claim-verdict" data-claim="N" data-outcome="...">``, which the
        claims ledger and its browser test read."""
        return Badge(claim, self.outcome, self.reason)

    def row(self) -> dict:
        """One flat record (for a claims ledger or a table)."""
        lo, hi = self.interval if self.interval is not None else (None, None)
        return {"verdict": self.outcome, "statistic": self.statistic, "low": lo, "high": hi,
                "p_value": self.p_value, "n": self.n, "reason": self.reason}


@dataclasses.dataclass(frozen=True)
class Badge:
    """A verdict for inline display: HTML (a span marked with the claim and outcome) in the
    book, the outcome word in plain text."""

    claim: int
    outcome: str
    reason: str = ""

    def __repr__(self) -> str:
        return self.outcome

    def _repr_html_(self) -> str:
        title = self.reason.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")
        css = self.outcome.replace(" ", "-")
        return (f'<span class="claim-verdict verdict-{css}" data-claim="{self.claim}" '
                f'data-outcome="{self.outcome}" title="{title}"><strong>{self.outcome}</strong></span>')


@dataclasses.dataclass(frozen=True)
class Rule:
    """A claim's decision rule, stated before the result. ``test`` is the rule function
    (:func:`within`, :func:`difference`, :func:`correlation`), ``constants`` its named
    thresholds (``threshold``, ``direction``, ``alpha``, ``expected_sign``, ``margin``...),
    ``statement`` the sentence the chapter prints. Build one with :func:`within_rule`,
    :func:`difference_rule` or :func:`correlation_rule`; ``rule.judge(...)`` applies it, and
    ``rule.judge_each({label: args})`` applies it per group and combines with :func:`across`."""

    claim: str
    statistic: str
    test: Callable[..., Verdict]
    constants: Mapping
    statement: str

    def judge(self, *args, **kwargs) -> Verdict:
        """Apply the rule to the numbers (``args``/``kwargs``: the statistic, its interval,
        p-value, n). The stated constants cannot be overridden here: the rule printed is the
        rule applied."""
        clash = sorted(set(kwargs) & set(self.constants))
        if clash:
            raise TypeError(f"{clash} are constants of this rule, fixed when it was stated")
        v = self.test(*args, **self.constants, **kwargs)
        return dataclasses.replace(v, rule=self.statement)

    def judge_each(self, groups: Mapping[str, Mapping], what: str = "groups") -> Verdict:
        """:meth:`judge` on each group's keyword arguments, combined by :func:`across`."""
        v = across({label: self.judge(**kw) for label, kw in groups.items()}, what=what)
        return dataclasses.replace(v, rule=f"{self.statement} {ACROSS_STATEMENT.format(what=what)}")


ACROSS_STATEMENT = ("Applied to each of the {what}: the claim holds if the rule holds in every one, "
                    "holds partly if in some, does not hold if in none that the data can decide, "
                    "and is inconclusive if the data decide none.")


def fmt(x, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant digits (p-values below 0.001 as
    "< 0.001")."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{float(x):.{digits}g}"


def fmt_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {fmt(p, 2)}"


def _interval_text(interval, level: float) -> str:
    return f"{round(100 * level)}% interval {fmt(interval[0])} to {fmt(interval[1])}"


def within(value: float, interval, threshold: float, *, direction: str = "at most", level: float = LEVEL,
           n: int | None = None, statistic: str = "the statistic", unit: str = "") -> Verdict:
    """``value`` (with its ``interval`` at ``level``) against ``threshold``. For
    ``direction="at most"`` (e.g. an accuracy gap within 5 points): holds when the whole
    interval is at most the threshold, does not hold when the whole interval is above it,
    inconclusive when it straddles (or a number is missing). ``"at least"`` mirrors it (e.g.
    a ratio that must reach 0.9). ``interval`` is required: pass ``(value, value)`` only
    where the value truly has no uncertainty."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    lo, hi = (float(x) for x in interval)
    if lo > hi:
        raise ValueError(f"interval ({lo}, {hi}) has its low end above its high end")
    u = f" {unit}" if unit else ""
    where = f"{statistic} is {fmt(value)}{u} ({_interval_text((lo, hi), level)})"
    if any(math.isnan(x) for x in (float(value), lo, hi)):
        return Verdict(UNDECIDED, float(value), f"{statistic} could not be computed.", (lo, hi), n=n)
    inside, beyond = (hi <= threshold, lo > threshold) if direction == "at most" else (lo >= threshold, hi < threshold)
    if inside:
        outcome, how = HOLDS, f"the whole interval is {direction} {fmt(threshold)}{u}"
    elif beyond:
        other = "above" if direction == "at most" else "below"
        outcome, how = FAILS, f"the whole interval is {other} {fmt(threshold)}{u}"
    else:
        outcome, how = UNDECIDED, f"the interval straddles {fmt(threshold)}{u}, so the data cannot decide"
    return Verdict(outcome, float(value), f"{where[0].upper()}{where[1:]}: {how}.", (lo, hi), n=n)


def smallest_p_difference(n_a: int, n_b: int, two_sided: bool = True) -> float:
    """The smallest p-value an exact two-sample permutation test of means can give with
    ``n_a`` and ``n_b`` values (observed split included): ``1 / C(n_a + n_b, n_a)``,
    doubled when two-sided with ``n_a == n_b`` (the mirror split is as extreme). 2 vs 2: 1/3."""
    splits = math.comb(n_a + n_b, n_a)
    return min(1.0, (2 if two_sided and n_a == n_b else 1) / splits)


def smallest_p_correlation(n: int, two_sided: bool = True) -> float:
    """The smallest p-value an exact permutation test of a rank correlation of ``n`` pairs
    (no ties) can give: ``1 / n!``, doubled when two-sided (the reversed order is as extreme)."""
    return min(1.0, (2 if two_sided else 1) / math.factorial(n))


def _signed(stat, p_value, interval, expected_sign, alpha, smallest, margin, level, n, what, unit) -> Verdict:
    """The shared logic of :func:`difference` and :func:`correlation`."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign must be +1 or -1, got {expected_sign}")
    if p_value is None and interval is None:
        raise ValueError("a signed test needs a p-value or an interval (or both)")
    u = f" {unit}" if unit else ""
    iv = None if interval is None else (float(interval[0]), float(interval[1]))
    numbers = f"{what} is {fmt(stat)}{u}" + (f" ({_interval_text(iv, level)})" if iv else "") + \
              (f", {fmt_p(p_value)}" if p_value is not None else "")
    numbers = numbers[0].upper() + numbers[1:]
    want = "positive" if expected_sign > 0 else "negative"
    if stat is None or math.isnan(float(stat)):
        return Verdict(UNDECIDED, float("nan"), f"{what} could not be computed.", iv, p_value, n)
    if smallest is not None and smallest > alpha:
        return Verdict(UNDECIDED, float(stat), f"{numbers}; with n = {_n_text(n)} no test over them can reach "
                       f"alpha {fmt(alpha)} (the smallest possible permutation p-value is {fmt(smallest, 2)}): "
                       "too few to decide.", iv, p_value, n)
    decisive = (p_value <= alpha) if p_value is not None else (iv[0] > 0 or iv[1] < 0)
    why = f"p at most {fmt(alpha)}" if p_value is not None else "the interval excludes 0"
    sign = int(np.sign(stat))
    if decisive and sign == expected_sign:
        return Verdict(HOLDS, float(stat), f"{numbers}: {want} as the claim expects, and decisively "
                       f"({why}).", iv, p_value, n)
    if decisive and sign == -expected_sign:
        return Verdict(FAILS, float(stat), f"{numbers}: decisively ({why}) the opposite of the {want} "
                       "sign the claim expects.", iv, p_value, n)
    if margin is not None and iv is not None and -margin <= iv[0] and iv[1] <= margin:
        return Verdict(FAILS, float(stat), f"{numbers}: the whole interval lies within +/-{fmt(margin)}{u}, "
                       f"so there is no effect of that size.", iv, p_value, n)
    not_why = f"p above {fmt(alpha)}" if p_value is not None else "the interval includes 0"
    return Verdict(UNDECIDED, float(stat), f"{numbers}: not decisive ({not_why}), so the data cannot decide.",
                   iv, p_value, n)


def _n_text(n) -> str:
    return f"{n[0]} vs {n[1]}" if isinstance(n, tuple) else str(n)


def difference(diff: float, p_value: float | None = None, interval=None, *, expected_sign: int = 1,
               alpha: float = ALPHA, n: tuple[int, int] | None = None, two_sided: bool = True,
               margin: float | None = None, level: float = LEVEL, statistic: str = "the difference",
               unit: str = "") -> Verdict:
    """A variant-vs-reference (or A-vs-B) difference ``diff`` with a permutation
    ``p_value`` and/or ``interval``. Holds when decisive (p <= alpha, or the interval
    excludes 0 where there is no p) with the ``expected_sign``; does not hold when decisive
    with the opposite sign, or — given a ``margin`` — when the whole interval lies within
    +/-margin (no effect of that size); inconclusive otherwise, and always when
    ``n = (n_a, n_b)`` is too small for any exact permutation p-value to reach alpha
    (2 vs 2 seeds: the smallest two-sided p is 1/3) — also when deciding on a bootstrap
    interval over those seeds, which with 2 seeds has only 3 distinct resamples."""
    smallest = smallest_p_difference(*n, two_sided=two_sided) if n is not None else None
    return _signed(diff, p_value, interval, expected_sign, alpha, smallest, margin, level, n, statistic, unit)


def correlation(rho: float, p_value: float, *, expected_sign: int = 1, alpha: float = ALPHA,
                n: int | None = None, two_sided: bool = True, interval=None, margin: float | None = None,
                level: float = LEVEL, statistic: str = "Spearman's rho") -> Verdict:
    """A rank correlation ``rho`` with its permutation ``p_value``: holds when p <= alpha
    and the sign is ``expected_sign``; does not hold when p <= alpha with the opposite sign
    (or, given an ``interval`` and ``margin``, when the whole interval lies within
    +/-margin); inconclusive otherwise, and always when ``n`` pairs are too few for any
    p-value to reach alpha (4 pairs two-sided: 1/12). A NaN rho (a constant variable) is
    inconclusive."""
    smallest = smallest_p_correlation(n, two_sided=two_sided) if n is not None else None
    return _signed(rho, p_value, interval, expected_sign, alpha, smallest, margin, level, n, statistic, "")


def across(verdicts: Mapping[str, Verdict], what: str = "groups") -> Verdict:
    """One rule's verdicts over several groups (labels -> verdicts): ``holds`` if every
    group holds; ``does not hold`` if none holds (or holds partly) and at least one does
    not hold; ``inconclusive`` if no group is decided; ``holds partly`` otherwise (some
    hold, others do not or cannot be decided). The statistic is the share that holds."""
    if not verdicts:
        raise ValueError("across needs at least one verdict")
    by = {o: [k for k, v in verdicts.items() if v.outcome == o] for o in OUTCOMES}
    total = len(verdicts)
    positive = len(by[HOLDS]) + len(by[PARTLY])
    if len(by[HOLDS]) == total:
        outcome = HOLDS
    elif len(by[UNDECIDED]) == total:
        outcome = UNDECIDED
    elif positive == 0:
        outcome = FAILS
    else:
        outcome = PARTLY
    counts = "; ".join(f"{o} in {len(ks)} ({', '.join(ks)})" for o, ks in by.items() if ks)
    reason = f"Of {total} {what}: {counts}."
    return Verdict(outcome, len(by[HOLDS]) / total, reason, n=total, parts=dict(verdicts))


def within_rule(claim: str, statistic: str, threshold: float, direction: str = "at most", unit: str = "",
                level: float = LEVEL) -> Rule:
    """A :func:`within` rule with its statement."""
    u = f" {unit}" if unit else ""
    other = "above" if direction == "at most" else "below"
    statement = (f"Rule: the claim holds if the whole {round(100 * level)}% interval of {statistic} is "
                 f"{direction} {fmt(threshold)}{u}; it does not hold if the whole interval is {other} "
                 f"{fmt(threshold)}{u}; otherwise the data cannot decide (inconclusive).")
    return Rule(claim, statistic, within, {"threshold": threshold, "direction": direction, "level": level,
                                           "statistic": statistic, "unit": unit}, statement)


def difference_rule(claim: str, statistic: str, expected_sign: int = 1, alpha: float = ALPHA,
                    margin: float | None = None, unit: str = "", two_sided: bool = True) -> Rule:
    """A :func:`difference` rule with its statement."""
    want, other = ("positive", "negative") if expected_sign > 0 else ("negative", "positive")
    u = f" {unit}" if unit else ""
    no_effect = f", or if its whole interval lies within +/-{fmt(margin)}{u}" if margin is not None else ""
    statement = (f"Rule: the claim holds if {statistic} is {want} with a permutation p-value at most "
                 f"{fmt(alpha)}; it does not hold if it is {other} at that level{no_effect}; otherwise "
                 "the data cannot decide (inconclusive), as when there are too few seeds for any "
                 f"p-value to reach {fmt(alpha)}.")
    return Rule(claim, statistic, difference, {"expected_sign": expected_sign, "alpha": alpha, "margin": margin,
                                               "statistic": statistic, "unit": unit, "two_sided": two_sided},
                statement)


def correlation_rule(claim: str, statistic: str = "Spearman's rho", expected_sign: int = 1,
                     alpha: float = ALPHA, two_sided: bool = True) -> Rule:
    """A :func:`correlation` rule with its statement."""
    want, other = ("positive", "negative") if expected_sign > 0 else ("negative", "positive")
    statement = (f"Rule: the claim holds if {statistic} is {want} with a permutation p-value at most "
                 f"{fmt(alpha)}; it does not hold if it is {other} at that level; otherwise the data "
                 "cannot decide (inconclusive), as when there are too few pairs for any p-value to "
                 f"reach {fmt(alpha)}.")
    return Rule(claim, statistic, correlation, {"expected_sign": expected_sign, "alpha": alpha,
                                                "statistic": statistic, "two_sided": two_sided}, statement)
