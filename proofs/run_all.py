"""Run every proof script in this folder and report pass/fail.

Usage: python proofs/run_all.py [-v]

Discovers every proofs/*.py except this runner and helper modules whose name
starts with an underscore, runs each in its own interpreter, prints one line
per script (and the script's output on failure, or always with -v), and exits
with status 1 if any script fails.
"""

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def proof_scripts() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name and not p.name.startswith("_"))


def main() -> int:
    verbose = "-v" in sys.argv[1:]
    failed = []
    for script in proof_scripts():
        start = time.perf_counter()
        result = subprocess.run([sys.executable, str(script)], cwd=HERE.parent, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        ok = result.returncode == 0
        print(f"{'PASS' if ok else 'FAIL'}  {script.name:<32} {elapsed:5.1f} s")
        if verbose or not ok:
            print(result.stdout + result.stderr)
        if not ok:
            failed.append(script.name)
    if failed:
        print(f"{len(failed)} proof script(s) failed: {', '.join(failed)}")
        return 1
    print("all proof scripts passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
