"""The CorEx explanation of an encoder: ``I(X_i; Z_j)`` for every input and latent, in nats.

``input_information(x, mean, log_var)`` estimates each ``I(X_i; Z_j)`` from the Gaussian
posteriors of ``N`` data points, as mixtures of those posteriors (docs/math.md#input-information):
exact for the empirical data up to Monte Carlo, and never more than the latent's own information
``I(Z_j; X)`` (nor its rate). Real-valued inputs are binned by quantiles first. ``Explanation``
holds the matrix, the latent that explains each input (or none), the total correlation each latent
explains, and writes ``input_information.csv``. ``explain(model, x)`` encodes ``x`` and returns it;
``factor_information`` is the same estimate with factors or labels in place of inputs.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import Tensor

from tcx.estimators import rate_per_latent
from tcx.validation import check_int

__all__ = ["Explanation", "discretize_inputs", "input_information", "explain", "factor_information"]


def discretize_inputs(x, max_values: int = 16, bins: int = 8) -> tuple[Tensor, list[int]]:
    """Each column of ``x`` ``[N, n]`` as integer levels ``[N, n]`` (long) and its number of levels.

    A column with at most ``max_values`` distinct values keeps them as its levels (binary, counts,
    categories); any other is cut at its ``k / bins`` quantiles (``k = 1 .. bins - 1``, repeated
    edges merged), so every bin holds about ``N / bins`` points. A function of ``X_i`` carries no
    more information than ``X_i``, so binning can only lower ``I(X_i; Z_j)``, never raise it.
    """
    x = torch.as_tensor(x).detach().reshape(len(x), -1).to(torch.float64).cpu()
    check_int("max_values", max_values, 1)
    check_int("bins", bins, 2)
    codes = torch.empty(x.shape, dtype=torch.long)
    levels: list[int] = []
    columns = x.T.contiguous()
    for i in range(x.shape[1]):
        column = columns[i]
        values, inverse = torch.unique(column, return_inverse=True)
        if len(values) <= max_values:
            codes[:, i] = inverse
            levels.append(len(values))
            continue
        edges = torch.unique(torch.quantile(column, torch.arange(1, bins, dtype=torch.float64) / bins))
        binned = torch.bucketize(column, edges, right=True)
        _, compact = torch.unique(binned, return_inverse=True)
        codes[:, i] = compact
        levels.append(int(compact.max()) + 1)
    return codes, levels


@dataclass
class Explanation:
    """What each latent explains of each input (all in nats).

    ``information [n, D]``: ``I(X_i; Z_j)``; ``latent_information [D]``: ``I(Z_j; X)``;
    ``rate [D]``: ``E_x KL_j``; ``input_entropy [n]``: ``H(X_i)`` of the (binned) inputs;
    ``assignment``: per input the latent that explains it, ``None`` when no latent tells at least
    ``max(min_nats, min_fraction * H(X_i))`` about it; ``tc_explained [D]``:
    ``sum_i I(X_i; Z_j) - I(Z_j; X)``, the total correlation of ``X`` that ``Z_j`` alone explains.
    """

    information: Tensor
    latent_information: Tensor
    rate: Tensor
    input_entropy: Tensor
    assignment: list[int | None]
    tc_explained: Tensor
    input_names: list[str] | None = None
    num_points: int = 0
    threshold: Tensor = field(default_factory=lambda: torch.zeros(0))

    @property
    def num_inputs(self) -> int:
        return self.information.shape[0]

    @property
    def latent_dim(self) -> int:
        return self.information.shape[1]

    def inputs_of(self, latent: int) -> list[int]:
        """The inputs ``latent`` explains, in order."""
        return [i for i, a in enumerate(self.assignment) if a == latent]

    def table(self) -> tuple[list[str], list[list]]:
        """``(columns, rows)`` of ``input_information.csv``: ``input``, ``name`` (when the inputs are
        named), ``latent`` (``z{j}``, empty when none), ``I_z0 .. I_z{D-1}``."""
        columns = ["input"] + (["name"] if self.input_names is not None else []) + ["latent"]
        columns += [f"I_z{j}" for j in range(self.latent_dim)]
        rows = []
        for i in range(self.num_inputs):
            row: list = [i] + ([self.input_names[i]] if self.input_names is not None else [])
            row.append("" if self.assignment[i] is None else f"z{self.assignment[i]}")
            row += [round(float(v), 6) for v in self.information[i]]
            rows.append(row)
        return columns, rows

    def csv_text(self) -> str:
        columns, rows = self.table()
        out = io.StringIO(newline="")
        writer = csv.writer(out)
        writer.writerow(columns)
        writer.writerows(rows)
        return out.getvalue()

    def latent_table(self) -> tuple[list[str], list[list]]:
        """Per latent: its rate, ``I(Z_j; X)``, the inputs it explains and ``tc_explained``."""
        columns = ["latent", "rate_nats", "info_nats", "num_inputs", "tc_explained_nats"]
        rows = [[f"z{j}", round(float(self.rate[j]), 6), round(float(self.latent_information[j]), 6),
                 len(self.inputs_of(j)), round(float(self.tc_explained[j]), 6)] for j in range(self.latent_dim)]
        return columns, rows


def _log_gaussian(z: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """``[S, N]`` log-densities of ``z [S]`` under ``N(mean_m, var_m)`` for every ``m`` of ``[N]``."""
    diff = z[:, None] - mean[None, :]
    return -0.5 * (diff * diff / var[None, :] + torch.log(var)[None, :] + math.log(2 * math.pi))


def input_information(
    x,
    mean,
    log_var,
    *,
    num_samples: int = 1,
    max_values: int = 16,
    bins: int = 8,
    min_fraction: float = 0.1,
    min_nats: float = 0.01,
    input_names: Sequence[str] | None = None,
    generator: torch.Generator | None = None,
    max_chunk_bytes: int = 256 * 2**20,
) -> Explanation:
    """``I(X_i; Z_j)`` of the ``N`` points ``x`` ``[N, ...]`` (flattened to ``[N, n]``) and their
    posteriors ``N(mean, exp(log_var))`` ``[N, D]``, taken as the whole dataset (docs/math.md#input-information).

    For each point ``num_samples`` codes ``z ~ p(z_j|x)`` are scored against the mixture of all
    ``N`` posteriors (``q(z_j)``) and of those with the same level of ``X_i`` (``q(z_j|X_i=v)``);
    ``I(X_i; Z_j)`` is the mean of ``log q(z_j|X_i=v) - log q(z_j)``, and ``I(Z_j; X)`` the mean of
    ``log p(z_j|x) - log q(z_j)``. Each ``I(X_i; Z_j)`` is clipped to ``[0, min(I(Z_j;X), rate_j)]``
    (the data processing inequality and (5) of docs/math.md). Inputs are discretized by
    ``discretize_inputs(x, max_values, bins)``. The work is ``O(N^2 num_samples (D + sum of levels))``.
    """
    x = torch.as_tensor(x)
    mean = torch.as_tensor(mean).detach().to(torch.float64).cpu()
    log_var = torch.as_tensor(log_var).detach().to(torch.float64).cpu()
    if mean.dim() != 2 or mean.shape != log_var.shape:
        raise ValueError(f"input_information: mean and log_var must be [N, D] alike, got {tuple(mean.shape)} "
                         f"and {tuple(log_var.shape)}")
    n_points, d = mean.shape
    if x.shape[0] != n_points or n_points < 2:
        raise ValueError(f"input_information: x must hold the same N >= 2 points as the posteriors, got "
                         f"{x.shape[0]} inputs and {n_points} posteriors")
    check_int("num_samples", num_samples, 1)
    codes, levels = discretize_inputs(x, max_values=max_values, bins=bins)
    n_inputs = codes.shape[1]
    if input_names is not None and len(input_names) != n_inputs:
        raise ValueError(f"input_information: {len(input_names)} input_names for {n_inputs} inputs")
    offsets = torch.tensor([0] + levels[:-1], dtype=torch.long).cumsum(0)
    flat = codes + offsets[None, :]  # [N, n]: each input's level as a column of the one-hot matrix
    total = int(sum(levels))
    counts = torch.zeros(total, dtype=torch.float64).index_add_(0, flat.reshape(-1), torch.ones(flat.numel(), dtype=torch.float64))
    probs = counts / n_points
    entropy = torch.zeros(n_inputs, dtype=torch.float64).index_add_(
        0, torch.repeat_interleave(torch.arange(n_inputs), torch.tensor(levels)),
        torch.where(probs > 0, -probs * torch.log(probs.clamp_min(1e-300)), torch.zeros_like(probs)))
    onehot = torch.zeros(n_points, total, dtype=torch.float32)
    onehot.scatter_(1, flat, 1.0)
    log_counts = torch.log(counts.clamp_min(1.0))

    owners = torch.arange(n_points).repeat_interleave(num_samples)  # the point each scored code comes from
    info = torch.zeros(n_inputs, d, dtype=torch.float64)
    own_info = torch.zeros(d, dtype=torch.float64)
    chunk = max(1, max_chunk_bytes // (8 * n_points + 4 * (n_points + total) + 8 * n_inputs))
    var = log_var.exp()
    for j in range(d):
        eps = torch.randn(len(owners), generator=generator, dtype=torch.float64)
        z = mean[owners, j] + var[owners, j].sqrt() * eps
        for start in range(0, len(owners), chunk):
            rows = owners[start:start + chunk]
            log_p = _log_gaussian(z[start:start + chunk], mean[:, j], var[:, j])  # [c, N]
            top = log_p.amax(1, keepdim=True)
            weights = (log_p - top).exp_()
            log_q = weights.sum(1).log() + top.squeeze(1) - math.log(n_points)
            own = log_p.gather(1, rows[:, None]).squeeze(1)
            own_info[j] += (own - log_q).sum()
            sums = (weights.float() @ onehot).to(torch.float64)  # [c, total]: per level, the mixture's mass
            level = flat[rows]  # [c, n]
            mass = sums.gather(1, level).clamp_min(1e-300)
            log_qv = mass.log() + top - log_counts[level]
            info[:, j] += (log_qv - log_q[:, None]).sum(0)
    info /= len(owners)
    own_info = (own_info / len(owners)).clamp_min(0.0)
    rate = rate_per_latent(mean, log_var).to(torch.float64)
    cap = torch.minimum(own_info, rate)
    info = torch.minimum(info.clamp_min(0.0), cap[None, :])
    threshold = torch.clamp(min_fraction * entropy, min=min_nats)
    best, arg = info.max(1) if d else (torch.zeros(n_inputs), torch.zeros(n_inputs, dtype=torch.long))
    assignment = [int(a) if float(b) >= float(t) else None for a, b, t in zip(arg, best, threshold)]
    return Explanation(
        information=info, latent_information=own_info, rate=rate, input_entropy=entropy,
        assignment=assignment, tc_explained=info.sum(0) - own_info,
        input_names=None if input_names is None else [str(s) for s in input_names],
        num_points=n_points, threshold=threshold,
    )


def factor_information(factors, mean, log_var, *, num_samples: int = 1, max_values: int = 64, bins: int = 16,
                       generator: torch.Generator | None = None) -> Tensor:
    """``I(Z_j; Y_k)`` ``[D, K]`` in nats between each latent and each factor (``factors`` ``[N, K]``,
    or labels ``[N]`` as one column) of the ``N`` posteriors ``N(mean, exp(log_var))``.

    ``input_information`` with the factors in place of the inputs: the codes are drawn from the
    posteriors, so the posterior's noise counts, and each value is at most the latent's own
    ``I(Z_j; X)`` and its rate (a latent of rate 0 tells nothing of any factor, whatever its
    posterior means do). A factor of more than ``max_values`` levels is cut into ``bins`` quantile
    bins (which can only lower the value).
    """
    y = torch.as_tensor(factors)
    y = y.reshape(len(y), -1) if y.dim() != 1 else y[:, None]
    e = input_information(y, mean, log_var, num_samples=num_samples, max_values=max_values, bins=bins,
                          generator=generator)
    return e.information.T.contiguous()


@torch.no_grad()
def explain(model, x, *, batch_size: int = 512, input_names: Sequence[str] | None = None, seed: int = 0,
            **options) -> Explanation:
    """``input_information`` of a model's encoder on the data ``x`` ``[N, ...]`` (any tcx model:
    ``model.encode(x)`` returns the posterior with ``mean`` and ``log_var``); ``options`` go to
    ``input_information``. The model is put in eval mode for the encoding and restored after."""
    x = torch.as_tensor(x)
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        means, log_vars = [], []
        for chunk in x.split(batch_size):
            posterior = model.encode(chunk.to(device=device, dtype=dtype))
            means.append(posterior.mean.float().cpu())
            log_vars.append(posterior.log_var.float().cpu())
    finally:
        model.train(was_training)
    generator = torch.Generator().manual_seed(int(seed))
    return input_information(x.cpu(), torch.cat(means), torch.cat(log_vars), input_names=input_names,
                             generator=generator, **options)
