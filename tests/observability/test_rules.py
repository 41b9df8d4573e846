"""The alert rules: promtool's checks and unit tests, and what promtool cannot know (the metric names the
code declares, the runbook sections, a summary in both languages, a unit test for every alert)."""

from __future__ import annotations

import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from alerts import metrics as alert_metrics
from connectors import metrics as connector_metrics
from seizewatch import prometheus
from streams import metrics as stream_metrics
from tests.observability import AlertRule, alert_rules, metric_names

ROOT = prometheus.DEPLOY_DIR.parents[1]
SEVERITIES = {"critical", "warning"}
# Series Prometheus makes itself, for every target.
SCRAPE_SERIES = {"up"}
RUNBOOK = re.compile(r"^docs/operations\.md#(?P<anchor>[a-z0-9-]+)$")
CJK = re.compile(r"[\u4e00-\u9fff]")
LATIN_WORD = re.compile(r"[A-Za-z]{3,}")

_SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def declared_series() -> set[str]:
    """Every series name the code's metrics can produce (labelled ones too, before any sample)."""
    names: set[str] = set()
    modules: tuple[ModuleType, ...] = (stream_metrics, connector_metrics, alert_metrics)
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, MetricWrapperBase):
                for family in value.collect():
                    names.update(family.name + suffix for suffix in _SERIES_SUFFIXES[family.type])
    return names


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the headings of docs/operations.md."""
    text = (ROOT / "docs" / "operations.md").read_text()
    headings = re.findall(r"^#+\s+(.+?)\s*$", text, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


RULES = alert_rules()


def by_name(rule: AlertRule) -> str:
    return rule.name


@pytest.mark.integration
@pytest.mark.parametrize(
    "check",
    [prometheus.check_config, prometheus.check_rules, prometheus.run_rule_tests],
    ids=lambda c: c.__name__,
)
def test_promtool(check: Callable[[], prometheus.CheckResult]) -> None:
    result = check()
    if not result.ok:
        pytest.fail(str(result), pytrace=False)


def test_there_are_rules_and_rule_tests() -> None:
    assert RULES, f"no alerting rules in {prometheus.RULES_DIR}"
    assert prometheus.rule_test_files(), f"no promtool tests in {prometheus.RULE_TESTS_DIR}"
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)), f"alert names repeat: {names}"


@pytest.mark.parametrize("rule", RULES, ids=by_name)
def test_rule_watches_only_metrics_the_code_declares(rule: AlertRule) -> None:
    names = metric_names(rule.expr)
    assert names, f"{rule.name}: no metric found in {rule.expr!r}"
    unknown = names - declared_series() - SCRAPE_SERIES
    assert not unknown, f"{rule.name} watches {sorted(unknown)}, which no metrics.py declares"


@pytest.mark.parametrize("rule", RULES, ids=by_name)
def test_rule_has_severity_summary_and_runbook(rule: AlertRule) -> None:
    assert rule.labels.get("severity") in SEVERITIES, f"{rule.name}: severity {rule.labels.get('severity')!r}"
    summary = rule.annotations.get("summary", "")
    assert CJK.search(summary), f"{rule.name}: the summary has no Chinese: {summary!r}"
    assert LATIN_WORD.search(summary), f"{rule.name}: the summary has no English: {summary!r}"
    runbook = RUNBOOK.match(rule.annotations.get("runbook", ""))
    assert runbook, f"{rule.name}: runbook {rule.annotations.get('runbook')!r} is not docs/operations.md#…"
    assert runbook["anchor"] in runbook_anchors(), (
        f"{rule.name}: docs/operations.md has no #{runbook['anchor']}"
    )


def unit_tests() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in prometheus.rule_test_files():
        for group in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(group.get("alert_rule_test", []))
    return cases


@pytest.mark.parametrize("rule", RULES, ids=by_name)
def test_every_alert_has_a_firing_and_a_quiet_unit_test(rule: AlertRule) -> None:
    mine = [case for case in unit_tests() if case["alertname"] == rule.name]
    assert any(case.get("exp_alerts") for case in mine), f"no promtool test expects {rule.name} to fire"
    assert any(not case.get("exp_alerts") for case in mine), f"no promtool test expects {rule.name} quiet"


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (job) (up{job=~"seizewatch-.*"} == 0)', {"up"}),
        ("time() - max by (device_group) (max_over_time(a_seconds[1d])) > 900", {"a_seconds"}),
        (
            "rate(x_total[5m] offset 1h) / ignoring(le) group_left(court) y and on() z > 1e3",
            {"x_total", "y", "z"},
        ),
        ('label_replace(rate(p{o=~"n_.*"}[1m]), "reason", "$1", "o", "n_(.*)")', {"p"}),
        ("sum(a) without (instance) or vector(0) unless bool_metric", {"a", "bool_metric"}),
    ],
)
def test_metric_names_of_promql(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names
