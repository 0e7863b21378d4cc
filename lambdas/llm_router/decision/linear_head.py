"""A calibrated logistic-regression head over the reference-prompt embeddings.

Why a learned head: nearest neighbours decide by the few reference prompts closest to a question,
so a question phrased unlike every reference (an exam question, a passage) is decided by whichever
prompt happens to share its form. A linear layer over all the embeddings learns the directions
that separate the labels, which generalises better (semantic-router's and RouteLLM's lesson).

* **Training** (at index-build time, over the rows of the semantic index): multinomial logistic
  regression with L2 regularisation and balanced class weights, by accelerated gradient descent
  with the step from the data's largest eigenvalue and the momentum of a strongly convex problem
  (the L2 term makes it one), so it converges the same way for any prompt set. Hand-written in
  numpy because the Lambda ships numpy but not scikit-learn, and the training must be
  reproducible from the layer build. Three things make it fast (it was 16 separate fits of
  2,000 iterations over 1,024 dimensions: measured on the 979 reference prompts on a busy 2-core
  machine, 320 s for ``train_head`` with one BLAS thread; now 5-12 s for those 16 fits, same
  probabilities to 2.5e-5, the old optimiser's shortfall, and about 6 s for the 31 fits of six
  clusterings):
  the fits run in the **row space** of the embeddings (an L2-regularised linear model's weights
  lie in the span of its training rows, so rotating onto the right singular vectors changes
  nothing but the cost: the stand-in's 1,024-dimensional vectors span 383 dimensions); the
  cross-validation's fits and the final fit are **one batched problem** (held-out rows weigh
  zero), so each iteration is two matrix products; and the constant momentum converges linearly
  (``TOLERANCE`` on the gradient, a few hundred iterations) where the old 2,000 iterations
  stopped about 5e-5 short of the optimum in the logits.
* **Calibration**: one temperature for the logits, chosen to minimise the log-loss of
  out-of-fold predictions (``CALIBRATION_FOLDS``-fold cross-validation over the reference
  prompts), so the probabilities mean what they say on prompts the head has not seen.
* **Topic-held-out folds**: the folds are not random rows but whole topic clusters (k-means on
  the embeddings, ``CLUSTERS_PER_FOLD`` clusters per fold within each label), so a held-out
  prompt's near-paraphrases are held out with it. Random folds leave a sibling of almost every
  prompt in training and make the head look surer than it is on questions nobody here wrote
  (measured with MiniLM: random folds put 0.4% of in-domain references over the decline
  threshold the fit picked, while MMLU questions went over it 3.7% of the time); held-out topics
  are the honest stand-in for a new exam. The out-of-fold probabilities are kept in the head file
  (``oof_probabilities``, one matrix per clustering, at the head's temperature) because the
  cost-aware threshold fit (``scripts/evaluation/head_fit.py``) reads them: thresholds chosen on
  the head's own training rows would be far too trusting. Per clustering, not averaged, because
  each clustering is one draw of "topics nobody wrote" and the fit averages its objective over
  the draws (averaging the logits first smooths away the very spread the fit must see).
* **Runtime**: ``probabilities`` is one matrix product and a softmax; numpy only.
* **Nearest-neighbour evidence** (``semantic.knn_weight``): the decision may blend the head's
  probabilities with the vote of the question's k nearest reference prompts, which the index
  returns anyway (``blend``). The weight is fitted like the head's thresholds, on the reference
  prompts only: the head file keeps each clustering's fold of every row (``oof_folds``), so the fit
  can take each held-out row's k nearest neighbours among the rows its fold's head was trained on
  (``out_of_fold_votes``) and blend them with that head's out-of-fold probabilities.

The head is a file beside the FAISS index (``HEAD_FILE``, an ``.npz`` of plain arrays, loaded
without pickle) and is checked against the same manifest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..records import record

HEAD_FILE = "head.npz"
# 2: topic-held-out folds; out-of-fold probabilities in the file; 3: those probabilities per
# clustering (repeats x rows x classes), for a threshold fit averaged over the clusterings;
# 4: the folds of every clustering (repeats x rows), for the out-of-fold nearest-neighbour vote
HEAD_VERSION = 4
L2 = 1e-3  # on unit-length embeddings; chosen by cross-validation on the reference prompts
ITERATIONS = 3000  # at most; the fit stops once the gradient is below TOLERANCE
TOLERANCE = 1e-9  # largest gradient component (the logits are then exact to about 1e-9)
RANK_TOLERANCE = 1e-6  # singular values below this share of the largest are rounding noise
CALIBRATION_FOLDS = 5
CLUSTERS_PER_FOLD = 8  # topic clusters per fold and label (k-means over the embeddings)
KMEANS_ITERATIONS = 20
# Clusterings, each a cross-validation: the threshold fit averages its objective over them, as one
# clustering's fit moves with its seed (3 -> 6 narrowed the fitted decline threshold's spread over
# independent seeds from 0.845-0.905 to 0.855-0.895; the batched fit makes them cheap)
CV_REPEATS = 6
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 121))
SEED = 0


@record(frozen=True)
class LinearHead:
    classes: tuple[str, ...]
    weights: np.ndarray  # (dimensions, classes)
    bias: np.ndarray  # (classes,)
    temperature: float
    cv_log_loss: float  # out-of-fold log-loss at that temperature (a quality figure)
    # The training rows' calibrated out-of-fold probabilities, one matrix per clustering
    # (CV_REPEATS x rows x classes), and their labels (class indices), for the threshold fit;
    # None for a head built without them.
    oof_probabilities: np.ndarray | None = None
    oof_labels: np.ndarray | None = None
    # Each clustering's fold of every training row (CV_REPEATS x rows), for the fit's out-of-fold
    # nearest-neighbour votes (``out_of_fold_votes``); None for a head built without them.
    oof_folds: np.ndarray | None = None

    def logits(self, vectors: np.ndarray) -> np.ndarray:
        x = _unit(np.atleast_2d(np.asarray(vectors, dtype=np.float64)))
        return x @ self.weights + self.bias

    def probabilities(self, vectors: np.ndarray) -> np.ndarray:
        """Calibrated probabilities per class, one row per vector."""
        return _softmax(self.logits(vectors) / self.temperature)

    def probability_of(self, vector: np.ndarray) -> dict[str, float]:
        row = self.probabilities(vector)[0]
        return {c: float(p) for c, p in zip(self.classes, row, strict=True)}

    def save(self, directory: Path) -> None:
        np.savez(
            directory / HEAD_FILE,
            classes=np.array(json.dumps(list(self.classes))),
            weights=self.weights.astype(np.float32),
            bias=self.bias.astype(np.float64),
            temperature=np.array(self.temperature),
            cv_log_loss=np.array(self.cv_log_loss),
            version=np.array(HEAD_VERSION),
            **(
                {"oof_probabilities": self.oof_probabilities, "oof_labels": self.oof_labels}
                if self.oof_probabilities is not None and self.oof_labels is not None
                else {}
            ),
            **(
                {"oof_folds": self.oof_folds.astype(np.int16)}
                if self.oof_folds is not None
                else {}
            ),
        )

    @classmethod
    def load(cls, directory: Path) -> LinearHead:
        with np.load(directory / HEAD_FILE, allow_pickle=False) as data:
            if int(data["version"]) != HEAD_VERSION:
                raise ValueError(f"head version {int(data['version'])}, expected {HEAD_VERSION}")
            return cls(
                classes=tuple(json.loads(str(data["classes"]))),
                weights=data["weights"].astype(np.float64),
                bias=data["bias"].astype(np.float64),
                temperature=float(data["temperature"]),
                cv_log_loss=float(data["cv_log_loss"]),
                oof_probabilities=(
                    data["oof_probabilities"] if "oof_probabilities" in data.files else None
                ),
                oof_labels=data["oof_labels"] if "oof_labels" in data.files else None,
                oof_folds=(
                    data["oof_folds"].astype(np.int64) if "oof_folds" in data.files else None
                ),
            )


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_logistic(
    x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = L2, iterations: int = ITERATIONS
) -> tuple[np.ndarray, np.ndarray]:
    """Weights and bias minimising class-balanced cross-entropy + l2/2 * |W|^2."""
    [(w, b)] = fit_logistic_many(x, y, n_classes, [np.ones(len(y), dtype=bool)], l2, iterations)
    return w, b


def fit_logistic_many(
    x: np.ndarray, y: np.ndarray, n_classes: int, train: Sequence[np.ndarray], l2: float = L2,
    iterations: int = ITERATIONS,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """One ``fit_logistic`` per boolean row mask in ``train``, solved together.

    Each problem sees only its rows (the others weigh zero in it), exactly as if fitted alone on
    ``x[mask]``. The problems share the rotation onto ``x``'s row space and every matrix product.
    """
    n, _ = x.shape
    with _one_blas_thread():
        basis = _row_space(x)
        z = np.hstack([x @ basis, np.ones((n, 1))])  # the bias as a last, unregularised feature
        rank = z.shape[1] - 1
        problems = len(train)
        weights = np.zeros((problems, n))
        steps = np.zeros(problems)
        for i, mask in enumerate(train):
            rows = np.flatnonzero(mask)
            counts = np.bincount(y[rows], minlength=n_classes).astype(np.float64)
            balanced = len(rows) / (n_classes * np.maximum(counts, 1))
            weights[i, rows] = balanced[y[rows]] / len(rows)
            # Lipschitz bound of the gradient: softmax curvature <= 1/2 the weighted Gram matrix.
            gram = (z * weights[i][:, None]).T @ z
            steps[i] = 1.0 / (0.5 * float(np.linalg.eigvalsh(gram)[-1]) + l2)
        # Strong convexity l2 (the bias aside): the momentum of accelerated descent for it.
        root = np.sqrt(l2 * steps)
        momentum = np.repeat((1 - root) / (1 + root), n_classes)[None, :]
        step = np.repeat(steps, n_classes)[None, :]
        regularised = np.ones((rank + 1, 1))
        regularised[-1] = 0.0
        onehot = np.eye(n_classes)[y][:, None, :]
        row_weights = weights.T[:, :, None]
        w = np.zeros((rank + 1, problems * n_classes))
        previous = w
        for _ in range(iterations):
            look = w + momentum * (w - previous)
            logits = (z @ look).reshape(n, problems, n_classes)
            residual = (_softmax3(logits) - onehot) * row_weights
            grad = z.T @ residual.reshape(n, -1) + l2 * regularised * look
            previous, w = w, look - step * grad
            if np.abs(grad).max() < TOLERANCE:
                break
        w = w.reshape(rank + 1, problems, n_classes)
        return [(basis @ w[:-1, i], w[-1, i].copy()) for i in range(problems)]


def _row_space(x: np.ndarray) -> np.ndarray:
    """``d x r``: an orthonormal basis of the rows' span (right singular vectors, noise dropped).

    Gradient descent from zero never leaves this span (every gradient is ``x^T`` times something
    plus a multiple of the weights), so fitting ``x @ basis`` gives the same weights, rotated.
    """
    _, singular, vt = np.linalg.svd(x, full_matrices=False)
    keep = singular > singular[0] * RANK_TOLERANCE
    return vt[keep].T


def _softmax3(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """One BLAS thread for the fit: its products are small, and a multi-threaded BLAS on a busy
    2-core machine spins (measured: 29 s a fit instead of 7). threadpoolctl is a development
    dependency (the training runs at build time, never in the Lambda); without it, no limit."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """A cluster number per (unit) row: spherical k-means from random rows, fixed iterations.

    (k-means++ seeding splits fewer tight topics, but measured on the reference prompts it moved
    the fitted decline threshold from 0.88 to 0.805 at F 12: the held-out objective is flat
    there, see the README's routing-quality section.)"""
    centres = x[rng.choice(len(x), k, replace=False)]
    assignment = np.zeros(len(x), dtype=int)
    for _ in range(KMEANS_ITERATIONS):
        assignment = np.argmax(x @ centres.T, axis=1)
        for j in range(k):
            members = x[assignment == j]
            if len(members):
                centre = members.sum(axis=0)
                centres[j] = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return assignment


def _folds(x: np.ndarray, y: np.ndarray, folds: int, seed: int = SEED) -> np.ndarray:
    """A fold number per row: each label's topic clusters dealt to the folds, largest first.

    Whole clusters go to one fold, so a prompt is predicted by a head that saw none of its
    near-paraphrases. Labels with too few rows to cluster fall back to dealing rows. Fixed by seed.
    """
    rng = np.random.default_rng(seed)
    assignment = np.zeros(len(y), dtype=int)
    for label in np.unique(y):
        rows = np.flatnonzero(y == label)
        k = folds * CLUSTERS_PER_FOLD
        if len(rows) < 2 * k:
            assignment[rng.permutation(rows)] = np.arange(len(rows)) % folds
            continue
        clusters = _kmeans(x[rows], k, rng)
        by_size = np.argsort(-np.bincount(clusters, minlength=k), kind="stable")
        fold_of = np.empty(k, dtype=int)
        fold_of[by_size] = np.arange(k) % folds
        assignment[rows] = fold_of[clusters]
    return assignment


def out_of_fold_logits(
    x: np.ndarray, y: np.ndarray, n_classes: int, folds: int = CALIBRATION_FOLDS, l2: float = L2,
    repeats: int = CV_REPEATS,
) -> np.ndarray:
    """Each row's logits from heads trained without its fold, one matrix per clustering
    (``repeats`` x rows x classes, each clustering with its own seed)."""
    logits, _, _ = _cross_validated(x, y, n_classes, folds, l2, repeats, with_full_fit=False)
    return logits


def _cross_validated(
    x: np.ndarray, y: np.ndarray, n_classes: int, folds: int, l2: float, repeats: int,
    with_full_fit: bool,
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None, np.ndarray]:
    """The out-of-fold logits per clustering, with ``with_full_fit`` the fit on every row (one
    batch), and each clustering's fold of every row (repeats x rows)."""
    assignments = np.stack([_folds(x, y, folds, SEED + repeat) for repeat in range(repeats)])
    held_out = [
        (repeat, assignments[repeat] == fold)
        for repeat in range(repeats)
        for fold in range(folds)
    ]
    train = [~held for _, held in held_out]
    train += [np.ones(len(y), dtype=bool)] if with_full_fit else []
    fitted = fit_logistic_many(x, y, n_classes, train, l2)
    logits = np.zeros((repeats, len(y), n_classes))
    for (repeat, held), (w, b) in zip(held_out, fitted, strict=False):
        logits[repeat, held] = x[held] @ w + b
    return logits, (fitted[-1] if with_full_fit else None), assignments


def best_temperature(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """The temperature (from TEMPERATURES) with the lowest log-loss, and that log-loss."""
    losses = [
        float(-np.mean(np.log(_softmax(logits / t)[np.arange(len(y)), y] + 1e-12)))
        for t in TEMPERATURES
    ]
    best = int(np.argmin(losses))
    return float(TEMPERATURES[best]), losses[best]


def train_head(
    vectors: np.ndarray, labels: Sequence[str], classes: Sequence[str], l2: float = L2
) -> tuple[LinearHead, np.ndarray]:
    """The calibrated head, and the training rows' out-of-fold probabilities from the mean logits
    of the clusterings (the head keeps them per clustering, for the threshold fit)."""
    x = _unit(np.asarray(vectors, dtype=np.float64))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    with _one_blas_thread():  # the k-means of the folds too
        runs, full, assignments = _cross_validated(
            x, y, len(classes), CALIBRATION_FOLDS, l2, CV_REPEATS, with_full_fit=True
        )
    assert full is not None
    w, b = full
    # The temperature is chosen on the clusterings' mean logits, as it always was (the runtime
    # head's calibration is unchanged); each clustering's probabilities use it.
    oof = runs.mean(axis=0)
    temperature, loss = best_temperature(oof, y)
    per_run = np.stack([_softmax(r / temperature) for r in runs])
    head = LinearHead(tuple(classes), w, b, temperature, loss, per_run, y, assignments)
    return head, _softmax(oof / temperature)


def vote_shares(neighbour_labels: Sequence[int], n_classes: int) -> np.ndarray:
    """The share of the neighbours' votes per class (each neighbour one vote)."""
    counts = np.bincount(np.asarray(neighbour_labels, dtype=np.int64), minlength=n_classes)
    return counts / max(int(counts.sum()), 1)


def blend(probabilities: np.ndarray, shares: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight)`` x the head's probabilities + ``weight`` x the neighbours' vote shares:
    still a distribution over the classes; weight 0 is the head's own, untouched."""
    if weight == 0.0:
        return probabilities
    return (1.0 - weight) * probabilities + weight * shares


def out_of_fold_votes(
    vectors: np.ndarray, labels: np.ndarray, folds: np.ndarray, k: int, n_classes: int
) -> np.ndarray:
    """Each row's vote shares among its ``k`` nearest rows (cosine) outside its own fold, one
    matrix per clustering (``folds`` is clusterings x rows): the vote the question would get from
    an index that, like that fold's head, has not seen its topic."""
    x = _unit(np.asarray(vectors, dtype=np.float64))
    y = np.asarray(labels, dtype=np.int64)
    folds = np.atleast_2d(np.asarray(folds))
    votes = np.zeros((len(folds), len(y), n_classes))
    for repeat, assignment in enumerate(folds):
        for fold in np.unique(assignment):
            held = assignment == fold
            train = np.flatnonzero(~held)
            if not len(train):
                continue
            depth = min(k, len(train))
            similarity = x[held] @ x[train].T
            nearest = np.argpartition(-similarity, depth - 1, axis=1)[:, :depth]
            counts = np.zeros((int(held.sum()), n_classes))
            np.add.at(counts, (np.arange(len(counts))[:, None], y[train][nearest]), 1.0)
            votes[repeat, held] = counts / depth
    return votes
