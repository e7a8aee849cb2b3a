"""The automatic plan: which compression a collection in automatic mode uses at its size, and why.

One pure rule, :func:`choose_plan`, read from one small table, :data:`RULES`: per class of
dims, the plan from each row count on. A collection created without ``compression=`` (or
altered to ``compression="auto"``) asks it at creation and after its loads (see
:mod:`semsearch.autoplan`); an explicit plan pins the collection and the rule is not asked.

The thresholds are what was measured (see :data:`RULES`): from 1,024 dims ``bit`` wins with the
settings autotune stores at every size measured (9k to 250k rows); below 1,024 dims a plain
``halfvec`` graph wins while the collection is small (a 256-dim bit plan needs oversample 64-88
at 1,400-9,000 rows). Change the table, not the code, when a sweep says more.

A collection switches up when it grows past a threshold and down only when it shrinks below
:data:`SHRINK` of it, so one that hovers near a threshold does not rebuild back and forth.

Example::

    choice = choose_plan(1_200_000, 256, "vector", current="halfvec")
    choice.plan       # 'bit'
    choice.reason     # 'bit: grew to 1,200,000 rows of 256 dims, past 1,000,000 (rule for < 1024 dims ...) ...'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from semsearch.errors import CompressionPlanError
from semsearch.plans import Plan

#: a collection's plan follows its size (:func:`choose_plan`)
AUTO = "auto"
#: a collection keeps the plan it was given
PINNED = "pinned"
#: a collection leaves a step for the one below when it shrinks below this share of the step's threshold
SHRINK = 0.5
#: the plan every size can fall back to (pgvector indexes bits up to 64,000 dims)
FALLBACK = "bit"


@dataclass(frozen=True)
class Rule:
    """The plans of one class of dims by collection size: ``steps`` of ``(from rows, plan)``, ascending."""

    #: how the reason names the class, e.g. ``">= 1024 dims"``
    label: str
    #: the smallest dims of the class (the first rule whose ``min_dims`` a collection reaches applies)
    min_dims: int
    steps: tuple[tuple[int, str], ...]

    def describe(self, i: int) -> str:
        """Step ``i`` in words: ``"bit from 50,000 rows"``."""
        plan, low = self.steps[i][1], self.steps[i][0]
        high = self.steps[i + 1][0] if i + 1 < len(self.steps) else None
        if high is None:
            return f"{plan} at every size" if low == 0 else f"{plan} from {low:,} rows"
        return f"{plan} below {high:,} rows" if low == 0 else f"{plan} from {low:,} to {high:,} rows"


#: the thresholds, by dims class (largest first). >= 1024 dims: bit at every size. The sweep of sizes x
#: plans (bench/sweep.py, BENCHMARKS.md "Plan sweep"; 1,536-dim ada-002 and its scale set) found
#: halfvec fastest at 9k-10k rows when each plan is given the setting that just reaches recall@10
#: 0.99 (1.14-1.18x pgvector by hand, bit 1.49-1.63x) and bit from 50k (0.71x); but with the settings
#: autotune stores, interleaved on Jeopardy 9k (bench/results/querypath/defaults_9k.md), halfvec ran
#: 1.91x (its tuned ef_search about twice what the queries need) and bit 1.15x: the defaults decide.
#: < 1024 dims (Jeopardy texts by the local 256-dim model, 9k): halfvec 1.49x, bit 4.2x; not swept
#: further, bit from 1M rows where its index size pays.
RULES: tuple[Rule, ...] = (
    Rule(">= 1024 dims", 1024, ((0, "bit"),)),
    Rule("< 1024 dims", 1, ((0, "halfvec"), (1_000_000, "bit"))),
)


@dataclass(frozen=True)
class Choice:
    """What :func:`choose_plan` decided: the plan and a short sentence saying why."""

    plan: str
    reason: str


def rule_for(dims: int) -> Rule:
    """The rule of ``dims``' class.

    >>> rule_for(1536).label, rule_for(256).label
    ('>= 1024 dims', '< 1024 dims')
    """
    return next(r for r in sorted(RULES, key=lambda r: -r.min_dims) if dims >= r.min_dims)


def choose_plan(rows: int, dims: int, storage: str = "vector", *, current: str | None = None) -> Choice:
    """The plan for ``rows`` rows of ``dims`` dims, with hysteresis around the ``current`` plan.

    Without a current plan (or one the rule does not list) the step the rows reach wins. With
    one, the collection moves up when it has grown past a higher step's threshold and down
    when it has shrunk below :data:`SHRINK` of its own step's threshold; else it stays.
    A plan the dims cannot have (halfvec past 4,000 dims) gives way to the next step up, or
    :data:`FALLBACK`.

    >>> choose_plan(0, 1536).plan, choose_plan(300, 256).plan, choose_plan(1_000_000, 256).plan
    ('bit', 'halfvec', 'bit')
    >>> choose_plan(600_000, 256, current="bit").plan, choose_plan(400_000, 256, current="bit").plan
    ('bit', 'halfvec')
    """
    rule = rule_for(dims)
    steps = rule.steps
    reached = max(i for i, (low, _) in enumerate(steps) if rows >= low)
    at = next((i for i, (_, plan) in enumerate(steps) if plan == current), None)
    size = f"{rows:,} rows of {dims} dims"
    if at is None or reached > at:
        i = reached
        why = f"{size} (rule for {rule.label}: {rule.describe(i)})"
        if at is not None:
            why = f"grew to {size}, past {steps[i][0]:,} (rule for {rule.label}: {rule.describe(i)}); was {current}"
    elif rows < SHRINK * steps[at][0]:
        # down to the highest step the collection has not shrunk out of
        i = max(j for j in range(at) if rows >= SHRINK * steps[j][0])
        floor = int(SHRINK * steps[at][0])
        why = f"shrank to {size}, below {floor:,} (rule for {rule.label}: {rule.describe(i)}); was {current}"
    else:
        i = at
        keep = f", kept until below {int(SHRINK * steps[i][0]):,} rows" if i else ""
        why = f"{size} (rule for {rule.label}: {rule.describe(i)}{keep})"
    return _possible(steps[i:], dims, storage, why)


def _possible(steps: tuple[tuple[int, str], ...], dims: int, storage: str, why: str) -> Choice:
    """The first step's plan, or the first one after it (else :data:`FALLBACK`) that ``dims`` can have."""
    wanted = steps[0][1]
    for plan in [p for _, p in steps] + [FALLBACK]:
        try:
            got = str(Plan.parse(plan, dims=dims, storage=storage))
        except CompressionPlanError:
            continue
        return Choice(got, f"{got}: {why}" + ("" if plan == wanted else f"; {wanted} cannot index {dims} dims"))
    raise CompressionPlanError(f"expected a plan for {dims} dims among {[p for _, p in steps]}, got none")


def stamped(reason: str, *, now: dt.datetime | None = None) -> str:
    """A decision's reason with when it was made (UTC, to the minute), as the catalog stores it.

    >>> stamped("bit: pinned", now=dt.datetime(2026, 12, 7, 20, 5, tzinfo=dt.timezone.utc))
    'bit: pinned (2026-12-07 20:05 UTC)'
    """
    when = (now or dt.datetime.now(dt.timezone.utc)).astimezone(dt.timezone.utc)
    return f"{reason} ({when:%Y-%m-%d %H:%M} UTC)"
