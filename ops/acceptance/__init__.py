"""Acceptance of a running inference server: smoke and FPS runs, media checks, reports.

Actions here take a server URL and options and return an `AcceptanceReport` (plain data);
`ops/cli/accept.py` renders it and writes JUnit XML / JSON. The wire protocol lives in
`inference/client.py` and is only used, never re-implemented, here.
"""
