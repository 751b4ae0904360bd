"""The runbook's communication plan (section 4), checked against the table's literal wording."""

import datetime as dt

import pytest

from tradepulse_assets.incidents.communications import (
    CommunicationError,
    EventAction,
    IncidentBrief,
    Message,
    Stage,
    messages_for,
    pagerduty_resolve,
)

UTC = dt.UTC


def brief(**overrides) -> IncidentBrief:
    fields = dict(
        incident_id="2026-03-09-xnys-lag",
        markets=("XNYS", "XLON"),
        cause="ingestion_lag",
        range_start=dt.datetime(2026, 3, 9, 13, 30, tzinfo=UTC),
        range_end=dt.datetime(2026, 3, 9, 15, 0, tzinfo=UTC),
        # 11:30 New York (EDT, UTC-4 from 2026-03-08): the text must say 15:30 UTC.
        eta=dt.datetime(2026, 3, 9, 11, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4))),
        postmortem_path="reports/incidents/data/2026-03-09-2026-03-09-xnys-lag/postmortem.md",
    )
    fields.update(overrides)
    return IncidentBrief(**fields)


def by_channel(stage):
    return {m.channel: m for m in messages_for(stage, brief())}


def test_detection_pages_the_bridge_and_posts_to_incidents_with_the_runbook_text():
    messages = by_channel(Stage.DETECTION)
    assert list(messages) == ["pagerduty", "#incidents"]
    for message in messages.values():
        assert message.text == "Data incident 2026-03-09-xnys-lag detected, markets impacted: XNYS, XLON"
        assert message.audience == ("Trading Ops", "Risk", "Quant On Call")
        assert message.severity == "critical"
    assert messages["pagerduty"].event_action is EventAction.TRIGGER
    assert messages["pagerduty"].dedup_key == "2026-03-09-xnys-lag"
    assert messages["#incidents"].event_action is None


def test_containment_tells_executives_and_compliance_the_eta_in_utc():
    messages = by_channel(Stage.CONTAINMENT)
    assert list(messages) == ["email", "#leadership-tech"]
    for message in messages.values():
        assert message.text == "Ingestion paused for XNYS, XLON, ETA 2026-03-09 15:30 UTC"
        assert message.audience == ("Executives", "Compliance")


def test_containment_without_eta_says_unknown_rather_than_failing():
    (email, _slack) = messages_for(Stage.CONTAINMENT, brief(eta=None))
    assert email.text == "Ingestion paused for XNYS, XLON, ETA unknown"


def test_recovery_start_names_the_backfill_range_and_acknowledges_the_page():
    (message, acknowledge) = messages_for(Stage.RECOVERY_START, brief())
    assert (acknowledge.channel, acknowledge.event_action.value) == ("pagerduty", "acknowledge")
    assert acknowledge.dedup_key == "2026-03-09-xnys-lag"  # the trigger's key: PagerDuty acknowledges that page
    assert message.channel == "#trading-ops"
    assert message.audience == ("Trading Ops",)
    assert message.text == (
        "Backfill initiated for XNYS, XLON covering 2026-03-09 13:30 UTC to 2026-03-09 15:00 UTC"
    )


def test_recovery_start_over_whole_sessions_uses_dates():
    one_day = brief(range_start=dt.date(2026, 3, 9), range_end=dt.date(2026, 3, 9))
    several = brief(range_start=dt.date(2026, 3, 9), range_end=dt.date(2026, 3, 11))
    assert messages_for(Stage.RECOVERY_START, one_day)[0].text.endswith("covering 2026-03-09")
    assert messages_for(Stage.RECOVERY_START, several)[0].text.endswith("covering 2026-03-09 to 2026-03-11")


def test_validation_pass_posts_status_and_resolves_the_page_with_the_same_key():
    messages = messages_for(Stage.VALIDATION_PASS, brief())
    assert [m.channel for m in messages] == ["#trading-ops", "status-page", "pagerduty"]
    for message in messages:
        assert message.text == "Data restored and validated, resuming normal ops"
        assert message.audience == ("Trading Ops", "Risk", "Compliance")
    resolve = messages[-1]
    trigger = by_channel(Stage.DETECTION)["pagerduty"]
    assert resolve.event_action is EventAction.RESOLVE
    assert resolve.dedup_key == trigger.dedup_key == "2026-03-09-xnys-lag"
    assert pagerduty_resolve(brief()) == resolve


def test_postmortem_ready_goes_org_wide_on_confluence():
    (message,) = messages_for("postmortem_ready", brief())
    assert message.channel == "confluence"
    assert message.audience == ("Org-wide",)
    assert message.text == "Incident 2026-03-09-xnys-lag retrospective published"
    assert message.details["postmortem_path"].endswith("postmortem.md")


def test_messages_round_trip_through_their_record_and_a_drill_says_so():
    for message in [m for stage in Stage for m in messages_for(stage, brief())]:
        record = message.to_record()
        assert Message.from_record(record).to_record() == record
        drill = Message.from_record(message.as_drill().to_record())
        assert drill.drill and drill.text == "[DRILL] " + message.text and drill.details["drill"] is True
        assert drill.as_drill() == drill


def test_non_pagerduty_dedup_keys_are_unique_per_stage_and_channel():
    keys = [m.dedup_key for stage in Stage for m in messages_for(stage, brief()) if m.channel != "pagerduty"]
    assert len(keys) == len(set(keys)) == 7


def test_a_stage_missing_its_data_names_the_incident_stage_and_field():
    with pytest.raises(CommunicationError, match=r"2026-03-09-xnys-lag.*recovery_start.*range_start"):
        messages_for(Stage.RECOVERY_START, brief(range_start=None))
    with pytest.raises(CommunicationError, match=r"detection needs markets"):
        messages_for(Stage.DETECTION, brief(markets=()))


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"incident_id": ""}, "incident_id is empty"),
        ({"incident_id": "x" * 256}, "PagerDuty dedup keys allow 255"),
        ({"markets": "XNYS"}, "sequence of market ids"),
        ({"severity": "sev1"}, "not one of critical, error, warning, info"),
        ({"eta": dt.datetime(2026, 3, 9, 15, 30)}, "eta 2026-03-09T15:30:00 is naive"),
    ],
)
def test_invalid_briefs_are_rejected_with_the_reason(overrides, fragment):
    with pytest.raises(CommunicationError, match=fragment):
        brief(**overrides)
