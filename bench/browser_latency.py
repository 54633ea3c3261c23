#!/usr/bin/env python3
"""Send-to-receive latency in a real browser: the ACS JS SDK in headless Chromium.

A server is started (SQLite, a fresh data folder), Alice's page (the browser
build of ``@azure/communication-chat`` 1.6.0, on an origin of its own) starts
real-time notifications, and Bob sends messages over HTTPS one at a time; the
latency of each is from just before Bob's request to the moment the page's
``chatMessageReceived`` listener runs (both clocks are this machine's).

With ``--page composite`` the page is ``samples/web`` (the UI Library's
``ChatComposite``) and the time is until the message's bubble is in the DOM
(a ``MutationObserver`` notes it): send to render.

Usage::

    python bench/browser_latency.py                      # 100 messages, SDK event
    python bench/browser_latency.py --page composite     # 100 messages, rendered by ChatComposite
    python bench/browser_latency.py --messages 300 --json

Needs Chromium at /usr/bin/chromium, Node.js/npm, and Playwright for Python.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.chromium import CHROMIUM, FLAGS, BrowserPage, build_bundle, page_origin  # noqa: E402
from tests.conftest import launch  # noqa: E402
from tests.support import new_user  # noqa: E402

#: Notes when each message bubble appears in the page (ChatComposite renders text in ``[role="text"]``).
_OBSERVER = """() => {
  window.rendered = {};
  const note = () => {
    for (const el of document.querySelectorAll('[role="text"]')) {
      const text = el.textContent;
      if (!(text in window.rendered)) window.rendered[text] = performance.timeOrigin + performance.now();
    }
  };
  new MutationObserver(note).observe(document.body, { childList: true, subtree: true, characterData: true });
  note();
}"""


def _composite_build() -> Path:
    sample = ROOT / "samples" / "web"
    if not (sample / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=sample, check=True)
    subprocess.run(["npm", "run", "build"], cwd=sample, check=True, capture_output=True)
    return sample / "public"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--page", choices=["sdk", "composite"], default="sdk",
                        help="sdk: time to chatMessageReceived; composite: time to the rendered bubble")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as folder:
        server = launch(Path(folder) / "data", env={"THREADLINE_THROTTLE": "off"})
        try:
            alice, bob = new_user(server), new_user(server)
            folder = _composite_build() if args.page == "composite" else build_bundle()
            with page_origin(folder) as origin, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
                context = browser.new_context(ignore_https_errors=True)
                context.route("**/*", lambda route: route.continue_() if "127.0.0.1" in route.request.url
                              else route.abort())
                page = BrowserPage(context.new_page())
                http = requests.Session()
                http.trust_env = False  # an inherited REQUESTS_CA_BUNDLE would override the server's CA
                http.verify = server.cert_path
                headers = {"Authorization": f"Bearer {bob.token}"}
                base = f"{server.https_endpoint}/chat/threads"
                thread = http.post(f"{base}?api-version=2024-03-07", headers=headers, json={
                    "topic": "latency", "participants": [
                        {"communicationIdentifier": {"communicationUser": {"id": alice.id}},
                         "displayName": "Alice"}]}).json()
                thread_id = thread["chatThread"]["id"]
                if args.page == "composite":
                    fragment = urlencode({"endpoint": server.https_endpoint + "/", "user": alice.id,
                                          "token": alice.token, "name": "Alice", "thread": thread_id})
                    page.page.goto(f"{origin}/#{fragment}")
                    page.page.locator("textarea").wait_for(timeout=60000)
                    page.page.evaluate(_OBSERVER)
                    arrivals = "window.rendered"
                else:
                    page.page.goto(f"{origin}/index.html")
                    page.start(server.https_endpoint + "/", alice.token)
                    page.wait("window.threadline.connected >= 1")
                    arrivals = "window.threadline.arrivals"
                url = f"{base}/{thread_id}/messages?api-version=2024-03-07"
                latencies: list[float] = []
                for index in range(args.messages):
                    text = f"latency message {index}"
                    sent = time.time() * 1000
                    assert http.post(url, headers=headers, json={"content": text}).status_code == 201
                    arrived = page.wait(f"{arrivals}[{json.dumps(text)}]", timeout=30)
                    latencies.append(float(arrived) - sent)
                browser.close()
        finally:
            server.stop(signal.SIGTERM)
    result = {"messages": len(latencies), "p50_ms": round(statistics.median(latencies), 2),
              "p99_ms": round(_percentile(latencies, 0.99), 2), "max_ms": round(max(latencies), 2)}
    print(json.dumps(result) if args.json else
          f"{result['messages']} messages: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
          f"max {result['max_ms']} ms (send request start -> "
          f"{'bubble rendered by ChatComposite' if args.page == 'composite' else 'chatMessageReceived'} in Chromium)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
