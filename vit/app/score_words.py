"""The figures of an evaluation or of a run, in the words of the page's language: an
evaluation's line (the figures `run_log.SCORE_WORDS` lists for its task, as `tools/infer.py`
prints them) and a run's headline (top-1 and balanced accuracy; mAP and exact match for a model
of several labels per image), which the Training tab shows in a run's progress line, in the run
list and in the comparison table."""

from typing import Optional, Sequence

from ..engine.run_log import SCORE_WORDS, task_of
from .i18n import say

# What a run is summed up by, per task: the figure that picks its best checkpoint by default,
# then the one that a skewed data set cannot flatter (balanced accuracy: the rare classes count
# as much as the common ones; exact match: every label of an image right).
HEADLINE = {"multiclass": ("top1", "balanced_accuracy"), "multilabel": ("map", "exact_match")}
# Every figure that has words (`score.<key>` in messages.yaml).
FIGURES = tuple(dict.fromkeys(key for words in SCORE_WORDS.values() for key, _ in words))


def score_text(language: str, scores: dict, keys: Optional[Sequence[str]] = None,
               emphasis: bool = False) -> str:
    """`top-1 0.9749, balanced accuracy 0.9702` in `language`: the figures `keys` (by default
    all of the task's) that `scores` has, the first in bold with `emphasis`."""
    keys = keys or [key for key, _ in SCORE_WORDS[task_of(scores)]]
    parts = []
    for key in keys:
        if scores.get(key) is None:
            continue
        value = f"{scores[key]:.4f}"
        parts.append(say(language, "score.figure", name=say(language, f"score.{key}"),
                         value=f"**{value}**" if emphasis and not parts else value))
    return say(language, "list.separator").join(parts)


def run_headline(language: str, metrics: dict) -> str:
    """A run's headline figures (HEADLINE) from its `metrics.json`: the test split's once the
    run is tested, else its best epoch's validation ones; empty before its first validation."""
    test = metrics.get("test") or {}
    if test:
        return say(language, "run.test", scores=score_text(language, test,
                                                           HEADLINE[task_of(test)]))
    best = {key[len("best_val_"):]: value for key, value in metrics.items()
            if key.startswith("best_val_")}
    best["task"] = task_of(metrics)
    scores = score_text(language, best, HEADLINE[task_of(best)])
    return say(language, "run.best_val", epoch=metrics.get("best_epoch") or "?",
               scores=scores) if scores else ""


def figure_name(language: str, record_key: str) -> str:
    """The words of an epoch record's figure (`val_map`: mAP), as a run's `best_by` names it;
    the key itself where there are none."""
    figure = record_key[len("val_"):] if record_key.startswith("val_") else record_key
    return say(language, f"score.{figure}") if figure in FIGURES else record_key
