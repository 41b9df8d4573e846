"""Prometheus metrics of the pager. No label ever carries a phone number, plate or case number."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram

PAGES = Counter("seizewatch_pages_total", "Pages opened from hits, or not (with the reason).", ["outcome"])
NOTIFICATION_OUTCOMES = ("sent", "retried", "failed", "ambiguous", "skipped", "reconciling")
NOTIFICATIONS = Counter(
    "seizewatch_notifications_total",
    "SMS sends by our outcome: sent, retried, failed, ambiguous (outcome never learned), skipped (page"
    " taken or cancelled); reconciling (outcome unknown for now, looked up before any resend: not an end).",
    ["outcome"],
)
RECONCILIATION_OUTCOMES = ("found", "absent", "lookup_failed", "gave_up")
RECONCILIATIONS = Counter(
    "seizewatch_sms_reconciliations_total",
    "Lookups at the provider of sends whose outcome was unknown, by what they found: found (recorded as"
    " sent, never resent), absent (sent again), lookup_failed (asked again later), gave_up (left ambiguous).",
    ["outcome"],
)
STATUS_LOOKUP_OUTCOMES = ("changed", "unchanged", "failed")
STATUS_LOOKUPS = Counter(
    "seizewatch_sms_status_lookups_total",
    "Statuses asked of the provider for sent SMS whose callback brought no final status, by result.",
    ["outcome"],
)
CLAIMS_RECOVERED = Counter(
    "seizewatch_sms_claims_recovered_total",
    "Send claims whose lease ran out with no outcome recorded (their pager died or lost PostgreSQL):"
    " reconciled, never resent blindly.",
)
SENDS_IN_FLIGHT = Gauge(
    "seizewatch_sms_calls_in_flight",
    "Calls to the SMS provider (sends and lookups) this pager has under way; at most"
    " SEIZEWATCH_PAGER_SEND_CONCURRENCY.",
)
OVERDUE_SENDS = Gauge(
    "seizewatch_notifications_overdue",
    "SMS due more than a minute ago and not under way (unclaimed, a claim past its lease, a lookup"
    " overdue): a stuck sender.",
)
DELIVERY = Counter(
    "seizewatch_notification_status_total", "Provider status callbacks recorded, by status.", ["status"]
)
# The step label of the morning notice to the court after a night-window hold (not an escalation step).
MORNING_NOTICE_STEP = "morning_notice"
ESCALATIONS = Counter("seizewatch_escalations_total", "Escalation steps run, by step kind.", ["step"])
ESCALATIONS_EXHAUSTED = Counter(
    "seizewatch_escalations_exhausted_total", "Pages whose every step ran without anyone taking them."
)
UNREACHABLE = Counter(
    "seizewatch_page_unreachable_total",
    "Recipients a step could not reach (no phone, SMS disabled, vacancy…).",
)
SIGHTING_TO_PROVIDER_SECONDS = Histogram(
    "seizewatch_sighting_to_sms_accepted_seconds",
    "From the device's read to the SMS provider accepting the first message of the page.",
    buckets=(0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900),
)
TIME_TO_ACK_SECONDS = Histogram(
    "seizewatch_page_time_to_acknowledge_seconds",
    "From the page opening to someone taking it.",
    buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600),
)
REPLIES = Counter(
    "seizewatch_replies_total", "Replies and acknowledgements, by outcome.", ["channel", "outcome"]
)
OPEN_PAGES = Gauge("seizewatch_open_pages", "Pages waiting for someone to take them (state open).")
OVERDUE_STEPS = Gauge(
    "seizewatch_escalation_overdue_steps",
    "Open pages whose next step is more than a minute overdue (a stuck pager).",
)
TASKS = Counter("seizewatch_tasks_total", "Seizure tasks opened and their state changes.", ["state"])
TASK_SIGHTINGS = Counter(
    "seizewatch_task_sightings_total",
    "Sightings of vehicles with a live task: an update sent (new place, left the lot) or only trailed.",
    ["outcome"],
)
TRAFFIC_RESULTS = Counter(
    "seizewatch_traffic_results_total", "Traffic-police results, by what became of them.", ["outcome"]
)
OPEN_TASKS = Gauge("seizewatch_open_tasks", "Live seizure tasks by state.", ["state"])

# Alerts on seizewatch itself, from Alertmanager, texted to the operators (alerts/operator_alerts.py).
OPERATOR_ALERT_STATUSES = ("firing", "resolved")
OPERATOR_ALERTS_RECEIVED = Counter(
    "seizewatch_operator_alerts_received_total",
    "Alerts in Alertmanager's notifications, by status; the same alert is counted on every repeat.",
    ["status"],
)
OPERATOR_ALERT_NOTIFICATION_OUTCOMES = ("queued", "duplicate")
OPERATOR_ALERT_NOTIFICATIONS = Counter(
    "seizewatch_operator_alert_notifications_total",
    "Operator SMS an alert called for: queued, or duplicate (already queued for that alert and operator).",
    ["outcome"],
)
OPERATOR_ALERT_SMS_OUTCOMES = ("sent", "failed", "ambiguous")
OPERATOR_ALERT_SMS = Counter(
    "seizewatch_operator_alert_sms_total",
    "Operator SMS sends that ended: sent (the provider accepted it), failed, ambiguous.",
    ["outcome"],
)

# The enforcement funnel (alerts/funnel.py), refreshed by the pager.
# The label is the court (few, and not personal data) or "total" for the totals row: leave court="total"
# out when summing over courts.
FUNNEL_WATCHED_VEHICLES = Gauge(
    "seizewatch_funnel_watched_vehicles",
    'Vehicles under watch this calendar year (Asia/Shanghai), per court; court="total" is all courts.',
    ["court"],
)
FUNNEL_ALARMS = Gauge(
    "seizewatch_funnel_alarms",
    'Vehicles with an alarm (a hit) this calendar year, per court; court="total" is all courts.',
    ["court"],
)
FUNNEL_SEIZED_VEHICLES = Gauge(
    "seizewatch_funnel_seized_vehicles",
    'Vehicles seized this calendar year, per court; court="total" is all courts.',
    ["court"],
)
FUNNEL_SETTLED_CASES = Gauge(
    "seizewatch_funnel_settled_cases",
    'Cases settled (paid or settled) this calendar year, per court; court="total" is all courts.',
    ["court"],
)
FUNNEL_MEDIAN_SECONDS_TO_SEIZURE = Gauge(
    "seizewatch_funnel_median_seconds_to_seizure",
    "Median time from first sighting to seizure this calendar year, per court; absent when none.",
    ["court"],
)


def prime(step_kinds: Iterable[str]) -> None:
    """Give the labelled counters the alert rules divide or rate over a zero series at start-up.

    A labelled counter has no series before its first increment, so the first SMS failure would be
    invisible to ``rate()`` (nothing to compare with) and the failure ratio would read "no data".
    """
    for outcome in NOTIFICATION_OUTCOMES:
        NOTIFICATIONS.labels(outcome)
    for outcome in RECONCILIATION_OUTCOMES:
        RECONCILIATIONS.labels(outcome)
    for outcome in STATUS_LOOKUP_OUTCOMES:
        STATUS_LOOKUPS.labels(outcome)
    for step in (*step_kinds, MORNING_NOTICE_STEP):
        ESCALATIONS.labels(step)
    for status in OPERATOR_ALERT_STATUSES:
        OPERATOR_ALERTS_RECEIVED.labels(status)
    for outcome in OPERATOR_ALERT_NOTIFICATION_OUTCOMES:
        OPERATOR_ALERT_NOTIFICATIONS.labels(outcome)
    for outcome in OPERATOR_ALERT_SMS_OUTCOMES:
        OPERATOR_ALERT_SMS.labels(outcome)
