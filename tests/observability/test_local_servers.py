"""The local Prometheus and Alertmanager commands: a SIGTERM stops the server they started, too, however
early it comes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from seizewatch.scratch import free_port
from tests.conftest import ROOT, eventually

pytestmark = pytest.mark.integration

TOKEN = "local-servers-test-" + "0123456789abcdef" * 2  # a test token


async def serving(port: int) -> bool:
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            return (await client.get(f"http://127.0.0.1:{port}/-/ready")).status_code == 200
    except httpx.TransportError:
        return False


async def refused(port: int) -> bool:
    return not await serving(port)


@pytest.mark.parametrize("module", ["seizewatch.prometheus", "seizewatch.alertmanager"])
async def test_sigterm_stops_the_server_too(module: str, tmp_path: Path) -> None:
    port = free_port()
    argv = ["-m", module, "run", "--port", str(port), "--workdir", str(tmp_path)]
    env = {"SEIZEWATCH_PAGER_API_TOKEN": TOKEN, "PATH": "/usr/local/bin:/usr/bin:/bin"}
    command = await asyncio.create_subprocess_exec(
        sys.executable, *argv, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output = ""
    try:
        # As soon as the server answers: the command may still be in its own readiness wait, or already
        # waiting for the server to exit. Either way it must stop it.
        await eventually(lambda: serving(port), bool, within=60)
        command.send_signal(signal.SIGTERM)
        out, _ = await asyncio.wait_for(command.communicate(), 30)
        output = out.decode(errors="replace")
        assert command.returncode == 0, output
        # The server ran in a session of its own: nothing but the command could stop it.
        await eventually(lambda: refused(port), bool, within=15)
    finally:
        if command.returncode is None:
            command.kill()
            output = (await command.communicate())[0].decode(errors="replace")
        # Should the server outlive its command (the bug), it must not outlive the test.
        for pid in re.findall(r"starting on \S+ \(pid (\d+),", output):
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
