#!/usr/bin/env bash
# The plain way to repeat an experiment over seeds, without W&B sweeps: one `tcx fit` per seed
# (and per setting), each in a folder of its own, then one table of mean +- sd over the seeds.
#
#   bash examples/seeds.sh                       # 2 settings x 3 seeds of AnchorVAE on dSprites
#   SEEDS="0 1 2 3 4" EPOCHS=3 bash examples/seeds.sh
#
# Any flags after the script's name go to every run (bash examples/seeds.sh --data.epoch_size 4096).
set -euo pipefail
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=${EPOCHS:-1}
ROOT=${ROOT:-runs/seeds}
TCX=${TCX:-tcx}
for beta in 0.1 0.2; do
  for seed in $SEEDS; do
    "$TCX" fit --model AnchorVAE --model.anchor_beta "$beta" --seed_everything "$seed" \
      --trainer.max_epochs "$EPOCHS" --trainer.logger false \
      --trainer.default_root_dir "$ROOT/anchor_beta$beta-seed$seed" "$@"
  done
done
"$TCX" compare "$ROOT"
"$TCX" compare "$ROOT" --format csv --out "$ROOT/table.csv" > /dev/null
echo "table: $ROOT/table.csv"
