"""Tests of observability and deployment: the compose and Grafana files against the code, the alert rules
(promtool), and rules and dashboards against a live Prometheus scraping a running pipeline.

Shared here: the alert rules as data, and the metric names a PromQL expression selects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from seizewatch.prometheus import RULES_DIR

RULES_FILE = RULES_DIR / "seizewatch.rules.yml"


@dataclass(frozen=True)
class AlertRule:
    name: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]


def alert_rules() -> list[AlertRule]:
    """Every alerting rule of every rule file, in file order."""
    rules: list[AlertRule] = []
    for path in sorted(RULES_DIR.glob("*.yml")):
        document: dict[str, Any] = yaml.safe_load(path.read_text())
        for group in document["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rules.append(
                        AlertRule(
                            rule["alert"], rule["expr"], rule.get("labels", {}), rule.get("annotations", {})
                        )
                    )
    return rules


# A small PromQL lexer, enough to find the metric names of selectors: strings, numbers and durations are
# tokens of their own (so `1e3` or `5m` never look like names); label matchers `{…}` and ranges `[…]` are
# skipped, as are the label lists of by/without/on/ignoring/group_left/group_right; a name followed by `(`
# is a function, one followed by by/without an aggregation. A metric selected only through
# `{__name__="…"}` is not seen.
_TOKEN = re.compile(
    r"""(?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
      | (?P<number>\d[\w.]*|\.\d[\w.]*)
      | (?P<ident>[A-Za-z_:][\w:]*)
      | (?P<space>\s+)
      | (?P<other>.)""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}
_LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_CLOSING = {"{": "}", "[": "]", "(": ")"}


def metric_names(expr: str) -> set[str]:
    """The metric names ``expr`` selects, e.g. ``{"up"}`` for ``sum by (job) (up == 0)``."""
    tokens = [(m.lastgroup, m.group()) for m in _TOKEN.finditer(expr) if m.lastgroup != "space"]
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text in ("{", "[") or (kind == "ident" and text.lower() in _LABEL_LISTS and following == "("):
            i = _skip_group(tokens, i if text in ("{", "[") else i + 1)
            continue
        # `name(` is a function, `name by (` an aggregation: neither is a metric.
        calls = following == "(" or following.lower() in ("by", "without")
        if kind == "ident" and not calls and text.lower() not in _KEYWORDS:
            names.add(text)
        i += 1
    return names


def _skip_group(tokens: list[tuple[str | None, str]], start: int) -> int:
    """The index after the bracket group opening at ``start`` (strings inside are single tokens)."""
    opening = tokens[start][1]
    depth = 0
    for i in range(start, len(tokens)):
        text = tokens[i][1]
        if text == opening:
            depth += 1
        elif text == _CLOSING[opening]:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced {opening!r} in PromQL")
