"""The README's first command, for real: ``scripts/run`` installs, migrates, seeds the demo and serves."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    # setup installs only what is missing; run it first so that the server's time bound below measures
    # migrate + seed + start, not a first pip install.
    setup = subprocess.run(
        [REPO / "scripts" / "setup"], cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert setup.returncode == 0, setup.stdout + setup.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "DJANGO_"))}
    for name in ("REDIS_URL", "SCELL_DRAMATIQ_BROKER", "SITE_URL", "MEDIA_ROOT"):
        env.pop(name, None)
    env |= {
        # Never the repository's db.sqlite3.
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PORT": str(free_port()),
        "DEBUG": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return env


def test_readme_run_serves_the_demo_tenant(run_env: dict[str, str], tmp_path: Path) -> None:
    port = run_env["PORT"]
    base = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [REPO / "scripts" / "run"],
        cwd=REPO,
        env=run_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: runserver and its autoreloader child
    )
    output: list[str] = []

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        sk_test = None
        while time.monotonic() < deadline:
            if process.poll() is not None:
                reader.join(timeout=5)
                pytest.fail(f"scripts/run exited with {process.returncode}:\n{''.join(output)}")
            match = re.search(r"sk_test\s+(sk_test_\S+)", "".join(output))
            if match:
                sk_test = match.group(1)
                try:
                    status, _ = get(f"{base}/login/")
                except OSError:
                    status = None
                if status == 200:
                    break
            time.sleep(0.3)
        else:
            pytest.fail(f"scripts/run did not serve within {TIMEOUT}s:\n{''.join(output)}")

        text = "".join(output)
        assert f"{base}/" in text
        assert "demo@scell.localhost" in text
        assert (tmp_path / "db.sqlite3").exists()

        status, body = get(f"{base}/api/v1/me", {"X-API-Key": sk_test})
        assert status == 200, body
        me = json.loads(body)
        assert me["tenant"]["identifier"] == "DEMO1"
        assert me["livemode"] is False
        assert me["auth_mode"] == "secret"

        pk_test = re.search(r"pk_test\s+(pk_test_\S+)", text).group(1)
        status, body = get(f"{base}/api/v1/me", {"X-Publishable-Key": pk_test, "Origin": base})
        assert status == 200, body

        status, body = get(f"{base}/login/")
        assert status == 200
        assert b"Sign in" in body
        status, body = get(f"{base}/api/v1/docs/")
        assert status == 200
        assert b"swagger" in body.lower()
        # The docs' assets are served by Scell itself (no CDN).
        asset = re.search(rb'src="(/static/[^"]+swagger-ui-bundle[^"]*)"', body)
        assert asset, body[:2000]
        assert get(base + asset.group(1).decode())[0] == 200
        status, body = get(f"{base}/api/v1/schema/")
        assert status == 200
        status, body = get(f"{base}/api/v1/me")
        assert status == 401
        assert json.loads(body)["error"]["code"] == "missing_api_key"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        reader.join(timeout=5)
