#!/usr/bin/env bash
# The GPU path, checked unattended in under 5 minutes on a CUDA machine (written without one:
# benchmarks/results/gpu_check.md says whether it has run):
#   0. the dSprites renderer on the GPU: its rate, and the device path equal to the CPU renderer
#      image for image (benchmarks/render_throughput.py --device cuda);
#   1. the default `tcx fit` on one GPU, in the precision the default picks there, batches
#      rendered on the device (render_on auto), compile by its auto rule;
#   2. the same with compile forced on (no callbacks: the training steps alone);
#   3. the same with the batches rendered by the CPU loader (render_on loader), to see the margin;
#   4. the default under DDP on every GPU present (a 1-process DDP where there is one);
# each fit printing its training img/s, the share of the device's measured matmul peak, and the
# end-of-fit summary with the metric values.
#
#   bash benchmarks/gpu_check.sh [extra tcx fit flags]      # e.g. --trainer.max_steps 100
# Needs the venv (`make install`); writes under runs/gpu_check/ and the log to
# runs/gpu_check/gpu_check.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
[ -x "$PY" ] || make install
export WANDB_MODE=${WANDB_MODE:-offline} WANDB_SILENT=${WANDB_SILENT:-true}
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
exec > >(tee "$OUT/gpu_check.log") 2>&1

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv || true
NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)")
if [ "$NGPU" -lt 1 ]; then
    echo "gpu_check: no CUDA device visible to torch; nothing to check" >&2
    exit 1
fi
"$PY" - <<'PYEOF'
import torch
from tcx.hardware import read_capabilities, choose_precision
caps = read_capabilities()
print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s): {caps.cuda_name}")
print("the default precision here: %s (%s)" % choose_precision(caps, "gpu"))
PYEOF

COMMON=(--trainer.accelerator gpu --trainer.enable_progress_bar false)

echo "== 0. the renderer on the GPU"
"$PY" benchmarks/render_throughput.py --device cuda --seconds 2 --check 20000 --out "$OUT/render_throughput.md"

echo "== 1. the default fit on one GPU"
start=$(date +%s)
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" --trainer.devices 1 \
    --trainer.default_root_dir "$OUT/single" --trainer.logger.init_args.save_dir "$OUT/single" "$@"
echo "gpu_check: single-GPU fit took $(( $(date +%s) - start )) s of wall time"

BARE=(--trainer.devices 1 --trainer.callbacks "[]" --trainer.logger false --trainer.max_steps 300)
echo "== 2. compile forced on, one GPU, no callbacks"
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" "${BARE[@]}" --model.compile true \
    --trainer.default_root_dir "$OUT/compiled" "$@"

echo "== 3. batches rendered by the CPU loader, one GPU, no callbacks"
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" "${BARE[@]}" --data.render_on loader \
    --trainer.default_root_dir "$OUT/loader" "$@"

echo "== 4. DDP on all $NGPU GPU(s)"
start=$(date +%s)
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" --trainer.devices "$NGPU" --trainer.strategy ddp \
    --trainer.default_root_dir "$OUT/ddp" --trainer.logger.init_args.save_dir "$OUT/ddp" "$@"
echo "gpu_check: DDP fit on $NGPU GPU(s) took $(( $(date +%s) - start )) s of wall time"
