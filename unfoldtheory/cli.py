"""The command line: ``unfoldtheory report`` (the main job) and ``unfoldtheory analyze CHECKPOINT``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from unfoldtheory import __version__


def _report_parser(sub: argparse._SubParsersAction) -> None:
    from unfoldtheory.report.config import ReportConfig

    d = ReportConfig()
    p = sub.add_parser("report", help="run the main job and write report.md, results.json and figures",
                       description="Run the analyses on the embedded default sparse-recovery problem and write "
                                   "report.md, results.json and the figures (PNG and PDF) into --out.")
    p.add_argument("--out", default="report", help="output folder (default: %(default)s)")
    p.add_argument("--m", type=int, default=d.m, help="measurements (default: %(default)s)")
    p.add_argument("--n", type=int, default=d.n, help="signal dimension (default: %(default)s)")
    p.add_argument("--sparsity", type=float, default=d.sparsity, help="fraction of nonzeros (default: %(default)s)")
    p.add_argument("--noise-std", type=float, default=d.noise_std, help="noise standard deviation (default: %(default)s)")
    p.add_argument("--instances", type=int, default=d.instances, help="test instances (default: %(default)s)")
    p.add_argument("--crosscheck", type=int, default=d.crosscheck,
                   help="instances also solved with cvxpy to check the reference (default: %(default)s)")
    p.add_argument("--iterations", type=int, default=d.iterations, help="ISTA/FISTA iterations K (default: %(default)s)")
    p.add_argument("--layers", type=int, default=d.layers, help="depth of the trained models (default: %(default)s)")
    p.add_argument("--train-steps", type=int, default=d.train_steps,
                   help="training steps per model, batches of 64 (default: %(default)s)")
    p.add_argument("--test-samples", type=int, default=d.test_samples,
                   help="held-out samples for the trained models (default: %(default)s)")
    p.add_argument("--generalization-samples", type=int, default=d.generalization_samples,
                   help="fixed training set of the generalization section (default: %(default)s)")
    p.add_argument("--generalization-steps", type=int, default=d.generalization_steps,
                   help="training steps on that set (default: %(default)s)")
    p.add_argument("--seed", type=int, default=d.seed, help="random seed (default: %(default)s)")
    p.add_argument("--device", default=d.device,
                   help="where the models are trained: cpu, cuda, cuda:1, ... (default: %(default)s); analyses run on the CPU")
    p.add_argument("--lipschitz-budget", type=float, default=d.lipschitz_budget,
                   help="seconds per certified Lipschitz upper bound (default: %(default)s)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (default %(default)s: the report's matrices are small, and threads contend)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _analyze_parser(sub: argparse._SubParsersAction) -> None:
    from unfoldtheory.analysis import ANALYSES

    p = sub.add_parser("analyze", help="run the analyses on a saved model and print the bounds",
                       description="Load a checkpoint written by unfoldtheory.unfold.save (never unpickled: tensors "
                                   "only), run the requested analyses and print every bound as a table (or JSON). "
                                   "Exit status 0 only when every bound found is certified and no requested analysis "
                                   "failed; 1 otherwise (also when a certified lower bound exceeds a certified upper "
                                   "bound, which is reported as an error); 2 for a bad or untrusted file (one with a "
                                   "NaN or infinite parameter included) or bad options.")
    p.add_argument("checkpoint", help="path of the saved model (.pt)")
    p.add_argument("--analyses", default=",".join(ANALYSES),
                   help="comma-separated subset of %(default)s (those that do not apply to the model are listed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--time-budget", type=float, default=45.0, help="seconds for the Lipschitz upper bound (default: %(default)s)")
    p.add_argument("--restarts", type=int, default=8, help="restarts of the lower-bound search (default: %(default)s)")
    p.add_argument("--sparsity", type=int, default=1, help="s of the coherence certificate's signal class (default: %(default)s)")
    p.add_argument("--amplitude", type=float, default=1.0, help="B = max |x_i| of that class (default: %(default)s)")
    p.add_argument("--input-radius", type=float, default=1.0,
                   help="R in ‖y‖ ≤ R for the parameter Lipschitz constant (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch and BLAS threads (default: %(default)s)")


#: The columns of ``analyze``'s table: an uncertified row says why in its ``reason`` cell.
TABLE_COLUMNS = ("label", "quantity", "method", "kind", "value", "status", "reason", "seconds")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``unfoldtheory`` console script; returns the exit status."""
    parser = argparse.ArgumentParser(prog="unfoldtheory", description="Certified theory for deep-unfolded networks.")
    parser.add_argument("--version", action="version", version=f"unfoldtheory {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    _report_parser(sub)
    _analyze_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "report":
        return _run_report(args)
    if args.command == "analyze":
        return _run_analyze(args)
    parser.error(f"unknown command {args.command!r}")
    return 2


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

    from unfoldtheory.consistency import InconsistentBounds
    from unfoldtheory.report import ReportConfig, run_report

    if not _limit_threads("report", args.threads):
        return 2
    try:
        config = ReportConfig(m=args.m, n=args.n, sparsity=args.sparsity, noise_std=args.noise_std,
                              instances=args.instances, crosscheck=args.crosscheck, iterations=args.iterations,
                              layers=args.layers, train_steps=args.train_steps, test_samples=args.test_samples,
                              seed=args.seed, device=args.device, lipschitz_budget=args.lipschitz_budget,
                              generalization_samples=args.generalization_samples,
                              generalization_steps=args.generalization_steps)
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
    from unfoldtheory.unfold import CheckpointError, load

    if not _limit_threads("analyze", args.threads):
        return 2
    try:
        model = load(args.checkpoint).double()
    except CheckpointError as exc:  # its message starts with the path
        print(f"unfoldtheory analyze: error: cannot use {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"unfoldtheory analyze: error: cannot use {args.checkpoint}: {exc}", file=sys.stderr)
        return 2
    analyses = [a.strip() for a in args.analyses.split(",") if a.strip()]
    try:
        result = analyze_model(model, analyses, time_budget=args.time_budget, restarts=args.restarts, seed=args.seed,
                               sparsity=args.sparsity, amplitude=args.amplitude, input_radius=args.input_radius)
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
