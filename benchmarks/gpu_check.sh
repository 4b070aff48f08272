#!/usr/bin/env bash
# The GPU path, checked in a few minutes on a CUDA machine (written without one: see
# benchmarks/results/gpu_check.md for whether it has been run):
#   1. the default `tcx fit` on one GPU, 256 steps, in the precision the default picks there
#      (bf16-mixed on GPUs with native bf16, 32-true on older ones);
#   2. the same under DDP on every GPU present (a 1-process DDP where there is one);
# each printing the training img/s and the end-of-fit summary with the metric values.
#
#   bash benchmarks/gpu_check.sh [extra tcx fit flags]      # e.g. --trainer.max_steps 100
# Needs the venv (`make install`); writes under runs/gpu_check/ and the log to
# runs/gpu_check/gpu_check.log. Under 5 minutes on one GPU (the metrics at the end of fit
# dominate; the training steps are bound by the CPU's rendering of dSprites).
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

echo "== 1. the default fit on one GPU"
start=$(date +%s)
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" --trainer.devices 1 \
    --trainer.default_root_dir "$OUT/single" --trainer.logger.init_args.save_dir "$OUT/single" "$@"
echo "gpu_check: single-GPU fit took $(( $(date +%s) - start )) s of wall time"

echo "== 2. DDP on all $NGPU GPU(s)"
start=$(date +%s)
"$PY" benchmarks/gpu_check.py "${COMMON[@]}" --trainer.devices "$NGPU" --trainer.strategy ddp \
    --trainer.default_root_dir "$OUT/ddp" --trainer.logger.init_args.save_dir "$OUT/ddp" "$@"
echo "gpu_check: DDP fit on $NGPU GPU(s) took $(( $(date +%s) - start )) s of wall time"
