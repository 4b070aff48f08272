"""The default precision chosen by the hardware (tcx.hardware), with the capabilities mocked, and
the CLI's resolution of it: the hardware's choice when none is given, the user's when given."""

from __future__ import annotations

import pytest

from tcx import hardware
from tcx.errors import TcxError
from tcx.hardware import Capabilities, choose_precision

AMX_CPU = Capabilities(cpu_capability="AVX512", cpu_amx_bf16=True, cpu_avx512_bf16=True)
AVX512_BF16_CPU = Capabilities(cpu_capability="AVX512", cpu_avx512_bf16=True)
AVX512_CPU = Capabilities(cpu_capability="AVX512")  # Skylake-X: AVX-512 without bf16
AVX2_CPU = Capabilities(cpu_capability="AVX2")
CUDA_BF16 = Capabilities(cuda=True, cuda_bf16=True, cuda_name="NVIDIA H100", cpu_capability="AVX2")
CUDA_NO_BF16 = Capabilities(cuda=True, cuda_bf16=False, cuda_name="Tesla V100", cpu_capability="AVX512",
                            cpu_amx_bf16=True)
MPS = Capabilities(mps=True, cpu_capability="DEFAULT")


@pytest.mark.parametrize(
    "caps, accelerator, expected",
    [
        (AMX_CPU, "auto", "bf16-mixed"),
        (AVX512_BF16_CPU, "auto", "bf16-mixed"),
        (AVX512_CPU, "auto", "32-true"),
        (AVX2_CPU, "auto", "32-true"),
        (AVX2_CPU, "cpu", "32-true"),
        (CUDA_BF16, "auto", "bf16-mixed"),
        (CUDA_BF16, "gpu", "bf16-mixed"),
        (CUDA_BF16, "cpu", "32-true"),  # the run is on the AVX2 CPU, not the GPU
        (CUDA_NO_BF16, "auto", "32-true"),
        (CUDA_NO_BF16, "cuda", "32-true"),
        (CUDA_NO_BF16, "cpu", "bf16-mixed"),  # an AMX CPU beside an old GPU
        (MPS, "auto", "32-true"),
        (MPS, "mps", "32-true"),
    ],
)
def test_choice_by_capabilities(caps, accelerator, expected):
    precision, reason = choose_precision(caps, accelerator)
    assert precision == expected
    assert reason  # always says why


def test_reasons_name_the_hardware():
    assert "AMX-BF16" in choose_precision(AMX_CPU)[1]
    assert "H100" in choose_precision(CUDA_BF16)[1]
    assert "V100" in choose_precision(CUDA_NO_BF16)[1]
    assert "MPS" in choose_precision(MPS)[1]
    assert "AVX2" in choose_precision(AVX2_CPU)[1]


def test_isa_caps_make_an_amx_cpu_an_avx2_one():
    """ATEN_CPU_CAPABILITY / ONEDNN_MAX_CPU_ISA below AVX512-BF16 (how an AVX2 machine is
    emulated) mean bf16 would be emulated: fp32."""
    aten_capped = Capabilities(cpu_capability="AVX2", cpu_amx_bf16=True, cpu_avx512_bf16=True)
    assert choose_precision(aten_capped)[0] == "32-true"
    assert "ATEN_CPU_CAPABILITY" in choose_precision(aten_capped)[1]
    onednn_capped = Capabilities(cpu_capability="AVX512", cpu_amx_bf16=True, onednn_max_isa="AVX2")
    assert choose_precision(onednn_capped)[0] == "32-true"
    assert "ONEDNN_MAX_CPU_ISA=AVX2" in choose_precision(onednn_capped)[1]
    for isa in ("AVX512_CORE_AMX", "AVX512_CORE_BF16", "ALL"):
        assert choose_precision(Capabilities(cpu_capability="AVX512", cpu_amx_bf16=True, onednn_max_isa=isa))[0] == "bf16-mixed"


def test_accelerator_instances_are_understood():
    from lightning.pytorch.accelerators import CPUAccelerator

    assert choose_precision(CUDA_BF16, CPUAccelerator())[0] == "32-true"
    assert choose_precision(CUDA_BF16, None)[0] == "bf16-mixed"


def test_cpu_flags_parse(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert {"avx2", "avx512_bf16", "amx_bf16"} <= hardware.cpu_flags(info)
    assert hardware.cpu_flags(tmp_path / "missing") == set()


def test_read_capabilities_reads_the_environment_caps():
    caps = hardware.read_capabilities({"ONEDNN_MAX_CPU_ISA": "avx2"})
    assert caps.onednn_max_isa == "AVX2"
    assert choose_precision(caps)[0] in ("32-true", "bf16-mixed")
    if not caps.cuda and not caps.mps:
        assert choose_precision(caps)[0] == "32-true"  # a cap at AVX2 always means fp32 on the CPU


def _trainer_config(**trainer):
    from jsonargparse import Namespace

    return Namespace(trainer=Namespace(accelerator="auto", **trainer))


def test_cli_resolves_an_unset_precision_from_the_hardware(monkeypatch, capsys):
    from tcx.cli import precision as cli

    monkeypatch.setattr(cli, "default_precision", lambda accelerator="auto": ("32-true", "CPU without native bf16"))
    config = _trainer_config(precision=None)
    note = cli.resolve_precision(config)
    assert config.trainer.precision == "32-true"
    assert "chosen by the hardware" in note and "without native bf16" in note
    assert "tcx: precision 32-true (chosen by the hardware" in capsys.readouterr().out


@pytest.mark.parametrize("given", ["bf16-mixed", "32-true", "16-mixed", 64])
def test_an_explicit_precision_always_wins(monkeypatch, given):
    from tcx.cli import precision as cli

    monkeypatch.setattr(cli, "default_precision", lambda accelerator="auto": pytest.fail("must not be asked"))
    config = _trainer_config(precision=given)
    note = cli.resolve_precision(config)
    assert config.trainer.precision == given
    assert "given explicitly" in note


def test_default_config_leaves_precision_to_the_hardware():
    import yaml

    from tcx.cli import DEFAULT_CONFIG

    assert yaml.safe_load(DEFAULT_CONFIG.read_text())["trainer"].get("precision") is None


def test_only_the_first_process_of_a_launch_prints():
    from tcx.cli.precision import is_first_process

    assert is_first_process({})
    assert is_first_process({"LOCAL_RANK": "0", "NODE_RANK": "0"})
    assert not is_first_process({"LOCAL_RANK": "1"})
    assert not is_first_process({"LOCAL_RANK": "0", "NODE_RANK": "2"})


def test_keep_freed_memory_respects_the_user_and_sets_glibc_otherwise():
    import platform

    from tcx.hardware import keep_freed_memory

    assert keep_freed_memory({"TCX_MALLOC": "system"}) is None
    with pytest.raises(TcxError, match=r"TCX_MALLOC='sytem' is not one of keep, system"):
        keep_freed_memory({"TCX_MALLOC": "sytem"})  # a typo is said, not taken as the default
    assert keep_freed_memory({"MALLOC_MMAP_MAX_": "65536"}) is None  # the user's own glibc setting wins
    said = keep_freed_memory({})
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        import json
        import os
        import subprocess
        import sys

        assert said is not None and "M_MMAP_MAX 0" in said
        # a step's pattern, four 64 MiB activations made and freed (above the 32 MiB that glibc's mmap
        # threshold can grow to), in a fresh process: with glibc's defaults every step faults all
        # 65,536 pages in again; kept, the freed memory is reused
        code = (
            "import json, resource, torch\n"
            "from tcx.hardware import keep_freed_memory\n"
            "def steps():\n"
            "    out = []\n"
            "    for _ in range(8):\n"
            "        b = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "        xs = [torch.ones(16 * 2**20) for _ in range(4)]\n"
            "        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - b)\n"
            "        del xs\n"
            "    return out\n"
            "before = steps(); keep_freed_memory({}); print(json.dumps([before[-2:], steps()[-2:]]))\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        before, after = json.loads(run.stdout.strip().splitlines()[-1])
        assert min(before) > 60000 and max(after) < 1000, run.stdout + run.stderr
    else:
        assert said is None
