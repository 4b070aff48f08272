"""The compile policy of tcx's models: when ``torch.compile`` turns on, and the fallback.

:class:`Compilable` is the part of :class:`tcx.models.base.CorExVAE` that holds the compiled
encoder and decoder (outside the module tree, so the state dict and checkpoints are the same
with and without compile), applies the rule of the model's ``compile`` argument at the start of
a fit (:meth:`Compilable.compile_choice`) and switches compile off, with one line, when the
first compiled call fails. Evaluation and the callbacks always run the plain networks.

Details: docs/models.md#modelscompilepy-the-compile-policy
"""

from __future__ import annotations

import functools

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

__all__ = ["COMPILE_AUTO_MIN_STEPS", "Compilable"]

#: the fewest optimizer steps at which ``compile="auto"`` compiles on a CUDA device: the compile
#: warm-up (tens of seconds) is then a small part of the run
COMPILE_AUTO_MIN_STEPS = 2000


class Compilable:
    """The ``compile`` argument's rule and the compiled networks of a LightningModule whose
    ``hparams.compile`` is ``True``, ``False`` or ``"auto"`` and whose networks are attributes."""

    #: the attributes that are compiled
    COMPILED_NETWORKS: tuple[str, ...] = ("encoder", "decoder")

    def compile_choice(self, trainer) -> tuple[bool, str]:
        """Whether ``compile`` turns on for a fit on ``trainer``, and why: an explicit setting
        wins; ``"auto"`` compiles on a CUDA device for at least ``COMPILE_AUTO_MIN_STEPS``
        optimizer steps, never on the CPU (benchmarks/results/train_throughput.md)."""
        setting = self.hparams.compile
        if setting is True or setting is False:
            return setting, f"compile={str(setting).lower()} was asked for"
        device = trainer.strategy.root_device
        if device.type != "cuda":
            return False, (f"auto: off on {device.type} (measured not to pay on CPUs, "
                           "benchmarks/results/train_throughput.md)")
        steps = trainer.estimated_stepping_batches
        if steps < COMPILE_AUTO_MIN_STEPS:
            return False, (f"auto: off for {steps} steps on {device.type} (< {COMPILE_AUTO_MIN_STEPS}, the "
                           "warm-up would not pay)")
        return True, f"auto: on, {device.type} and {steps} steps"

    @property
    def compiled(self) -> bool:
        """Whether the training steps run the compiled networks now."""
        return bool(getattr(self, "_compiled_networks", None))

    def compile_networks(self, on: bool = True) -> None:
        """Train with ``torch.compile``d networks (``on``) or the plain ones. A fit calls it at
        its start by the rule of ``compile``; a loop of your own may call it."""
        # a dict, not a submodule: the state dict does not change
        self._compiled_networks = {name: torch.compile(getattr(self, name)) for name in self.COMPILED_NETWORKS} if on else {}

    def on_fit_start(self) -> None:
        on, why = self.compile_choice(self.trainer)
        self.compile_networks(on)
        if on:  # off is the quiet default on the CPU; compile_choice says why
            rank_zero_info(f"tcx: torch.compile on ({why})")

    def _network(self, name: str):
        """The network ``name`` to call: its compiled form in a training step when compiled, else
        the module itself."""
        compiled = getattr(self, "_compiled_networks", {}).get(name)
        if compiled is None or not (self.training and torch.is_grad_enabled()):
            return getattr(self, name)
        return functools.partial(self._call_compiled, name, compiled)

    def _call_compiled(self, name: str, compiled, *args):
        try:
            return compiled(*args)
        except Exception as exc:  # torch.compile's failures are of many types (no C++ compiler, dynamo)
            self.compile_networks(False)
            first_line = (str(exc).splitlines() or [""])[0][:160]
            rank_zero_warn(f"tcx: torch.compile of the {name} failed ({type(exc).__name__}: {first_line}); "
                           "training goes on without compile")
            return getattr(self, name)(*args)
