"""Start-up time of `flashhead --help` against a bare interpreter, measured side by side.

Goal (issue 2): `flashhead --help` at most 0.3 s above `python -c pass`.
Usage: python benchmarks/cli_startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import shutil
import sys

from common import summary, time_command, write_result

GOAL_SECONDS = 0.3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    flashhead = shutil.which("flashhead") or sys.exit("flashhead is not on PATH: install the project first")
    bare, cli = [], []
    for _ in range(args.runs):  # interleaved, so drift in machine load hits both alike
        bare.append(time_command([sys.executable, "-c", "pass"]))
        cli.append(time_command([flashhead, "--help"]))
    bare_s, cli_s = summary(bare), summary(cli)
    overhead = cli_s["median"] - bare_s["median"]
    print(f"python -c pass     median {bare_s['median'] * 1000:7.1f} ms  (min {bare_s['min'] * 1000:.1f})")
    print(f"flashhead --help   median {cli_s['median'] * 1000:7.1f} ms  (min {cli_s['min'] * 1000:.1f})")
    print(f"overhead           {overhead * 1000:7.1f} ms  (goal ≤ {GOAL_SECONDS * 1000:.0f} ms)"
          f"  ratio {cli_s['median'] / bare_s['median']:.2f}×")
    path = write_result("cli_startup", {"python_c_pass": bare_s, "flashhead_help": cli_s,
                                        "overhead_seconds": overhead, "goal_seconds": GOAL_SECONDS,
                                        "meets_goal": overhead <= GOAL_SECONDS})
    print(f"written to {path}")
    return 0 if overhead <= GOAL_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
