#!/usr/bin/env bash
# One-off A/B on a lent GPU: adaptaug before (old_src, 259f0cf) and after host bookkeeping went to one thread.
set -uo pipefail
T0=$(date +%s); W=$OUT/r; mkdir -p $W
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
mkdir -p /tmp/data && tar xzf _carry/cifar.tgz -C /tmp/data; C=/tmp/data/cifar10
export HF_HUB_OFFLINE=1 XDG_CACHE_HOME=/tmp/cache PYTHONUNBUFFERED=1; mkdir -p /tmp/cache
OLD=/tmp/site:_carry/old_src; NEW=/tmp/site:src
run() { local name=$1 cap=$2 pp=$3; shift 3; echo "== $name $(( $(date +%s) - T0 )) s"
  PYTHONPATH=$pp timeout $cap "$@" > $W/$name.txt 2>&1; echo "exit $? at $(( $(date +%s) - T0 )) s" >> $W/$name.txt
  grep -v "^I11\|warn" $W/$name.txt | tail -14; tar czf $OUT/ab.tgz -C $W .; }
run micro 30 $NEW python3 - <<'PY'
import time, torch
from adaptaug.host_threads import one_thread
x = torch.randn(32, 17, 10)
for label in ("default threads", "one_thread"):
    for _ in range(50):
        x.softmax(-1)
    t = time.perf_counter()
    for _ in range(500):
        if label == "one_thread":
            with one_thread():
                x.softmax(-1)
        else:
            x.softmax(-1)
    print(f"softmax (32,17,10) on the host, {label} ({torch.get_num_threads()}): "
          f"{(time.perf_counter() - t) / 500 * 1e6:.1f} us")
PY
S="python3 benchmarks/training_speed.py --data $C --device cuda --epochs 1 --no-baseline --policies none,trivialaugment,augnet"
run speed_old 75 $OLD $S
run speed_new 75 $NEW $S
O="python3 benchmarks/ops_throughput.py --device cuda --batches 64,1024 --repeats 10"
run ops_old 40 $OLD $O
run ops_new 40 $NEW $O
A="python3 benchmarks/augnet_cost.py --data $C --device cuda --limit 20000 --variants augnet,augnet[update_every=32][minibatch=2048][buffer_size=2048]"
run cost_old 50 $OLD $A
run cost_new 50 $NEW $A
run speed_new_t1 75 $NEW $S --threads 1
run full50_new 60 $NEW python3 -m adaptaug train --task cifar10 --data $C --policy augnet --epochs 50 --patience 1000 \
  --no-robustness --device cuda --out /tmp/full50 --no-progress
cp /tmp/full50/history.csv $W/full50_history.csv 2>/dev/null; tar czf $OUT/ab.tgz -C $W .
echo "done $(( $(date +%s) - T0 )) s"
