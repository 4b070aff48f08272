"""What tcx needs of a datamodule, and ``check_datamodule``, which says what one lacks.

Any ``lightning.pytorch.LightningDataModule`` works with tcx's models and the ``tcx`` command
(``tcx fit --data my_package.MyDataModule``); no base class is needed. It must declare
``input_shape`` and yield batches ``(x, y)`` with ``x`` float ``[B, *input_shape]``. Each optional
piece unlocks something (``OPTIONAL_PIECES``): ``dataset_size``, ``pixel_entropy``, ``factor_names``
alone, the ground truth (``factor_sizes``, ``sample_factors``, ``render``), labels (``num_classes``,
``class_names``), ``input_names``, validation and test loaders. ``check_datamodule(dm)`` checks it
all on one real batch, raises a ``DataModuleError`` listing every problem with its fix, and returns
a report naming each piece the datamodule lacks, what it unlocks and how to give it.

Details (each requirement, and a minimal example): docs/datamodules.md#datamodulesprotocolpy-the-datamodule-protocol
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import Tensor

from tcx.batches import split_batch
from tcx.errors import TcxError
from tcx.groundtruth import GroundTruth, LabelledData, is_ground_truth

__all__ = [
    "GroundTruth",
    "LabelledData",
    "GROUND_TRUTH_MEMBERS",
    "LABELLED_MEMBERS",
    "DataModuleError",
    "DataModuleReport",
    "check_datamodule",
    "input_shape_of",
    "is_ground_truth",
    "is_labelled",
    "OPTIONAL_PIECES",
]

GROUND_TRUTH_MEMBERS = ("factor_names", "factor_sizes", "sample_factors", "render")
RENDER_MEMBERS = ("factor_sizes", "sample_factors", "render")

#: Every optional piece of a datamodule: ``name -> (what it unlocks, how to give it)``.
OPTIONAL_PIECES: dict[str, tuple[str, str]] = {
    "dataset_size": (
        "BetaTCVAE (it stops without it), the hierarchical VAE's layer information and the dataset-size "
        "aggregate-posterior estimates of InformationDiagnostics",
        "an attribute or property `dataset_size`: the number of training points "
        "(or model.attach_data(dataset_size=N))"),
    "pixel_entropy": (
        "the CorEx bound (val/corex_bound, in the summary): sum_i H(X_i) + ELBO",
        "a method `pixel_entropy(num_samples=..., seed=...)` returning H(X_i) per input in nats, "
        "e.g. tcx.estimators.binary_pixel_entropy(x) of the training x for binary data "
        "(or model.attach_data(input_entropy=H))"),
    "factor_names": (
        "the factors' names in the factor heatmap (mi_matrix), latent_table.csv and QualityMetrics, "
        "instead of factor0, factor1, ...",
        "an attribute `factor_names`: one name per column of y [B, K]; nothing else of the ground truth needed"),
    "ground_truth": (
        "the intervention scores (FactorVAE, BetaVAE scores) and pictures from rendered factors",
        "`factor_names`, `factor_sizes`, `sample_factors(num, generator)` and `render(factors)` together "
        "(tcx.groundtruth.GroundTruth)"),
    "labels": (
        "the disentanglement metrics against a class label, the factor heatmap of the label, QualityMetrics",
        "y a long class label [B] and an attribute `num_classes` (and `class_names`, one per class)"),
    "class_names": (
        "class names in plots and tables instead of indices",
        "an attribute `class_names`: one name per class"),
    "input_names": (
        "a `name` column in input_information.csv (which input each latent explains)",
        "an attribute `input_names`: one name per input (a CSV header gives them in Arrays)"),
    "val_dataloader": (
        "the validation terms, InformationDiagnostics, the pictures from inputs, InputExplanation and "
        "DisentanglementMetrics unless it can render from factors",
        "define val_dataloader()"),
    "test_dataloader": (
        "`tcx test` (the test split's metrics)",
        "define test_dataloader() (a split that shares no item with validation)"),
}
LABELLED_MEMBERS = ("num_classes", "class_names")


class DataModuleError(TcxError):
    """A datamodule does not follow tcx's protocol; ``problems`` lists what is wrong."""

    def __init__(self, name: str, problems: Sequence[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"the datamodule {name} does not follow tcx's datamodule protocol "
                         f"(tcx.datamodules.protocol):\n{lines}")


@dataclass
class DataModuleReport:
    """What ``check_datamodule`` found: ``kind`` is ``"ground_truth"``, ``"labelled"`` or
    ``"plain"``; ``notes`` are optional things the datamodule does not offer."""

    name: str
    kind: str
    input_shape: tuple[int, ...]
    factor_names: tuple[str, ...] = ()
    factor_sizes: tuple[int, ...] = ()
    num_classes: int | None = None
    has_pixel_entropy: bool = False
    batch_shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    #: the optional pieces (``OPTIONAL_PIECES``) the datamodule lacks
    missing: list[str] = field(default_factory=list)

    def lack(self, piece: str) -> None:
        """Record that ``piece`` of ``OPTIONAL_PIECES`` is missing, with a note of what it unlocks and how."""
        unlocks, how = OPTIONAL_PIECES[piece]
        self.missing.append(piece)
        self.notes.append(f"no `{piece}`: it unlocks {unlocks}; give it as {how}")

    def __str__(self) -> str:
        lines = [f"{self.name}: {self.kind} data, input_shape {self.input_shape}"
                 + (f", factors {', '.join(self.factor_names)}" if self.factor_names else "")]
        lines += [f"  - {n}" for n in self.notes] or ["  every optional piece is there"]
        return "\n".join(lines)


def is_labelled(obj: Any) -> bool:
    """True when ``obj`` declares ``num_classes`` (``tcx.groundtruth.LabelledData``)."""
    return isinstance(obj, LabelledData)


def _has_own(dm: Any, hook: str) -> bool:
    """True when ``dm`` defines the loader ``hook`` itself (not Lightning's default, which raises)."""
    fn = getattr(dm, hook, None)
    if not callable(fn):
        return False
    try:
        from lightning.pytorch import LightningDataModule
    except ImportError:  # pragma: no cover
        return True
    base = getattr(LightningDataModule, hook, None)
    return getattr(type(dm), hook, None) is not base


def _has(obj: Any, name: str) -> bool:
    try:
        return getattr(obj, name, None) is not None
    except Exception:  # a property that fails counts as absent; its error is reported below
        return False


def _input_shape(dm: Any, network: str | None, problems: list[str]) -> tuple[int, ...] | None:
    shape = getattr(dm, "input_shape", None)
    if shape is None:
        problems.append(
            "it does not declare `input_shape`: give it an attribute or property `input_shape`, e.g. "
            "(1, 64, 64) for [C, H, W] images or (n,) for vectors; tcx builds the model's networks from it"
        )
        return None
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        problems.append(f"`input_shape` must be a sequence of ints, got {shape!r}")
        return None
    if len(shape) not in (1, 3) or any(s < 1 for s in shape):
        problems.append(f"`input_shape` must be (C, H, W) or (n,) with positive sizes, got {shape}")
        return None
    if network == "conv":
        if len(shape) != 3:
            problems.append(f"network='conv' needs images (C, H, W), but input_shape={shape}; use network='mlp'")
        elif shape[1] % 16 or shape[2] % 16:
            problems.append(
                f"network='conv' needs H and W multiples of 16, but input_shape={shape}: pad or resize the "
                "images (e.g. MNIST(pad_to_32=True)) or use network='mlp'"
            )
    return shape


def input_shape_of(datamodule: Any) -> tuple[int, ...]:
    """The datamodule's ``input_shape`` as ints (what the ``tcx`` command gives the model), or a
    :class:`DataModuleError` saying what is wrong with it."""
    problems: list[str] = []
    shape = _input_shape(datamodule, None, problems)
    if problems:
        raise DataModuleError(type(datamodule).__name__, problems)
    return shape


def _check_x(x: Any, shape: tuple[int, ...] | None, likelihood: str | None, where: str, problems: list[str]) -> None:
    if not isinstance(x, Tensor):
        problems.append(f"{where}: x must be a torch.Tensor, got {type(x).__name__}")
        return
    if not x.is_floating_point():
        problems.append(f"{where}: x must be a float tensor with values in [0, 1], got dtype {x.dtype}; "
                        "convert with x.float() / 255 for 8-bit images")
        return
    if shape is not None and tuple(x.shape[1:]) != shape:
        problems.append(f"{where}: x has shape {tuple(x.shape)}, but input_shape={shape} promises [B, *{shape}]")
    if x.numel() == 0:
        return
    if not bool(torch.isfinite(x).all()):
        problems.append(f"{where}: x holds NaN or infinite values")
        return
    lo, hi = float(x.min()), float(x.max())
    if (lo < 0.0 or hi > 1.0) and likelihood != "gaussian":
        problems.append(
            f"{where}: x has values in [{lo:.4g}, {hi:.4g}], outside [0, 1], which the Bernoulli likelihood "
            "needs: rescale the data to [0, 1] (e.g. x / 255) or use likelihood='gaussian'"
        )


def _check_ground_truth(dm: Any, shape, report: DataModuleReport, likelihood, problems: list[str]) -> None:
    present = [m for m in GROUND_TRUTH_MEMBERS if _has(dm, m)]
    if present == ["factor_names"]:  # names of y's columns alone: no ground truth needed
        report.factor_names = tuple(str(n) for n in dm.factor_names)
        return
    if not present:
        return
    missing = [m for m in GROUND_TRUTH_MEMBERS if m not in present]
    if missing:
        problems.append(
            f"declares {', '.join(present)} but not {', '.join(missing)}: a ground-truth datamodule declares "
            "factor_names, factor_sizes, sample_factors(num, generator) and render(factors) "
            "(tcx.groundtruth.GroundTruth), or none of them (factor_names alone may name y's columns)"
        )
        return
    names, sizes = tuple(dm.factor_names), tuple(dm.factor_sizes)
    if len(names) != len(sizes):
        problems.append(f"factor_names has {len(names)} names but factor_sizes {len(sizes)} sizes")
        return
    if any(not isinstance(s, int) or isinstance(s, bool) or s < 1 for s in sizes):
        problems.append(f"factor_sizes must be positive ints, got {sizes}")
        return
    report.kind, report.factor_names, report.factor_sizes = "ground_truth", names, sizes
    try:
        f = dm.sample_factors(4, torch.Generator().manual_seed(0))
    except Exception as exc:
        problems.append(f"sample_factors(4, generator) failed: {type(exc).__name__}: {exc}")
        return
    if not isinstance(f, Tensor) or f.dtype != torch.long or tuple(f.shape) != (4, len(sizes)):
        got = f"{f.dtype} {tuple(f.shape)}" if isinstance(f, Tensor) else type(f).__name__
        problems.append(f"sample_factors(4, generator) must return a long tensor [4, {len(sizes)}], got {got}")
        return
    if bool(((f < 0) | (f >= torch.tensor(sizes))).any()):
        problems.append(f"sample_factors returned indices outside 0 .. factor_sizes - 1 = {[s - 1 for s in sizes]}")
        return
    try:
        x = dm.render(f)
    except Exception as exc:
        problems.append(f"render(factors [4, {len(sizes)}]) failed: {type(exc).__name__}: {exc}")
        return
    _check_x(x, shape, likelihood, "render(factors)", problems)
    if isinstance(x, Tensor) and x.shape[:1] != (4,):
        problems.append(f"render(factors [4, K]) must return 4 observations, got shape {tuple(x.shape)}")


def _check_labelled(dm: Any, report: DataModuleReport, problems: list[str]) -> None:
    if not _has(dm, "num_classes"):
        return
    k = dm.num_classes
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        problems.append(f"num_classes must be a positive int, got {k!r}")
        return
    report.num_classes = k
    if report.kind == "plain":
        report.kind = "labelled"
    names = getattr(dm, "class_names", None)
    if names is None:
        report.lack("class_names")
    elif len(tuple(names)) != k:
        problems.append(f"class_names has {len(tuple(names))} names but num_classes={k}")


def _check_batch(dm: Any, shape, report: DataModuleReport, likelihood, problems: list[str]) -> None:
    try:
        dm.prepare_data()
        dm.setup("fit")
        loader = dm.train_dataloader()
        batch = next(iter(loader))
    except Exception as exc:
        problems.append(f"could not load a training batch: {type(exc).__name__}: {exc}")
        return
    try:
        x, y = split_batch(batch)
    except TcxError as exc:
        problems.append(str(exc))
        return
    _check_x(x, shape, likelihood, "the training batch", problems)
    if not isinstance(x, Tensor):
        return
    report.batch_shapes["x"] = tuple(x.shape)
    if y is None:
        return
    if not isinstance(y, Tensor) or y.shape[:1] != x.shape[:1]:
        got = tuple(y.shape) if isinstance(y, Tensor) else type(y).__name__
        problems.append(f"the training batch: y must be a tensor with one row per x ({x.shape[0]}), got {got}")
        return
    report.batch_shapes["y"] = tuple(y.shape)
    if report.kind != "ground_truth" and report.factor_names:
        k = len(report.factor_names)
        if y.dim() != 2 or y.shape[1] != k:
            problems.append(f"the training batch: factor_names names {k} columns of y, but y has shape "
                            f"{tuple(y.shape)}; give y [B, {k}] or one name per column")
    elif report.kind == "plain" and y.dim() == 2 and y.shape[1] > 0 and not y.is_floating_point():
        report.lack("factor_names")
    if report.kind == "ground_truth":
        k = len(report.factor_sizes)
        if y.dtype != torch.long or y.dim() != 2 or y.shape[1] != k:
            problems.append(f"the training batch: y must be the factor indices, long [B, {k}], got {y.dtype} {tuple(y.shape)}")
        elif y.numel() and bool(((y < 0) | (y >= torch.tensor(report.factor_sizes, device=y.device))).any()):
            problems.append("the training batch: y has factor indices outside 0 .. factor_sizes - 1")
    elif report.kind == "labelled" and report.num_classes is not None:
        if y.dtype != torch.long or y.dim() != 1:
            problems.append(f"the training batch: y must be the class label, long [B], got {y.dtype} {tuple(y.shape)}")
        elif y.numel() and (int(y.min()) < 0 or int(y.max()) >= report.num_classes):
            problems.append(f"the training batch: labels outside 0 .. {report.num_classes - 1}")


def _check_entropy(dm: Any, shape, report: DataModuleReport, problems: list[str]) -> None:
    fn = getattr(dm, "pixel_entropy", None)
    if not callable(fn):
        report.lack("pixel_entropy")
        return
    report.has_pixel_entropy = True
    try:
        h = torch.as_tensor(fn(num_samples=256, seed=0))
    except Exception as exc:
        problems.append(f"pixel_entropy(num_samples=256, seed=0) failed: {type(exc).__name__}: {exc}")
        return
    if shape is not None and h.numel() != math.prod(shape):
        problems.append(f"pixel_entropy returned {h.numel()} values, input_shape={shape} has {math.prod(shape)} inputs")
    elif h.numel() and (not bool(torch.isfinite(h).all()) or float(h.min()) < 0):
        problems.append("pixel_entropy must be finite and non-negative (nats)")


def check_datamodule(
    dm: Any,
    *,
    network: str | None = None,
    likelihood: str | None = None,
    check_batch: bool = True,
) -> DataModuleReport:
    """Check that ``dm`` follows tcx's datamodule protocol (module docstring) and say what it is.

    Checks ``input_shape`` (and, with ``network="conv"``, that H and W are multiples of 16), the
    ground-truth and label declarations (all or none, consistent sizes, ``sample_factors`` and
    ``render`` called on 4 factors), ``pixel_entropy`` if offered, and, with ``check_batch``, one
    training batch: ``x`` float ``[B, *input_shape]`` in [0, 1] (any real values with
    ``likelihood="gaussian"``) and ``y`` as the declarations promise.

    Returns a ``DataModuleReport``; raises ``DataModuleError`` (a ``ValueError``) listing every
    problem found, each with its fix.
    """
    name = type(dm).__name__
    problems: list[str] = []
    shape = _input_shape(dm, network, problems)
    report = DataModuleReport(name=name, kind="plain", input_shape=shape or ())
    _check_ground_truth(dm, shape, report, likelihood, problems)
    _check_labelled(dm, report, problems)
    from tcx.groundtruth import has_val_dataloader

    if not _has(dm, "dataset_size"):
        report.lack("dataset_size")
    if not has_val_dataloader(dm):
        report.notes.append(
            "no val_dataloader(): no validation terms, and the callbacks that read validation data "
            "(InformationDiagnostics, the pictures from inputs, InputExplanation, DisentanglementMetrics unless "
            "it can render from factors) are skipped with a reason; define val_dataloader() to get them"
        )
        report.missing.append("val_dataloader")
    if not _has_own(dm, "test_dataloader"):
        report.lack("test_dataloader")
    if shape is not None and len(shape) == 1 and not _has(dm, "input_names"):
        report.lack("input_names")
    if not callable(getattr(dm, "train_dataloader", None)):
        problems.append("no train_dataloader(): subclass lightning.pytorch.LightningDataModule and define it")
    elif check_batch:
        _check_batch(dm, shape, report, likelihood, problems)
    _check_entropy(dm, shape, report, problems)
    y_shape = report.batch_shapes.get("y", (0, 0))
    if report.kind == "plain" and "x" in report.batch_shapes and not report.factor_names and y_shape[1:] in ((), (0,)):
        report.lack("labels")
    if problems:
        raise DataModuleError(name, problems)
    return report
