"""A real `policylab serve` in a subprocess, and a signed-in API client."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`policylab serve` in a subprocess on 127.0.0.1, for tests that need a real server."""

    def __init__(self, workspace: Path, *, workers: int = 1):
        self.workspace = workspace
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Server:
        env = {**os.environ, "POLICYLAB_SECRET_KEY": "test-secret-" + "x" * 32}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "policylab",
                "serve",
                "--workspace",
                str(self.workspace),
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        # Generous: each worker process imports the app afresh, slowly on a busy machine.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"the server stopped: {err}")
            try:
                httpx.get(self.url + "/login", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the server did not start within 90 s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def signed_in(base_url: str, name: str, password: str) -> httpx.Client:
    """A client signed in through the API, sending the CSRF token on every request."""
    client = httpx.Client(base_url=base_url, timeout=30)
    token = client.get("/api/csrf").json()["csrf_token"]
    client.headers["X-CSRF-Token"] = token
    r = client.post("/api/session", json={"name": name, "password": password})
    r.raise_for_status()
    return client
