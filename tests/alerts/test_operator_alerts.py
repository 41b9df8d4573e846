"""The operators' SMS about an alert: Chinese, at most two segments, what fired, since when, the runbook."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from alerts.messages import segments
from alerts.operator_alerts import (
    WebhookAlert,
    WebhookNotification,
    chinese_summary,
    render_firing,
    render_resolved,
)

STARTS = "2026-12-04T02:38:15.123456789Z"  # Alertmanager writes nanoseconds; 10:38 in Shanghai


def alert(**changes: Any) -> WebhookAlert:
    fields: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "SeizewatchFeedSilent", "severity": "warning", "device_group": "parking-jj"},
        "annotations": {
            # as the rules' folded `>-` summaries read, a line break included
            "summary": "设备组 parking-jj 已 20m 5s 没有收到读数 /\n Device group parking-jj: no read",
            "runbook": "docs/operations.md#feed-silent",
        },
        "startsAt": STARTS,
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "4f3c2b1a00000000",
    }
    fields.update(changes)
    return WebhookAlert.model_validate(fields)


def test_a_firing_alert_says_severity_name_since_when_summary_and_runbook() -> None:
    assert render_firing(alert()) == (
        "【系统告警·警告】SeizewatchFeedSilent 12-04 10:38起：设备组 parking-jj 已 20m 5s 没有收到读数。"
        "手册 docs/operations.md#feed-silent"
    )
    critical = alert(labels={"alertname": "SeizewatchNoPagerRunning", "severity": "critical"})
    assert render_firing(critical).startswith("【系统告警·紧急】SeizewatchNoPagerRunning ")


def test_a_long_summary_gives_way_and_the_name_and_runbook_stay() -> None:
    text = render_firing(alert(annotations={"summary": "很长的说明" * 60, "runbook": "docs/operations.md#x"}))
    assert segments(text) == 2
    assert text.startswith("【系统告警·警告】SeizewatchFeedSilent 12-04 10:38起：很长的说明")
    assert text.endswith("…。手册 docs/operations.md#x")


@pytest.mark.parametrize("name_length", [60, 130, 400])
def test_every_text_fits_two_segments(name_length: int) -> None:
    odd = alert(labels={"alertname": "A" * name_length, "severity": "page", "zone": "西" * 80})
    for text in (render_firing(odd), render_resolved(odd), render_firing(alert()), render_resolved(alert())):
        assert segments(text) <= 2, text


def test_without_a_summary_the_labels_say_what_is_wrong() -> None:
    text = render_firing(alert(annotations={}))
    assert text == "【系统告警·警告】SeizewatchFeedSilent 12-04 10:38起：device_group=parking-jj。"


def test_a_resolved_alert_says_since_when_and_until_when() -> None:
    resolved = alert(status="resolved", endsAt="2026-12-04T02:45:00Z")
    assert render_resolved(resolved) == (
        "【系统告警·已恢复】SeizewatchFeedSilent device_group=parking-jj 12-04 10:38起，10:45已恢复。"
    )


def test_the_chinese_half_of_a_bilingual_summary() -> None:
    assert (
        chinese_summary({"summary": "没有正在运行的呼叫进程 /\nNo pager is running"})
        == "没有正在运行的呼叫进程"
    )
    assert chinese_summary({"summary": "Only English"}) == "Only English"
    assert chinese_summary({}) == ""


def test_the_webhook_payload_of_alertmanager_version_4() -> None:
    payload = {
        "version": "4", "groupKey": "{}:{alertname=\"SeizewatchFeedSilent\"}", "truncatedAlerts": 0,
        "status": "firing", "receiver": "seizewatch-operators", "groupLabels": {}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
        "alerts": [alert().model_dump(by_alias=True, mode="json")],
    }  # fmt: skip
    notification = WebhookNotification.model_validate(payload)
    [parsed] = notification.alerts
    assert parsed.starts_at == datetime(2026, 12, 4, 2, 38, 15, 123456, tzinfo=UTC)
    assert parsed.name == "SeizewatchFeedSilent"
    with pytest.raises(ValueError, match="version"):
        WebhookNotification.model_validate({**payload, "version": "3"})
