"""Reading a tcx checkpoint back as any model family.

:func:`load_model` rebuilds any family from a checkpoint, read as data, by the class path that
``models/checkpoint_keys.py`` recorded in it; :func:`tcx_families` lists the classes a checkpoint
may name without ``trust``. Both are exported by ``tcx.models``; the keys are re-exported here.

Details: docs/models.md#modelscheckpointspy-checkpoints
"""

from __future__ import annotations

from tcx.errors import TcxError
from tcx.models.base import CorExVAE
from tcx.models.checkpoint_keys import CLASS_KEY, DATAMODULE_CLASS_KEY, PRECISION_KEY

__all__ = ["CLASS_KEY", "DATAMODULE_CLASS_KEY", "PRECISION_KEY", "load_model", "tcx_families"]

def tcx_families() -> list[type]:
    """CorExVAE and every family defined in tcx's own model modules (``tcx.models.*``): the
    classes a checkpoint may name without ``trust``. Found from the class tree, so that this
    module never imports the families' package."""
    found, todo = [CorExVAE], list(CorExVAE.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("tcx.models.") and cls not in found:
            found.append(cls)
    return found


def load_model(path, map_location="cpu", trust: bool = False, checkpoint: dict | None = None) -> CorExVAE:
    """Load a tcx checkpoint of any model family, in eval mode.

    The file is read as data (``torch.load(weights_only=True)``, :func:`tcx.safe_io.load_checkpoint`):
    a checkpoint holding pickled code is refused, never run. The family is read from the checkpoint
    (written by ``RecordsClasses.on_save_checkpoint``, models/checkpoint_keys.py) and must be one of ``tcx.models``'
    families; ``trust=True`` also accepts any importable :class:`CorExVAE` subclass (a user's own family).
    A missing, truncated or foreign file gets an error that says which and what to do.
    ``checkpoint``: the file as :func:`tcx.safe_io.load_checkpoint` already read it (not read again).
    """
    from tcx.safe_io import load_checkpoint, resolve_class

    p = str(path)  # a local path or an fsspec URL (file://, s3://), read as tcx reads every checkpoint
    checkpoint = load_checkpoint(p, map_location=map_location) if checkpoint is None else checkpoint
    if "state_dict" not in checkpoint:
        raise TcxError(f"{p!r} is not a Lightning checkpoint (no 'state_dict')")
    class_path = checkpoint.get(CLASS_KEY)
    if not class_path:
        raise TcxError(
            f"{p!r} does not name its tcx model family ({CLASS_KEY!r} is missing): it was not "
            "written by a tcx model; load it with YourModel.load_from_checkpoint instead"
        )
    cls = resolve_class(class_path, tcx_families(), CorExVAE, what="model family", source=f"checkpoint {p!r}",
                        trust=trust)
    del checkpoint
    model = cls.load_from_checkpoint(p, map_location=map_location, weights_only=True)
    model.eval()
    return model
