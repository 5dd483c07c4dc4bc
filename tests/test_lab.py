"""`make lab` without a person: start JupyterLab headless and ask its REST API for the course."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "rlcourse-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status, resp.read()


@pytest.fixture
def lab(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"), "JUPYTER_DATA_DIR": str(tmp_path / "d")}
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}",
           "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
           f"--ServerApp.root_dir={ROOT}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI machines often run as root
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/api/status")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("JupyterLab did not start:\n" + proc.stderr.read().decode())
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_jupyterlab_serves_the_course(lab):
    status, body = _get(f"{lab}/api/contents/notebooks")
    assert status == 200
    served = {item["name"] for item in json.loads(body)["content"]}
    expected = {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}
    assert "index.ipynb" in expected and expected <= served
    status, body = _get(f"{lab}/api/contents/notebooks/index.ipynb")
    nb = json.loads(body)
    assert status == 200 and nb["type"] == "notebook" and nb["content"]["cells"]
    status, page = _get(f"{lab}/lab")
    assert status == 200 and b"JupyterLab" in page
    status, body = _get(f"{lab}/api/kernelspecs")
    assert "python3" in json.loads(body)["kernelspecs"]
