#!/usr/bin/env bash
# Every GPU check and benchmark of the speed issue in one call (about 10 minutes on one H100/H200).
# Needs: a CUDA torch, the project importable (PYTHONPATH=src), CIFAR-10 at $CIFAR (image-folder tree), and
# kornia for the ops comparison (optional: its rows are skipped without it). Writes everything under $OUT.
#   OUT=/tmp/out CIFAR=_carry/cifar10 bash benchmarks/gpu_all.sh
set -uo pipefail  # no -e: one failing part must not lose the others' results
OUT=${OUT:-/tmp/adaptaug-gpu}
CIFAR=${CIFAR:-../shared/datasets/cifar10}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}src HF_HUB_OFFLINE=1 XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/cache}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1
python -c "import torch; print(torch.__version__, torch.cuda.get_device_name())" >> "$OUT/gpu.txt" 2>&1

part() {  # part NAME SECONDS COMMAND...: run with a time limit, keep its output whatever happens
  local name=$1 limit=$2; shift 2
  echo "== $name ($(date -u +%H:%M:%S))"
  timeout "$limit" "$@" > "$OUT/$name.txt" 2>&1; echo "exit $?" >> "$OUT/$name.txt"
  tail -n 25 "$OUT/$name.txt"
}

# 1. No device-to-host sync in the image hot loop: sample + apply_plan under CUDA's sync debug mode.
part sync_check 60 python - <<'EOF'
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
EOF

# 2. Ops throughput, ours vs Kornia (and torchvision v2 if present), batch 64 / 1024 / 4096.
part ops_throughput 150 python benchmarks/ops_throughput.py --device cuda --batches 64,1024,4096 --repeats 10

# 3. Step overhead and epoch time per policy, eager float32, then bf16 + channels_last, then compiled.
part training_speed_eager 150 python benchmarks/training_speed.py --data "$CIFAR" --epochs 2 --device cuda
part training_speed_bf16_cl 120 python benchmarks/training_speed.py --data "$CIFAR" --epochs 2 --device cuda \
  --amp bf16 --channels-last --no-baseline --policies none,augnet
part training_speed_compile 150 python benchmarks/training_speed.py --data "$CIFAR" --epochs 2 --device cuda \
  --compile --no-baseline --policies none,augnet
# 4. The 50-epoch CIFAR-10 augnet run (early stopping off) the speed issue times; FULL50=1 to include it.
if [ "${FULL50:-0}" = 1 ]; then
  part full50_augnet 420 python benchmarks/training_speed.py --data "$CIFAR" --epochs 50 --device cuda \
    --no-baseline --policies augnet ${FULL50_FLAGS:-}
fi
part bilstm_speed 60 python benchmarks/bilstm_speed.py --device cuda --repeats 10
echo "done $(date -u +%H:%M:%S)"
