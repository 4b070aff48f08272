"""Input checks shared by the metric functions (docs/design.md#conventions: bad input gets a clear
error at the boundary, naming the argument, the value and the fix).

Every public metric accepts torch tensors (any device, with or without grad) and numpy arrays
(or anything ``numpy.asarray`` takes). Codes become a float numpy array ``[N, D]`` in their own
floating dtype (float32 stays float32, so the histogram discretisation sees exactly the values
disentanglement_lib would see for a float32 representation); factors become an int64 array
``[N, K]``. A 1-D factor array ``[N]`` (a class label) is read as ``[N, 1]``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from tcx.errors import TcxError

__all__ = ["as_codes", "as_factors", "check_same_n", "check_test_set", "to_numpy"]


def to_numpy(x: Any, name: str) -> np.ndarray:
    """``x`` as a numpy array (a torch tensor is detached and moved to the CPU first)."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        return x.cpu().numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TcxError(
            f"{name} must be a torch tensor or a numpy array, got {type(x).__name__}: {exc}"
        ) from exc


def as_codes(codes: Any, name: str = "codes", min_dims: int = 1) -> np.ndarray:
    """Validate a code matrix ``[N, D]``: 2-D, real, finite, at least 2 rows, ``D >= min_dims``.

    Returns a float numpy array (float32 and float64 keep their dtype, anything else becomes
    float64).
    """
    arr = to_numpy(codes, name)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.number)):
        raise TcxError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if np.iscomplexobj(arr):
        raise TcxError(f"{name} must hold real numbers, got dtype {arr.dtype}.")
    if arr.ndim != 2:
        raise TcxError(
            f"{name} must be a 2-D array [N, D] (one row per sample, one column per code), got "
            f"shape {tuple(arr.shape)}; reshape it, e.g. codes.reshape(N, -1)."
        )
    n, d = arr.shape
    if n < 2:
        raise TcxError(f"{name} must have at least 2 samples (rows), got shape {(n, d)}.")
    if d < min_dims:
        raise TcxError(
            f"{name} has D={d} code(s), but this metric needs at least {min_dims} codes "
            f"(it compares codes with each other); pass a representation with D >= {min_dims}."
        )
    if arr.dtype not in (np.float32, np.float64):
        arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        row, col = (int(v) for v in bad[0])
        raise TcxError(
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf), the first at row {row}, "
            f"code {col} ({arr[row, col]}); drop those samples or fix the encoder before scoring."
        )
    return arr


def as_factors(
    factors: Any,
    name: str = "factors",
    discrete: bool = True,
    require_varying: bool = True,
) -> np.ndarray:
    """Validate a factor matrix ``[N, K]`` (a 1-D ``[N]`` label becomes ``[N, 1]``).

    ``discrete``: the values must be integers (any integer dtype, or floats with integer values);
    returns int64. Otherwise floats are allowed and float64 is returned.
    ``require_varying``: every factor must take at least two distinct values (a constant factor
    has zero entropy, so MIG divides by zero and no classifier can be trained on it).
    """
    arr = to_numpy(factors, name)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise TcxError(
            f"{name} must be a 2-D array [N, K] of factor values (or a 1-D [N] class label), got "
            f"shape {tuple(arr.shape)}."
        )
    n, k = arr.shape
    if k < 1:
        raise TcxError(
            f"{name} has shape {(n, k)}: no factors. These metrics need ground-truth factors; "
            f"data without factors (an empty [N, 0] label) cannot be scored."
        )
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TcxError(f"{name} must hold numbers, got dtype {arr.dtype}.")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            bad = np.argwhere(~np.isfinite(arr))[0]
            raise TcxError(
                f"{name} contains a non-finite value at row {int(bad[0])}, factor {int(bad[1])}."
            )
        if discrete:
            if not np.all(arr == np.round(arr)):
                bad = np.argwhere(arr != np.round(arr))[0]
                raise TcxError(
                    f"{name} must hold integer factor values (indices of discrete factors), but "
                    f"row {int(bad[0])}, factor {int(bad[1])} is {arr[bad[0], bad[1]]}; pass the "
                    f"factor indices (e.g. a LongTensor), not continuous values."
                )
            arr = arr.astype(np.int64)
        else:
            arr = arr.astype(np.float64)
    else:
        arr = arr.astype(np.int64) if discrete else arr.astype(np.float64)
    if require_varying:
        for j in range(k):
            col = arr[:, j]
            if np.all(col == col[0]):
                raise TcxError(
                    f"{name}[:, {j}] (factor {j}) takes only one value ({col[0]}) over the {n} "
                    f"samples: a constant factor carries no information to score against. Drop "
                    f"factor {j}, or sample more data so that it varies."
                )
    return arr


def check_same_n(codes: np.ndarray, factors: np.ndarray, codes_name: str = "codes",
                 factors_name: str = "factors") -> None:
    """Codes and factors must describe the same samples."""
    if codes.shape[0] != factors.shape[0]:
        raise TcxError(
            f"{codes_name} and {factors_name} must have the same number of samples N (rows), got "
            f"{codes_name} of shape {tuple(codes.shape)} and {factors_name} of shape "
            f"{tuple(factors.shape)}; pass the factors of exactly the encoded samples."
        )


def check_test_set(codes_train: np.ndarray, factors_train: np.ndarray, codes_test: np.ndarray,
                   factors_test: np.ndarray) -> None:
    """The test set must have the train set's number of codes and factors."""
    if codes_test.shape[1] != codes_train.shape[1]:
        raise TcxError(
            f"codes_test has D={codes_test.shape[1]} codes but codes_train has "
            f"D={codes_train.shape[1]}; encode both sets with the same representation."
        )
    if factors_test.shape[1] != factors_train.shape[1]:
        raise TcxError(
            f"factors_test has K={factors_test.shape[1]} factors but factors_train has "
            f"K={factors_train.shape[1]}; pass the same factors for both sets."
        )
