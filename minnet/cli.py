"""The ``minnet`` command: thin argparse front ends to the package's functions."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn

from tqdm.contrib.logging import logging_redirect_tqdm

from minnet import __version__
from minnet.errors import MinnetError

log = logging.getLogger("minnet")

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _hidden(text: str) -> tuple[int, ...]:
    try:
        widths = tuple(int(w) for w in text.replace(" ", "").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a list of widths; write e.g. 10 or 50,25"
        ) from None
    if not widths or any(w <= 0 for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r}: every width must be a positive integer")
    return widths


def _positive(kind: type) -> Callable[[str], int | float]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {kind.__name__}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text!r} must be positive")
        return value

    return parse


def _threads(text: str) -> int:
    value = int(_positive(int)(text))
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"{value} is more than the {cores} cores here")
    return value


def _workers(text: str) -> int:
    value = int(_positive(int)(text))
    limit = 8 * (os.cpu_count() or 1)
    if value > limit:
        raise argparse.ArgumentTypeError(
            f"{value} worker processes would only compete for the {os.cpu_count()} cores here; "
            f"use at most {limit}"
        )
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"{value} is not a seed from 0 to 2**32 - 1")
    return value


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} must be a number >= 0")
    return value


class _Parser(argparse.ArgumentParser):
    """Bad flags get one line, like every other error, and point at --help."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_common(p: argparse.ArgumentParser, default: object) -> None:
    p.add_argument("-v", "--verbose", action="store_true", default=default, help="log every epoch")
    p.add_argument("-q", "--quiet", action="store_true", default=default, help="log warnings only")
    p.add_argument(
        "--debug", action="store_true", default=default, help="show tracebacks for errors"
    )


def _add_data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir",
        metavar="DIR",
        help="folder holding one folder per MovieLens release "
        "(default: $MINNET_DATA_DIR, else ./data)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="minnet",
        description="Reproducible studies of the fast.ai Lesson 5 Mini Net on MovieLens: "
        "padding k x head shape, then learnable k against the best fixed k.",
    )
    parser.add_argument("--version", action="version", version=f"minnet {__version__}")
    _add_common(parser, False)
    # The common flags work after the command too (`minnet run spec.toml -q`); SUPPRESS
    # keeps a subcommand from resetting what was given before it.
    common = _Parser(add_help=False)
    _add_common(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser(
        "run",
        parents=[common],
        help="run or resume a study from a TOML spec, then write its report",
        description="Create or resume the study named in SPEC, run the trials it still lacks, "
        "train the final comparison and write results/<study>/report.html. Running the same "
        "spec again repeats nothing.",
    )
    run.add_argument("spec", type=Path, help="study spec, e.g. study/lesson5.toml")
    _add_data_dir(run)
    run.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where the study's folder is created (default: results)",
    )
    run.add_argument(
        "--storage",
        metavar="URL",
        help="Optuna storage URL (postgresql://..., sqlite:///...); "
        "default: a journal file in the study's results folder",
    )
    run.add_argument(
        "--n-trials",
        type=_positive(int),
        metavar="N",
        help="total number of finished trials wanted (overrides [study] n_trials)",
    )
    run.add_argument(
        "--workers",
        type=_workers,
        default=1,
        metavar="N",
        help="worker processes running trials at once, each with its share of the cores "
        "(default 1)",
    )
    run.add_argument(
        "--threads",
        type=_threads,
        metavar="N",
        help="torch threads per worker, at most its share of the cores (default 1: the "
        "Mini Net's small batches gain nothing from more; use --workers to fill the cores)",
    )

    report = sub.add_parser(
        "report",
        parents=[common],
        help="regenerate a study's report from its storage",
        description="Rebuild report.html, report.md, trials.csv and plots/ of a study "
        "from its storage alone; no training is run.",
    )
    report.add_argument(
        "results", type=Path, help="the study's results folder, e.g. results/lesson5"
    )
    report.add_argument(
        "--storage", metavar="URL", help="storage URL if not the folder's journal file"
    )
    report.add_argument("--study", metavar="NAME", help="study name (default: the folder's name)")

    train = sub.add_parser(
        "train",
        parents=[common],
        help="train one Mini Net and print its validation MSE",
        description="One training run with the lesson's settings unless told otherwise: "
        "hidden [10], padding 0.5, Adam lr 1e-3, weight decay 1e-5, batch 64, 6 epochs, "
        "the lesson's 20% validation split (numpy seed 42).",
    )
    train.add_argument(
        "--dataset",
        default="ml-latest-small-2016",
        metavar="NAME",
        help="release folder under the data directory (default: ml-latest-small-2016)",
    )
    _add_data_dir(train)
    k = train.add_mutually_exclusive_group()
    k.add_argument(
        "--padding", type=float, default=0.5, metavar="K", help="fixed padding k (default 0.5)"
    )
    k.add_argument(
        "--learnable-padding",
        type=float,
        nargs="?",
        const=0.5,
        metavar="K0",
        help="make k a learnable parameter, starting at K0 (default 0.5)",
    )
    train.add_argument(
        "--hidden",
        type=_hidden,
        default=(10,),
        metavar="W[,W...]",
        help="hidden widths of the head, e.g. 10 or 50,25 (default 10)",
    )
    train.add_argument("--epochs", type=_positive(int), default=6, help="epochs (default 6)")
    train.add_argument(
        "--batch-size", type=_positive(int), default=64, help="batch size (default 64)"
    )
    train.add_argument(
        "--lr", type=_positive(float), default=1e-3, help="Adam learning rate (default 1e-3)"
    )
    train.add_argument(
        "--weight-decay",
        type=_non_negative,
        default=1e-5,
        help="coupled L2 weight decay; never applied to k (default 1e-5)",
    )
    train.add_argument(
        "--seed",
        type=_seed,
        default=42,
        help="seed of initial weights, batch order and dropout (default 42)",
    )
    train.add_argument(
        "--split-seed",
        type=_seed,
        default=42,
        help="seed of the validation split (default 42, the lesson's)",
    )
    train.add_argument(
        "--valid-fraction",
        type=float,
        default=0.2,
        help="share of ratings held out for validation (default 0.2)",
    )
    train.add_argument(
        "--threads",
        type=_threads,
        default=1,
        metavar="N",
        help="torch threads (default 1: faster than 2 for the Mini Net's small batches)",
    )
    train.add_argument(
        "--sparse",
        action="store_true",
        help="sparse embedding gradients with lazy Adam for the tables: step cost does not "
        "grow with the tables, but the tables get no weight decay (see BENCHMARKS.md)",
    )
    train.add_argument("--json", action="store_true", help="print the result as JSON")

    data = sub.add_parser(
        "data",
        parents=[common],
        help="download an official MovieLens release into the data directory",
        description="Download a MovieLens release from GroupLens, check it against its "
        "recorded checksum and unpack it into the data directory; an existing copy is reused.",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_sub.add_parser(
        "fetch",
        parents=[common],
        help="download and unpack a release",
        description="Download NAME.zip, verify it, and unpack it atomically into DATA_DIR/NAME.",
    )
    fetch.add_argument("name", help="release, e.g. ml-latest-small, ml-100k, ml-1m, ml-25m")
    _add_data_dir(fetch)
    fetch.add_argument(
        "--no-verify",
        action="store_true",
        help="skip the checksum check (needed for ml-latest, which is updated in place)",
    )

    worker = sub.add_parser(
        "worker",
        parents=[common],
        help="join a running study from any machine and run its queued trials",
        description="Join the study NAME in a database storage and run its queued trials "
        "until none is left. The spec and the initial weights are read from the storage; "
        "only the data must be on this machine.",
    )
    worker.add_argument(
        "--storage",
        required=True,
        metavar="URL",
        help="the study's storage: postgresql://..., mysql://... or a .journal file",
    )
    worker.add_argument("--study", required=True, metavar="NAME", help="the study's name")
    _add_data_dir(worker)
    worker.add_argument(
        "--threads",
        type=_threads,
        metavar="N",
        help="torch threads for this worker (default 1)",
    )

    replay = sub.add_parser(
        "replay",
        parents=[common],
        help="train one stored trial again and check its result is bit-identical",
        description="Re-run trial TRIAL from its stored spec, initial weights, seed and thread "
        "count, print the stored and the replayed validation MSE, and exit 0 if they are "
        "identical, 1 if not.",
    )
    replay.add_argument(
        "results", type=Path, help="the study's results folder, e.g. results/lesson5"
    )
    replay.add_argument("trial", type=int, help="the trial's number")
    replay.add_argument(
        "--storage", metavar="URL", help="storage URL if not the folder's journal file"
    )
    replay.add_argument("--study", metavar="NAME", help="study name (default: the folder's name)")
    _add_data_dir(replay)

    studies = sub.add_parser(
        "studies",
        parents=[common],
        help="list studies with their number of trials in each state",
        description="List the studies of a storage, or of every results folder under "
        "--results-dir, with how many trials are COMPLETE, PRUNED, FAIL, RUNNING and WAITING.",
    )
    studies.add_argument("--storage", metavar="URL", help="a database or journal storage")
    studies.add_argument(
        "--results-dir",
        type=Path,
        default=Path("results"),
        metavar="DIR",
        help="where to look for journal files without --storage (default: results)",
    )
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from minnet.spec import load_spec, spec_from_dict
    from minnet.study import run_study
    from minnet.verdict import judge

    spec = load_spec(args.spec)
    if args.n_trials is not None:
        raw = {k: dict(v) for k, v in spec.raw.items()}
        raw["study"]["n_trials"] = args.n_trials
        spec = spec_from_dict(raw, where=f"{args.spec} (with --n-trials {args.n_trials})")
    summary = run_study(
        spec,
        args.results_dir,
        storage=args.storage,
        data_dir=args.data_dir,
        progress=not args.quiet and sys.stderr.isatty(),
        workers=args.workers,
        threads=args.threads,
    )
    print(judge(summary.finals).sentence)
    print(f"report: {args.results_dir / spec.name / 'report.html'}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from minnet.report import write_report
    from minnet.storage import JOURNAL_NAME, open_storage
    from minnet.summary import load_summary

    folder: Path = args.results
    if args.storage is None and not (folder / JOURNAL_NAME).is_file():
        raise MinnetError(
            f"{folder} holds no {JOURNAL_NAME}; give a study's results folder, "
            "or its --storage URL and --study name"
        )
    store = open_storage(args.storage, folder)
    summary = load_summary(store, args.study or folder.resolve().name)
    write_report(summary, folder)
    print(f"report: {folder / 'report.html'}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from minnet.runs import train_on_release
    from minnet.train import TrainConfig

    learnable = args.learnable_padding is not None
    result = train_on_release(
        args.dataset,
        args.data_dir,
        hidden=args.hidden,
        padding=args.learnable_padding if learnable else args.padding,
        learnable=learnable,
        config=TrainConfig(
            epochs=args.epochs,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=args.weight_decay,
            sparse=args.sparse,
            torch_threads=args.threads,
        ),
        seed=args.seed,
        split_seed=args.split_seed,
        valid_fraction=args.valid_fraction,
    )
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        per_epoch = ", ".join(f"{v:.5f}" for v in result["val_mse_per_epoch"])
        print(f"validation MSE by epoch: {per_epoch}")
        print(
            f"validation MSE {result['val_mse']:.5f} (RMSE {result['val_rmse']:.4f}), "
            f"padding {result['padding']:.4f}, {result['seconds']:.1f} s"
        )
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from minnet.data import resolve_data_dir
    from minnet.fetch import fetch_release

    folder = fetch_release(args.name, resolve_data_dir(args.data_dir), verify=not args.no_verify)
    print(f"{args.name}: {folder}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from minnet.storage import describe
    from minnet.workers import Join, join

    level = logging.getLogger("minnet").getEffectiveLevel()
    log.info("joining study '%s' in %s", args.study, describe(args.storage, Path()))
    done = join(Join(args.storage, args.study, args.data_dir, args.threads, log_level=level))
    print(f"worker finished {done} trial{'s' if done != 1 else ''} of study '{args.study}'")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from minnet.initial import head_label
    from minnet.replay import replay

    folder: Path = args.results
    name = args.study or folder.resolve().name
    result = replay(args.storage, folder, name, args.trial, args.data_dir)
    params = (
        f"padding {result.params['padding']:g}, hidden {head_label(str(result.params['hidden']))}"
    )
    print(
        f"trial {result.number} ({params}; worker {result.worker}, "
        f"{result.threads} thread{'s' if result.threads != 1 else ''})"
    )
    print(f"stored   valid MSE {result.stored!r}")
    print(f"replayed valid MSE {result.replayed!r}")
    if not result.identical:
        print(
            f"minnet: replay of trial {result.number} differs from the stored result "
            f"by {result.replayed - result.stored!r}",
            file=sys.stderr,
        )
        return 1
    print("identical")
    return 0


def cmd_studies(args: argparse.Namespace) -> int:
    from minnet.spec import FINAL_SUFFIX
    from minnet.storage import JOURNAL_NAME, describe, open_storage, state_counts

    if args.storage is not None:
        store = open_storage(args.storage, Path(), create=False)
        places = [(describe(args.storage, Path()), store)]
    else:
        places = []
        for journal in sorted(Path(args.results_dir).glob(f"*/{JOURNAL_NAME}")):
            try:
                places.append((str(journal), open_storage(str(journal), journal.parent)))
            except MinnetError as exc:  # one damaged study must not hide the others
                log.error("%s", exc)
    columns = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
    rows = [
        (name, *(str(counts[c]) for c in columns), where)
        for where, store in places
        for name, counts in sorted(state_counts(store).items())
        if not name.endswith(FINAL_SUFFIX)  # a study's final comparison, not a study
    ]
    if not rows:
        print("no studies found")
        return 0
    header = ("study", *(c.lower() for c in columns), "storage")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


COMMANDS = {
    "run": cmd_run,
    "report": cmd_report,
    "train": cmd_train,
    "data": cmd_data,
    "worker": cmd_worker,
    "replay": cmd_replay,
    "studies": cmd_studies,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if args.quiet else logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with logging_redirect_tqdm():
            return COMMANDS[args.command](args)
    except MinnetError as exc:
        if args.debug:
            raise
        print(f"minnet: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("minnet: interrupted; run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
