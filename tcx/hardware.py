"""The default precision, chosen by the hardware a run is on.

``bf16-mixed`` where the hardware multiplies bf16 matrices natively (CUDA devices with bf16, CPUs
with AMX or AVX512-BF16), ``32-true`` everywhere else, where bf16 is emulated and slow; an
explicit ``--trainer.precision`` always wins, and a run from a checkpoint keeps the checkpoint's
(the shell's ``tcx.cli.precision``). Two parts, so that the decision is testable:

- :func:`choose_precision` is pure: capabilities in, ``(precision, reason)`` out.
- :func:`read_capabilities` reads them from torch, ``/proc/cpuinfo`` and the environment
  variables that cap the instruction set (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``).

Details (the measured speeds, the caps): docs/running.md#tcxhardwarepy-the-default-precision
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tcx.errors import TcxError

__all__ = ["Capabilities", "choose_precision", "read_capabilities", "default_precision", "cpu_flags",
           "keep_freed_memory"]

#: oneDNN ISA caps (``ONEDNN_MAX_CPU_ISA``) under which oneDNN still has native bf16 matmuls
_ONEDNN_BF16_ISAS = {
    "AVX512_CORE_BF16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16", "AVX512_CORE_FP16",
    "AVX10_1_512", "AVX10_1_512_AMX", "AVX10_1_512_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2",
    "ALL", "DEFAULT",
}


@dataclass(frozen=True)
class Capabilities:
    """What the hardware (and the environment's caps on it) offers for bf16.

    cuda / cuda_bf16 / cuda_name: a CUDA device is present; it computes bf16 natively
        (``torch.cuda.is_bf16_supported(including_emulation=False)``); its name.
    mps: Apple's Metal backend is available.
    cpu_capability: ``torch.backends.cpu.get_cpu_capability()`` ("AVX512", "AVX2", "DEFAULT", ...),
        which already honours ``ATEN_CPU_CAPABILITY``.
    cpu_amx_bf16 / cpu_avx512_bf16: the CPU has AMX-BF16 tiles / AVX512-BF16 instructions.
    onednn_max_isa: ``ONEDNN_MAX_CPU_ISA`` if set (upper-cased), else "".
    """

    cuda: bool = False
    cuda_bf16: bool = False
    cuda_name: str = ""
    mps: bool = False
    cpu_capability: str = "DEFAULT"
    cpu_amx_bf16: bool = False
    cpu_avx512_bf16: bool = False
    onednn_max_isa: str = ""


def _accelerator_name(accelerator) -> str:
    if accelerator is None:
        return "auto"
    if isinstance(accelerator, str):
        return accelerator.lower()
    name = type(accelerator).__name__.lower()  # an Accelerator instance
    for kind in ("cuda", "mps", "cpu"):
        if kind in name:
            return kind
    return "auto"


def choose_precision(caps: Capabilities, accelerator="auto") -> tuple[str, str]:
    """The default Trainer precision for ``caps`` and the Trainer's ``accelerator``
    ("auto", "cpu", "gpu", "cuda", "mps" or an Accelerator), with the reason in words.

    Follows Lightning's own "auto" order (CUDA, then MPS, then CPU)."""
    acc = _accelerator_name(accelerator)
    if acc in ("gpu", "cuda", "auto") and caps.cuda:
        if caps.cuda_bf16:
            return "bf16-mixed", f"CUDA device {caps.cuda_name or ''} computes bf16 natively".replace("  ", " ")
        return "32-true", (f"CUDA device {caps.cuda_name or ''} has no native bf16 "
                           "(fp16-mixed is not tested in tcx)").replace("  ", " ")
    if acc in ("gpu", "mps", "auto") and caps.mps:
        return "32-true", "Apple MPS: bf16 autocast is not what tcx is tested with there"
    # the CPU
    units = [name for name, has in (("AMX-BF16", caps.cpu_amx_bf16), ("AVX512-BF16", caps.cpu_avx512_bf16)) if has]
    if not units:
        return "32-true", (f"CPU without native bf16 (no AMX-BF16 or AVX512-BF16; torch CPU capability "
                           f"{caps.cpu_capability}): bf16 would be emulated, ~10x slower than fp32")
    if not caps.cpu_capability.upper().startswith("AVX512"):
        return "32-true", (f"CPU has {'/'.join(units)}, but torch's CPU capability is capped at "
                           f"{caps.cpu_capability} (ATEN_CPU_CAPABILITY): bf16 would be slow")
    isa = caps.onednn_max_isa.upper()
    if isa and isa not in _ONEDNN_BF16_ISAS:
        return "32-true", (f"CPU has {'/'.join(units)}, but ONEDNN_MAX_CPU_ISA={isa} caps oneDNN below "
                           "AVX512_CORE_BF16: bf16 would be emulated")
    return "bf16-mixed", f"CPU with native bf16 matrix units ({'/'.join(units)})"


def cpu_flags(path: str | os.PathLike = "/proc/cpuinfo") -> set[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux), or an empty set."""
    try:
        for line in Path(path).read_text(errors="ignore").splitlines():
            if line.startswith(("flags", "Features")):
                return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


def read_capabilities(environ=os.environ) -> Capabilities:
    """Read the capabilities from torch, ``/proc/cpuinfo`` and the environment."""
    import torch

    cuda = bool(torch.cuda.is_available())
    cuda_bf16, cuda_name = False, ""
    if cuda:
        try:
            cuda_bf16 = bool(torch.cuda.is_bf16_supported(including_emulation=False))
        except TypeError:  # older torch: no emulation argument
            cuda_bf16 = bool(torch.cuda.is_bf16_supported())
        cuda_name = torch.cuda.get_device_name(0)
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except Exception:  # noqa: BLE001  (very old torch)
        capability = "DEFAULT"
    # the kernel's flags (no private torch probe): what the CPU offers
    flags = cpu_flags()
    return Capabilities(
        cuda=cuda, cuda_bf16=cuda_bf16, cuda_name=cuda_name, mps=mps, cpu_capability=capability,
        cpu_amx_bf16="amx_bf16" in flags, cpu_avx512_bf16="avx512_bf16" in flags,
        onednn_max_isa=environ.get("ONEDNN_MAX_CPU_ISA", environ.get("DNNL_MAX_CPU_ISA", "")).strip().upper(),
    )


def default_precision(accelerator="auto", environ=os.environ) -> tuple[str, str]:
    """:func:`choose_precision` on this machine's :func:`read_capabilities`."""
    return choose_precision(read_capabilities(environ), accelerator)


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_MALLOC_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_")


def keep_freed_memory(environ=os.environ) -> str | None:
    """Tell glibc's allocator to keep the memory a training step frees (no ``mmap`` for large
    blocks, no trimming), so that the next step reuses it instead of faulting fresh pages in.

    On CPUs a step's activations are large blocks: with glibc's defaults each is mapped, unmapped
    when freed and faulted in again the next step, at a cost that depends on what else the process
    keeps alive (measured: 8 % of a bf16 step and 22 % of an fp32 one on an AVX512-BF16 CPU, and
    the whole gap between the Trainer and a bare loop; benchmarks/results/train_throughput.md). The
    price is that the process keeps its peak heap. Nothing is changed when ``TCX_MALLOC=system``,
    when the user set a ``MALLOC_*_`` variable, or on a C library other than glibc. Returns what was
    set, or None.
    """
    choice = environ.get("TCX_MALLOC", "keep").strip().lower() or "keep"
    if choice not in ("keep", "system"):
        raise TcxError(f"TCX_MALLOC={environ['TCX_MALLOC']!r} is not one of keep, system (system: glibc's own "
                       "defaults; keep, the default: freed memory kept for the next step)")
    if choice == "system" or any(v in environ for v in _MALLOC_VARIABLES):
        return None
    import ctypes
    import ctypes.util
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1 and libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1
    except (OSError, AttributeError):
        return None
    return "glibc malloc keeps freed memory (M_MMAP_MAX 0, M_TRIM_THRESHOLD 2 GiB)" if ok else None
