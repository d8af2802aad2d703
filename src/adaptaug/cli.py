"""Command line: ``adaptaug train ...``. ``main(argv) -> int`` so tests call it directly."""
from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Sequence

from adaptaug import __version__
from adaptaug.errors import AdaptaugError, ConfigError

if TYPE_CHECKING:  # the CLI imports torch-heavy modules lazily, when a command needs them
    from adaptaug.config import TrainConfig

EXIT_BAD_INPUT = 2
WHOLE_TEXTS_HELP = ("text tasks: validation from whole texts only, training texts inside them dropped "
                    "(SST-2 trains on phrases but tests on sentences)")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage dump
        raise AdaptaugError(message)


def _int_at_least(text: str, minimum: int, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _int_at_least(text, 1, "a positive integer")


def _non_negative_int(text: str) -> int:
    return _int_at_least(text, 0, "a non-negative integer")


def _val_size(text: str) -> float | int:
    """A fraction in (0, 1) or a count of samples (a whole number >= 1), as data's ``val_size`` takes them."""
    try:
        value: float | int = int(text) if text.strip().isdigit() else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a count, got {text!r}") from None
    if isinstance(value, float) and not 0 < value < 1 or isinstance(value, int) and value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1) or a count >= 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from adaptaug.compare import VARIANT_SYNTAX
    from adaptaug.config import COMPILE_MODES
    from adaptaug.policies import POLICIES
    from adaptaug.policies.augnet import GATED_PROBE_CHUNK, GATED_PROBE_EVERY, TEXT_SLOTS, AugNetConfig
    from adaptaug.rewards import REWARDS
    from adaptaug.tasks import TASKS

    AUGNET_DEFAULTS = AugNetConfig()
    parser = _Parser(prog="adaptaug", description="Adaptive data augmentation with AugNet.")
    parser.add_argument("--version", action="version", version=f"adaptaug {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors (any position)")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    tr = sub.add_parser("train", help="train one model under one policy (default command)")
    tr.add_argument("--task", default="digits", choices=list(TASKS), help="default: digits (embedded)")
    tr.add_argument("--data", default=None, help="local data path (IDX folder, image-folder tree)")
    tr.add_argument("--policy", default="augnet", type=_train_policy,
                    metavar="{%s,augnet[...],replay:PATH}" % ",".join(POLICIES),
                    help="a policy; an AugNet variant as compare names it, e.g. 'augnet[max_kl=0.0001]'; or "
                         "replay:RUN_DIR / replay:policy.json (a logged AugNet schedule, fixed)")
    tr.add_argument("--epochs", type=_positive_int, default=50, help="upper bound; early stopping (default 50)")
    tr.add_argument("--batch-size", type=_positive_int, default=64)
    tr.add_argument("--lr", type=_positive_float, default=5e-4, help="Adam learning rate (default 5e-4)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    tr.add_argument("--out", default=None, help="run directory (default: a new folder under runs/)")
    tr.add_argument("--patience", type=_positive_int, default=3)
    tr.add_argument("--limit", type=_positive_int, default=None, help="use a stratified subset of N train images")
    tr.add_argument("--val-size", type=_val_size, default=0.1, metavar="F_OR_N",
                    help="validation hold-out from the (limited) training set: a fraction or a count (default 0.1)")
    tr.add_argument("--val-whole-texts", action="store_true", help=WHOLE_TEXTS_HELP)
    # AugNet's defaults live in AugNetConfig only (None here = its default)
    tr.add_argument("--reward", default=None, choices=list(REWARDS),
                    help=f"AugNet's reward (default {AUGNET_DEFAULTS.reward})")
    tr.add_argument("--augnet-lr", type=_positive_float, default=None, help=f"default {AUGNET_DEFAULTS.lr}")
    tr.add_argument("--frozen-augnet", action="store_true", help="AugNet without learning (ablation)")
    tr.add_argument("--augnet-probe-every", type=int, default=None, metavar="ROUNDS",
                    help="rounds between AugNet's validation-probe forwards "
                         f"(default {GATED_PROBE_EVERY} under the gate, else 1; see docs/augnet.md)")
    tr.add_argument("--augnet-probe-size", type=int, default=None, metavar="N",
                    help=f"validation samples in AugNet's probe (default {AUGNET_DEFAULTS.probe_size})")
    tr.add_argument("--augnet-probe-chunk", type=int, default=None, metavar="N",
                    help="probe samples per probe forward; the probe's chunks take turns; the probe size or more: "
                         f"the whole probe (default {GATED_PROBE_CHUNK} under the gate, else the whole probe; "
                         "see docs/augnet.md)")
    tr.add_argument("--augnet-probe-bf16", action="store_true",
                    help="AugNet's probe forward in bfloat16 while training stays float32 (docs/augnet.md)")
    tr.add_argument("--augnet-warmup", type=float, default=None, metavar="FRACTION",
                    help="curriculum: the share of samples AugNet augments rises from 0 to 1 over this fraction "
                         f"of training (default {AUGNET_DEFAULTS.warmup}; see docs/augnet.md)")
    tr.add_argument("--augnet-slots", type=_positive_int, default=None, metavar="N",
                    help=f"ops per sample AugNet draws, one after another (default {TEXT_SLOTS} on text "
                         "classification, else 1; docs/augnet.md)")
    tr.add_argument("--augnet-gate", action=argparse.BooleanOptionalAction, default=None,
                    help="AugNet also learns the share of samples that get its op (default: on where it stacks on "
                         "a base augmentation, i.e. image tasks; docs/augnet.md)")
    tr.add_argument("--augnet-per-sample", action="store_true",
                    help="AugNet decides per sample from each sample's last loss (docs/augnet.md)")
    tr.add_argument("--augnet-narrow", action="store_true",
                    help="AugNet's magnitudes over RandAugment's ranges instead of TrivialAugment-wide's")
    tr.add_argument("--augnet-without", action="append", default=[], metavar="FEATURE",
                    help="hold an AugNet state feature at 0 (ablation; repeatable)")
    tr.add_argument("--resume", metavar="RUN_DIR", default=None,
                    help="continue an interrupted run from its last checkpoint (other options are ignored)")
    tr.add_argument("--no-robustness", action="store_true", help="skip the eval_robust_* evaluation")
    tr.add_argument("--compile", action="store_true", help="torch.compile the training step's model")
    tr.add_argument("--compile-mode", default=None, choices=COMPILE_MODES,
                    help="torch.compile's mode (implies --compile); reduce-overhead captures the step as CUDA graphs")
    tr.add_argument("--amp", default="off", choices=["off", "bf16"], help="autocast the training forward")
    tr.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="NHWC weights and inputs for image models (default: on for the CPU, off on CUDA)")
    tr.add_argument("--augment-ahead", type=_positive_int, default=None, metavar="N",
                    help="batches augmented per kernel call (default 16; 1: one at a time)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    co = sub.add_parser("compare", help="policies x seeds grid -> results.csv, report.md, plots")
    co.add_argument("--task", default="digits", choices=list(TASKS))
    co.add_argument("--data", default=None, help="local data path, as for train")
    co.add_argument("--policies", type=_policy_list, default=list(POLICIES),
                    help=f"comma-separated (default: {','.join(POLICIES)}); replay:RUN_DIR or replay:policy.json "
                         f"(a schedule AugNet logged, fixed); AugNet variants: {VARIANT_SYNTAX}")
    co.add_argument("--seeds", type=_positive_int, default=3, help="seeds per policy (default 3)")
    co.add_argument("--first-seed", type=_non_negative_int, default=0, metavar="S",
                    help="the seeds are S..S+N-1 (default 0); fresh seeds replicate a finding made on others")
    co.add_argument("--epochs", type=_positive_int, default=None, help="upper bound per run (default 50)")
    co.add_argument("--patience", type=_positive_int, default=None,
                    help="early-stopping patience of every run (default 3); longer keeps one noisy validation "
                         "loss under strong augmentation from ending a run early")
    co.add_argument("--jobs", type=_positive_int, default=1, help="runs at once, in processes (default 1)")
    co.add_argument("--limit", type=_positive_int, default=None, help="use a stratified subset of N train images")
    co.add_argument("--val-size", type=_val_size, default=None, metavar="F_OR_N",
                    help="validation hold-out per run, a fraction or a count (default 0.1)")
    co.add_argument("--val-whole-texts", action="store_true", help=WHOLE_TEXTS_HELP)
    co.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    co.add_argument("--amp", default="off", choices=["off", "bf16"], help="every run's training forward, as train's")
    co.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                    help="every run's layout, as train's (default: on for the CPU, off on CUDA)")
    co.add_argument("--augment-ahead", type=_positive_int, default=None, metavar="N",
                    help="every run's batches augmented per kernel call, as train's (default 16)")
    co.add_argument("--out", required=True, help="grid folder: runs/, results.csv, report.md, *.png")
    co.add_argument("--no-progress", action="store_true", help="no per-run lines on stderr")

    ev = sub.add_parser("evaluate", help="a finished run's best model on other data (same metrics as training)")
    ev.add_argument("--run", required=True, metavar="RUN_DIR", help="run directory (config.json, model.pt)")
    ev.add_argument("--data", default=None, help="data in a format the run's task reads (default: the run's own)")
    ev.add_argument("--split", default="test", help="split folder / file stem to read (default: test)")
    ev.add_argument("--out", default=None, metavar="FILE", help="also write the metrics JSON here")
    ev.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    ev.add_argument("--no-robustness", action="store_true", help="skip the eval_robust_* evaluation")

    ex = sub.add_parser("export-policy", help="write a run's logged AugNet schedule as a small JSON file")
    ex.add_argument("run", metavar="RUN_DIR", help="an AugNet run directory (trace.csv)")
    ex.add_argument("-o", "--out", default=None, metavar="FILE", help="policy JSON to write (default: print it)")

    pv = sub.add_parser("preview", help="augmented training samples under one policy (PNG grid; text: listing)")
    pv.add_argument("--task", default="digits", choices=list(TASKS))
    pv.add_argument("--data", default=None, help="local data path (IDX folder, image-folder tree)")
    pv.add_argument("--policy", default="augnet", choices=list(POLICIES))
    pv.add_argument("--n", type=_positive_int, default=None, help="samples shown (default 32 images, 8 texts)")
    pv.add_argument("--seed", type=int, default=0)
    pv.add_argument("--out", default=None,
                    help="images: PNG file (default preview.png); text: .txt file (default: print the listing)")
    return parser


def _train(args: argparse.Namespace) -> int:
    from adaptaug.report import summarise_trace
    from adaptaug.train import resume, train

    if args.resume:
        result = resume(args.resume, progress=not args.no_progress)
    else:
        result = train(train_config(args), progress=not args.no_progress)
    if result.run_dir is None:  # a data-parallel rank other than 0: rank 0 reports
        return 0
    print(json.dumps(result.metrics, indent=2))
    summary = summarise_trace(result.trace)
    if summary is not None:
        committed = (f"committed to one op in {summary['committed_share']:.0%} of them "
                     f"({', '.join(summary['committed_to'])})" if summary["committed_to"] else "never on one op")
        print(f"AugNet: {summary['rounds']} rounds, {committed}; last round: {summary['last_top']} at "
              f"{summary['last_top_p']:.0%}, entropy {summary['last_entropy']:.2f}"
              + (f", applied to {summary['last_share']:.0%} of samples" if "last_share" in summary else ""),
              file=sys.stderr)
    print(f"run written to {result.run_dir}", file=sys.stderr)
    return 0


def train_config(args: argparse.Namespace) -> "TrainConfig":
    """The TrainConfig that ``adaptaug train``'s parsed arguments ask for."""
    from adaptaug.compare import augnet_variant
    from adaptaug.config import TrainConfig
    from adaptaug.policies.augnet import AugNetConfig

    options = _augnet_options(args)
    variant = augnet_variant(args.policy)  # None for a plain policy name
    if variant is not None:  # run as compare runs the same label: policy augnet, the brackets' fields set
        clash = [k for k in variant if k in options and options[k] != variant[k]]
        if clash:
            raise ConfigError(f"--policy {args.policy} and the --augnet-*/--reward options set AugNet's "
                              f"{', '.join(clash)} differently; set each field once")
        options |= variant
    return TrainConfig(task=args.task, data=args.data, policy="augnet" if variant else args.policy,
                       epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
                       out=args.out, patience=args.patience, limit=args.limit, val_size=args.val_size,
                       val_whole_texts=args.val_whole_texts, robustness=not args.no_robustness,
                       compile=args.compile or args.compile_mode is not None,  # a mode implies compiling
                       compile_mode=args.compile_mode or "default", amp=args.amp, channels_last=args.channels_last,
                       augment_ahead=args.augment_ahead, augnet=AugNetConfig(**options))


def _augnet_options(args: argparse.Namespace) -> dict:
    """AugNetConfig fields the command line's --augnet-*/--reward options set; the rest keep AugNetConfig's
    defaults."""
    given = {"lr": args.augnet_lr, "reward": args.reward, "probe_every": args.augnet_probe_every,
             "probe_size": args.augnet_probe_size, "probe_chunk": args.augnet_probe_chunk,
             "warmup": args.augnet_warmup, "slots": args.augnet_slots}
    switches = {"learn": False if args.frozen_augnet else None, "per_sample": args.augnet_per_sample or None,
                "gate": args.augnet_gate, "probe_bf16": args.augnet_probe_bf16 or None,
                "wide": False if args.augnet_narrow else None, "drop_features": tuple(args.augnet_without) or None}
    return {k: v for k, v in (given | switches).items() if v is not None}


def _train_policy(text: str) -> str:
    """A known policy name, an ``augnet[...]`` variant as compare reads it, or ``replay:PATH`` (each checked now;
    PATH made absolute for config.json / resume)."""
    from adaptaug.policies import POLICIES

    if text in POLICIES:
        return text
    if text.startswith("augnet["):
        from adaptaug.compare import VARIANT_SYNTAX, augnet_variant

        try:
            if augnet_variant(text) is not None:
                return text
        except AdaptaugError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        raise argparse.ArgumentTypeError(f"invalid AugNet variant {text!r}; variants are {VARIANT_SYNTAX}")
    if text.startswith("replay:") and text[len("replay:"):].strip():
        from pathlib import Path

        from adaptaug.policies.replay import load_schedule

        path = Path(text[len("replay:"):]).expanduser().resolve()
        try:
            load_schedule(path)
        except AdaptaugError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return f"replay:{path}"
    raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(POLICIES)}, augnet[...], "
                                     "replay:RUN_DIR, replay:policy.json)")


def _evaluate(args: argparse.Namespace) -> int:
    from adaptaug.evaluate_run import evaluate_run
    from adaptaug.io import write_json

    metrics = evaluate_run(args.run, args.data, split=args.split, device=args.device,
                           robustness=False if args.no_robustness else None)
    print(json.dumps(metrics, indent=2))
    if args.out:
        write_json(args.out, metrics)
        print(f"metrics written to {args.out}", file=sys.stderr)
    return 0


def _export_policy(args: argparse.Namespace) -> int:
    from adaptaug.policies.replay import export_policy

    schedule = export_policy(args.run, args.out)
    if args.out:
        print(f"policy ({len(schedule.steps)} rows over {len(schedule.ops)} ops) written to {args.out}",
              file=sys.stderr)
    else:
        print(schedule.dumps(), end="")
    return 0


def _policy_list(text: str) -> list[str]:
    from adaptaug.compare import parse_policies

    try:
        return parse_policies(text)
    except AdaptaugError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _compare(args: argparse.Namespace) -> int:
    from adaptaug.compare import GridConfig, compare

    grid = GridConfig(task=args.task, out=args.out, policies=tuple(args.policies), seeds=args.seeds,
                      first_seed=args.first_seed, epochs=args.epochs, data=args.data, jobs=args.jobs,
                      limit=args.limit, device=args.device,
                      train=_compare_train_options(args))
    say = None if args.no_progress else (lambda line: print(line, file=sys.stderr, flush=True))
    result = compare(grid, on_event=say)
    print(f"{result.ran} run(s) trained, {result.reused} reused, {result.failed} failed in {result.seconds:.1f}s; "
          f"report: {result.out / 'report.md'}", file=sys.stderr)
    return 1 if result.failed else 0


def _compare_train_options(args: argparse.Namespace) -> dict:
    """TrainConfig fields that compare's command line set for every run (the rest keep their defaults)."""
    options = {} if args.val_size is None else {"val_size": args.val_size}
    if args.val_whole_texts:
        options["val_whole_texts"] = True
    if args.patience is not None:
        options["patience"] = args.patience
    if args.amp != "off":
        options["amp"] = args.amp
    if args.channels_last is not None:
        options["channels_last"] = args.channels_last
    if args.augment_ahead is not None:
        options["augment_ahead"] = args.augment_ahead
    return options


def _preview(args: argparse.Namespace) -> int:
    from adaptaug.preview import preview

    result = preview(args.task, args.policy, args.out, data=args.data, n=args.n, seed=args.seed)
    if isinstance(result, str):
        print(result)
    else:
        print(f"preview written to {result}", file=sys.stderr)
    return 0


COMMANDS = ("train", "compare", "preview", "evaluate", "export-policy")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help", "--version"):
        argv = ["train", *argv]  # `adaptaug` alone trains on the embedded default
    try:
        args = build_parser().parse_args(argv)
        if args.command == "train":
            return _train(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "preview":
            return _preview(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "export-policy":
            return _export_policy(args)
        build_parser().print_help()
        return EXIT_BAD_INPUT
    except (AdaptaugError, FloatingPointError) as err:
        if debug:
            raise
        message = " ".join(str(err).split())  # one line, whatever the error text holds
        print(f"adaptaug: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("adaptaug: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
