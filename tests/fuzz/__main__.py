"""``python -m tests.fuzz [--inputs N] [TARGET…]``: fuzz the connector parsers, outside the test suite.

Runs each target (all by default) for N inputs (100,000 by default), prints per target the inputs run,
the unexpected exceptions and the wall time, then every finding with its minimal input; exits 1 on any
finding, 0 when there is none.
"""

from __future__ import annotations

import argparse
import logging
import sys

from tests.fuzz.runner import run
from tests.fuzz.targets import TARGETS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("targets", nargs="*", metavar="TARGET", help=f"any of: {', '.join(TARGETS)}")
    parser.add_argument("--inputs", type=int, default=100_000, help="inputs per target (default 100000)")
    parser.add_argument("--seed", type=int, help="a fixed hypothesis seed, to repeat a run")
    parser.add_argument("--list", action="store_true", help="list the targets and what each runs")
    parser.add_argument("--outcomes", action="store_true", help="also print the commonest outcomes")
    args = parser.parse_args(argv)
    # The parsers log what they ignore (a CSV column of no known field): thousands of lines, no finding.
    logging.disable(logging.WARNING)
    if args.list:
        for target in TARGETS.values():
            print(f"{target.name:<20} {target.function}")
        return 0
    unknown = [name for name in args.targets if name not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")
    reports = []
    for name in args.targets or list(TARGETS):
        report = run(TARGETS[name], args.inputs, seed=args.seed)
        print(report.line(), flush=True)
        if args.outcomes:
            print(f"    {report.reasons()}", flush=True)
        reports.append(report)
    found = [report for report in reports if report.findings]
    total = sum(report.inputs for report in reports)
    print(f"{'total':<20} {total:>9,} inputs  {sum(len(r.findings) for r in reports):>2} unexpected")
    for report in found:
        print("\n" + report.details(), file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
