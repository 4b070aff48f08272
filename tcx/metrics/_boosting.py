"""Gradient-boosted trees for DCI: scikit-learn's booster, exact, compiled and batched.

This is ``sklearn.ensemble.GradientBoostingClassifier()`` with its default settings (the
classifier disentanglement_lib's DCI trains per factor), re-implemented so that the trees of
every class of every factor are grown together by one compiled (numba) pass per tree level:
log-loss with prior initialisation, 100 stages, learning rate 0.1, depth-3 regression trees with
exact Friedman-MSE splits on the codes cast to float32, one Newton step per leaf, and
impurity-decrease feature importances (what ``feature_importances_`` returns).

It matches scikit-learn up to rounding; exact ties between features are broken by a random
priority seeded by ``(seed, factor)``. Histograms (LightGBM-style binning) were tried first and
rejected: faster, but not the same classifier.

Details (every setting, the differences, why not histograms): docs/metrics.md#the-booster-tcxmetrics_boostingpy
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit
from tcx.validation import check_int

__all__ = ["fit_boosted_trees", "BoostedTreesResult"]

FEATURE_THRESHOLD = 1e-7  # scikit-learn's: values closer than this are not split apart
TIE_JITTER = 1e-12  # relative; only reorders splits whose gains are equal to ~1e-12


class BoostedTreesResult:
    """``importances`` ``[D, K]`` (each column sums to 1, or is all zero when no tree of that
    factor split), ``accuracy_train`` and ``accuracy_test`` ``[K]``."""

    def __init__(self, importances: np.ndarray, accuracy_train: np.ndarray,
                 accuracy_test: np.ndarray):
        self.importances = importances
        self.accuracy_train = accuracy_train
        self.accuracy_test = accuracy_test


# ---------------------------------------------------------------------------- compiled kernels


@njit(cache=True, nogil=True, boundscheck=False)
def _scan_chunk(xs, order, distinct, node, resid, width, t0, t1, n_node, s_node, jitter,
                best_num, best_den, best_feat, best_thr):
    """Best split of every node of trees ``t0 .. t1 - 1``: one pass per feature over the
    samples in increasing order of that feature, the trees of the chunk side by side.

    The score of a split with ``c`` of the node's ``n`` samples (residual sum ``S``) on the left
    (residual sum ``s``) is ``(n s - c S)^2 / (c (n - c)) = n * (squared-error reduction)``; it
    is kept as a fraction ``num / den`` to avoid a division per candidate. Within a feature the
    first best threshold wins (as in scikit-learn). ``distinct[d]``: consecutive values of
    feature ``d`` all differ by more than ``FEATURE_THRESHOLD``, so every position is a
    candidate and the node's previous value need not be tracked during the scan.
    """
    n_feat, n = xs.shape
    nt = t1 - t0
    sl = np.empty((width, nt))
    nl = np.empty((width, nt))
    last = np.empty((width, nt))
    bn = np.empty((width, nt))
    bd = np.empty((width, nt))
    bf = np.empty((width, nt))
    bk = np.empty((width, nt))
    nn = np.empty((width, nt))
    ss = np.empty((width, nt))
    jit = np.empty((width, nt))
    for w in range(width):
        for t in range(nt):
            bn[w, t] = -1.0
            bd[w, t] = 1.0
            bf[w, t] = 0.0
            bk[w, t] = -1.0
            nn[w, t] = n_node[t0 + t, w]
            ss[w, t] = s_node[t0 + t, w]
    for d in range(n_feat):
        sl[:] = 0.0
        nl[:] = 0.0
        last[:] = -np.inf
        for w in range(width):
            for t in range(nt):
                jit[w, t] = 1.0 + TIE_JITTER * jitter[t0 + t, w, d]
        fd = float(d)
        if distinct[d]:
            for k in range(n):
                i = order[d, k]
                fk = float(k)
                nrow = node[i, t0:t1]
                rrow = resid[i, t0:t1]
                for w in range(width):
                    slw = sl[w]
                    nlw = nl[w]
                    bnw = bn[w]
                    bdw = bd[w]
                    bfw = bf[w]
                    bkw = bk[w]
                    nnw = nn[w]
                    ssw = ss[w]
                    jw = jit[w]
                    for t in range(nt):
                        m = nrow[t] == w
                        c = nlw[t]
                        diff = nnw[t] * slw[t] - c * ssw[t]
                        num = diff * diff * jw[t]
                        den = c * (nnw[t] - c)
                        upd = m & (c > 0.0) & (num * bdw[t] > bnw[t] * den)
                        bnw[t] = num if upd else bnw[t]
                        bdw[t] = den if upd else bdw[t]
                        bfw[t] = fd if upd else bfw[t]
                        bkw[t] = fk if upd else bkw[t]
                        slw[t] = slw[t] + (rrow[t] if m else 0.0)
                        nlw[t] = c + (1.0 if m else 0.0)
        else:
            for k in range(n):
                i = order[d, k]
                x = xs[d, k]
                xm = x - FEATURE_THRESHOLD
                fk = float(k)
                nrow = node[i, t0:t1]
                rrow = resid[i, t0:t1]
                for w in range(width):
                    slw = sl[w]
                    nlw = nl[w]
                    lastw = last[w]
                    bnw = bn[w]
                    bdw = bd[w]
                    bfw = bf[w]
                    bkw = bk[w]
                    nnw = nn[w]
                    ssw = ss[w]
                    jw = jit[w]
                    for t in range(nt):
                        m = nrow[t] == w
                        c = nlw[t]
                        diff = nnw[t] * slw[t] - c * ssw[t]
                        num = diff * diff * jw[t]
                        den = c * (nnw[t] - c)
                        upd = m & (c > 0.0) & (xm > lastw[t]) & (num * bdw[t] > bnw[t] * den)
                        bnw[t] = num if upd else bnw[t]
                        bdw[t] = den if upd else bdw[t]
                        bfw[t] = fd if upd else bfw[t]
                        bkw[t] = fk if upd else bkw[t]
                        slw[t] = slw[t] + (rrow[t] if m else 0.0)
                        nlw[t] = c + (1.0 if m else 0.0)
                        lastw[t] = x if m else lastw[t]
    for w in range(width):
        for t in range(nt):
            best_num[t0 + t, w] = bn[w, t]
            best_den[t0 + t, w] = bd[w, t]
            d = int(bf[w, t])
            best_feat[t0 + t, w] = d
            k = int(bk[w, t])
            if k < 0:
                best_thr[t0 + t, w] = np.inf
                continue
            # the threshold: midway between the node's value before position k and position k
            kk = k - 1
            while node[order[d, kk], t0 + t] != w:
                kk -= 1
            best_thr[t0 + t, w] = 0.5 * xs[d, kk] + 0.5 * xs[d, k]


@njit(cache=True, nogil=True)
def _gradients(raw, y_onehot, group_first, group_size, resid, hess):
    """Negative gradient ``y - p`` and ``p (1 - p)`` of the log-loss for raw scores ``[N, T]``:
    a softmax over each multiclass factor's columns, a sigmoid for a binary factor's one."""
    n = raw.shape[0]
    for i in range(n):
        for g in range(group_first.shape[0]):
            first = group_first[g]
            size = group_size[g]
            if size == 1:
                p = 1.0 / (1.0 + np.exp(-raw[i, first]))
                resid[i, first] = y_onehot[i, first] - p
                hess[i, first] = p * (1.0 - p)
            else:
                top = raw[i, first]
                for j in range(first + 1, first + size):
                    top = max(top, raw[i, j])
                total = 0.0
                for j in range(first, first + size):
                    e = np.exp(raw[i, j] - top)
                    hess[i, j] = e
                    total += e
                for j in range(first, first + size):
                    p = hess[i, j] / total
                    resid[i, j] = y_onehot[i, j] - p
                    hess[i, j] = p * (1.0 - p)


@njit(cache=True, nogil=True)
def _node_stats(node, resid, width, n_node, s_node):
    n, n_trees = resid.shape
    n_node[:] = 0.0
    s_node[:] = 0.0
    for i in range(n):
        for t in range(n_trees):
            w = node[i, t]
            n_node[t, w] += 1.0
            s_node[t, w] += resid[i, t]


@njit(cache=True, nogil=True)
def _route(node, x, split, feat, thr):
    """Send every sample of every tree to the left (``x <= thr``) or right child of its node;
    a node that does not split sends everything left."""
    n, n_trees = node.shape
    for i in range(n):
        for t in range(n_trees):
            w = node[i, t]
            right = split[t, w] and x[i, feat[t, w]] > thr[t, w]
            node[i, t] = 2 * w + (1 if right else 0)


@njit(cache=True, nogil=True)
def _leaf_sums(node, resid, hess, n_leaves, num, den):
    n, n_trees = resid.shape
    num[:] = 0.0
    den[:] = 0.0
    for i in range(n):
        for t in range(n_trees):
            leaf = node[i, t]
            num[t, leaf] += resid[i, t]
            den[t, leaf] += hess[i, t]


@njit(cache=True, nogil=True)
def _add_leaf_values(raw, node, value):
    n, n_trees = raw.shape
    for i in range(n):
        for t in range(n_trees):
            raw[i, t] += value[t, node[i, t]]


# ---------------------------------------------------------------------------- the booster


def _encode_labels(y_train: np.ndarray, y_test: np.ndarray):
    classes, enc_train = np.unique(y_train, return_inverse=True)
    pos = np.clip(np.searchsorted(classes, y_test), 0, len(classes) - 1)
    enc_test = np.where(classes[pos] == y_test, pos, -1)  # a class unseen in training: never right
    return len(classes), enc_train.reshape(-1), enc_test


def _predict(raw_block: np.ndarray, n_classes: int) -> np.ndarray:
    if n_classes == 2:
        return (raw_block[:, 0] > 0).astype(np.int64)
    return np.argmax(raw_block, axis=1)


def fit_boosted_trees(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    n_estimators: int = 100,
    learning_rate: float = 0.1,
    max_depth: int = 3,
    seed: int = 0,
    n_jobs: int | None = None,
) -> BoostedTreesResult:
    """Fit one boosted classifier per factor (column of ``y_train``) on ``x_train`` ``[N, D]``.

    Returns the importance matrix and the train and test accuracies
    (see docs/metrics.md#the-booster-tcxmetrics_boostingpy).
    ``n_jobs``: threads (default ``torch.get_num_threads()``); the result does not depend on it.
    """
    check_int("max_depth", max_depth, 1, 7)
    n, d = x_train.shape
    n_test = x_test.shape[0]
    n_factors = y_train.shape[1]
    # scikit-learn's trees work on float32 features
    xf = np.ascontiguousarray(x_train, dtype=np.float32).astype(np.float64)
    xf_test = np.ascontiguousarray(x_test, dtype=np.float32).astype(np.float64)
    order = np.ascontiguousarray(np.argsort(xf, axis=0, kind="stable").T)  # [D, N]
    xs = np.ascontiguousarray(np.take_along_axis(xf, order.T, axis=0).T)  # sorted values

    groups = []  # (first tree, number of trees, number of classes) per factor
    y_cols, shrink, raw_init = [], [], []
    enc_train = np.empty((n, n_factors), dtype=np.int64)
    enc_test = np.empty((n_test, n_factors), dtype=np.int64)
    start = 0
    for k in range(n_factors):
        c, enc_train[:, k], enc_test[:, k] = _encode_labels(y_train[:, k], y_test[:, k])
        # scikit-learn's prior initialisation (DummyClassifier(strategy="prior"), clipped)
        prior = np.bincount(enc_train[:, k], minlength=c) / n
        prior = np.clip(prior, np.finfo(np.float32).eps, 1 - np.finfo(np.float32).eps)
        if c == 2:
            y_cols.append((enc_train[:, k] == 1).astype(np.float64)[:, None])
            raw_init.append(np.log(prior[1] / (1 - prior[1]))[None])
            shrink.append(np.ones(1))
            t = 1
        else:
            y_cols.append((enc_train[:, k][:, None] == np.arange(c)[None, :]).astype(np.float64))
            raw_init.append(np.log(prior))
            shrink.append(np.full(c, (c - 1) / c))
            t = c
        groups.append((start, t, c))
        start += t
    n_trees = start
    y_onehot = np.concatenate(y_cols, axis=1)  # [N, T]
    shrink = np.concatenate(shrink)
    raw = np.tile(np.concatenate(raw_init)[None, :], (n, 1))
    raw_test = np.tile(np.concatenate(raw_init)[None, :], (n_test, 1))
    rngs = [np.random.default_rng([seed, k]) for k in range(n_factors)]

    if n_jobs is None:
        n_jobs = torch.get_num_threads()
    # One chunk of trees per thread (the trees of a chunk are scanned side by side, in SIMD);
    # the compiled kernels release the GIL. Python threads rather than numba's parallel
    # backends, whose OpenMP pool fights torch's for the cores.
    n_jobs = max(1, min(int(n_jobs), n_trees))
    pool = ThreadPoolExecutor(max_workers=n_jobs) if n_jobs > 1 else None
    try:
        importance = _boost(xs, order, xf, xf_test, y_onehot, raw, raw_test, groups, shrink,
                            rngs, n_estimators, learning_rate, max_depth, n_jobs, pool)
    finally:
        if pool is not None:
            pool.shutdown()

    importances = np.zeros((d, n_factors))
    acc_train = np.empty(n_factors)
    acc_test = np.empty(n_factors)
    for k, (first, t, c) in enumerate(groups):
        imp = importance[first: first + t].sum(axis=0)
        total = imp.sum()
        importances[:, k] = imp / total if total > 0 else 0.0
        acc_train[k] = np.mean(_predict(raw[:, first: first + t], c) == enc_train[:, k])
        acc_test[k] = np.mean(_predict(raw_test[:, first: first + t], c) == enc_test[:, k])
    return BoostedTreesResult(importances, acc_train, acc_test)


def _boost(xs, order, xf, xf_test, y_onehot, raw, raw_test, groups, shrink, rngs, n_estimators,
           learning_rate, max_depth, n_chunks, pool):
    """The boosting loop; updates ``raw`` and ``raw_test`` in place, returns the importance
    (unnormalised) ``[T, D]`` of every tree column."""
    n, n_trees = raw.shape
    d = xs.shape[0]
    n_leaves = 2 ** max_depth
    width_max = 2 ** (max_depth - 1)
    distinct = np.all(np.diff(xs, axis=1) > FEATURE_THRESHOLD, axis=1)
    importance = np.zeros((n_trees, d))
    n_node = np.empty((n_trees, width_max))
    s_node = np.empty((n_trees, width_max))
    best_num = np.empty((n_trees, width_max))
    best_den = np.empty((n_trees, width_max))
    best_feat = np.empty((n_trees, width_max), dtype=np.int64)
    best_thr = np.empty((n_trees, width_max))
    leaf_num = np.empty((n_trees, n_leaves))
    leaf_den = np.empty((n_trees, n_leaves))
    tree_rows = np.arange(n_trees)[:, None]
    group_first = np.array([g[0] for g in groups], dtype=np.int64)
    group_size = np.array([g[1] for g in groups], dtype=np.int64)
    resid = np.empty((n, n_trees))
    hess = np.empty((n, n_trees))
    for _ in range(n_estimators):
        _gradients(raw, y_onehot, group_first, group_size, resid, hess)
        node = np.zeros((n, n_trees), dtype=np.uint8)
        node_test = np.zeros((xf_test.shape[0], n_trees), dtype=np.uint8)
        for level in range(max_depth):
            width = 2 ** level
            nn, sn = n_node[:, :width], s_node[:, :width]
            bn, bd = best_num[:, :width], best_den[:, :width]
            bf, bt = best_feat[:, :width], best_thr[:, :width]
            _node_stats(node, resid, width, n_node, s_node)
            jitter = np.concatenate(
                [r.random((t, width, d)) for r, (_, t, _) in zip(rngs, groups)], axis=0)
            args = (xs, order, distinct, node, resid, width)
            rest = (np.ascontiguousarray(nn), np.ascontiguousarray(sn), jitter, best_num,
                    best_den, best_feat, best_thr)
            bounds = [(c * n_trees // n_chunks, (c + 1) * n_trees // n_chunks)
                      for c in range(n_chunks)]
            if pool is None:
                _scan_chunk(*args, 0, n_trees, *rest)
            else:
                # the pool finishes before the loop moves on, so binding args and rest is safe
                list(pool.map(lambda b, a=args, r=rest: _scan_chunk(*a, b[0], b[1], *r), bounds))
            # A node splits when some split reduces the squared error.
            split = bn > 0.0
            with np.errstate(divide="ignore", invalid="ignore"):
                # squared-error reduction of the split (num / den / n_node), over N
                gain = np.where(split, bn / bd / np.maximum(nn, 1.0), 0.0) / n
            np.add.at(importance, (np.broadcast_to(tree_rows, bf.shape), bf), gain)
            split_c = np.ascontiguousarray(split)
            feat_c = np.ascontiguousarray(bf)
            thr_c = np.ascontiguousarray(bt)
            _route(node, xf, split_c, feat_c, thr_c)
            _route(node_test, xf_test, split_c, feat_c, thr_c)
        _leaf_sums(node, resid, hess, n_leaves, leaf_num, leaf_den)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            value = leaf_num / leaf_den
        value = np.where(np.isfinite(value), value, 0.0) * shrink[:, None] * learning_rate
        _add_leaf_values(raw, node, value)
        _add_leaf_values(raw_test, node_test, value)
    return importance
