"""Headless Chromium driven over the DevTools protocol: load a page of the running dashboard,
wait until its text appears (Streamlit renders with JavaScript), read the text and take a
screenshot. Used by the end-to-end test and to make the README screenshots:

    python -m dashboards._browser http://localhost:8501/ "Verdict" out.png
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _DevTools:
    def __init__(self, ws_url: str):
        from websockets.sync.client import connect

        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(ws_url, max_size=None, open_timeout=30))
        self.ids = itertools.count(1)

    def call(self, method: str, timeout: float = 60.0, **params):
        n = next(self.ids)
        self.ws.send(json.dumps({"id": n, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == n:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})

    def text(self) -> str:
        result = self.call("Runtime.evaluate", expression="document.body ? document.body.innerText : ''",
                           returnByValue=True)
        return str(result.get("result", {}).get("value", ""))

    def close(self) -> None:
        self._stack.close()


def capture(url: str, wait_for: str, *, png: str | None = None, timeout: float = 120.0,
            width: int = 1400, height: int = 2000, chromium: str | None = None,
            settle: float = 1.5) -> str:
    """Open `url`, wait until the page text contains `wait_for` and stops changing (and no
    "Running" indicator is left), optionally save a PNG screenshot; returns the page text.
    Raises TimeoutError with the last text seen when `wait_for` never appears."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found (install the chromium package)")
    port = _free_port()
    profile = tempfile.mkdtemp(prefix="audit-chromium-")
    proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}",
                             f"--window-size={width},{height}", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    tools = None
    try:
        deadline = time.monotonic() + timeout
        target = None
        while target is None:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise TimeoutError("Chromium's DevTools endpoint did not come up")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                    target = next((t for t in json.load(r) if t.get("type") == "page"), None)
            except OSError:
                time.sleep(0.2)
        tools = _DevTools(target["webSocketDebuggerUrl"])
        tools.call("Page.enable")
        tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        tools.call("Page.navigate", url=url)
        text, stable_since = "", None
        while True:
            now = tools.text()
            busy = "Running..." in now or "Please wait" in now
            if wait_for in now and not busy:
                if now == text and stable_since is not None and time.monotonic() - stable_since >= settle:
                    break
                if now != text:
                    stable_since = time.monotonic()
            text = now
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wait_for!r} did not appear at {url} within {timeout:.0f} s; "
                                   f"page text: {text[:300]!r}")
            time.sleep(0.3)
        if png:
            time.sleep(0.5)  # let images finish painting
            shot = tools.call("Page.captureScreenshot", format="png")
            os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
            with open(png, "wb") as f:
                f.write(base64.b64decode(shot["data"]))
        return text
    finally:
        if tools is not None:
            tools.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m dashboards._browser URL TEXT [OUT.png]")
    print(capture(sys.argv[1], sys.argv[2], png=sys.argv[3] if len(sys.argv) == 4 else None)[:2000])
