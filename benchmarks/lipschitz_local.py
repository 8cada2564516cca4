"""Local Lipschitz intervals of trained unfolded networks: local lower/upper per region, beside the global ones.

Networks: the report's trained UnfoldedISTA, ALISTA and LISTA (trained as ``unfoldtheory report`` does:
``unfoldtheory.report.models.REPORT_MODELS`` with ``comparison.train_and_evaluate``; ``--preset report`` is the
report's size, 64×128 with 12 layers and 2000 steps, ``--preset small`` (default) 32×64 with 6 layers and 300 steps)
and the LISTA family of ``benchmarks/lipschitz.py`` at ``--family`` sizes (default 20,40,4: ISTA weights, LISTA and
ALISTA trained for ``--train-steps``).

For each network, ``--inputs`` test inputs ``y`` of its problem and each radius of ``--radii`` (fractions of ‖y‖;
default 1 % and 5 %) give the ℓ2 ball ``Ball(y, r‖y‖)``, and one row: the certified local lower bound
(``local_lower_bound``: a witness pair inside the ball), the certified local upper bound (``local_upper_bound``,
CROWN intervals), their ratio, the seconds of each, and the plain baseline (interval-arithmetic slopes, then the
same global certificates on the restricted spec: ``preactivation_bounds(..., method="interval")`` passed to
``local_upper_bound``) with its ratio to the lower bound. Then per network: the global "best" interval
(``upper_bound(spec, "best")``, ``lower_bound``), ``agnostic_floor`` and, on nets with at most ``--exact-max-neurons``
neurons, ``exact_bound`` with its interval and time (where ``unfoldtheory.lipschitz.exact`` exists).

Goals (issue 13), printed beside the numbers: local upper/lower ≤ 1.2 at radii 1 % and 5 %; ≤ 2 s per region at
the report's size (64×128, 12 layers), so the lower bound gets ``--lower-budget`` 0.6 s and the upper ``--upper-budget``
1.4 s by default. BLAS runs on one thread. ``--diagnose`` adds, per region, where the ratio is lost (:func:`diagnose`);
``--cache DIR`` keeps the trained report models as JSON specs; ``--no-global`` skips the global intervals.
``--out STEM`` also writes ``STEM_local`` and
``STEM_global`` tables (Markdown, LaTeX, CSV, JSON).

    python benchmarks/lipschitz_local.py [--preset small|report] [--radii 0.01 0.05] [--inputs 3] [--out results/local]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from unfoldtheory.diagnostics import markdown_table, save_table
from unfoldtheory.lipschitz import agnostic_floor, attack_preactivations, lower_bound, sdp_bound, upper_bound
from unfoldtheory.lipschitz.bound_propagation import PreactivationBounds, preactivation_bounds
from unfoldtheory.lipschitz.exact import exact_bound
from unfoldtheory.lipschitz.local import local_upper_bound
from unfoldtheory.lipschitz.local_lower import local_lower_bound
from unfoldtheory.lipschitz.regions import Ball
from unfoldtheory.lipschitz.restriction import restrict
from unfoldtheory.problems import SparseRecovery
from unfoldtheory.report.config import ReportConfig
from unfoldtheory.spec import NetworkSpec

PRESETS = {"small": {"m": 32, "n": 64, "layers": 6, "train_steps": 300},
           "report": {"m": ReportConfig.m, "n": ReportConfig.n, "layers": ReportConfig.layers,
                      "train_steps": ReportConfig.train_steps}}
GOAL_RATIO, GOAL_SECONDS = 1.2, 2.0
REPORT_SIZE = (ReportConfig.m, ReportConfig.n, ReportConfig.layers)


def report_networks(preset: dict, args) -> list[tuple[str, object, SparseRecovery, tuple[int, int, int]]]:
    """The report's three trained models at the preset's size (trained as ``unfoldtheory.report.models.run`` does)."""
    from unfoldtheory import unfold
    from unfoldtheory.comparison import train_and_evaluate
    from unfoldtheory.report.models import REPORT_MODELS

    m, n, K = preset["m"], preset["n"], preset["layers"]
    problem = SparseRecovery(m, n, ReportConfig.sparsity, ReportConfig.noise_std, seed=args.seed)
    test = problem.sample(200, seed=20_000 + args.seed)
    out = []
    for name, lr in REPORT_MODELS:
        steps = args.train_steps or preset["train_steps"]
        cached = None if args.cache is None else args.cache / f"{name}_{m}x{n}x{K}_steps{steps}_seed{args.seed}.json"
        if cached is not None and cached.exists():  # JSON (no pickle): NetworkSpec.to_dict of an earlier run
            out.append((f"{name} (report)", NetworkSpec.from_dict(json.loads(cached.read_text())), problem, (m, n, K)))
            print(f"loaded {name} ({m}, {n}, {K}) from {cached}", flush=True)
            continue
        start = time.perf_counter()
        model = getattr(unfold, name)(problem.A, K, problem.lam).float()
        train_and_evaluate(name, model, problem, test, steps=steps, lr=lr,
                           seed=args.seed, progress=False if args.no_progress else None)
        print(f"trained {name} ({m}, {n}, {K}) in {time.perf_counter() - start:.1f} s", flush=True)
        spec = model.double().spec()
        if cached is not None:
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_text(json.dumps(spec.to_dict()))
        out.append((f"{name} (report)", spec, problem, (m, n, K)))
    return out


def family_networks(args) -> list[tuple[str, object, SparseRecovery, tuple[int, int, int]]]:
    """The LISTA family of ``benchmarks/lipschitz.py`` (ISTA weights, trained LISTA and ALISTA) at ``--family`` sizes."""
    import lipschitz as family  # benchmarks/lipschitz.py: a script's own folder is on sys.path
    out = []
    for size in args.family:
        m, n, K = (int(v) for v in size.split(","))
        ns = argparse.Namespace(seed=args.seed, trained_max_n=n, train_steps=args.train_steps or 300)
        problem = SparseRecovery(m, n, 0.1, seed=args.seed)
        out += [(f"{name} {m},{n},{K}", spec, problem, (m, n, K)) for name, spec, _ in family.networks(m, n, K, ns)]
    return out


def _timed(fn, *a, **kw):
    start = time.perf_counter()
    try:
        return fn(*a, **kw), None, time.perf_counter() - start
    except ValueError as exc:  # a refusal (e.g. a user activation) becomes a row with its reason
        return None, str(exc), time.perf_counter() - start


def _ratio(upper, lower) -> float:
    if upper is None or lower is None or not (upper.certified and lower.certified) or not lower.value > 0:
        return math.inf
    return upper.value / lower.value


def local_rows(name: str, spec, problem: SparseRecovery, size, args) -> list[list]:
    Y, _ = problem.sample(args.inputs, seed=40_000 + args.seed)
    rows = []
    for i, y in enumerate(Y):
        for r in args.radii:
            region = Ball(y, r * float(np.linalg.norm(y)))
            low, _, t_low = _timed(local_lower_bound, spec, region, seed=args.seed, time_budget=args.lower_budget)
            up, err, t_up = _timed(local_upper_bound, spec, region, time_budget=args.upper_budget)
            ibp, _, t_ibp = _timed(preactivation_bounds, spec, region, method="interval")
            base, _, t_base = (None, None, 0.0) if ibp is None else _timed(
                local_upper_bound, spec, region, bounds=ibp, time_budget=args.upper_budget)
            ratio = _ratio(up, low)
            seconds = t_low + t_up
            goal = f"ratio {'✓' if ratio <= GOAL_RATIO else '✗'}"
            if tuple(size) == REPORT_SIZE:
                goal += f", time {'✓' if seconds <= GOAL_SECONDS else '✗'}"
            rows.append([name, i, f"{100 * r:g} %", low.value, low.certified, up.value if up else f"error: {err}",
                         up.certified if up else "—", ratio, t_low, t_up, seconds,
                         base.value if base else "—", _ratio(base, low), t_ibp + t_base,
                         up.details.get("unstable", "—") if up else "—", goal])
    return rows


def diagnose(name: str, spec, problem: SparseRecovery, args) -> list[list]:
    """Where the ratio is lost (``--diagnose``), per region:

    * upper side: the unstable neurons after CROWN and α-CROWN against the neurons whose slope actually changes among
      ``--diagnose-samples`` sampled points (a lower bound on the truly unstable ones); the certificate that wins; and
      the same certificates on the sampled hull of the pre-activations (an *estimate*, not certified: the hull is inside
      the true ranges, so it shows what exact intervals could at most give);
    * lower side: the default search against a longer one (4× the restarts, ``--diagnose-budget`` seconds) and the
      largest ‖J(y)‖ at the sampled points;
    * what any slope-range certificate can reach: the unstable neurons by the attack (``attack_preactivations``, inner
      ranges: a lower bound on the truly unstable ones, where CROWN's count is an upper bound); ``agnostic_floor`` on
      the spec restricted to the CROWN intervals (certified: no certificate that uses only these slope ranges, LipSDP
      included, can go below it) and to the attacked ranges (the floor that even exact intervals would leave, since the
      agnostic value grows with the slope sets; up to the rounding of the attack's evaluations); and the LipSDP-Neuron
      optimum of the CROWN-restricted spec without a time limit where its matrix has at most ``--diagnose-sdp-rows``
      rows (what the default time budget gives away).
    """
    Y, _ = problem.sample(args.inputs, seed=40_000 + args.seed)
    rows = []
    for i, y in enumerate(Y):
        for r in args.radii:
            region = Ball(y, r * float(np.linalg.norm(y)))
            crown = preactivation_bounds(spec, region)
            alpha = preactivation_bounds(spec, region, method="alpha-crown")
            P = region.sample(args.diagnose_samples, args.seed + 1)
            pres = spec.preactivations(P)
            flips = sum(int(np.sum(np.any(act.slopes(v) != act.slopes(v[:1]), axis=0)))
                        for act, v in zip(spec.activations, pres, strict=True) if act.separable)
            hull = PreactivationBounds(tuple(v.min(axis=0) for v in pres), tuple(v.max(axis=0) for v in pres),
                                       "sampled hull (not rigorous)", 0.0)
            sampled = max(float(np.linalg.norm(spec.jacobian(p), 2)) for p in P[: min(len(P), 500)])
            low = local_lower_bound(spec, region, seed=args.seed, time_budget=args.lower_budget)
            strong = local_lower_bound(spec, region, seed=args.seed + 1, restarts=32, time_budget=args.diagnose_budget)
            up = local_upper_bound(spec, region, time_budget=args.upper_budget)
            ideal = local_upper_bound(spec, region, time_budget=args.upper_budget, bounds=hull)
            best_low = max(low.value, strong.value)
            attacked = attack_preactivations(spec, region, seed=args.seed, time_budget=args.attack_budget)
            floor_crown = agnostic_floor(restrict(spec, crown.lower, crown.upper).spec, time_budget=args.diagnose_budget)
            floor_attack = agnostic_floor(restrict(spec, attacked.lower, attacked.upper).spec,
                                          time_budget=args.diagnose_budget)
            optimum, refusal, _ = _timed(sdp_bound, restrict(spec, crown.lower, crown.upper).spec,
                                         max_size=args.diagnose_sdp_rows, time_budget=None)
            rows.append([name, i, f"{100 * r:g} %", sum(crown.unstable_counts(spec)), sum(alpha.unstable_counts(spec)),
                         sum(attacked.unstable_counts(spec)), flips, up.value, up.method, ideal.value,
                         _sdp_cell(optimum, refusal),
                         floor_crown.value if floor_crown.certified else "—", floor_attack.value,
                         low.value, strong.value, sampled, _over(up.value, best_low), _over(ideal.value, best_low),
                         _over(floor_crown.value, best_low), _over(floor_attack.value, best_low),
                         low.value / best_low if best_low > 0 else 0.0])
    return rows


DIAGNOSIS_HEADER = ["network", "input", "radius", "unstable (CROWN)", "unstable (α-CROWN)", "unstable (attack)",
                    "slope changes seen", "upper", "winning certificate", "upper on sampled hull (estimate)",
                    "restricted LipSDP optimum (no time limit)", "agnostic floor (CROWN ranges)",
                    "agnostic floor (attacked ranges)", "lower", "lower (long search)", "max sampled ‖J‖",
                    "upper / best lower", "hull upper / best lower", "floor (CROWN) / best lower",
                    "floor (attack) / best lower", "lower / best lower"]


def _sdp_cell(optimum, refusal: str | None):
    if optimum is None:
        return f"skipped: {refusal.split(';')[0]}"
    return optimum.value if optimum.certified else f"not certified ({optimum.details.get('status', '?')})"


def _over(value: float, lower: float) -> float:
    return value / lower if lower > 0 else math.inf


def global_rows(name: str, spec, size, args) -> list[list]:
    best, _, t_best = _timed(upper_bound, spec, "best", time_budget=args.global_budget)
    low, _, t_low = _timed(lower_bound, spec, restarts=8, seed=args.seed)
    floor, _, t_floor = _timed(agnostic_floor, spec, seed=args.seed)
    rows = [[name, "global best upper", best.value, best.certified, t_best],
            [name, "global lower (witness)", low.value, low.certified, t_low],
            [name, "global best / lower", _ratio(best, low), "", ""],
            [name, "agnostic_floor (slope-only floor)", floor.value, floor.certified, t_floor]]
    neurons = sum(spec.dims[1:])
    if neurons > args.exact_max_neurons:
        rows.append([name, "exact_bound", "—", "—", f"skipped: {neurons} neurons > --exact-max-neurons"])
    else:
        ex, err, t_ex = _timed(exact_bound, spec, time_budget=args.exact_budget)
        if ex is None:
            rows.append([name, "exact_bound", "—", "—", f"error: {err}"])
        else:
            lo = ex.details.get("lower")
            lo_val = getattr(lo, "value", lo)
            rows += [[name, "exact_bound upper", ex.value, ex.certified, t_ex],
                     [name, "exact_bound lower", lo_val, getattr(lo, "certified", ""), ""],
                     [name, "exact upper / lower (certified column: closed to rtol)", ex.value / lo_val if lo_val else math.inf,
                      ex.details.get("closed", ""), ""]]
    return rows


LOCAL_HEADER = ["network", "input", "radius (of ‖y‖)", "local lower", "cert.", "local upper", "cert.", "upper / lower",
                "s lower", "s upper", "s per region", "IBP + global SDP upper", "IBP upper / lower", "s IBP",
                "unstable neurons", f"goals (ratio ≤ {GOAL_RATIO}; ≤ {GOAL_SECONDS} s at {REPORT_SIZE})"]
GLOBAL_HEADER = ["network", "quantity", "value", "certified", "seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small",
                        help="size of the report's models: small = 32x64, 6 layers, 300 steps; report = 64x128, 12 layers, 2000")
    parser.add_argument("--family", nargs="*", default=["20,40,4"], help="sizes m,n,K of benchmarks/lipschitz.py's family")
    parser.add_argument("--no-report-models", action="store_true", help="only the family")
    parser.add_argument("--train-steps", type=int, default=None, help="override the training steps of every model")
    parser.add_argument("--radii", nargs="+", type=float, default=[0.01, 0.05], help="ball radii as fractions of ‖y‖")
    parser.add_argument("--inputs", type=int, default=3, help="test inputs y per network")
    parser.add_argument("--lower-budget", type=float, default=0.6,
                        help="seconds of each local lower bound (with --upper-budget: the goal of 2 s per region)")
    parser.add_argument("--upper-budget", type=float, default=1.4, help="seconds of each local upper bound")
    parser.add_argument("--no-global", action="store_true", help="skip the global intervals (they do not depend on the region)")
    parser.add_argument("--diagnose", action="store_true",
                        help="also print where the ratio is lost (unstable neurons, winning certificate, longer lower search)")
    parser.add_argument("--diagnose-budget", type=float, default=10.0, help="seconds of the long lower search of --diagnose")
    parser.add_argument("--diagnose-samples", type=int, default=2000, help="sampled points per region for --diagnose")
    parser.add_argument("--attack-budget", type=float, default=60.0,
                        help="seconds of the pre-activation attack of --diagnose (it stops early past them)")
    parser.add_argument("--diagnose-sdp-rows", type=int, default=700,
                        help="largest LipSDP matrix solved without a time limit by --diagnose")
    parser.add_argument("--global-budget", type=float, default=45.0, help="seconds of upper_bound(spec, 'best')")
    parser.add_argument("--exact-max-neurons", type=int, default=200)
    parser.add_argument("--exact-budget", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="also write STEM_local.* and STEM_global.* tables")
    parser.add_argument("--cache", type=Path, default=None,
                        help="folder of trained report specs (JSON): loaded when present, written after training")
    parser.add_argument("--no-progress", action="store_true", help="no training progress bars")
    args = parser.parse_args()
    threadpool_limits(1)
    nets = [] if args.no_report_models else report_networks(PRESETS[args.preset], args)
    nets += family_networks(args)
    local, glob, diag = [], [], []
    for name, spec, problem, size in nets:
        rows = local_rows(name, spec, problem, size, args)
        grows = [] if args.no_global else global_rows(name, spec, size, args)
        local += rows
        glob += grows
        print(f"\n## {name} {size}\n\n" + markdown_table(LOCAL_HEADER, rows, digits=5) + "\n"
              + (markdown_table(GLOBAL_HEADER, grows, digits=5) if grows else ""), flush=True)
        if args.diagnose:
            drows = diagnose(name, spec, problem, args)
            diag += drows
            print("\n### Where the ratio is lost\n\n" + markdown_table(DIAGNOSIS_HEADER, drows, digits=4), flush=True)
    print("\n# All networks: local intervals\n\n" + markdown_table(LOCAL_HEADER, local, digits=5))
    if glob:
        print("# All networks: global intervals\n\n" + markdown_table(GLOBAL_HEADER, glob, digits=5))
    if diag:
        print("# All networks: where the ratio is lost\n\n" + markdown_table(DIAGNOSIS_HEADER, diag, digits=4))
    ratios = [r[7] for r in local]
    met = sum(x <= GOAL_RATIO for x in ratios)
    print(f"goal upper/lower ≤ {GOAL_RATIO}: met in {met} of {len(ratios)} regions (worst ratio {max(ratios):.4g})")
    at_size = [r[10] for r, (_, _, _, s) in zip(local, [n for n in nets for _ in range(args.inputs * len(args.radii))],
                                                    strict=True) if tuple(s) == REPORT_SIZE]
    if at_size:
        print(f"goal ≤ {GOAL_SECONDS} s per region at {REPORT_SIZE}: met in {sum(t <= GOAL_SECONDS for t in at_size)} "
              f"of {len(at_size)} (slowest {max(at_size):.3g} s)")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        save_table(LOCAL_HEADER, local, f"{args.out}_local", digits=5)
        if glob:
            save_table(GLOBAL_HEADER, glob, f"{args.out}_global", digits=5)
        if diag:
            save_table(DIAGNOSIS_HEADER, diag, f"{args.out}_diagnosis", digits=4)


if __name__ == "__main__":
    main()
