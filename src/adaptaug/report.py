"""The comparison report: results.csv, report.md and PNG plots from a grid of run directories.

Per policy it reports mean ± std over seeds (sample std, ddof 1) of test accuracy, F1 and loss, accuracy
under FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018) at each eps and under common corruptions
(Hendrycks & Dietterich 2019), training time and AugNet's overhead, then each policy's difference to the
best fixed policy with a 95% Welch t interval. Plots use matplotlib's Agg canvas directly (no pyplot, no
global backend switch); without matplotlib the report is written without them and says so.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

from adaptaug import __version__
from adaptaug.io import write_atomic, write_csv

FIXED_POLICIES = ("none", "standard", "randaugment", "trivialaugment")
ADVERSARIAL = re.compile(r"^eval_robust_(?P<attack>[a-z0-9]+)_eps(?P<eps>[0-9.]+)_accuracy$")
PER_CORRUPTION = re.compile(r"^eval_robust_(?P<name>[a-z_]+?)_accuracy$")
COST_KEYS = (("epoch", "epochs run", "epochs"), ("train_runtime", "train (s)", "seconds"),
             ("data_runtime", "data (s)", "seconds"), ("augment_runtime", "augment (s)", "seconds"),
             ("augnet_runtime", "AugNet (s)", "seconds"), ("model_runtime", "model step (s)", "seconds"),
             ("validation_runtime", "validation (s)", "seconds"), ("eval_runtime", "test eval (s)", "seconds"),
             ("robustness_runtime", "robustness eval (s)", "seconds"),
             ("augnet_overhead_percent", "AugNet overhead (%)", "percent"))


# --------------------------------------------------------------------------------------------- statistics
def _floats(rows: Iterable[dict[str, Any]], key: str) -> list[float]:
    out = []
    for row in rows:
        try:
            value = float(row[key])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(value):
            out.append(value)
    return out


def finished_runs(*paths: str | Path) -> dict[tuple[str, int], dict[str, str]]:
    """The rows of ``compare``'s results.csv files whose run finished (status done or reused), keyed by (policy,
    seed), as read-out scripts pool grids; a later file's row for the same run replaces an earlier one's."""
    rows = {}
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                if row["status"] in ("done", "reused"):
                    rows[(row["policy"], int(row["seed"]))] = row
    return rows


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0 for one value, nan for none)."""
    n = len(values)
    if n == 0:
        return float("nan"), float("nan")
    mean = sum(values) / n
    return mean, (math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0)


def welch_interval(a: Sequence[float], b: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """mean(a) - mean(b) and its Welch t confidence interval (unequal variances); nan bounds when either
    side has fewer than two values. No spread at all gives the degenerate interval [diff, diff]."""
    diff = mean_std(a)[0] - mean_std(b)[0]
    if len(a) < 2 or len(b) < 2:
        return diff, float("nan"), float("nan")
    va, vb = mean_std(a)[1] ** 2 / len(a), mean_std(b)[1] ** 2 / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    half = _t_half_width(se, df, level)
    return diff, diff - half, diff + half


def paired_interval(a: dict[int, float], b: dict[int, float], level: float = 0.95) -> tuple[float, float, float, int]:
    """Mean of a[seed] - b[seed] over the seeds both have, its t interval (n - 1 degrees of freedom) and n.
    Pairing fits runs whose seed also picks the data (a ``--limit`` subset, the validation split): the
    seed-to-seed spread they share drops out. nan bounds below two common seeds."""
    diffs = [a[s] - b[s] for s in sorted(a.keys() & b.keys())]
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return mean, float("nan"), float("nan"), len(diffs)
    half = _t_half_width(std / math.sqrt(len(diffs)), len(diffs) - 1, level)
    return mean, mean - half, mean + half, len(diffs)


def _t_half_width(se: float, df: float, level: float) -> float:
    """Half the width of a two-sided t interval at ``level`` with standard error ``se``."""
    from scipy import stats  # comes with scikit-learn

    return float(stats.t.ppf(0.5 + level / 2, df)) * se


# --------------------------------------------------------------------------------------------- formatting
def _is_rate(key: str) -> bool:
    return key.endswith(("_accuracy", "_f1"))


def _fmt(values: Sequence[float], key: str) -> str:
    if not values:
        return "n/a"
    mean, std = mean_std(values)
    if _is_rate(key):
        return f"{100 * mean:.2f} ± {100 * std:.2f}"
    if key.endswith("_loss"):
        return f"{mean:.4f} ± {std:.4f}"
    if key == "epoch":
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.2f} ± {std:.2f}"


def _attack_label(attack: str, eps: str) -> str:
    """Image attacks: eps in 1/255 pixel units; embedding attacks (text): eps in % of the embedding norm."""
    if attack.startswith("emb"):
        return f"emb-{attack[3:].upper()} {eps}%"
    return f"{attack.upper()} {eps}/255"


def adversarial_keys(rows: Sequence[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(key, attack, eps) for every attack key present, ordered by eps then attack (fgsm before pgd)."""
    found = {k for row in rows for k in row if ADVERSARIAL.match(k)}
    parsed = [(k, ADVERSARIAL.match(k)["attack"], ADVERSARIAL.match(k)["eps"]) for k in found]
    return sorted(parsed, key=lambda t: (float(t[2]), t[1]))


def corruption_names(rows: Sequence[dict[str, Any]]) -> list[str]:
    keys = {k for row in rows for k in row}
    names = []
    for k in sorted(keys):
        m = PER_CORRUPTION.match(k)
        if m and not ADVERSARIAL.match(k) and m["name"] != "corruption" and not re.search(r"_[sr]\d+$", m["name"]):
            names.append(m["name"])
    return names


def _table(header: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in body]


# --------------------------------------------------------------------------------------------- machine
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info() -> str:
    import torch

    parts = [platform.platform(), f"{_cpu_name()} ({os.cpu_count()} logical CPUs)"]
    if torch.cuda.is_available():
        parts.append(f"GPU: {torch.cuda.get_device_name(0)}")
    parts += [f"Python {platform.python_version()}", f"torch {torch.__version__}", f"adaptaug {__version__}"]
    return "; ".join(parts)


# --------------------------------------------------------------------------------------------- report
def render_report(rows: Sequence[dict[str, Any]], *, command: str, task: str, policies: Sequence[str],
                  plots: Sequence[Path], plot_note: str, devices: Sequence[str] = (),
                  dynamics: Sequence[dict[str, Any]] = ()) -> str:
    """report.md's text. ``dynamics``: ``summarise_trace`` of each learning AugNet run, with its policy and seed."""
    ok = [r for r in rows if r.get("status") != "failed"]
    by_policy: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ok:
        by_policy[r["policy"]].append(r)
    adv = adversarial_keys(ok)
    lines = [f"# adaptaug comparison: {task}", "",
             f"- command: `{command}`",
             f"- date: {datetime.now().astimezone().isoformat(timespec='seconds')}",
             f"- machine (that wrote this report): {machine_info()}"]
    devices = [d for d in devices if d != "auto"]  # "auto" says nothing about where a run went
    if devices:
        lines.append(f"- training device(s) recorded in the runs: {', '.join(sorted(set(devices)))}")
    seeds = sorted({int(r["seed"]) for r in rows})
    lines += [f"- runs: {len(rows)} ({len(ok)} finished, {len(rows) - len(ok)} failed); "
              f"seeds {', '.join(map(str, seeds))}; every figure is mean ± sample std over seeds", ""]

    lines += ["## Accuracy and robustness (test split; accuracies and F1 in %)", ""]
    if _is_tagging(ok):
        main = [("eval_accuracy", "token acc"), ("eval_f1", "entity F1 (micro)"), ("eval_loss", "loss")]
    else:
        main = [("eval_accuracy", "test acc"), ("eval_f1", "F1 (macro)"), ("eval_loss", "loss")]
    if any("best_val_accuracy" in r for r in ok):  # what to choose a policy by: validation, not test
        main = [("best_val_accuracy", "val acc (kept epoch)")] + main
    main += [(k, _attack_label(a, e)) for k, a, e in adv]
    if any("eval_robust_corruption_accuracy" in r for r in ok):
        main.append(("eval_robust_corruption_accuracy", "corruptions (mean)"))
    main += [("train_runtime", "train time (s)"), ("augnet_overhead_percent", "AugNet overhead (%)")]
    body = [[p, str(len(by_policy[p]))] + [_fmt(_floats(by_policy[p], k), k) for k, _ in main]
            for p in policies if by_policy.get(p)]
    lines += _table(["policy", "seeds"] + [label for _, label in main], body) + [""]
    if any(a.startswith("emb") for _, a, _ in adv):
        lines += ["emb-PGD: PGD (Madry et al. 2018) on the embedded tokens, L2-bounded so that eps is the RMS "
                  "perturbation per token as a share of the sentence's mean embedding norm; 10 steps of eps/4, "
                  "first 1,000 test samples.", ""]
    elif adv:
        lines += ["FGSM: one signed-gradient step (Goodfellow et al. 2015); PGD: L-infinity, 10 steps of eps/4 from "
                  "a random start (Madry et al. 2018); eps in pixel units of [0, 1] images (normalisation is inside "
                  "the model).", ""]
    else:
        lines += ["No robustness keys in these runs (robustness evaluation off, or no suite for this task).", ""]

    corr = corruption_names(ok)
    if corr and any(a.startswith("emb") for _, a, _ in adv):
        lines += ["## Token noise (accuracy %, mean over rates; unk: tokens replaced by <unk>, drop: tokens dropped)",
                  ""]
    elif corr:
        lines += ["## Common corruptions (accuracy %, mean over severities 1, 3, 5; Hendrycks & Dietterich 2019)", ""]
        body = [[p] + [_fmt(_floats(by_policy[p], f"eval_robust_{c}_accuracy"), "x_accuracy") for c in corr]
                for p in policies if by_policy.get(p)]
        lines += _table(["policy"] + [c.replace("_", " ") for c in corr], body)
        lines += ["", "Per-severity (per-rate) accuracies and F1 are in results.csv (`eval_robust_*`).", ""]

    lines += ["## Cost", "",
              "Training time is split into data loading, augmentation (the policy's ops), AugNet's own work "
              "(sampling, validation probe, reward, updates), the model step and per-epoch validation; the test and "
              "robustness evaluations come after training and are not part of it.", ""]
    body = [[p] + [_fmt(_floats(by_policy[p], k), k) for k, _, _ in COST_KEYS] for p in policies if by_policy.get(p)]
    lines += _table(["policy"] + [label for _, label, _ in COST_KEYS], body) + [""]

    lines += _difference_section(by_policy, policies, adv)
    lines += _augnet_section(by_policy, policies, adv)
    lines += _dynamics_section(dynamics)

    failed = [r for r in rows if r.get("status") == "failed"]
    if failed:
        lines += ["## Failed runs", ""]
        lines += [f"- `{r['run_dir']}`: {r.get('error') or 'unknown error'}" for r in failed] + [""]

    lines += ["## Plots", ""]
    if plots:
        lines += [f"![{p.stem}]({p.name})" for p in plots] + [""]
    if plot_note:
        lines += [plot_note, ""]
    lines += ["Per-run numbers: results.csv; per-run files: runs/<policy>-s<seed>/ (config.json, history.csv, "
              "trace.csv, metrics.json, model.pt).", ""]
    return "\n".join(lines)


def _is_tagging(rows: Iterable[dict[str, Any]]) -> bool:
    """NER runs: their metrics carry entity precision (seqeval), and eval_accuracy is token accuracy."""
    return any("eval_precision" in r for r in rows)


def _headline(by_policy: dict[str, list[dict[str, Any]]]) -> tuple[str, str]:
    """The metric policies are compared by: entity F1 for NER (token accuracy is ~96% whatever the policy),
    test accuracy otherwise."""
    if _is_tagging(r for rows in by_policy.values() for r in rows):
        return "eval_f1", "entity F1"
    return "eval_accuracy", "test acc"


def _pgd_keys(adv: Sequence[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    """The PGD attacks among ``adv`` (image or embedding), in order of eps."""
    return [t for t in adv if t[1] in ("pgd", "embpgd")]


def _difference_cell(rows: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]], key: str) -> str:
    """Mean difference in percentage points with its 95% Welch interval, e.g. ``+1.20 [+0.10, +2.30]``."""
    a, b = _floats(rows, key), _floats(reference, key)
    if not a or not b:
        return "n/a"
    diff, lo, hi = welch_interval(a, b)
    if math.isnan(lo):
        return f"{100 * diff:+.2f} n/a (needs ≥ 2 seeds)"
    return _points_with_interval(diff, lo, hi)


def _points_with_interval(diff: float, lo: float, hi: float) -> str:
    """A difference of rates in percentage points with its interval: ``+1.20 [+0.10, +2.30]``."""
    return f"{100 * diff:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]"


def _difference_section(by_policy: dict[str, list[dict[str, Any]]], policies: Sequence[str],
                        adv: Sequence[tuple[str, str, str]]) -> list[str]:
    lines = ["## Difference to the best fixed policy", ""]
    fixed = [p for p in policies if p in FIXED_POLICIES and by_policy.get(p)]
    if not fixed:
        return lines + ["No fixed policy (none, standard, randaugment, trivialaugment) finished in this grid.", ""]
    headline = _headline(by_policy)
    best = max(fixed, key=lambda p: mean_std(_floats(by_policy[p], headline[0]))[0])
    keys = [headline]
    strongest = _pgd_keys(adv)[-1:]  # the largest-eps PGD: the hardest attack
    keys += [(k, _attack_label(a, e)) for k, a, e in strongest]
    keys += [("eval_robust_corruption_accuracy", "corruptions")] if any(
        "eval_robust_corruption_accuracy" in r for rs in by_policy.values() for r in rs) else []
    lines += [f"Best fixed policy: **{best}** (highest mean {headline[1]} on the test split among the fixed "
              "policies in this grid). It is chosen on the test split only to pick this comparison row: that "
              "choice is optimistic for the baseline and is not a model selection. Differences in percentage "
              f"points, policy minus {best}, with a 95% Welch t interval over seeds (unequal variances).", ""]
    body = []
    for p in policies:
        if p == best or not by_policy.get(p):
            continue
        body.append([p] + [_difference_cell(by_policy[p], by_policy[best], k) for k, _ in keys])
    if not body:
        return lines + ["Only the best fixed policy finished; nothing to compare against.", ""]
    return lines + _table(["policy"] + [f"Δ {label}" for _, label in keys], body) + [""]


def _by_seed(rows: Sequence[dict[str, Any]], key: str) -> dict[int, float]:
    return {int(r["seed"]): v for r in rows for v in _floats([r], key) if str(r.get("seed", "")).isdigit()}


def _paired_cell(rows: Sequence[dict[str, Any]], reference: Sequence[dict[str, Any]], key: str) -> str:
    diff, lo, hi, n = paired_interval(_by_seed(rows, key), _by_seed(reference, key))
    if math.isnan(lo):
        return "n/a (needs ≥ 2 common seeds)"
    return _points_with_interval(diff, lo, hi)


def _step_normalised_time(rows: Sequence[dict[str, Any]]) -> float:
    """Mean over runs of training time / model-step time. Runs that share the machine with others slow down
    together, so this ratio, unlike seconds, compares runs made under different loads (same model, same steps)."""
    ratios = [t / m for r in rows for t, m in zip(_floats([r], "train_runtime"), _floats([r], "model_runtime"))
              if m > 0]
    return mean_std(ratios)[0] if ratios else float("nan")


def _augnet_section(by_policy: dict[str, list[dict[str, Any]]], policies: Sequence[str],
                    adv: Sequence[tuple[str, str, str]]) -> list[str]:
    """AugNet against TrivialAugment and RandAugment, the quality issue's targets: test accuracy and the
    weakest PGD (eps 2/255 on images) with 95% Welch intervals, test accuracy paired by seed, and training time
    as a ratio of means, in seconds and per second of model step."""
    learned = [p for p in policies if p.startswith("augnet") and by_policy.get(p)]
    baselines = [b for b in ("trivialaugment", "randaugment") if by_policy.get(b)]
    if not learned or not baselines:
        return []
    pgd = _pgd_keys(adv)[:1]  # the smallest-eps PGD
    keys = [_headline(by_policy)] + [(k, _attack_label(a, e)) for k, a, e in pgd]
    lines = ["## AugNet against TrivialAugment and RandAugment", "",
             "The quality issue's targets (entity F1 stands for test accuracy on NER): AugNet's mean test accuracy "
             "above each baseline's with the 95% Welch interval of the difference above zero, robust accuracy no "
             "worse, and training time within 1.05x of TrivialAugment's. Differences in percentage points "
             "(AugNet minus baseline); \"paired\" is the mean of per-seed differences with its t interval (a "
             "seed also picks the data subset and validation split, so the pairing removes that shared spread). "
             "Time as the ratio of mean training times, in seconds (sensitive to how loaded the machine was "
             "during each run) and per second of model step (each run's training time over its own model-step "
             "time: robust to load; quiet-machine costs are in BENCHMARKS.md).", ""]
    body = []
    for p in learned:
        for b in baselines:
            cells = [p, b] + [_difference_cell(by_policy[p], by_policy[b], k) for k, _ in keys[:1]]
            cells.append(_paired_cell(by_policy[p], by_policy[b], keys[0][0]))
            cells += [_difference_cell(by_policy[p], by_policy[b], k) for k, _ in keys[1:]]
            times = [mean_std(_floats(by_policy[x], "train_runtime"))[0] for x in (p, b)]
            cells.append(f"{times[0] / times[1]:.2f}x" if times[1] > 0 else "n/a")
            per_step = [_step_normalised_time(by_policy[x]) for x in (p, b)]
            finite = all(math.isfinite(t) for t in per_step) and per_step[1] > 0
            cells.append(f"{per_step[0] / per_step[1]:.2f}x" if finite else "n/a")
            body.append(cells)
    header = ["policy", "baseline", f"Δ {keys[0][1]}", f"Δ {keys[0][1]} (paired)"] + [
        f"Δ {label}" for _, label in keys[1:]]
    return lines + _table(header + ["train time", "train time per model-step s"], body) + [""]


COMMITTED_P = 0.5  # one op drawn for half the samples or more: the policy has committed to it


def _op_names(trace: Sequence[dict[str, float]]) -> list[str]:
    return [k[2:] for k in (trace[0] if trace else {}) if k.startswith("p_")]


def committed_ops(trace: Sequence[dict[str, float]]) -> list[str | None]:
    """Per trace.csv row (one per round), the op AugNet had committed to (drawn for ``COMMITTED_P`` of the samples or
    more), or None where no op had that share."""
    ops = _op_names(trace)
    tops = [max(ops, key=lambda o: row[f"p_{o}"]) for row in trace] if ops else [None] * len(trace)
    return [top if top is not None and row[f"p_{top}"] >= COMMITTED_P else None for row, top in zip(trace, tops)]


def summarise_trace(trace: Sequence[dict[str, float]]) -> dict[str, Any] | None:
    """What one AugNet run did, from its trace.csv rows (one per round; None without rounds or op columns): how
    many rounds it logged, the share of them in which it had committed to one op (``COMMITTED_P``), the ops it
    committed to in the order it first did, its top op, that op's probability and the normalised entropy of the
    last round, and, with the gate or a warmup, the mean and last share of samples AugNet's op reached."""
    ops = _op_names(trace)
    if not ops:
        return None
    committed = [op for op in committed_ops(trace) if op is not None]
    last = trace[-1]
    last_top = max(ops, key=lambda o: last[f"p_{o}"])
    summary: dict[str, Any] = {
        "rounds": len(trace), "ops": len(ops), "committed_share": len(committed) / len(trace),
        "committed_to": list(dict.fromkeys(committed)), "last_top": last_top, "last_top_p": last[f"p_{last_top}"],
        "last_entropy": last.get("entropy", math.nan)}
    shares = [row["augmented_share"] for row in trace if "augmented_share" in row]
    if shares:
        summary.update(mean_share=sum(shares) / len(shares), last_share=shares[-1])
    return summary


def _dynamics_section(dynamics: Sequence[dict[str, Any]]) -> list[str]:
    """One row per learning AugNet run: what it did over training (``summarise_trace``)."""
    if not dynamics:
        return []
    from adaptaug.policies.augnet import AugNetConfig

    floor = AugNetConfig().uniform_floor
    caps = ", ".join(f"{1 - floor + floor / n:.0%} over {n} ops" for n in sorted({d["ops"] for d in dynamics}))
    lines = ["## What AugNet did, run by run", "",
             "The op-probability plot averages the seeds, which hides what each run did: a run may commit to one "
             f"op (drawn for {COMMITTED_P:.0%} of the samples or more; the default uniform floor, {floor}, caps it "
             f"at {caps}), a different one per seed, and the mean of such runs looks spread out. Entropy is normalised "
             "(1: uniform). \"Share augmented\" is the share of samples AugNet's op reached (its gate or warmup; "
             "mean over rounds / last round). Frozen runs log no rounds and are not listed.", ""]
    body = []
    for d in sorted(dynamics, key=lambda d: (d["policy"], int(d["seed"]))):
        share = (f"{100 * d['mean_share']:.0f}% / {100 * d['last_share']:.0f}%" if "mean_share" in d else "all")
        body.append([d["policy"], str(d["seed"]), str(d["rounds"]), f"{100 * d['committed_share']:.0f}%",
                     ", ".join(d["committed_to"]) or "none", f"{d['last_top']} ({100 * d['last_top_p']:.0f}%)",
                     f"{d['last_entropy']:.2f}", share])
    return lines + _table(["policy", "seed", "rounds", "rounds on one op", "ops committed to",
                           "last round: top op", "last round: entropy", "share augmented"], body) + [""]


# --------------------------------------------------------------------------------------------- plots
def _read_csv(path: Path) -> list[dict[str, float]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    out = []
    for row in rows:
        parsed = {}
        for k, v in row.items():
            try:
                parsed[k] = float(v)
            except (TypeError, ValueError):
                pass
        out.append(parsed)
    return out


def _save(fig: Any, path: Path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    write_atomic(path, buf.getvalue())
    return path


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def plot_validation(out: Path, ok: Sequence[dict[str, Any]], policies: Sequence[str]) -> Path | None:
    fig = _figure()
    ax = fig.add_subplot()
    drawn = False
    for p in policies:
        per_epoch: dict[int, list[float]] = defaultdict(list)
        for r in ok:
            if r["policy"] != p:
                continue
            for h in _read_csv(out / r["run_dir"] / "history.csv"):
                if "epoch" in h and "val_accuracy" in h:
                    per_epoch[int(h["epoch"])].append(h["val_accuracy"])
        if per_epoch:
            epochs = sorted(per_epoch)
            ax.plot(epochs, [100 * sum(per_epoch[e]) / len(per_epoch[e]) for e in epochs], marker="o", ms=3, label=p)
            drawn = True
    if not drawn:
        return None
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
    ax.set(xlabel="epoch", ylabel="validation accuracy (%)",
           title="Validation accuracy per epoch (mean over the seeds that ran it)")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out / "val_accuracy.png")


def _mean_trace(out: Path, ok: Sequence[dict[str, Any]]) -> tuple[list[float], dict[str, list[float]]]:
    """AugNet's trace.csv averaged over seeds, truncated to the shortest (early stopping cuts runs)."""
    traces = [t for r in ok if r["policy"] == "augnet" for t in [_read_csv(out / r["run_dir"] / "trace.csv")] if t]
    if not traces:
        return [], {}
    n = min(len(t) for t in traces)
    cols = [k for k in traces[0][0] if k.startswith(("p_", "m_"))]
    steps = [traces[0][i]["step"] for i in range(n)]
    return steps, {k: [sum(t[i][k] for t in traces) / len(traces) for i in range(n)] for k in cols}


def plot_augnet(out: Path, ok: Sequence[dict[str, Any]]) -> list[Path]:
    steps, cols = _mean_trace(out, ok)
    if not steps:
        return []
    from adaptaug.ops.space import get_op

    ops = [k[2:] for k in cols if k.startswith("p_")]
    fig = _figure(7.5, 4.2)
    ax = fig.add_subplot()
    import matplotlib

    colours = matplotlib.colormaps["tab20"].resampled(max(len(ops), 1))
    ax.stackplot(steps, [[100 * v for v in cols[f"p_{o}"]] for o in ops], labels=ops,
                 colors=[colours(i) for i in range(len(ops))])
    ax.set(xlabel="training step", ylabel="op probability (%)", ylim=(0, 100),
           title="AugNet's op distribution over training (mean over seeds)")
    if steps[-1] > steps[0]:  # a run of one round has one point
        ax.set_xlim(steps[0], steps[-1])
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    paths = [_save(fig, out / "augnet_ops.png")]

    def has_magnitude(op: str) -> bool:
        try:
            return get_op(op).has_magnitude
        except Exception:  # noqa: BLE001 — an op of a task not loaded here: plot it anyway
            return True

    mag_ops = [o for o in ops if f"m_{o}" in cols and has_magnitude(o)]
    if mag_ops:
        fig = _figure(7.5, 4.2)
        ax = fig.add_subplot()
        for i, o in enumerate(mag_ops):
            ax.plot(steps, cols[f"m_{o}"], label=o, color=colours(ops.index(o)))
        ax.set(xlabel="training step", ylabel="expected magnitude level (0..1)", ylim=(0, 1),
               title="AugNet's mean magnitude per op (mean over seeds)")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
        paths.append(_save(fig, out / "augnet_magnitudes.png"))
    return paths


def plot_robustness(out: Path, ok: Sequence[dict[str, Any]], policies: Sequence[str]) -> Path | None:
    adv = adversarial_keys(ok)
    if not adv:
        return None
    fig = _figure()
    ax = fig.add_subplot()
    import matplotlib

    colours = matplotlib.colormaps["tab10"]
    attacks = sorted({a for _, a, _ in adv}, key=lambda a: (a.endswith("pgd"), a))  # fgsm (dashed) then pgd
    for i, p in enumerate(policies):
        runs = [r for r in ok if r["policy"] == p]
        clean = _floats(runs, "eval_accuracy")
        if not runs or not clean:
            continue
        for attack in attacks:
            style = "-" if attack.endswith("pgd") else "--"
            points = [(0.0, *mean_std(clean))]
            points += [(float(e), *mean_std(_floats(runs, k))) for k, a, e in adv if a == attack and _floats(runs, k)]
            xs, ms, ss = zip(*points)
            ax.errorbar(xs, [100 * m for m in ms], yerr=[100 * s for s in ss], ls=style, marker="o", ms=3, capsize=2,
                        color=colours(i % 10), label=f"{p} {_attack_label(attack, '').split()[0]}")
    text = any(a.startswith("emb") for a in attacks)
    ax.set(xlabel="eps (% of the embedding norm, L2)" if text else "eps (/255, L-infinity)", ylabel="test accuracy (%)",
           title="Accuracy under attack (eps 0 = clean; mean ± std over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out / "robustness.png")


def draw_plots(out: Path, rows: Sequence[dict[str, Any]], policies: Sequence[str]) -> tuple[list[Path], str]:
    """The PNGs drawn and a note for the report (why some or all are missing)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], ("Plots were not drawn: matplotlib is not installed here "
                    "(`pip install matplotlib`, or the `bench` extra).")
    ok = [r for r in rows if r.get("status") != "failed"]
    plots: list[Path] = []
    for path in (plot_validation(out, ok, policies), *plot_augnet(out, ok), plot_robustness(out, ok, policies)):
        if path is not None:
            plots.append(path)
    missing = []
    if not any(r["policy"] == "augnet" for r in ok):
        missing.append("no AugNet run, so no op-probability plot")
    if not adversarial_keys(ok):
        missing.append("no robustness keys, so no robustness plot")
    return plots, ("Not drawn: " + "; ".join(missing) + ".") if missing else ""


def write_report(out: str | os.PathLike, rows: Sequence[dict[str, Any]], *, command: str, task: str,
                 policies: Sequence[str]) -> list[Path]:
    """Write results.csv, the plots and report.md into ``out``; returns the paths written."""
    out = Path(out)
    write_csv(out / "results.csv", rows)
    plots, note = draw_plots(out, rows, policies)
    devices = []
    for r in rows:
        cfg = out / r["run_dir"] / "config.json"
        try:
            devices.append(json.loads(cfg.read_text(encoding="utf-8"))["device"])
        except (OSError, ValueError, KeyError):
            pass
    dynamics = []
    for r in rows:
        if r.get("status") != "failed" and str(r["policy"]).startswith("augnet"):
            summary = summarise_trace(_read_csv(out / r["run_dir"] / "trace.csv"))
            if summary is not None:
                dynamics.append({"policy": r["policy"], "seed": r["seed"], **summary})
    write_atomic(out / "report.md", render_report(rows, command=command, task=task, policies=policies, plots=plots,
                                                  plot_note=note, devices=devices, dynamics=dynamics))
    return [out / "results.csv", *plots, out / "report.md"]


__all__ = ["draw_plots", "machine_info", "mean_std", "render_report", "summarise_trace", "welch_interval",
           "write_report"]
