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


class Browser:
    """One headless Chromium with one page, driven over DevTools: `open(url, wait_for)`, `text()`,
    `key(...)` on a focused element, `js(...)`, `screenshot(png)`. A context manager."""

    def __init__(self, *, width: int = 1400, height: int = 2000, chromium: str | None = None,
                 timeout: float = 120.0):
        chromium = chromium or find_chromium()
        if chromium is None:
            raise FileNotFoundError("no Chromium found (install the chromium package)")
        port = _free_port()
        self.profile = tempfile.mkdtemp(prefix="audit-chromium-")
        self.proc = subprocess.Popen([chromium, *FLAGS, f"--user-data-dir={self.profile}",
                                      f"--remote-debugging-port={port}", f"--window-size={width},{height}",
                                      "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.tools = None
        try:
            deadline = time.monotonic() + timeout
            target = None
            while target is None:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise TimeoutError("Chromium's DevTools endpoint did not come up")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as r:
                        target = next((t for t in json.load(r) if t.get("type") == "page"), None)
                except OSError:
                    time.sleep(0.2)
            self.tools = _DevTools(target["webSocketDebuggerUrl"])
            self.tools.call("Page.enable")
            self.tools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                            mobile=False)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.tools is not None:
            self.tools.close()
            self.tools = None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)

    def text(self) -> str:
        return self.tools.text()

    def js(self, expression: str):
        result = self.tools.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def busy(self) -> bool:
        """Is Streamlit still running the page script (its status widget shows, or elements of the
        previous run wait to be replaced: data-stale)?"""
        return bool(self.js("!!document.querySelector('[data-testid=\"stStatusWidget\"], [data-stale=\"true\"]')")) \
            or "Please wait" in self.text()

    def settle(self, wait_for: str, *, timeout: float = 120.0, settle: float = 1.5, poll: float = 0.3,
               changed_from: str | None = None) -> str:
        """Wait until the page text contains `wait_for` (and differs from `changed_from` when given),
        no script runs, and the text stays the same for `settle` seconds; returns the text."""
        deadline = time.monotonic() + timeout
        text, stable_since = "", None
        while True:
            now = self.text()
            ready = wait_for in now and (changed_from is None or now != changed_from) and not self.busy()
            if ready:
                if now == text and stable_since is not None and time.monotonic() - stable_since >= settle:
                    return now
                if now != text:
                    stable_since = time.monotonic()
            text = now
            if time.monotonic() > deadline:
                raise TimeoutError(f"{wait_for!r} did not appear within {timeout:.0f} s; page text: {text[:300]!r}")
            time.sleep(poll)

    def open(self, url: str, wait_for: str, **kw) -> str:
        self.tools.call("Page.navigate", url=url)
        return self.settle(wait_for, **kw)

    def key(self, key: str, code: str | None = None, key_code: int | None = None) -> None:
        """Press and release one key on the focused element (e.g. "ArrowRight", "Enter")."""
        codes = {"ArrowRight": 39, "ArrowLeft": 37, "ArrowUp": 38, "ArrowDown": 40, "Enter": 13}
        kc = key_code or codes.get(key, 0)
        for kind in ("keyDown", "keyUp"):
            self.tools.call("Input.dispatchKeyEvent", type=kind, key=key, code=code or key,
                            windowsVirtualKeyCode=kc, nativeVirtualKeyCode=kc)

    def type(self, text: str) -> None:
        self.tools.call("Input.insertText", text=text)

    def screenshot(self, png: str) -> None:
        time.sleep(0.5)  # let images finish painting
        shot = self.tools.call("Page.captureScreenshot", format="png")
        os.makedirs(os.path.dirname(os.path.abspath(png)), exist_ok=True)
        with open(png, "wb") as f:
            f.write(base64.b64decode(shot["data"]))


def capture(url: str, wait_for: str, *, png: str | None = None, timeout: float = 120.0,
            width: int = 1400, height: int = 2000, chromium: str | None = None,
            settle: float = 1.5) -> str:
    """Open `url`, wait until the page text contains `wait_for` and stops changing (and no
    "Running" indicator is left), optionally save a PNG screenshot; returns the page text.
    Raises TimeoutError with the last text seen when `wait_for` never appears."""
    with Browser(width=width, height=height, chromium=chromium, timeout=timeout) as browser:
        text = browser.open(url, wait_for, timeout=timeout, settle=settle)
        if png:
            browser.screenshot(png)
        return text


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python -m dashboards._browser URL TEXT [OUT.png]")
    print(capture(sys.argv[1], sys.argv[2], png=sys.argv[3] if len(sys.argv) == 4 else None)[:2000])
