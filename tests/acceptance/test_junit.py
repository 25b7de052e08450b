"""The JUnit writer against the junit-10 shaped schema: counts, outcomes, properties, odd text."""

from __future__ import annotations

import xmlschema

from ops.acceptance.checks import AcceptanceReport
from ops.acceptance.junit import junit_xml


def sample_report() -> AcceptanceReport:
    report = AcceptanceReport("fps", "http://127.0.0.1:8000", profile="rtx4090-lite",
                              measurements={"single": {"aggregate_fps": 97.5, "warmup": {"frames": 48}}})
    report.add("live", True, "GET /healthz → 200", seconds=0.01)
    report.add("single.fps_per_stream", False, "80 fps", measured={"value": 80.0, "per_stream": [80.0]},
               threshold="fps_per_stream >= 96", source="FlashHead README", remedy="check the GPU")
    report.add("stream.ready", False, "server said \x00\x07 <oops> & \"quotes\"", error=True)
    report.add("stream.summary", None, "not run: an earlier check failed")
    return report


def test_outcomes_and_counts_validate(junit_schema: xmlschema.XMLSchema) -> None:
    xml = junit_xml([sample_report()]).decode()
    junit_schema.validate(xml)
    suite = junit_schema.to_dict(xml)["testsuite"][0]
    assert (suite["@tests"], suite["@failures"], suite["@errors"], suite["@skipped"]) == ("4", "1", "1", "1")
    cases = {case["@name"]: case for case in suite["testcase"]}
    failure = cases["single.fps_per_stream"]["failure"][0]
    assert failure["@message"] == "80 fps (threshold: fps_per_stream >= 96)"
    assert "source: FlashHead README" in failure["$"] and "what to do: check the GPU" in failure["$"]
    assert "error" in cases["stream.ready"] and "skipped" in cases["stream.summary"]
    assert "system-out" in cases["live"]


def test_measured_values_are_suite_properties_named_by_check(junit_schema: xmlschema.XMLSchema) -> None:
    suite = junit_schema.to_dict(junit_xml([sample_report()]).decode())["testsuite"][0]
    properties = {p["@name"]: p["@value"] for p in suite["properties"][0]["property"]}
    assert properties["single.fps_per_stream.value"] == "80.0"
    assert properties["single.fps_per_stream.threshold"] == "fps_per_stream >= 96"
    assert properties["measurements.single.aggregate_fps"] == "97.5"
    assert properties["profile"] == "rtx4090-lite"


def test_the_schema_rejects_properties_inside_a_testcase(junit_schema: xmlschema.XMLSchema) -> None:
    xml = junit_xml([sample_report()]).decode()
    inside = xml.replace('<testcase name="live" classname="flashhead.accept.fps" time="0.010">',
                         '<testcase name="live" classname="flashhead.accept.fps" time="0.010">'
                         '<properties><property name="a" value="1"/></properties>', 1)
    assert inside != xml
    assert not junit_schema.is_valid(inside)


def test_several_reports_make_one_document(junit_schema: xmlschema.XMLSchema) -> None:
    smoke = AcceptanceReport("smoke", "http://127.0.0.1:8000")
    smoke.add("live", True)
    xml = junit_xml([smoke, sample_report()]).decode()
    junit_schema.validate(xml)
    root = junit_schema.to_dict(xml)
    assert root["@tests"] == "5" and [s["@name"] for s in root["testsuite"]] == [
        "flashhead.accept.smoke", "flashhead.accept.fps"]
