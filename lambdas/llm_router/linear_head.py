"""A calibrated logistic-regression head over the reference-prompt embeddings.

Why a learned head: nearest neighbours decide by the few reference prompts closest to a question,
so a question phrased unlike every reference (an exam question, a passage) is decided by whichever
prompt happens to share its form. A linear layer over all the embeddings learns the directions
that separate the labels, which generalises better (semantic-router's and RouteLLM's lesson).

* **Training** (at index-build time, over the rows of the semantic index): multinomial logistic
  regression with L2 regularisation and balanced class weights, by Nesterov-accelerated gradient
  descent with the step from the data's largest eigenvalue, so it converges the same way for any
  prompt set. Hand-written in numpy (about forty lines) because the Lambda ships numpy but not
  scikit-learn, and the training must be reproducible bit for bit from the layer build.
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
  (``oof_probabilities``) because the cost-aware threshold fit (``scripts/evaluation/fit.py``)
  reads them: thresholds chosen on the head's own training rows would be far too trusting.
* **Runtime**: ``probabilities`` is one matrix product and a softmax; numpy only.

The head is a file beside the FAISS index (``HEAD_FILE``, an ``.npz`` of plain arrays, loaded
without pickle) and is checked against the same manifest.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HEAD_FILE = "head.npz"
HEAD_VERSION = 2  # 2: topic-held-out folds; out-of-fold probabilities in the file
L2 = 1e-3  # on unit-length embeddings; chosen by cross-validation on the reference prompts
ITERATIONS = 2000
CALIBRATION_FOLDS = 5
CLUSTERS_PER_FOLD = 8  # topic clusters per fold and label (k-means over the embeddings)
KMEANS_ITERATIONS = 20
CV_REPEATS = 3  # clusterings averaged: one clustering's threshold fit moves with its seed
TEMPERATURES = np.exp(np.linspace(np.log(0.05), np.log(5.0), 121))
SEED = 0


@dataclass(frozen=True)
class LinearHead:
    classes: tuple[str, ...]
    weights: np.ndarray  # (dimensions, classes)
    bias: np.ndarray  # (classes,)
    temperature: float
    cv_log_loss: float  # out-of-fold log-loss at that temperature (a quality figure)
    # The training rows' calibrated out-of-fold probabilities and their labels (class indices),
    # for the threshold fit; None for a head built without them.
    oof_probabilities: np.ndarray | None = None
    oof_labels: np.ndarray | None = None

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
    n, d = x.shape
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    sample_weight = (n / (n_classes * np.maximum(counts, 1)))[y] / n
    onehot = np.eye(n_classes)[y]
    xb = np.hstack([x, np.ones((n, 1))])  # the bias as a last, unregularised feature
    # Lipschitz bound of the gradient: softmax curvature <= 1/2 times the weighted Gram matrix.
    gram = (xb * sample_weight[:, None]).T @ xb
    step = 1.0 / (0.5 * float(np.linalg.eigvalsh(gram)[-1]) + l2)
    mask = np.ones((d + 1, 1))
    mask[-1] = 0.0
    w = np.zeros((d + 1, n_classes))
    previous = w
    for t in range(1, iterations + 1):
        look = w + (t - 1) / (t + 2) * (w - previous)
        grad = xb.T @ ((_softmax(xb @ look) - onehot) * sample_weight[:, None]) + l2 * mask * look
        previous, w = w, look - step * grad
    return w[:-1], w[-1]


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
    """Each row's logits from heads trained without its fold, averaged over ``repeats``
    clusterings (each with its own seed), so the fit does not hinge on one clustering."""
    logits = np.zeros((len(y), n_classes))
    for repeat in range(repeats):
        assignment = _folds(x, y, folds, SEED + repeat)
        for fold in range(folds):
            held = assignment == fold
            w, b = fit_logistic(x[~held], y[~held], n_classes, l2)
            logits[held] += (x[held] @ w + b) / repeats
    return logits


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
    """The calibrated head, and the out-of-fold probabilities of the training rows (for fits)."""
    x = _unit(np.asarray(vectors, dtype=np.float64))
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in labels])
    oof = out_of_fold_logits(x, y, len(classes), l2=l2)
    temperature, loss = best_temperature(oof, y)
    w, b = fit_logistic(x, y, len(classes), l2)
    calibrated = _softmax(oof / temperature)
    head = LinearHead(tuple(classes), w, b, temperature, loss, calibrated, y)
    return head, calibrated
