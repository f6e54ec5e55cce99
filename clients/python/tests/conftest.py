"""Starts the real `skye` binary (`SKYE_BIN`, else the workspace's target/debug or
target/release build) as `skye standalone` on free ports with a fresh data directory."""

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _binary() -> str:
    if os.environ.get("SKYE_BIN"):
        return os.environ["SKYE_BIN"]
    for profile in ("debug", "release"):
        path = ROOT / "target" / profile / "skye"
        if path.exists():
            return str(path)
    pytest.fail("no skye binary: build it (cargo build -p skye) or set SKYE_BIN")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Skye:
    def __init__(self, tmp: Path, *args: str):
        self.ports = {c: _free_port() for c in ("admin", "serving", "consumers")}
        self.log = open(tmp / "skye.log", "w")
        self.process = subprocess.Popen(
            [_binary(), "--data-dir", str(tmp / "data"), "standalone",
             "--admin-port", str(self.ports["admin"]),
             "--serving-port", str(self.ports["serving"]),
             "--consumers-port", str(self.ports["consumers"]), *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        for component in self.ports:
            while True:
                try:
                    urllib.request.urlopen(self.http(component) + "/health", timeout=1).read()
                    break
                except OSError:
                    if self.process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"skye did not start: {(tmp / 'skye.log').read_text()}")
                    time.sleep(0.1)

    def http(self, component: str) -> str:
        return f"http://127.0.0.1:{self.ports[component]}"

    @property
    def grpc(self) -> str:
        return f"127.0.0.1:{self.ports['serving']}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def skye(tmp_path):
    s = Skye(tmp_path)
    yield s
    s.stop()


@pytest.fixture
def demo(tmp_path):
    s = Skye(tmp_path, "--demo")
    yield s
    s.stop()
