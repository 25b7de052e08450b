"""JUnit XML for CI systems (GitLab, Jenkins, GitHub test reporters): one testcase per check.

The document follows the Jenkins xUnit `junit-10.xsd` shape, which most CI parsers accept. That
schema has no `<properties>` inside a `<testcase>`, so measured values travel twice: as suite
properties named `<check>.<value>` (machine-readable), and in each testcase's `<system-out>`
(shown next to the test by CI UIs).
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ops.acceptance.checks import AcceptanceReport, CheckResult

CLASS_PREFIX = "flashhead.accept"
# Characters XML 1.0 cannot carry at all; server messages may contain them.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def junit_xml(reports: Iterable[AcceptanceReport]) -> bytes:
    """One `<testsuites>` document holding a `<testsuite>` per report."""
    reports = list(reports)
    root = ET.Element("testsuites", name="flashhead accept")
    totals = {"tests": 0, "failures": 0, "errors": 0}
    seconds = 0.0
    for report in reports:
        suite = _suite(report)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        seconds += report.seconds
    root.set("tests", str(totals["tests"]))
    root.set("failures", str(totals["failures"]))
    root.set("errors", str(totals["errors"]))
    root.set("time", _time(seconds))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_junit(reports: Iterable[AcceptanceReport], path: Path) -> Path:
    """Write the JUnit document atomically (temp file + rename), only over a regular file; returns the path."""
    from ops.output import write_output_file

    return write_output_file(path, junit_xml(reports), option="--junit")


def _suite(report: AcceptanceReport) -> ET.Element:
    checks = report.checks
    suite = ET.Element("testsuite", {
        "name": f"{CLASS_PREFIX}.{report.suite}",  # suite names are ours: no cleaning
        "tests": str(len(checks)),
        "failures": str(sum(1 for c in checks if c.ok is False and not c.error)),
        "errors": str(sum(1 for c in checks if c.error)),
        "skipped": str(sum(1 for c in checks if c.ok is None and not c.error)),
        "time": _time(report.seconds),
        "timestamp": report.started_at,
        "hostname": socket.gethostname(),
    })
    properties = ET.SubElement(suite, "properties")
    for name, value in _suite_properties(report):
        ET.SubElement(properties, "property", name=_clean(name), value=_text(value))
    for check in checks:
        suite.append(_testcase(report, check))
    return suite


def _suite_properties(report: AcceptanceReport) -> list[tuple[str, Any]]:
    props: list[tuple[str, Any]] = [("url", report.url), ("profile", report.profile or "")]
    props += [(f"server.{key}", value) for key, value in _flat(report.server)]
    props += [(f"measurements.{key}", value) for key, value in _flat(report.measurements)]
    for check in report.checks:
        props += [(f"{check.name}.{key}", value) for key, value in _flat(check.measured)]
        if check.threshold:
            props.append((f"{check.name}.threshold", check.threshold))
    return props


def _testcase(report: AcceptanceReport, check: CheckResult) -> ET.Element:
    case = ET.Element("testcase", name=_clean(check.name), classname=f"{CLASS_PREFIX}.{report.suite}",
                      time=_time(check.seconds))
    message = _clean(check.detail + (f" (threshold: {check.threshold})" if check.threshold else ""))
    if check.error:
        ET.SubElement(case, "error", message=message, type="error").text = _body(check)
    elif check.ok is False:
        ET.SubElement(case, "failure", message=message, type="threshold").text = _body(check)
    elif check.ok is None:
        ET.SubElement(case, "skipped", message=_clean(check.detail or "not run"))
    if check.ok and not check.error:
        ET.SubElement(case, "system-out").text = _body(check)
    return case


def _body(check: CheckResult) -> str:
    lines = [f"{check.name}: {check.status} — {check.detail}"]
    lines += [f"measured {key} = {_text(value)}" for key, value in _flat(check.measured)]
    if check.threshold:
        lines.append(f"threshold: {check.threshold}")
    if check.source:
        lines.append(f"source: {check.source}")
    if check.remedy and check.ok is False:
        lines.append(f"what to do: {check.remedy}")
    return _clean("\n".join(lines))


def _flat(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            items += _flat(value, f"{name}.")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for index, item in enumerate(value):
                items += _flat(item, f"{name}.{index}.")
        else:
            items.append((name, value))
    return items


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return _clean(str(value))


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _time(seconds: float) -> str:
    return f"{max(seconds, 0.0):.3f}"
