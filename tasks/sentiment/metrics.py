"""How well a classifier's probabilities score, in NumPy (no scikit-learn at run time).

`binary_auc` is the area under the ROC curve; `classifier_metrics` gives the
accuracy of the most probable class and, for two classes, that AUC.

Example:

>>> binary_auc([0.9, 0.4, 0.4, 0.1], [True, True, False, False])
0.875
>>> classifier_metrics([[0.2, 0.8], [0.7, 0.3], [0.4, 0.6]], [1, 0, 0])
{'accuracy': 0.66667, 'auc': 1.0}
"""

import numpy as np

__all__ = ["binary_auc", "classifier_metrics"]


def binary_auc(scores, positives):
    """Area under the ROC curve of `scores` for telling `positives` apart.

    The probability that a random positive scores above a random negative,
    a tie counting one half: the Mann-Whitney U statistic over
    `positives * negatives`, from ranks with ties averaged (what
    `sklearn.metrics.roc_auc_score` computes). 0.5 is chance, 1.0 a perfect
    ranking. It depends only on the order of the scores, so base rates and
    a decision threshold do not enter it.

    For two classes it is the same whichever class is called positive, as
    long as the score is that class's probability: with `p` the probability
    of class 1, `binary_auc(p, y == 1) == binary_auc(1 - p, y == 0)`.

    Args:
        scores: `[n]` finite numbers, higher meaning more likely positive.
        positives: `[n]` booleans (or 0/1): which examples are positive.

    Returns:
        A float in [0, 1].

    Raises:
        ValueError: for different lengths, non-finite scores, or when
            `positives` lacks one of the two classes (the AUC is undefined).
    """
    scores = np.asarray(scores, np.float64).reshape(-1)
    positives = np.asarray(positives).astype(bool).reshape(-1)
    if scores.shape != positives.shape:
        raise ValueError(
            f"scores and positives must have the same length. Received: {scores.size} scores, "
            f"{positives.size} positives"
        )
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite. Received: NaN or infinite values")
    n_positive = int(positives.sum())
    n_negative = positives.size - n_positive
    if n_positive == 0 or n_negative == 0:
        raise ValueError(
            "positives must hold both classes. Received: "
            f"{n_positive} positives and {n_negative} negatives"
        )
    # Rank 1 for the lowest score; a group of tied scores shares the mean of its ranks.
    _, group, counts = np.unique(scores, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(counts)
    ranks = (last_rank - (counts - 1) / 2.0)[group.reshape(-1)]
    u = ranks[positives].sum() - n_positive * (n_positive + 1) / 2.0
    return float(u / (n_positive * n_negative))


def classifier_metrics(probabilities, label_ids):
    """`accuracy` of the argmax, and `auc` when there are two classes.

    Args:
        probabilities: `[n, classes]` class probabilities.
        label_ids: `[n]` true class indices.

    Returns:
        `{"accuracy": ...}`, plus `{"auc": ...}` for two classes: the AUC of
        the probability of class 1 (`binary_auc`; the same for class 0),
        `None` when the labels hold only one class. Rounded to 5 digits;
        `accuracy` is `None` for no examples.
    """
    probabilities = np.asarray(probabilities, np.float64)
    label_ids = np.asarray(label_ids).reshape(-1)
    if probabilities.ndim != 2 or len(probabilities) != len(label_ids):
        raise ValueError(
            "probabilities must be [n, classes] with one row per label. Received: shape "
            f"{probabilities.shape} for {len(label_ids)} labels"
        )
    metrics = {"accuracy": None}
    if len(label_ids):
        metrics["accuracy"] = round(float(np.mean(probabilities.argmax(axis=1) == label_ids)), 5)
    if probabilities.shape[1] == 2:
        positives = label_ids == 1
        both = positives.any() and not positives.all()
        metrics["auc"] = round(binary_auc(probabilities[:, 1], positives), 5) if both else None
    return metrics
