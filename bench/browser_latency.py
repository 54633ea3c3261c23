#!/usr/bin/env python3
"""Send-to-receive latency in a real browser: the ACS JS SDK in headless Chromium.

A server is started (SQLite, a fresh data folder), Alice's page (the browser
build of ``@azure/communication-chat`` 1.6.0, on an origin of its own) starts
real-time notifications, and Bob sends messages over HTTPS one at a time; the
latency of each is from just before Bob's request to the moment the page's
``chatMessageReceived`` listener runs (both clocks are this machine's).

Usage::

    python bench/browser_latency.py                 # 100 messages
    python bench/browser_latency.py --messages 300 --json

Needs Chromium at /usr/bin/chromium, Node.js/npm, and Playwright for Python.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import CHROMIUM, FLAGS, BrowserPage, build_bundle, page_origin  # noqa: E402
from tests.conftest import launch  # noqa: E402
from tests.support import new_user  # noqa: E402


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        server = launch(Path(folder) / "data", env={"THREADLINE_THROTTLE": "off"})
        try:
            alice, bob = new_user(server), new_user(server)
            with page_origin(build_bundle()) as origin, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                page = BrowserPage(browser.new_context(ignore_https_errors=True).new_page())
                page.page.goto(f"{origin}/index.html")
                page.start(server.https_endpoint + "/", alice.token)
                page.wait("window.threadline.connected >= 1")
                http = requests.Session()
                http.trust_env = False  # an inherited REQUESTS_CA_BUNDLE would override the server's CA
                http.verify = server.cert_path
                headers = {"Authorization": f"Bearer {bob.token}"}
                base = f"{server.https_endpoint}/chat/threads"
                thread = http.post(f"{base}?api-version=2024-03-07", headers=headers, json={
                    "topic": "latency", "participants": [
                        {"communicationIdentifier": {"communicationUser": {"id": alice.id}}}]}).json()
                url = f"{base}/{thread['chatThread']['id']}/messages?api-version=2024-03-07"
                latencies: list[float] = []
                for index in range(args.messages):
                    text = f"m{index}"
                    sent = time.time() * 1000
                    assert http.post(url, headers=headers, json={"content": text}).status_code == 201
                    arrived = page.wait(f"window.threadline.arrivals[{json.dumps(text)}]", timeout=30)
                    latencies.append(float(arrived) - sent)
                browser.close()
        finally:
            server.stop(signal.SIGTERM)
    result = {"messages": len(latencies), "p50_ms": round(statistics.median(latencies), 2),
              "p99_ms": round(_percentile(latencies, 0.99), 2), "max_ms": round(max(latencies), 2)}
    print(json.dumps(result) if args.json else
          f"{result['messages']} messages: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms (send request start -> chatMessageReceived in Chromium)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
