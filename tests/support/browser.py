"""Headless Chromium driven over the DevTools protocol (on a pipe, no port): a page laid out at an exact width,
as a phone or a desktop shows it, measured and photographed.

Chromium's own `--window-size` cannot go below 500 px wide, so a phone's 390 px is set with
`Emulation.setDeviceMetricsOverride`, as DevTools' device mode does.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


@dataclass(frozen=True)
class Shot:
    width: int  # the width the page was laid out at
    scroll_width: int  # the page's own width: wider than `width` means sideways scrolling
    height: int  # of the whole page
    png: bytes  # the whole page, `width` pixels wide


class Browser:
    """One Chromium; `shot(url, width)` lays a page out at `width` CSS pixels and photographs all of it."""

    def __init__(self, profile: Path, *, timeout: float = 60.0) -> None:
        binary = shutil.which("chromium")
        if binary is None:
            raise RuntimeError("chromium is not installed; scripts/setup installs it")
        profile.mkdir(parents=True, exist_ok=True)
        to_browser, self._write = os.pipe()
        self._read, from_browser = os.pipe()

        def onto_fds_3_and_4() -> None:  # Chromium reads commands on its fd 3 and answers on its fd 4
            commands, answers = os.dup(to_browser), os.dup(from_browser)  # above 4: no dup2 clobbers the other
            os.dup2(commands, 3)
            os.dup2(answers, 4)

        # close_fds=False: subprocess would close 3 and 4 after the preexec_fn; every other descriptor of this
        # process is non-inheritable (PEP 446), so nothing else reaches Chromium.
        self._process = subprocess.Popen(
            [binary, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=onto_fds_3_and_4,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._timeout = timeout
        self._buffer = b""
        self._next = 0

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._send("Browser.close")
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        for fd in (self._write, self._read):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._write, json.dumps(message).encode() + b"\0")
        return self._until(lambda m: m.get("id") == message["id"], method)

    def _until(self, wanted: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self._timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if wanted(message):
                    if "error" in message:
                        raise RuntimeError(f"chromium: {what}: {message['error']}")
                    return message.get("result", message.get("params", {}))
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._read], [], [], left)[0]:
                raise RuntimeError(f"chromium: no answer to {what} within {self._timeout} s")
            chunk = os.read(self._read, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium: closed its pipe while waiting for {what}")
            self._buffer += chunk

    def shot(self, url: str, width: int, *, mobile: bool) -> Shot:
        target = self._send("Target.createTarget", url="about:blank")["targetId"]
        session = self._send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        try:
            self._send(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=800,
                deviceScaleFactor=1,
                mobile=mobile,
            )
            self._send("Page.enable", session)
            self._send("Page.navigate", session, url=url)
            self._until(lambda m: m.get("method") == "Page.loadEventFired" and m.get("sessionId") == session, url)
            # DevTools' own evaluation: the page's Content-Security-Policy forbids scripts, not the inspector.
            measured = self._send(
                "Runtime.evaluate",
                session,
                expression="[document.documentElement.scrollWidth, document.documentElement.scrollHeight]",
                returnByValue=True,
            )["result"]["value"]
            scroll_width, height = int(measured[0]), int(measured[1])
            picture = self._send(
                "Page.captureScreenshot",
                session,
                format="png",
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
            )
            return Shot(width, scroll_width, height, base64.b64decode(picture["data"]))
        finally:
            self._send("Target.closeTarget", targetId=target)


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
