#!/usr/bin/env bash
# Every GPU check and benchmark of the speed issue in one call (one H100/H200, under 10 minutes), then as much of
# the CIFAR-10 policy grid (issue #7) as the deadline leaves. Needs: a CUDA torch, kornia (its rows are
# skipped without it), CIFAR-10 at $CIFAR (image-folder tree). Results go to $OUT as ONE tarball (the device
# tool brings back at most 8 files) plus the log on stdout.
#   OUT=/tmp/out CIFAR=_carry/cifar10 DEADLINE_S=560 bash benchmarks/gpu_all.sh
# A second call on the same machine (GRID_ONLY=1) continues the grid: compare reuses finished runs and resumes
# interrupted ones from their checkpoints, since runs/ is kept between calls.
set -uo pipefail  # no -e: one failing part must not lose the others' results
T0=$(date +%s)
OUT=${OUT:-/tmp/adaptaug-gpu}
CIFAR=${CIFAR:-../shared/datasets/cifar10}
DEADLINE_S=${DEADLINE_S:-560}  # seconds from the start by which everything, the tarball included, is done
GRID=${GRID:-runs/cifar10-grid}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}src HF_HUB_OFFLINE=1 XDG_CACHE_HOME=${XDG_CACHE_HOME:-$PWD/runs/cache}
export PYTHONUNBUFFERED=1
WORK=$(mktemp -d)
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$WORK/gpu.txt" 2>&1
python -c "import torch, kornia; print(torch.__version__, kornia.__version__, torch.cuda.get_device_name())" \
  >> "$WORK/gpu.txt" 2>&1
cat "$WORK/gpu.txt"

part() {  # part NAME SECONDS COMMAND...: run with a time limit, keep its output whatever happens
  local name=$1 limit=$2; shift 2
  echo "== $name ($(( $(date +%s) - T0 )) s)"
  timeout "$limit" "$@" > "$WORK/$name.txt" 2>&1; echo "exit $?" >> "$WORK/$name.txt"
  tail -n 30 "$WORK/$name.txt"
}
left() { echo $(( T0 + DEADLINE_S - $(date +%s) )); }

if [ "${GRID_ONLY:-0}" != 1 ]; then
# 1. No device-to-host sync in the image hot loop: sample + apply_plan under CUDA's sync debug mode.
part sync_check 40 python - <<'PY'
import torch
from adaptaug.augment import apply_plan
from adaptaug.ops.image import RANDAUGMENT_OPS
from adaptaug.ops.space import OpSpace
from adaptaug.policies import RandAugment, StandardAugment
gen = torch.Generator().manual_seed(0)
policy = RandAugment(OpSpace.of(RANDAUGMENT_OPS), n=2, m=9, generator=gen, base=StandardAugment(generator=gen))
images = torch.rand(64, 3, 32, 32, device="cuda")
apply_plan(images, policy.sample(64)); torch.cuda.synchronize()
torch.cuda.set_sync_debug_mode("error")
for _ in range(20):
    apply_plan(images, policy.sample(64))
torch.cuda.set_sync_debug_mode(0); torch.cuda.synchronize()
print("no synchronising call in 20 sample+apply_plan batches")
PY

# 1b. The same for whole training epochs: synchronising calls counted per policy (expected: a few per epoch
#     for the loss read and validation; AugNet adds its per-round reads, one round per 4 steps).
part sync_train 90 python - "$CIFAR" <<'PY'
import sys, warnings, torch
from adaptaug.config import TrainConfig
from adaptaug.tasks import build_task
from adaptaug.train import train
task = build_task("cifar10", sys.argv[1], seed=0, limit=6400)
for policy in ("none", "randaugment", "augnet"):
    cfg = TrainConfig(task="cifar10", data=sys.argv[1], policy=policy, epochs=1, limit=6400, device="cuda",
                      robustness=False)
    train(cfg, task=task, progress=False, write=False)  # warm-up: allocator, cuDNN autotune
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        train(cfg, task=task, progress=False, write=False)
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    print(f"{policy}: {len(syncs)} synchronising calls in one epoch of {-(-5760 // 64)} steps (+ validation)")
    for w in syncs[:3]:
        print("   ", str(w.message)[:160], w.filename, w.lineno)
PY

# 2. Ops throughput, ours vs Kornia and torchvision v2, batch 64 / 1024 / 4096.
part ops_throughput 80 python benchmarks/ops_throughput.py --device cuda --batches 64,1024,4096 --repeats 5
# 3. Step overhead and epoch time per policy (eager float32, with the DataLoader + Pillow baseline; this part
#    also decodes CIFAR-10 into the cache the later parts read), then compiled, then bf16 + channels_last.
part training_speed_eager 130 python benchmarks/training_speed.py --data "$CIFAR" --epochs 1 --device cuda
part training_speed_compile 90 python benchmarks/training_speed.py --data "$CIFAR" --epochs 2 --device cuda \
  --compile --no-baseline --policies none,augnet
part training_speed_bf16_cl 50 python benchmarks/training_speed.py --data "$CIFAR" --epochs 1 --device cuda \
  --amp bf16 --channels-last --no-baseline --policies none,augnet
part augnet_cost 90 python benchmarks/augnet_cost.py --data "$CIFAR" --device cuda --limit 20000
part bilstm_speed 30 python benchmarks/bilstm_speed.py --device cuda --repeats 5
# 4. The 50-epoch CIFAR-10 augnet run with early stopping off; history.csv keeps each epoch's time if cut.
part full50_augnet ${FULL50_S:-100} python -m adaptaug train --task cifar10 --data "$CIFAR" --policy augnet \
  --epochs 50 --patience 1000 --no-robustness --device cuda --out runs/full50-augnet --no-progress
cp runs/full50-augnet/history.csv "$WORK/full50_history.csv" 2>/dev/null
cp runs/full50-augnet/metrics.json "$WORK/full50_metrics.json" 2>/dev/null
fi

# 5. The CIFAR-10 grid (5 policies x 3 seeds, <= 50 epochs, early stopping) with what time is left.
GRID_S=$(( $(left) - 25 ))
if [ "$GRID_S" -gt 30 ]; then
  part grid "$GRID_S" python -m adaptaug compare --task cifar10 --data "$CIFAR" --seeds 3 --epochs 50 \
    --jobs ${JOBS:-15} --device cuda --out "$GRID"
fi
mkdir -p "$WORK/grid"
(cd "$GRID" 2>/dev/null && find . -maxdepth 3 -type f ! -name '*.pt' -print0 | xargs -0 -r cp --parents -t "$WORK/grid")
tar czf "$OUT/gpu_results.tgz" -C "$WORK" .
echo "done at $(( $(date +%s) - T0 )) s"
