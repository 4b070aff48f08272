"""Known-answer tests of tcx.metrics (issue items 1, 2 and 4).

Codes that are monotone functions of the factors score near 1, codes independent of the factors
near 0; MIG and DCI react to duplication and rotation and ignore permutation and rescaling; the
values agree with disentanglement_lib's definitions (re-derived here from numpy / scikit-learn);
the intervention scores are seeded; bad input is refused with a clear message.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from sklearn.metrics import mutual_info_score

import tcx.metrics as M

SIZES = (3, 4, 5)


def make_data(n=2000, sizes=SIZES, noise_dims=0, seed=0, noise=0.02):
    """Factors uniform over ``sizes``; code k a monotone (nonlinear) function of factor k plus a
    little noise, then ``noise_dims`` codes independent of everything."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, s, n) for s in sizes], axis=1)
    u = (f + 0.5) / np.array(sizes)
    z = np.exp(1.5 * u) + noise * rng.normal(size=f.shape)
    if noise_dims:
        z = np.concatenate([z, rng.normal(size=(n, noise_dims))], axis=1)
    return z, f


def independent_codes(n=2000, d=3, seed=1):
    return np.random.default_rng(seed).normal(size=(n, d))


def rotate(z, seed=3):
    """Standardise and rotate by a random orthogonal matrix (mixes every code into every one)."""
    zs = (z - z.mean(0)) / z.std(0)
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(z.shape[1], z.shape[1])))
    # make sure no column is (nearly) a single original code
    q = q @ np.linalg.qr(np.ones((z.shape[1], z.shape[1])) + np.eye(z.shape[1]))[0]
    return zs @ q


def split(z, f, frac=2 / 3):
    n = int(len(z) * frac)
    return z[:n], f[:n], z[n:], f[n:]


# ---------------------------------------------------------------- mutual information


def dlib_discretize(x, num_bins=20):
    """disentanglement_lib's _histogram_discretize, one code at a time."""
    out = np.zeros_like(x)
    for i in range(x.shape[1]):
        out[:, i] = np.digitize(x[:, i], np.histogram(x[:, i], num_bins)[1][:-1])
    return out


def dlib_mi(codes, factors, num_bins=20):
    d = dlib_discretize(codes, num_bins)
    m = np.zeros((codes.shape[1], factors.shape[1]))
    for i in range(codes.shape[1]):
        for j in range(factors.shape[1]):
            m[i, j] = mutual_info_score(factors[:, j], d[:, i])
    return m


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_mutual_info_matrix_matches_disentanglement_lib(dtype):
    z, f = make_data(noise_dims=2)
    z = z.astype(dtype)
    ours = M.mutual_info_matrix(torch.from_numpy(z), torch.from_numpy(f)).numpy()
    assert ours.shape == (5, 3)
    np.testing.assert_allclose(ours, dlib_mi(z, f), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(M.mutual_info_matrix(z, f, num_bins=7).numpy(),
                               dlib_mi(z, f, num_bins=7), rtol=1e-10, atol=1e-12)


def test_histogram_discretize_matches_numpy():
    z, _ = make_data(noise_dims=1)
    z[:5, 0] = z[:, 0].max()  # the maximum belongs to the last bin
    ours = M.histogram_discretize(z).numpy()
    np.testing.assert_array_equal(ours + 1, dlib_discretize(z))
    assert ours.min() == 0 and ours.max() == 19


def test_discrete_entropy_in_nats():
    f = np.repeat(np.arange(4), 25)[:, None]
    np.testing.assert_allclose(M.discrete_entropy(f).numpy(), [math.log(4)])
    _, f = make_data()
    ref = [mutual_info_score(f[:, j], f[:, j]) for j in range(f.shape[1])]
    np.testing.assert_allclose(M.discrete_entropy(f).numpy(), ref, rtol=1e-12)


# ---------------------------------------------------------------- MIG


def test_mig_known_answers():
    z, f = make_data()
    assert M.mig(z, f) > 0.9
    assert M.mig(independent_codes(), f) < 0.05
    # a duplicated code shares its factor's information equally: the gap is exactly 0
    assert M.mig(np.concatenate([z, z], axis=1), f) == pytest.approx(0.0, abs=1e-12)
    assert M.mig(rotate(z), f) < M.mig(z, f) - 0.3


def test_mig_matches_disentanglement_lib_formula():
    z, f = make_data(noise_dims=2, noise=0.3)
    m = dlib_mi(z, f)
    h = np.array([mutual_info_score(f[:, j], f[:, j]) for j in range(f.shape[1])])
    s = np.sort(m, axis=0)[::-1]
    assert M.mig(z, f) == pytest.approx(np.mean((s[0] - s[1]) / h), rel=1e-10)


def test_mig_invariances():
    z, f = make_data(noise_dims=2, noise=0.2)
    base = M.mig(z, f)
    perm = np.random.default_rng(0).permutation(z.shape[1])
    assert M.mig(z[:, perm], f) == pytest.approx(base, abs=1e-12)
    scaled = z * np.array([2.0, 0.5, 4.0, 1.0, 0.25])
    assert M.mig(scaled, f) == pytest.approx(base, abs=1e-12)


# ---------------------------------------------------------------- DCI


def test_dci_from_importance_known_answers():
    perfect = M.dci_from_importance(np.eye(3))
    assert perfect["disentanglement"] == pytest.approx(1.0, abs=1e-8)
    assert perfect["completeness"] == pytest.approx(1.0, abs=1e-8)
    uniform = M.dci_from_importance(np.ones((3, 3)))
    assert uniform["disentanglement"] == pytest.approx(0.0, abs=1e-8)
    assert uniform["completeness"] == pytest.approx(0.0, abs=1e-8)
    # one code for both factors: disentangled per code 0 but complete
    r = np.array([[1.0, 1.0], [0.0, 0.0]])
    out = M.dci_from_importance(r)
    assert out["disentanglement"] == pytest.approx(0.0, abs=1e-8)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-8)
    # as disentanglement_lib (scipy.stats.entropy with +1e-11)
    import scipy.stats

    r = np.random.default_rng(0).random((4, 3))
    per_code = 1 - scipy.stats.entropy(r.T + 1e-11, base=3)
    per_factor = 1 - scipy.stats.entropy(r + 1e-11, base=4)
    out = M.dci_from_importance(r)
    assert out["disentanglement"] == pytest.approx(np.sum(per_code * r.sum(1) / r.sum()))
    assert out["completeness"] == pytest.approx(np.sum(per_factor * r.sum(0) / r.sum()))


def test_dci_known_answers():
    z, f = make_data(n=900)
    good = M.dci(*split(z, f))
    assert good["disentanglement"] > 0.9
    assert good["completeness"] > 0.9
    assert good["informativeness_train"] > 0.98
    assert good["informativeness_test"] > 0.95
    rotated = M.dci(*split(rotate(z), f))
    assert rotated["disentanglement"] < good["disentanglement"] - 0.2
    indep = M.dci(*split(independent_codes(900), f))
    assert indep["disentanglement"] < 0.2
    assert indep["informativeness_test"] < 0.45


def test_dci_invariances():
    """Rescaling a code moves its thresholds with it: nothing changes. Permuting the codes
    changes only which of several exactly equally good splits wins a tie (scikit-learn draws
    those at random), a small effect."""
    z, f = make_data(n=600, noise_dims=1, noise=0.1)
    base = M.dci(*split(z, f))
    perm = np.array([3, 0, 2, 1])
    permuted = M.dci(*split(z[:, perm], f))
    scaled = M.dci(*split(z * np.array([2.0, 0.5, 4.0, 0.25]), f))
    for key in base:
        assert permuted[key] == pytest.approx(base[key], abs=0.01), key
        assert scaled[key] == pytest.approx(base[key], abs=1e-12), key


def test_dci_tcx_booster_agrees_with_sklearn():
    """tcx's booster against scikit-learn's GradientBoostingClassifier (disentanglement_lib's):
    the same trees up to exact ties (which scikit-learn breaks at random) and rounding."""
    z, f = make_data(n=360, sizes=(3, 4, 2), noise_dims=1, noise=0.1)
    args = split(z, f)
    ours_imp, ours_tr, ours_te = M.gbt_importance_matrix(*args)
    ref_imp, ref_tr, ref_te = M.gbt_importance_matrix(*args, booster="sklearn")
    assert np.abs(ours_imp.numpy() - ref_imp.numpy()).max() < 0.02
    np.testing.assert_allclose(ours_tr.numpy(), ref_tr.numpy(), atol=0.01)
    np.testing.assert_allclose(ours_te.numpy(), ref_te.numpy(), atol=0.03)
    ours, ref = M.dci_from_importance(ours_imp), M.dci_from_importance(ref_imp)
    for key in ours:
        assert ours[key] == pytest.approx(ref[key], abs=0.02), key


@pytest.mark.slow
def test_dci_tcx_booster_agrees_with_sklearn_on_larger_data():
    """More samples and classes; good, rotated and noisy codes."""
    z, f = make_data(n=3000, sizes=(3, 6, 10), noise_dims=2, noise=0.1)
    for codes in (z, rotate(z), z + 0.3 * independent_codes(3000, 5)):
        ours, ref = M.dci(*split(codes, f)), M.dci(*split(codes, f), booster="sklearn")
        for key in ours:
            assert ours[key] == pytest.approx(ref[key], abs=0.05), key


def test_dci_duplicated_code_shares_importance():
    """Exactly tied splits are broken at random, as scikit-learn does, so two copies of a code
    share its importance instead of the first copy taking all of it."""
    z, f = make_data(n=600, sizes=(3, 4))
    dup = np.concatenate([z[:, :1], z], axis=1)
    imp, _, _ = M.gbt_importance_matrix(*split(dup, f))
    assert imp[0, 0] > 0.25 and imp[1, 0] > 0.25
    assert imp[0, 0] + imp[1, 0] > 0.95


def test_dci_binary_factor_and_single_factor():
    z, f = make_data(n=600, sizes=(2,), noise_dims=1)
    out = M.dci(*split(z, f))
    assert out["disentanglement"] == pytest.approx(1.0)  # K = 1: every code is disentangled
    assert out["completeness"] > 0.9
    assert out["informativeness_test"] > 0.98


# ---------------------------------------------------------------- SAP


def test_sap_known_answers():
    """With discrete factors SAP is a gap in accuracy: for balanced binary factors a perfect code
    scores 1 and the next-best (useless) code chance, 0.5, so good codes give 0.5."""
    rng = np.random.default_rng(0)
    f = rng.integers(0, 2, size=(1500, 3))
    z = f + 0.05 * rng.normal(size=f.shape)
    assert M.sap(*split(z, f)) == pytest.approx(0.5, abs=0.05)
    assert M.sap(*split(independent_codes(1500), f)) < 0.05
    assert M.sap(*split(rotate(z), f)) < 0.2
    # continuous factors: R^2, 1 for a linear code, 0 for independent ones
    v = rng.normal(size=(1500, 2))
    codes = np.concatenate([v, rng.normal(size=(1500, 1))], axis=1)
    assert M.sap(codes, v, codes, v, continuous_factors=True) == pytest.approx(1.0, abs=0.01)


def test_sap_score_matrix_matches_disentanglement_lib():
    """tcx's exact solver against liblinear (LinearSVC) run to a tight tolerance: the same
    predictions; against LinearSVC's default tolerance: within a boundary point or two."""
    from sklearn.svm import LinearSVC

    rng = np.random.default_rng(1)
    z, f = make_data(n=900, noise_dims=1, noise=0.3)
    f = np.concatenate([f, rng.integers(0, 2, (len(f), 1))], axis=1)  # a binary factor too
    z = z * np.array([1.0, 30.0, 0.02, 1.0])
    zt, ft, ze, fe = split(z, f)
    ours = M.sap_score_matrix(zt, ft, ze, fe).numpy()
    for i in range(z.shape[1]):
        for j in range(f.shape[1]):
            tight = LinearSVC(C=0.01, class_weight="balanced", tol=1e-10, max_iter=100000)
            tight.fit(zt[:, i:i + 1], ft[:, j])
            assert ours[i, j] == np.mean(tight.predict(ze[:, i:i + 1]) == fe[:, j])
            default = LinearSVC(C=0.01, class_weight="balanced").fit(zt[:, i:i + 1], ft[:, j])
            ref = np.mean(default.predict(ze[:, i:i + 1]) == fe[:, j])
            assert ours[i, j] == pytest.approx(ref, abs=0.01)
    cont = M.sap_score_matrix(zt, ft.astype(float), ze, fe.astype(float),
                              continuous_factors=True).numpy()
    for i in range(z.shape[1]):
        for j in range(f.shape[1]):
            c = np.cov(zt[:, i], ft[:, j], ddof=1)
            assert cont[i, j] == pytest.approx(c[0, 1] ** 2 / (c[0, 0] * c[1, 1]), rel=1e-9)


# ---------------------------------------------------------------- modularity / explicitness


def test_modularity_from_mi_known_answers():
    assert M.modularity_from_mi(np.eye(3)) == pytest.approx(1.0)
    assert M.modularity_from_mi(np.ones((3, 3))) == pytest.approx(0.0)
    assert M.modularity_from_mi(np.array([[1.0, 0.5]])) == pytest.approx(0.75)
    assert M.modularity_from_mi(np.array([[0.0, 0.0], [1.0, 0.0]])) == pytest.approx(0.5)
    assert M.modularity_from_mi(np.array([[0.3], [0.2]])) == pytest.approx(1.0)


def test_modularity_explicitness_known_answers():
    z, f = make_data(n=1500)
    good = M.modularity_explicitness(*split(z, f))
    assert good["modularity"] > 0.95
    assert good["explicitness_train"] > 0.9
    assert good["explicitness_test"] > 0.9
    indep = M.modularity_explicitness(*split(independent_codes(1500), f))
    assert indep["explicitness_test"] < 0.6
    assert M.modularity_explicitness(*split(rotate(z), f))["modularity"] < 0.8


def test_explicitness_matches_disentanglement_lib_recipe():
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.preprocessing import MultiLabelBinarizer

    z, f = make_data(n=900, noise_dims=1, noise=0.3)
    zt, ft, ze, fe = split(z, f)
    mean, std = zt.mean(0), zt.std(0)
    tr, te = [], []
    for j in range(f.shape[1]):
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear")).fit((zt - mean) / std,
                                                                              ft[:, j])
        mlb = MultiLabelBinarizer()
        tr.append(roc_auc_score(mlb.fit_transform(ft[:, j:j + 1]),
                                clf.predict_proba((zt - mean) / std)))
        te.append(roc_auc_score(mlb.fit_transform(fe[:, j:j + 1]),
                                clf.predict_proba((ze - mean) / std)))
    ours = M.modularity_explicitness(zt, ft, ze, fe)
    assert ours["explicitness_train"] == pytest.approx(np.mean(tr), abs=1e-9)
    assert ours["explicitness_test"] == pytest.approx(np.mean(te), abs=1e-9)


# ---------------------------------------------------------------- IRS


def dlib_irs(z, f, q=0.99):
    fd = dlib_discretize(f.astype(np.float64)).astype(int)
    max_dev = np.max(np.abs(z - z.mean(0)), axis=0)
    cum = np.zeros((z.shape[1], f.shape[1]))
    for i in range(f.shape[1]):
        vals = np.unique(fd[:, i])
        for v in vals:
            m = fd[:, i] == v
            cum[:, i] += np.quantile(np.abs(z[m] - z[m].mean(0)), q, axis=0)
        cum[:, i] /= len(vals)
    s = (1 - cum / max_dev[:, None]).max(1)
    return np.average(s, weights=max_dev)


def test_irs_known_answers():
    z, f = make_data(sizes=(3, 4, 30))
    good = M.irs(z, f)
    assert good["irs"] > 0.9
    assert good["num_active_dims"] == 3.0
    assert good["irs"] == pytest.approx(dlib_irs(z, f), rel=1e-10)
    indep = M.irs(independent_codes(), f)
    assert indep["irs"] < 0.5
    z2 = np.concatenate([z, np.full((len(z), 1), 2.0)], axis=1)  # a constant code is dropped
    assert M.irs(z2, f) == good


# ---------------------------------------------------------------- unsupervised


def test_gaussian_scores_closed_form():
    rho = 0.6
    cov = np.array([[1.0, rho], [rho, 1.0]])
    # codes whose sample covariance is exactly cov: whitened noise, then coloured
    x = np.random.default_rng(1).normal(size=(50, 2))
    x = x - x.mean(0)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False))).T @ np.linalg.cholesky(cov).T
    assert M.gaussian_total_correlation(x) == pytest.approx(-0.5 * math.log(1 - rho**2), abs=1e-12)
    w2 = 4.0 - 2.0 * (math.sqrt(1 + rho) + math.sqrt(1 - rho))
    assert M.gaussian_wasserstein_correlation(cov) == pytest.approx(w2)
    # disentanglement_lib's form: 2 tr S - 2 tr sqrtm(S * diag(S)[:, None])
    import scipy.linalg

    a = np.random.default_rng(0).normal(size=(4, 4))
    s = a @ a.T + 0.5 * np.eye(4)
    ref = 2 * np.trace(s) - 2 * np.trace(scipy.linalg.sqrtm(s * np.diag(s)[:, None])).real
    assert M.gaussian_wasserstein_correlation(s) == pytest.approx(ref, rel=1e-8)


def test_unsupervised_known_answers():
    indep = M.unsupervised(independent_codes(20000, 4))
    assert indep["gaussian_total_correlation"] < 0.01
    assert indep["gaussian_wasserstein_correlation_norm"] < 0.01
    assert indep["mutual_info_score"] < 0.02
    rng = np.random.default_rng(0)
    x = rng.normal(size=20000)
    corr = np.stack([x, 0.8 * x + 0.6 * rng.normal(size=20000)], axis=1)
    out = M.unsupervised(corr)
    assert out["gaussian_total_correlation"] == pytest.approx(-0.5 * math.log(1 - 0.64), rel=0.05)
    assert out["mutual_info_score"] > 0.3
    # the mean off-diagonal MI is the codes-vs-codes mutual information matrix's
    zd = dlib_discretize(corr)
    assert out["mutual_info_score"] == pytest.approx(mutual_info_score(zd[:, 0], zd[:, 1]))
    dup = M.unsupervised(np.concatenate([corr, corr[:, :1]], axis=1))
    assert dup["gaussian_total_correlation"] == math.inf


# ---------------------------------------------------------------- intervention scores


class ToyGroundTruth:
    """Factors rendered as a [n, K, 1, 1] 'image' of their values."""

    factor_names = ("a", "b", "c")

    def __init__(self, sizes=(3, 4, 5)):
        self.factor_sizes = sizes

    def sample_factors(self, num, generator=None):
        return torch.stack(
            [torch.randint(s, (num,), generator=generator) for s in self.factor_sizes], dim=1)

    def render(self, factors):
        return factors.float()[:, :, None, None]


def good_rep(x):
    return torch.exp(x.flatten(1) / 3.0)


def collapsed_first_rep(x):
    z = good_rep(x)
    return torch.cat([torch.full((len(z), 1), 0.5), z], dim=1)


def make_noise_rep(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return lambda x: torch.randn(x.shape[0], 3, generator=gen)


SMALL = dict(batch_size=16, num_train=300, num_eval=150)


def test_factor_vae_score_known_answers():
    gt = ToyGroundTruth()
    good = M.factor_vae_score(gt, good_rep, num_variance_estimate=1000, **SMALL)
    assert good["train_accuracy"] == pytest.approx(1.0)
    assert good["eval_accuracy"] == pytest.approx(1.0)
    assert good["num_active_dims"] == 3.0
    noise = M.factor_vae_score(gt, make_noise_rep(), num_variance_estimate=1000, **SMALL)
    assert noise["eval_accuracy"] < 0.6


@pytest.mark.parametrize("name", ["batch_size", "num_variance_estimate"])
def test_factor_vae_score_needs_two_points_for_a_variance(name):
    args = {**SMALL, "num_variance_estimate": 1000, name: 1}
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 2, got 1 .*variance"):
        M.factor_vae_score(ToyGroundTruth(), good_rep, **args)


def test_factor_vae_score_maps_votes_past_pruned_codes():
    """disentanglement_lib's defect: with code 0 pruned, argmin positions among the active codes
    were used as code indices, putting every vote on the wrong code."""
    gt = ToyGroundTruth()
    out = M.factor_vae_score(gt, collapsed_first_rep, num_variance_estimate=1000, **SMALL)
    assert out["num_active_dims"] == 3.0
    assert out["eval_accuracy"] == pytest.approx(1.0)


def test_factor_vae_score_no_active_code():
    gt = ToyGroundTruth()
    with pytest.warns(UserWarning, match="collapsed"):
        out = M.factor_vae_score(gt, lambda x: torch.zeros(len(x), 2), num_variance_estimate=100,
                                 **SMALL)
    assert out == {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0.0}


def test_beta_vae_score_known_answers():
    gt = ToyGroundTruth()
    good = M.beta_vae_score(gt, good_rep, **SMALL)
    assert good["train_accuracy"] > 0.95
    assert good["eval_accuracy"] > 0.95
    noise = M.beta_vae_score(gt, make_noise_rep(), **SMALL)
    assert noise["eval_accuracy"] < 0.6


def test_intervention_scores_are_seeded():
    gt = ToyGroundTruth()

    def rep(x):  # deterministic but imperfect: mixes factors
        v = x.flatten(1)
        return torch.stack([v[:, 0] + 0.5 * v[:, 1], v[:, 1] - 0.3 * v[:, 2], v[:, 2]], dim=1)

    kw = dict(batch_size=8, num_train=100, num_eval=50)
    a = M.factor_vae_score(gt, rep, seed=3, num_variance_estimate=300, **kw)
    b = M.factor_vae_score(gt, rep, seed=3, num_variance_estimate=300, **kw)
    assert a == b
    c = M.beta_vae_score(gt, rep, seed=3, **kw)
    d = M.beta_vae_score(gt, rep, seed=3, **kw)
    assert c == d
    # chunking does not change the sampled data
    e = M.beta_vae_score(gt, rep, seed=3, chunk_size=16, **kw)
    assert e == c


def test_intervention_scores_refuse_bad_sources():
    with pytest.raises(ValueError, match="render"):
        M.factor_vae_score(object(), good_rep)
    with pytest.raises(ValueError, match=r"codes \[n, D\]"):
        M.beta_vae_score(ToyGroundTruth(), lambda x: x, **SMALL)
    with pytest.raises(ValueError, match="non-finite"):
        M.beta_vae_score(ToyGroundTruth(), lambda x: torch.full((len(x), 2), math.nan), **SMALL)


# ---------------------------------------------------------------- validation


FUNCS_ONE_SET = {
    "mig": lambda z, f: M.mig(z, f),
    "irs": lambda z, f: M.irs(z, f),
    "mutual_info_matrix": lambda z, f: M.mutual_info_matrix(z, f),
}
FUNCS_TWO_SETS = {
    "dci": lambda z, f: M.dci(z, f, z, f),
    "sap": lambda z, f: M.sap(z, f, z, f),
    "modularity_explicitness": lambda z, f: M.modularity_explicitness(z, f, z, f),
}
ALL = {**FUNCS_ONE_SET, **FUNCS_TWO_SETS}


@pytest.mark.parametrize("name", sorted(ALL))
def test_refuses_bad_input(name):
    fn = ALL[name]
    z, f = make_data(n=60)
    with pytest.raises(ValueError, match="same number of samples"):
        fn(z[:50], f)
    bad = z.copy()
    bad[7, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite.*row 7, code 1"):
        fn(bad, f)
    with pytest.raises(ValueError, match="2-D"):
        fn(z[:, :, None], f)
    if name != "mutual_info_matrix":
        const = f.copy()
        const[:, 2] = 1
        with pytest.raises(ValueError, match=r"factor 2\b.*only one value"):
            fn(z, const)
    with pytest.raises(ValueError, match="integer"):
        fn(z, f + 0.5)


@pytest.mark.parametrize("fn", [
    lambda z, f: M.mig(z, f),
    lambda z, f: M.dci(z, f, z, f),
    lambda z, f: M.sap(z, f, z, f),
    lambda z, f: M.unsupervised(z),
])
def test_refuses_fewer_than_two_codes(fn):
    z, f = make_data(n=60)
    with pytest.raises(ValueError, match="at least 2 codes"):
        fn(z[:, :1], f)


def test_accepts_torch_and_numpy_alike():
    z, f = make_data(n=500, noise_dims=1)
    assert M.mig(torch.from_numpy(z), torch.from_numpy(f)) == M.mig(z, f)
    assert M.mig(z, f[:, :1]) == M.mig(z, f[:, 0])  # a 1-D label is one factor
    assert M.irs(torch.from_numpy(z).float(), f)["irs"] == pytest.approx(M.irs(z, f)["irs"],
                                                                         rel=1e-5)


def test_test_set_shape_must_match():
    z, f = make_data(n=300)
    with pytest.raises(ValueError, match="codes_test has D=2"):
        M.sap(z, f, z[:, :2], f)
    with pytest.raises(ValueError, match="factors_test has K=2"):
        M.dci(z, f, z, f[:, :2])


# ---------------------------------------------------------------- torchmetrics classes


def batches(z, f, sizes=(100, 350, 50, 500)):
    start = 0
    for b in sizes:
        yield torch.from_numpy(z[start:start + b]), torch.from_numpy(f[start:start + b])
        start += b
    assert start == len(z)


def seeded_split(z, f, frac=2 / 3, seed=0):
    n = len(z)
    n_train = int(round(n * frac))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    return z[perm[:n_train]], f[perm[:n_train]], z[perm[n_train:]], f[perm[n_train:]]


def test_torchmetrics_classes_match_functions():
    z, f = make_data(n=1000, noise_dims=1, noise=0.2)
    cases = [
        (M.MIG(), lambda: M.mig(z, f)),
        (M.IRS(), lambda: M.irs(z, f)),
        (M.Unsupervised(), lambda: M.unsupervised(z)),
        (M.DCI(seed=1), lambda: M.dci(*seeded_split(z, f, seed=1), seed=1)),
        (M.SAP(), lambda: M.sap(*seeded_split(z, f))),
        (M.ModularityExplicitness(), lambda: M.modularity_explicitness(*seeded_split(z, f))),
    ]
    for metric, expected in cases:
        for zb, fb in batches(z, f):
            metric.update(zb, fb)
        got = metric.compute()
        want = expected()
        if isinstance(want, dict):
            assert set(got) == set(want)
            for key in want:
                assert float(got[key]) == pytest.approx(want[key], abs=1e-12), (metric, key)
        else:
            assert float(got) == pytest.approx(want, abs=1e-12), metric
        metric.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torchmetrics warns about compute before update
            with pytest.raises(ValueError, match="before any update"):
                metric.compute()


def test_torchmetrics_forward_only_accumulates():
    z, f = make_data(n=400, noise_dims=1)
    metric = M.MIG()
    assert metric(torch.from_numpy(z[:150]), torch.from_numpy(f[:150])) is None
    metric(torch.from_numpy(z[150:]), torch.from_numpy(f[150:]))
    assert float(metric.compute()) == pytest.approx(M.mig(z, f), abs=1e-12)


def test_torchmetrics_update_checks():
    metric = M.MIG()
    with pytest.raises(ValueError, match="same batch size"):
        metric.update(torch.zeros(4, 2), torch.zeros(3, 1, dtype=torch.long))
    metric.update(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="same D and K"):
        metric.update(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))
    unsup = M.Unsupervised()
    z = independent_codes(300)
    unsup.update(torch.from_numpy(z))
    assert float(unsup.compute()["gaussian_total_correlation"]) == pytest.approx(
        M.unsupervised(z)["gaussian_total_correlation"])


def test_torchmetrics_sync_gathers_states():
    """Under DDP, compute() all-gathers the list states (concatenated per process) and
    concatenates them in rank order: simulated here with a fake all_gather for two ranks."""
    z, f = make_data(n=900, noise_dims=1, noise=0.2)
    rank1 = M.DCI(seed=2)
    rank1.update(torch.from_numpy(z[500:]), torch.from_numpy(f[500:]))
    other = [torch.cat(rank1.codes), torch.cat(rank1.factors)]
    calls = iter(other)

    def fake_all_gather(tensor, group=None):
        return [tensor, next(calls)]

    rank0 = M.DCI(seed=2, dist_sync_fn=fake_all_gather, distributed_available_fn=lambda: True)
    rank0.update(torch.from_numpy(z[:200]), torch.from_numpy(f[:200]))
    rank0.update(torch.from_numpy(z[200:500]), torch.from_numpy(f[200:500]))
    got = rank0.compute()
    want = M.dci(*seeded_split(z, f, seed=2), seed=2)
    for key in want:
        assert float(got[key]) == pytest.approx(want[key], abs=1e-12), key
