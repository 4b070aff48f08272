"""The linear SVM of SAP on one code, solved exactly and for all classes at once.

disentanglement_lib's SAP trains ``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")`` on a
single code per (code, factor) pair: liblinear's L2-regularised squared-hinge SVM, the intercept
regularised too, one-vs-rest. For class ``c`` against the rest it minimises, over ``(w, b)``,

    0.5 * (w^2 + b^2) + sum_i C_i * max(0, 1 - t_i (w x_i + b))^2,    t_i = +-1,

with class-balanced weights ``C_i``. The problem is strictly convex; where liblinear stops at a
gradient tolerance, a damped generalised Newton method runs here to near machine precision, each
step needing only prefix sums over the sorted codes and a binary search per class: O(C log N).

Details (the weights ``C_i``, why prefix sums suffice): docs/metrics.md#the-svm-tcxmetrics_svmpy
"""

from __future__ import annotations

import numpy as np

__all__ = ["svm_1d_accuracy"]


def _side_sums(prefix: np.ndarray, total: np.ndarray, xs: np.ndarray, thr: np.ndarray,
               below: np.ndarray) -> np.ndarray:
    """Sums ``[P, 3]`` (count, sum x, sum x^2) over the sorted samples with ``x < thr`` (where
    ``below``) or ``x > thr`` (elsewhere), from ``prefix [P, N + 1, 3]``."""
    p = np.arange(len(thr))
    lo = np.searchsorted(xs, thr, side="left")
    hi = np.searchsorted(xs, thr, side="right")
    under = prefix[p, lo]
    over = total - prefix[p, hi]
    return np.where(below[:, None], under, over)


def _active_sums(w, b, prefix, total, xs, sign):
    """Sums over the samples that violate the margin, for the positive (``sign=+1``: ``w x + b
    < 1``) or the negative side (``sign=-1``: ``w x + b > -1``)."""
    safe_w = np.where(w == 0.0, 1.0, w)
    thr = (sign - b) / safe_w
    below = (w > 0) if sign > 0 else (w < 0)
    sums = _side_sums(prefix, total, xs, thr, below)
    # w == 0: all samples of that side are active or none are
    all_active = (b < 1.0) if sign > 0 else (b > -1.0)
    return np.where((w == 0.0)[:, None], np.where(all_active[:, None], total, 0.0), sums)


def _objective(w, b, pos, neg, c_pos, c_neg):
    def part(s, sign):
        n0, s1, s2 = s[:, 0], s[:, 1], s[:, 2]
        sum_m = w * s1 + b * n0
        sum_m2 = w * w * s2 + 2 * w * b * s1 + b * b * n0
        return n0 - 2 * sign * sum_m + sum_m2  # sum (1 - sign m)^2

    return 0.5 * (w * w + b * b) + c_pos * part(pos, 1.0) + c_neg * part(neg, -1.0)


def _solve(xs, pre_pos, pre_neg, c_pos, c_neg, max_iter=100):
    """Minimise the squared-hinge objective of P problems sharing the sorted codes ``xs``;
    ``pre_pos`` / ``pre_neg`` ``[P, N + 1, 3]`` are the prefix sums of (1, x, x^2) over the
    positive / negative samples in sorted order."""
    n_prob = pre_pos.shape[0]
    w = np.zeros(n_prob)
    b = np.zeros(n_prob)
    tot_pos, tot_neg = pre_pos[:, -1], pre_neg[:, -1]

    def sums(w, b):
        return (_active_sums(w, b, pre_pos, tot_pos, xs, 1.0),
                _active_sums(w, b, pre_neg, tot_neg, xs, -1.0))

    pos, neg = sums(w, b)
    obj = _objective(w, b, pos, neg, c_pos, c_neg)
    active = np.ones(n_prob, dtype=bool)
    for _ in range(max_iter):
        if not active.any():
            break
        # gradient and generalised Hessian of the active problems
        gw = w + 2 * c_pos * (-(pos[:, 1] - w * pos[:, 2] - b * pos[:, 1])) \
            + 2 * c_neg * (neg[:, 1] + w * neg[:, 2] + b * neg[:, 1])
        gb = b + 2 * c_pos * (-(pos[:, 0] - w * pos[:, 1] - b * pos[:, 0])) \
            + 2 * c_neg * (neg[:, 0] + w * neg[:, 1] + b * neg[:, 0])
        hww = 1 + 2 * (c_pos * pos[:, 2] + c_neg * neg[:, 2])
        hwb = 2 * (c_pos * pos[:, 1] + c_neg * neg[:, 1])
        hbb = 1 + 2 * (c_pos * pos[:, 0] + c_neg * neg[:, 0])
        det = hww * hbb - hwb * hwb
        dw = (hbb * gw - hwb * gb) / det
        db = (hww * gb - hwb * gw) / det
        dw = np.where(active, dw, 0.0)
        db = np.where(active, db, 0.0)
        decrease = gw * dw + gb * db  # >= 0
        t = np.ones(n_prob)
        for _ in range(40):  # Armijo backtracking
            nw, nb = w - t * dw, b - t * db
            npos, nneg = sums(nw, nb)
            nobj = _objective(nw, nb, npos, nneg, c_pos, c_neg)
            bad = nobj > obj - 1e-4 * t * decrease + 1e-15 * np.abs(obj)
            bad &= active
            if not bad.any():
                break
            t = np.where(bad, t * 0.5, t)
        w, b, pos, neg, obj = nw, nb, npos, nneg, nobj
        step = np.maximum(np.abs(t * dw), np.abs(t * db))
        active &= step > 1e-12 * (1.0 + np.maximum(np.abs(w), np.abs(b)))
    return w, b


def svm_1d_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                    y_test: np.ndarray, C: float = 0.01) -> float:
    """Test accuracy of ``LinearSVC(C=C, class_weight="balanced")`` trained on the single
    feature ``x_train [N]`` to predict ``y_train [N]`` (see the module docstring)."""
    x_train = np.asarray(x_train, dtype=np.float64)
    x_test = np.asarray(x_test, dtype=np.float64)
    classes, y = np.unique(y_train, return_inverse=True)
    y = y.reshape(-1)
    n, n_classes = len(x_train), len(classes)
    counts = np.bincount(y, minlength=n_classes)
    weight = n / (n_classes * counts)  # class_weight="balanced"

    order = np.argsort(x_train, kind="stable")
    xs, ys = x_train[order], y[order]
    feats = np.stack([np.ones(n), xs, xs * xs], axis=1)  # [N, 3]
    if n_classes == 2:
        members = (ys == 1)[None, :]  # liblinear: the positive side is classes_[1]
        c_pos = C * weight[1:2]
        c_neg = C * weight[0:1]
    else:
        members = ys[None, :] == np.arange(n_classes)[:, None]  # [P, N]
        c_pos = C * weight
        c_neg = np.full(n_classes, C)
    pos_feats = members[:, :, None] * feats[None]  # [P, N, 3]
    prefix_pos = np.concatenate([np.zeros((len(members), 1, 3)),
                                 np.cumsum(pos_feats, axis=1)], axis=1)
    prefix_all = np.concatenate([np.zeros((1, 3)), np.cumsum(feats, axis=0)])[None]
    prefix_neg = prefix_all - prefix_pos
    w, b = _solve(xs, prefix_pos, prefix_neg, c_pos, c_neg)

    scores = x_test[:, None] * w[None, :] + b[None, :]
    if n_classes == 2:
        pred = classes[(scores[:, 0] > 0).astype(np.int64)]
    else:
        pred = classes[np.argmax(scores, axis=1)]
    return float(np.mean(pred == np.asarray(y_test)))
