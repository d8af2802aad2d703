#!/usr/bin/env bash
# Every GPU check and benchmark of the speed issue in one call on one lent H100/H200, most important first, each
# part under a time cap and all of them inside DEADLINE_S. Results go to $OUT as ONE tarball, rewritten after every
# part so that a call cut short still brings back what finished (the device tool returns at most 8 files).
#   OUT=/tmp/out CIFAR_TGZ=_carry/cifar.tgz WHEELS=.whl DEADLINE_S=520 bash benchmarks/gpu_all.sh
# CIFAR_TGZ: a tar.gz of the CIFAR-10 image-folder tree (20 MB: gzip folds the JPEGs' shared headers), or
# CIFAR=path to the tree itself. WHEELS: a folder of wheels to install first (kornia, kornia_rs; the image lacks
# them). DEVICE=cpu LIMIT=640 runs the same parts small on a CPU, to check the script before spending GPU time.
# PARTS="name ..." runs only the parts named (a second call on a warm machine, say).
# GRID=1 spends what time is left on the CIFAR-10 policy grid (issue #7); compare resumes it on a later call.
set -uo pipefail  # no -e: one failing part must not lose the others' results
T0=$(date +%s)
OUT=${OUT:-/tmp/adaptaug-gpu}
DEVICE=${DEVICE:-cuda}
DEADLINE_S=${DEADLINE_S:-520}  # seconds from the start by which everything, the tarball included, is done
LIMIT_ARG=${LIMIT:+--limit $LIMIT}
WORK=$(mktemp -d)
mkdir -p "$OUT"
if [ -n "${WHEELS:-}" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    "$WHEELS"/*.whl && export PYTHONPATH=/tmp/site
fi
if [ -n "${CIFAR_TGZ:-}" ]; then
  mkdir -p /tmp/data && tar xzf "$CIFAR_TGZ" -C /tmp/data && CIFAR=/tmp/data/cifar10
fi
CIFAR=${CIFAR:-../shared/datasets/cifar10}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}src HF_HUB_OFFLINE=1 XDG_CACHE_HOME=${XDG_CACHE_HOME:-/tmp/cache}
export PYTHONUNBUFFERED=1
mkdir -p "$XDG_CACHE_HOME"  # torch's kernel cache goes under it and is not created otherwise
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, kornia; print('torch', torch.__version__, 'kornia', kornia.__version__)"
  python3 -c "import torchvision; print('torchvision', torchvision.__version__)"; nproc; } > "$WORK/machine.txt" 2>&1
cat "$WORK/machine.txt"

left() { echo $(( T0 + DEADLINE_S - $(date +%s) )); }
save() { tar czf "$OUT/gpu_results.tgz" -C "$WORK" .; }
part() {  # part NAME CAP_SECONDS COMMAND...: at most CAP seconds and never past the deadline (less 10 s for tar)
  local name=$1 cap=$2; shift 2
  if [ -n "${PARTS:-}" ] && [[ " $PARTS " != *" $name "* ]]; then return; fi  # not chosen
  local limit=$(( $(left) - 10 < cap ? $(left) - 10 : cap ))
  if [ "$limit" -lt 10 ]; then echo "== $name skipped: no time left"; return; fi
  echo "== $name ($(( $(date +%s) - T0 )) s, cap $limit s)"
  timeout "$limit" "$@" > "$WORK/$name.txt" 2>&1; echo "exit $? after $(( $(date +%s) - T0 )) s" >> "$WORK/$name.txt"
  tail -n 40 "$WORK/$name.txt"
  save
}
SPEED="python3 benchmarks/training_speed.py --data $CIFAR --device $DEVICE $LIMIT_ARG"

# 1. No device-to-host sync in the image hot loop: sample + apply_plan under CUDA's sync debug mode.
if [ "$DEVICE" = cuda ]; then
part sync_check 30 python3 - <<'PY'
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
fi
# 2. Ops throughput, ours vs Kornia and torchvision v2, batch 64 / 1024 / 4096.
part ops_throughput 75 python3 benchmarks/ops_throughput.py --device "$DEVICE" --batches 64,1024,4096 --repeats 15
# 3. Step overhead and epoch time per policy (eager float32; CUDA's default layout, NCHW), with the DataLoader +
#    per-image torchvision loop; this part also decodes CIFAR-10 into the cache the later parts read.
part training_speed_eager 130 $SPEED --epochs 1
# 4. The step's forward and backward captured as CUDA graphs (torch.compile's reduce-overhead; new in the eleventh
#     session, never run on a GPU yet): 3 epochs, so the last one is past compilation and graph recording.
#     perf_hints logs why inductor skips the graphs if it does ("skipping cudagraphs due to ...").
part training_speed_graphs 100 env TORCH_LOGS=perf_hints $SPEED --epochs 3 --compile-mode reduce-overhead \
  --no-baseline --policies none,trivialaugment,augnet
# 5. The bare step's floor: fused Adam, channels_last, bf16, a CUDA graph of the whole step.
part step_floor 35 python3 benchmarks/step_floor.py --device "$DEVICE" --steps ${FLOOR_STEPS:-200}
# 6. AugNet's own cost against TrivialAugment (issue #7's time bound): the image default (gate, 32-image probe
#    chunk), a probe every fourth round, the whole probe every round, and long rounds (32 steps, whole probe).
part augnet_cost 90 python3 benchmarks/augnet_cost.py --data "$CIFAR" --device "$DEVICE" ${LIMIT_ARG:---limit 20000} \
  --variants "augnet,augnet[probe_every=4],augnet[probe_chunk=256],augnet[update_every=32][minibatch=2048][buffer_size=2048]"
# 7. The 50-epoch CIFAR-10 augnet run with early stopping off: history.csv keeps each epoch's time if it is cut.
part full50_augnet 70 python3 -m adaptaug train --task cifar10 --data "$CIFAR" --policy augnet --epochs 50 \
  --patience 1000 --no-robustness --device "$DEVICE" $LIMIT_ARG --out /tmp/full50-augnet --no-progress
cp /tmp/full50-augnet/history.csv "$WORK/full50_history.csv" 2>/dev/null; save
# 8. Synchronising calls per training epoch and policy (expected: a few for the loss read and validation;
#    AugNet adds its per-round reads).
if [ "$DEVICE" = cuda ]; then
part sync_train 50 python3 - "$CIFAR" <<'PY'
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
    sites = {}
    for w in syncs:
        sites[(w.filename, w.lineno)] = sites.get((w.filename, w.lineno), 0) + 1
    for (f, line), n in sorted(sites.items(), key=lambda kv: -kv[1])[:6]:
        print(f"    {n:5d} x {f}:{line}")
PY
fi
# 9. Where the step's time goes: profiler tables and kernel launches per step.
part step_profile 40 python3 benchmarks/step_profile.py --data "$CIFAR" --device "$DEVICE" --limit ${LIMIT:-3200} \
  --policies none,augnet --rows 25

if [ "${GRID:-0}" = 1 ]; then  # issue #7's full CIFAR-10 grid (3 seeds, <= 50 epochs, early stopping), all at once:
  # one run leaves the GPU mostly idle (the step is host-bound), 16 cores feed about a dozen
  part grid $(( $(left) - 20 )) python3 -m adaptaug compare --task cifar10 --data "$CIFAR" --seeds 3 --epochs 50 \
    --policies "${GRID_POLICIES:-standard,randaugment,trivialaugment,augnet,augnet[no_gate]}" \
    --jobs ${JOBS:-15} --device "$DEVICE" --out runs/cifar10-grid --no-progress
  mkdir -p "$WORK/grid"
  (cd runs/cifar10-grid 2>/dev/null && find . -maxdepth 3 -type f ! -name '*.pt' -print0 \
    | xargs -0 -r cp --parents -t "$WORK/grid"); save
fi
echo "done at $(( $(date +%s) - T0 )) s"
