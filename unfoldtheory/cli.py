"""The command line: ``unfoldtheory report`` (the main job) and ``unfoldtheory analyze CHECKPOINT``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from unfoldtheory import __version__

#: ``report``'s options that set a :class:`~unfoldtheory.report.ReportConfig` field (dest = field name), beside
#: the stability ones (:func:`_stability_options`): (flag, type, help without the default).
REPORT_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("--m", int, "measurements"), ("--n", int, "signal dimension"), ("--sparsity", float, "fraction of nonzeros"),
    ("--noise-std", float, "noise standard deviation"), ("--instances", int, "test instances"),
    ("--crosscheck", int, "instances also solved with cvxpy to check the reference"),
    ("--iterations", int, "ISTA/FISTA iterations K"), ("--layers", int, "depth of the trained models"),
    ("--train-steps", int, "training steps per model, batches of 64"),
    ("--test-samples", int, "held-out samples for the trained models"),
    ("--generalization-samples", int, "fixed training set of the generalization section"),
    ("--generalization-steps", int, "training steps on that set"), ("--seed", int, "random seed"),
    ("--device", str, "where the models are trained: cpu, cuda, cuda:1, ...; analyses run on the CPU"),
    ("--lipschitz-budget", float, "seconds per certified Lipschitz upper bound"))


def _shown(value: object) -> str:
    return ",".join(f"{v:g}" for v in value) if isinstance(value, tuple) else str(value)


def _report_parser(p: argparse.ArgumentParser) -> None:
    """``report``'s options. Those of the config default to "not given" (SUPPRESS), so that ``--quick`` fills in
    only what the command line leaves out; the help shows both defaults."""
    from unfoldtheory.report.config import QUICK, ReportConfig

    def default(name: str) -> str:
        quick = f"; --quick: {_shown(QUICK[name])}" if name in QUICK and QUICK[name] != getattr(ReportConfig, name) else ""
        return f"default: {_shown(getattr(ReportConfig, name))}{quick}"

    p.add_argument("--out", default="report", help="output folder (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="a small, fast run of every section (a smoke test, not a study): " +
                        ", ".join(f"--{k.replace('_', '-')} {_shown(v)}" for k, v in QUICK.items()) +
                        "; options given explicitly override it")
    for flag, kind, text in REPORT_OPTIONS:
        name = flag[2:].replace("-", "_")
        p.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"{text} ({default(name)})")
    _stability_options(p, {k: getattr(ReportConfig, k) for k in STABILITY_FIELDS}, "--lipschitz-budget", default)
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (default %(default)s: the report's matrices are small, and threads contend)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (``"0.01,0.05"``); an empty string is the empty list."""
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


#: The per-sample stability options (dest = field name of ReportConfig and keyword of analyze_model).
STABILITY_FIELDS = ("stability_inputs", "stability_radii", "stability_noise_radii", "stability_budget",
                    "stability_exact_neurons")


def _stability_options(p: argparse.ArgumentParser, defaults: dict[str, object], exact_budget: str,
                       shown: Callable[[str], str] | None = None) -> None:
    """The per-sample stability options, shared by ``report`` and ``analyze``. With ``shown`` (``report``) they
    default to "not given" and ``shown(name)`` is their help's default text; else they default to ``defaults``."""

    def default(name: str) -> dict[str, object]:
        return {"default": argparse.SUPPRESS} if shown is not None else {"default": defaults[name]}

    def says(name: str) -> str:
        return shown(name) if shown is not None else f"default: {_shown(defaults[name])}"

    p.add_argument("--stability-inputs", type=int, **default("stability_inputs"),
                   help=f"test inputs y around which the local Lipschitz interval is computed ({says('stability_inputs')})")
    p.add_argument("--stability-radii", type=_floats, metavar="F[,F...]", **default("stability_radii"),
                   help=f"ball radii as fractions of ‖y‖ ({says('stability_radii')})")
    p.add_argument("--stability-noise-radii", type=_floats, metavar="C[,C...]", **default("stability_noise_radii"),
                   help=f"further radii in units of σ√m, used when the noise level σ > 0 ({says('stability_noise_radii')})")
    p.add_argument("--stability-budget", type=float, **default("stability_budget"),
                   help="seconds per ball for its certified local upper bound; the witness search gets half "
                        f"({says('stability_budget')})")
    p.add_argument("--stability-exact-neurons", type=int, **default("stability_exact_neurons"),
                   help="up to this many neurons the global interval beside the local ones is tightened by the exact "
                        f"search, {exact_budget} seconds, and each local interval by the exact local search, "
                        f"--stability-budget seconds per ball ({says('stability_exact_neurons')}; 0: never)")


def _analyze_parser(p: argparse.ArgumentParser) -> None:
    from unfoldtheory.analysis import ANALYSES

    p.add_argument("checkpoint", help="path of the saved model: a torch.export program (.pt2) or a checkpoint of "
                                      "unfoldtheory.unfold.save (.pt)")
    p.add_argument("--analyses", default=",".join(ANALYSES),
                   help="comma-separated subset of %(default)s (those that do not apply to the model are listed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--time-budget", type=float, default=45.0, help="seconds for the Lipschitz upper bound (default: %(default)s)")
    p.add_argument("--restarts", type=int, default=8, help="restarts of the lower-bound search (default: %(default)s)")
    p.add_argument("--sparsity", type=int, default=1, help="s of the coherence certificate's signal class (default: %(default)s)")
    p.add_argument("--amplitude", type=float, default=1.0, help="B = max |x_i| of that class (default: %(default)s)")
    p.add_argument("--input-radius", type=float, default=1.0,
                   help="R in ‖y‖ ≤ R for the parameter Lipschitz constant (default: %(default)s)")
    p.add_argument("--inputs", default=None, metavar="PATH.npy",
                   help="test inputs of the stability analysis, one per row (default: drawn as y = A x + σe with x "
                        "s-sparse, uniform in [-B, B], from --sparsity, --amplitude and --noise-std)")
    p.add_argument("--sensing-matrix", default=None, metavar="PATH.npy",
                   help="the model's sensing matrix A (m×n), for a model that does not carry one (a .pt2 program): it "
                        "fixes the PEP's function class and lets the stability analysis draw its inputs")
    p.add_argument("--noise-std", type=float, default=0.0,
                   help="noise level σ of the model's problem: noise-relative radii and drawn inputs (default: %(default)s)")
    _stability_options(p, {"stability_inputs": 8, "stability_radii": (0.01, 0.05), "stability_noise_radii": (0.5,),
                           "stability_budget": 2.0, "stability_exact_neurons": 100}, "min(--time-budget, 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default: %(default)s)")


#: The columns of ``analyze``'s table: an uncertified row says why in its ``reason`` cell.
TABLE_COLUMNS = ("label", "quantity", "method", "kind", "value", "status", "reason", "seconds")


#: The subcommands: (help, description, the function that adds their options).
COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "report": ("run the main job and write report.md, results.json and figures",
               "Run the analyses on the embedded default sparse-recovery problem and write report.md, results.json and "
               "the figures (PNG and PDF) into --out. --quick runs a small configuration.", _report_parser),
    "analyze": ("run the analyses on a saved model and print the bounds",
                "Load a saved model, run the requested analyses and print every bound as a table (or JSON); an "
                "uncertified bound says why in its row. The model is a torch.export program (.pt2, from "
                "torch.export.save: read without running code from the file or unpickling anything but tensors; "
                "traced into a NetworkSpec) or a checkpoint written by unfoldtheory.unfold.save (tensors only). "
                "Exit status 0 only when every bound found is certified and no requested analysis failed; 1 "
                "otherwise (also when a certified lower bound exceeds a certified upper bound, which is reported as "
                "an error); 2 for a bad or untrusted file (one with a NaN or infinite parameter included) or bad "
                "options.", _analyze_parser),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s options are added (each subcommand imports what its defaults need, so that
    ``unfoldtheory --help`` imports nothing heavy)."""
    parser = argparse.ArgumentParser(prog="unfoldtheory", description="Certified theory for deep-unfolded networks.")
    parser.add_argument("--version", action="version", version=f"unfoldtheory {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (summary, description, add_options) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=description)
        if name == command:
            add_options(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unfoldtheory`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # the subcommand is the first word that is not an option: the top level's only options (--help, --version) take no value
    command = next((a for a in argv if not a.startswith("-")), None)
    args = build_parser(command).parse_args(argv)
    if args.command == "report":
        return _run_report(args)
    return _run_analyze(args)


def _limit_threads(command: str, threads: int) -> bool:
    """Set torch's and BLAS's thread counts; False (with a message) for a bad count."""
    import torch
    from threadpoolctl import threadpool_limits

    if threads < 1:
        print(f"unfoldtheory {command}: error: --threads must be at least 1, got {threads}", file=sys.stderr)
        return False
    torch.set_num_threads(threads)
    threadpool_limits(threads)
    return True


def _run_report(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from unfoldtheory.consistency import InconsistentBounds
    from unfoldtheory.report import ReportConfig, run_report

    if not _limit_threads("report", args.threads):
        return 2
    given = {f.name: getattr(args, f.name) for f in fields(ReportConfig) if hasattr(args, f.name)}
    try:
        config = ReportConfig.quick(**given) if args.quick else ReportConfig(**given)
    except ValueError as exc:
        print(f"unfoldtheory report: error: {exc}", file=sys.stderr)
        return 2
    try:
        results = run_report(config, args.out, progress=False if args.quiet else None)
    except InconsistentBounds as exc:
        print(f"unfoldtheory report: error: contradictory certificates: {exc}", file=sys.stderr)
        return 1
    failed = [name for name, ok in results["checks"].items() if not ok]
    print(f"wrote {args.out}/report.md, {args.out}/results.json and {len(results['figures'])} figures "
          f"in {results['seconds']:.1f} s")
    if failed:
        print("cross-checks FAILED: " + ", ".join(failed), file=sys.stderr)
        return 1
    print("all cross-checks passed")
    return 0


def _run_analyze(args: argparse.Namespace) -> int:
    import json

    from unfoldtheory.analysis import ANALYSES, analyze_model
    from unfoldtheory.consistency import InconsistentBounds
    from unfoldtheory.diagnostics import table_markdown
    from unfoldtheory.program_io import load_model_file
    from unfoldtheory.unfold import CheckpointError

    if not _limit_threads("analyze", args.threads):
        return 2
    try:
        model = load_model_file(args.checkpoint)
    except CheckpointError as exc:  # its message starts with the path
        print(f"unfoldtheory analyze: error: cannot use {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"unfoldtheory analyze: error: cannot use {args.checkpoint}: {exc}", file=sys.stderr)
        return 2
    analyses = [a.strip() for a in args.analyses.split(",") if a.strip()]
    arrays = {}
    wanted = (("--inputs", args.inputs if "stability" in analyses else None), ("--sensing-matrix", args.sensing_matrix))
    for option, path in wanted:
        if path is not None:
            import numpy as np

            try:
                arrays[option] = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                print(f"unfoldtheory analyze: error: cannot use {option} {path}: {exc}", file=sys.stderr)
                return 2
    try:
        result = analyze_model(model, analyses, time_budget=args.time_budget, restarts=args.restarts, seed=args.seed,
                               sparsity=args.sparsity, amplitude=args.amplitude, input_radius=args.input_radius,
                               inputs=arrays.get("--inputs"), A=arrays.get("--sensing-matrix"),
                               stability_inputs=args.stability_inputs, stability_radii=args.stability_radii,
                               noise_std=args.noise_std, stability_noise_radii=args.stability_noise_radii,
                               stability_budget=args.stability_budget,
                               stability_exact_neurons=args.stability_exact_neurons, progress=None)
    except InconsistentBounds as exc:
        print(f"unfoldtheory analyze: error: contradictory certificates: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"unfoldtheory analyze: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from unfoldtheory.results import to_jsonable

        print(json.dumps(to_jsonable(result.to_dict()), indent=2))
    else:
        print(f"{result.model} from {args.checkpoint}\n")
        if result.bounds:
            print(table_markdown(result.bounds, columns=TABLE_COLUMNS))
        if result.stability is not None:
            from unfoldtheory.diagnostics import markdown_table
            from unfoldtheory.stability import SUMMARY_HEADER, summary_rows

            print(f"Per-sample stability around {result.stability.inputs} test inputs (medians over certified ends; "
                  "† not certified):\n")
            print(markdown_table(SUMMARY_HEADER, summary_rows(result.stability)))
        for name, reason in result.not_applicable.items():
            print(f"- {name}: not applicable ({reason})")
        for name, reason in result.failed.items():
            print(f"- {name}: FAILED ({reason})")
    explicit = args.analyses != ",".join(ANALYSES)  # named analyses must apply; the default runs those that do
    if not result.all_certified or (explicit and result.not_applicable):
        print("unfoldtheory analyze: not every requested certificate was verified", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
