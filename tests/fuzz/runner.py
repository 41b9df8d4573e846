"""Run a fuzz target under hypothesis and say what it found: inputs run, findings, the minimal inputs."""

from __future__ import annotations

import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as fixed_seed
from hypothesis.reporting import with_reporter

from streams.errors import InvalidInput
from tests.fuzz.inputs import Sample
from tests.fuzz.targets import Target

# Generation is slow for some structured inputs and rejects none on purpose: those checks guard test
# suites against slow strategies, not a fuzz run that is meant to take minutes.
_SUPPRESSED = (
    HealthCheck.too_slow,
    HealthCheck.filter_too_much,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
)


@dataclass
class Report:
    """What one run of a target found."""

    target: str
    inputs: int = 0  # calls of the chain, shrinking included
    seconds: float = 0.0
    findings: list[BaseException] = field(default_factory=list)
    # What became of the records: "accepted", or the refusal's reason; how deep the inputs reach.
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        records = sum(self.outcomes.values())
        accepted = self.outcomes["accepted"] / records if records else 0.0
        return (
            f"{self.target:<20} {self.inputs:>9,} inputs  {len(self.findings):>2} unexpected  "
            f"{self.seconds:>8.1f} s  ({accepted:.0%} of {records:,} records accepted)"
        )

    def reasons(self, top: int = 8) -> str:
        """The most common outcomes, to see which refusal stops most inputs."""
        return ", ".join(f"{reason} {n:,}" for reason, n in self.outcomes.most_common(top))

    def details(self) -> str:
        """Each finding: the exception, where it was raised, and the minimal input hypothesis found."""
        parts = []
        for number, exc in enumerate(self.findings, 1):
            notes = "\n".join(f"    {n}" for n in getattr(exc, "__notes__", ()))
            where = "".join(traceback.format_exception(exc, limit=-3)).rstrip()
            parts.append(f"[{self.target} #{number}] {type(exc).__name__}: {exc}\n{notes}\n{where}")
        return "\n\n".join(parts)


def run(target: Target, examples: int, *, seed: int | None = None) -> Report:
    """``examples`` inputs of ``target``, random each run unless ``seed`` is given; shrinks what fails."""
    report = Report(target.name)

    def check(sample: Sample) -> None:
        report.inputs += 1
        for outcome in target.check(sample):
            report.outcomes[outcome.reason if isinstance(outcome, InvalidInput) else _kind(outcome)] += 1

    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        suppress_health_check=_SUPPRESSED,
        report_multiple_bugs=True,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        verbosity=Verbosity.normal,
        print_blob=True,
    )(given(target.inputs)(check))
    if seed is not None:
        test = fixed_seed(seed)(test)
    started = time.monotonic()
    try:
        # Hypothesis attaches the minimal failing input to each error (``__notes__``), printed by
        # details(); its own printing while the run goes on would only repeat it.
        with with_reporter(lambda _text: None), warnings.catch_warnings():
            # A 64 KiB input makes a long repr in the report: expected here, not worth a warning.
            warnings.filterwarnings("ignore", message="Generating overly large repr")
            test()
    except BaseExceptionGroup as group:  # several distinct failures (by type and place)
        report.findings = list(group.exceptions)
    except Exception as exc:  # noqa: BLE001  # every exception is a finding to report, not to handle
        report.findings = [exc]
    report.seconds = time.monotonic() - started
    return report


def _kind(outcome: object) -> str:
    if outcome is None or outcome is False:
        return "ignored"  # an ISAPI heartbeat, a refused credential
    if isinstance(outcome, Exception):
        return type(outcome).__name__
    return "accepted"
