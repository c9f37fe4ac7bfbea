"""Binary-classification metrics of the safety classifier, as pure numpy functions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative (ties count one half), computed from ranks (Mann-Whitney U).

    Args:
        labels: bool or {0, 1} array ``(N,)``, True = unsafe.
        scores: float array ``(N,)``, higher = more likely unsafe.

    Returns:
        AUC in [0, 1], or ``nan`` when ``labels`` holds only one class.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise ValueError(f"labels {labels.shape} and scores {scores.shape} differ in shape")
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, value_of, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[value_of]  # 1-based, averaged over equal scores
    u = ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_stderr(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray,
                   resamples: int = 1000, seed: int = 0) -> float:
    """Standard error of :func:`roc_auc` by a bootstrap over ``groups``: the examples of one
    group (e.g. the starts of one episode, which are not independent) are resampled together.

    Args:
        labels, scores: as :func:`roc_auc`, ``(N,)``.
        groups: ``(N,)`` group ids.
        resamples: bootstrap resamples.

    Returns:
        The standard deviation of the resampled AUCs, or ``nan`` with fewer than two
        resamples holding both classes.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    _, group_of = np.unique(np.asarray(groups).ravel(), return_inverse=True)
    members = np.split(np.argsort(group_of, kind="stable"), np.cumsum(np.bincount(group_of))[:-1])

    def resampled_auc(chosen: np.ndarray) -> float:
        index = np.concatenate([members[group] for group in chosen])
        return roc_auc(labels[index], scores[index])

    return bootstrap_stderr(resampled_auc, len(members), resamples, seed)


def bootstrap_stderr(statistic: Callable[[np.ndarray], float], units: int, resamples: int,
                     seed: int) -> float:
    """Standard error of ``statistic(unit indices)`` over ``units`` (episodes, groups)
    resampled with replacement; resamples where it is not finite are dropped (``nan`` with
    fewer than two left)."""
    rng = np.random.default_rng(seed)
    values = [statistic(rng.integers(units, size=units)) for _ in range(resamples)]
    finite = np.asarray([value for value in values if np.isfinite(value)])
    return float(finite.std(ddof=1)) if len(finite) > 1 else float("nan")


def precision_recall(labels: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Precision and recall of the unsafe class.

    Args:
        labels, predicted: bool arrays ``(N,)``, True = unsafe.

    Returns:
        ``(precision, recall)``; precision is ``nan`` when nothing was predicted unsafe, recall
        ``nan`` when nothing is unsafe.
    """
    labels = np.asarray(labels).astype(bool).ravel()
    predicted = np.asarray(predicted).astype(bool).ravel()
    true_positives = float(np.sum(labels & predicted))
    n_predicted, n_positive = float(predicted.sum()), float(labels.sum())
    precision = true_positives / n_predicted if n_predicted else float("nan")
    recall = true_positives / n_positive if n_positive else float("nan")
    return precision, recall


def classification_report(labels: np.ndarray, probabilities: np.ndarray,
                          threshold: float) -> dict[str, float]:
    """Precision, recall, accuracy and ROC AUC of P(unsafe) ``probabilities`` at ``threshold``.

    Returns a JSON-friendly dict with ``n``, ``positives``, ``precision``, ``recall``,
    ``accuracy``, ``roc_auc`` (``nan`` entries become ``None``).
    """
    labels = np.asarray(labels).astype(bool).ravel()
    probabilities = np.asarray(probabilities, dtype=np.float64).ravel()
    predicted = probabilities >= threshold
    precision, recall = precision_recall(labels, predicted)
    report = {
        "n": int(len(labels)), "positives": int(labels.sum()), "precision": precision,
        "recall": recall, "accuracy": float(np.mean(predicted == labels)) if len(labels) else float("nan"),
        "roc_auc": roc_auc(labels, probabilities),
    }
    return {key: (None if isinstance(value, float) and np.isnan(value) else value)
            for key, value in report.items()}
