"""The fixed policy this report tests: the mean of the last distributions of AugNet's ten SST-2 runs of
reports/sst2-whole-val/ (seeds 5-14), in force from the first step.

    for s in 5 6 7 8 9 10 11 12 13 14; do
      adaptaug export-policy RUNS/augnet-s$s -o /tmp/pol_s$s.json; done
    python reports/sst2-learned-fixed/make_policy.py /tmp/pol_s{5..14}.json > reports/sst2-learned-fixed/learned-mean.json
"""
import json
import sys

sources = [json.load(open(path)) for path in sys.argv[1:]]
ops = sources[0]["ops"]
assert all(s["ops"] == ops and s["slots"] == sources[0]["slots"] for s in sources)
last = [s["rows"][-1] for s in sources]
probs = [sum(row[2][i] for row in last) / len(last) for i in range(len(ops))]
levels = [sum(row[3][i] for row in last) / len(last) for i in range(len(ops))]
policy = {k: v for k, v in sources[0].items() if k != "rows"}
policy["source"] = "mean of the last rows of reports/sst2-whole-val AugNet runs, seeds 5-14"
policy["rows"] = [[0, 0.0, probs, levels]]
print(json.dumps(policy, indent=1))
