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
    _stability_options(p, d.stability_inputs, d.stability_radii, d.stability_noise_radii, d.stability_budget,
                       d.stability_exact_neurons, "--lipschitz-budget")
    p.add_argument("--threads", type=int, default=1,
                   help="torch and BLAS threads (default %(default)s: the report's matrices are small, and threads contend)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _floats(text: str) -> tuple[float, ...]:
    """A comma-separated list of numbers (``"0.01,0.05"``); an empty string is the empty list."""
    try:
        return tuple(float(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _stability_options(p: argparse.ArgumentParser, inputs: int, radii: tuple[float, ...], noise_radii: tuple[float, ...],
                       budget: float, exact_neurons: int, exact_budget: str) -> None:
    """The per-sample stability options, shared by ``report`` and ``analyze``."""
    join = ",".join(f"{r:g}" for r in radii)
    p.add_argument("--stability-inputs", type=int, default=inputs,
                   help="test inputs y around which the local Lipschitz interval is computed (default: %(default)s)")
    p.add_argument("--stability-radii", type=_floats, default=radii, metavar="F[,F...]",
                   help=f"ball radii as fractions of ‖y‖ (default: {join})")
    p.add_argument("--stability-noise-radii", type=_floats, default=noise_radii, metavar="C[,C...]",
                   help="further radii in units of σ√m, used when the noise level σ > 0 "
                        f"(default: {','.join(f'{r:g}' for r in noise_radii)})")
    p.add_argument("--stability-budget", type=float, default=budget,
                   help="seconds per ball for its certified local upper bound; the witness search gets half "
                        "(default: %(default)s)")
    p.add_argument("--stability-exact-neurons", type=int, default=exact_neurons,
                   help="up to this many neurons the global interval beside the local ones is tightened by the exact "
                        f"search, {exact_budget} seconds (default: %(default)s; 0: never)")


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
    p.add_argument("--inputs", default=None, metavar="PATH.npy",
                   help="test inputs of the stability analysis, one per row (default: drawn as y = A x + σe with x "
                        "s-sparse, uniform in [-B, B], from --sparsity, --amplitude and --noise-std)")
    p.add_argument("--noise-std", type=float, default=0.0,
                   help="noise level σ of the model's problem: noise-relative radii and drawn inputs (default: %(default)s)")
    _stability_options(p, 8, (0.01, 0.05), (0.5,), 2.0, 100, "min(--time-budget, 10)")
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
                              generalization_steps=args.generalization_steps, stability_inputs=args.stability_inputs,
                              stability_radii=args.stability_radii, stability_noise_radii=args.stability_noise_radii,
                              stability_budget=args.stability_budget, stability_exact_neurons=args.stability_exact_neurons)
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
    inputs = None
    if args.inputs is not None and "stability" in analyses:
        import numpy as np

        try:
            inputs = np.load(args.inputs, allow_pickle=False)
        except (OSError, ValueError) as exc:
            print(f"unfoldtheory analyze: error: cannot use --inputs {args.inputs}: {exc}", file=sys.stderr)
            return 2
    try:
        result = analyze_model(model, analyses, time_budget=args.time_budget, restarts=args.restarts, seed=args.seed,
                               sparsity=args.sparsity, amplitude=args.amplitude, input_radius=args.input_radius,
                               inputs=inputs, stability_inputs=args.stability_inputs, stability_radii=args.stability_radii,
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
