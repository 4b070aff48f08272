"""Intervention-based scores: the BetaVAE score and the FactorVAE score.

Both sample factors from a ground-truth source (``tcx.groundtruth.GroundTruth``: ``factor_sizes``,
``sample_factors(num, generator)``, ``render(factors)``), fix one factor across a batch, render
and encode the batch, and ask how well a simple classifier recovers which factor was fixed.

- BetaVAE score: Higgins et al., ICLR 2017, Section 3; disentanglement_lib's ``beta_vae.py``.
- FactorVAE score: Kim and Mnih, ICML 2018, Section 4; disentanglement_lib's ``factor_vae.py``.

Defaults are disentanglement_lib's (batches of 64, 10,000 training and 5,000 evaluation points).
Everything is seeded from ``seed`` through one ``torch.Generator``: the same seed gives the same value.

Details: docs/metrics.md#factorvae-score, docs/metrics.md#betavae-score
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor

from tcx.validation import check_int
from tcx.errors import TcxError

__all__ = ["factor_vae_score", "beta_vae_score"]

RepresentationFn = Callable[[Tensor], Tensor]


def _check_ground_truth(ground_truth: Any) -> list[int]:
    missing = [m for m in ("factor_sizes", "sample_factors", "render")
               if not hasattr(ground_truth, m)]
    if missing:
        raise TcxError(
            f"ground_truth must provide factor_sizes, sample_factors(num, generator) and "
            f"render(factors) (tcx.groundtruth.GroundTruth); {type(ground_truth).__name__} lacks "
            f"{', '.join(missing)}. Pass a ground-truth datamodule or source."
        )
    sizes = [int(s) for s in ground_truth.factor_sizes]
    if len(sizes) < 1:
        raise TcxError(
            "ground_truth.factor_sizes is empty: there is no factor to intervene on.")
    return sizes


def _check_counts(**counts: int) -> None:
    for name, value in counts.items():
        check_int(name, value, 1)


def _encode(representation_fn: RepresentationFn, ground_truth: Any, factors: Tensor,
            chunk_size: int) -> np.ndarray:
    """Render ``factors [M, K]`` and encode them, ``chunk_size`` observations per call; returns
    float64 codes ``[M, D]``."""
    out = []
    with torch.no_grad():
        for start in range(0, factors.shape[0], chunk_size):
            f = factors[start: start + chunk_size]
            z = representation_fn(ground_truth.render(f))
            if not isinstance(z, Tensor):
                z = torch.as_tensor(np.asarray(z))
            if z.ndim != 2 or z.shape[0] != f.shape[0]:
                raise TcxError(
                    f"representation_fn must map observations [n, C, H, W] to codes [n, D]; for "
                    f"n={f.shape[0]} observations it returned shape {tuple(z.shape)}."
                )
            z = z.detach().to("cpu", torch.float64).numpy()
            if not np.all(np.isfinite(z)):
                raise TcxError(
                    "representation_fn returned non-finite codes (NaN or inf); fix the encoder "
                    "before scoring."
                )
            out.append(z)
    return np.concatenate(out, axis=0)


def _fixed_factor_batches(ground_truth: Any, num_points: int, batch_size: int, num_factors: int,
                          generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``num_points`` batches of ``batch_size`` factor draws, each batch sharing the value of one
    random factor: returns (fixed factor index ``[P]``, factors ``[P * B, K]``)."""
    index = torch.randint(num_factors, (num_points,), generator=generator)
    factors = ground_truth.sample_factors(num_points * batch_size, generator)
    factors = torch.as_tensor(factors).long().reshape(num_points, batch_size, num_factors).clone()
    rows = torch.arange(num_points)
    factors[rows, :, index] = factors[rows, 0, index][:, None]
    return index, factors.reshape(num_points * batch_size, num_factors)


def factor_vae_score(
    ground_truth: Any,
    representation_fn: RepresentationFn,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    num_variance_estimate: int = 10000,
    prune_std: float = 0.05,
    chunk_size: int = 4096,
) -> dict[str, float]:
    """FactorVAE score (Kim and Mnih 2018): accuracy in [0, 1] of a majority-vote classifier
    that names the fixed factor from the code of least normalised variance.

    1. Encode ``num_variance_estimate`` random observations; ``s_d`` is each code's standard
       deviation. Codes with ``s_d < prune_std`` are collapsed and pruned.
    2. Each training point: pick a factor ``k`` at random, draw ``batch_size`` factor vectors
       sharing the value of factor ``k``, render and encode them, and vote for the active code
       ``d`` that minimises the batch variance of ``z_d / s_d``.
    3. The classifier maps each code to the factor it got most votes from; ``train_accuracy`` is
       its accuracy on the training votes, ``eval_accuracy`` on ``num_eval`` fresh points.

    ``representation_fn(x [n, C, H, W]) -> [n, D]`` receives what ``ground_truth.render``
    returns (on its device; move it to the model's) and may return codes on any device; it is
    called without grad on at most ``chunk_size`` observations at a time.

    Returns ``train_accuracy``, ``eval_accuracy`` and ``num_active_dims`` (a float). When no code
    is active both accuracies are 0, as in disentanglement_lib, and a warning says why.

    Deviations from disentanglement_lib (both fix defects): its vote takes the argmin among the
    active codes but uses that position as an index into all codes, so as soon as one code is
    pruned votes land on the wrong codes; here the position is mapped back to the code's own
    index. Its ``num_active_dims`` is the number of all codes; here it is the number of active
    ones.
    """
    sizes = _check_ground_truth(ground_truth)
    _check_counts(num_train=num_train, num_eval=num_eval, chunk_size=chunk_size)
    check_int("batch_size", batch_size, 2, hint="a batch estimates a variance")
    check_int("num_variance_estimate", num_variance_estimate, 2, hint="it estimates a variance")
    num_factors = len(sizes)
    generator = torch.Generator().manual_seed(int(seed))

    factors = torch.as_tensor(ground_truth.sample_factors(num_variance_estimate, generator)).long()
    codes = _encode(representation_fn, ground_truth, factors, chunk_size)
    global_var = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_std
    active_idx = np.nonzero(active)[0]
    if len(active_idx) == 0:
        warnings.warn(
            f"factor_vae_score: no code has a standard deviation of at least {prune_std} "
            f"(largest: {np.sqrt(global_var.max()):.3g}); every code is collapsed, the score is "
            f"0.",
            stacklevel=2,
        )
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}

    def votes(num_points: int) -> np.ndarray:
        # All factors are drawn first, so the value does not depend on chunk_size.
        index, factors = _fixed_factor_batches(ground_truth, num_points, batch_size, num_factors,
                                               generator)
        out = np.zeros((num_factors, codes.shape[1]), dtype=np.int64)
        per_chunk = max(1, chunk_size // batch_size)
        for start in range(0, num_points, per_chunk):
            p = min(per_chunk, num_points - start)
            f = factors[start * batch_size: (start + p) * batch_size]
            z = _encode(representation_fn, ground_truth, f, chunk_size)
            local_var = z.reshape(p, batch_size, -1).var(axis=1, ddof=1)
            ratio = local_var[:, active_idx] / global_var[active_idx]
            dims = active_idx[np.argmin(ratio, axis=1)]  # the fix: back to the code's own index
            np.add.at(out, (index[start: start + p].numpy(), dims), 1)
        return out

    train_votes = votes(num_train)
    classifier = np.argmax(train_votes, axis=0)
    cols = np.arange(train_votes.shape[1])
    train_acc = train_votes[classifier, cols].sum() / train_votes.sum()
    eval_votes = votes(num_eval)
    eval_acc = eval_votes[classifier, cols].sum() / eval_votes.sum()
    return {
        "train_accuracy": float(train_acc),
        "eval_accuracy": float(eval_acc),
        "num_active_dims": float(len(active_idx)),
    }


def beta_vae_score(
    ground_truth: Any,
    representation_fn: RepresentationFn,
    seed: int = 0,
    batch_size: int = 64,
    num_train: int = 10000,
    num_eval: int = 5000,
    chunk_size: int = 4096,
) -> dict[str, float]:
    """BetaVAE score (Higgins et al. 2017): accuracy in [0, 1] of a linear classifier that names
    the fixed factor from code differences.

    Each point: pick a factor ``k`` at random, draw ``batch_size`` pairs of factor vectors that
    share the value of factor ``k`` within each pair, render and encode both sides, and take the
    feature vector ``mean_pairs |z_1 - z_2|`` ``[D]`` with label ``k``. A logistic regression is
    trained on ``num_train`` points and tested on ``num_eval`` fresh ones. The classifier is
    disentanglement_lib's ``LogisticRegression()`` under the scikit-learn it ran on (0.20:
    liblinear, one-vs-rest, ``C=1``), which tcx requests explicitly because newer scikit-learn
    defaults to a multinomial model.

    ``representation_fn`` as in :func:`factor_vae_score`. Returns ``train_accuracy`` and
    ``eval_accuracy``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    sizes = _check_ground_truth(ground_truth)
    _check_counts(batch_size=batch_size, num_train=num_train, num_eval=num_eval,
                  chunk_size=chunk_size)
    num_factors = len(sizes)
    if num_factors < 2:
        raise TcxError(
            "beta_vae_score needs at least two factors (it classifies which factor was fixed); "
            f"ground_truth has {num_factors}."
        )
    generator = torch.Generator().manual_seed(int(seed))

    def points(num_points: int) -> tuple[np.ndarray, np.ndarray]:
        # All factors are drawn first, so the value does not depend on chunk_size.
        index = torch.randint(num_factors, (num_points,), generator=generator)
        f1 = torch.as_tensor(ground_truth.sample_factors(num_points * batch_size, generator))
        f2 = torch.as_tensor(ground_truth.sample_factors(num_points * batch_size, generator))
        f1, f2 = f1.long(), f2.long().clone()
        rows = torch.arange(num_points * batch_size)
        fixed = index.repeat_interleave(batch_size)
        f2[rows, fixed] = f1[rows, fixed]
        feats = []
        per_chunk = max(1, chunk_size // (2 * batch_size))
        for start in range(0, num_points, per_chunk):
            p = min(per_chunk, num_points - start)
            sl = slice(start * batch_size, (start + p) * batch_size)
            z = _encode(representation_fn, ground_truth, torch.cat([f1[sl], f2[sl]]), chunk_size)
            z1, z2 = z[: p * batch_size], z[p * batch_size:]
            feats.append(np.abs(z1 - z2).reshape(p, batch_size, -1).mean(axis=1))
        return np.concatenate(feats), index.numpy()

    x_train, y_train = points(num_train)
    if len(np.unique(y_train)) < 2:
        raise TcxError(
            f"num_train={num_train} points all fixed the same factor; use more training points."
        )
    clf = LogisticRegression(solver="liblinear", random_state=int(seed))
    if len(np.unique(y_train)) > 2:
        clf = OneVsRestClassifier(clf)
    clf.fit(x_train, y_train)
    train_acc = np.mean(clf.predict(x_train) == y_train)
    x_eval, y_eval = points(num_eval)
    eval_acc = np.mean(clf.predict(x_eval) == y_eval)
    return {"train_accuracy": float(train_acc), "eval_accuracy": float(eval_acc)}
