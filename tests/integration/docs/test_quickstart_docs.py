"""The quick starts in docs/ run as written.

Every ``docs/quickstart*.md`` is read top to bottom: the ``bash server`` block of ``quickstart.md`` is the
server command (run with free ports and a temp data dir added); a block whose info string names a file
(``python file=producer.py``) is written into the page's work dir; every ``bash tested`` block runs there
with ``bash -e``, and must exit 0. The default addresses the pages use are replaced by the real ones. Blocks
without a marker (install commands, fragments) are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("quickstart*.md"))
#: What the pages say → the component whose real address replaces it.
DEFAULTS = {
    "127.0.0.1:9876": "namesrv",
    "127.0.0.1:10911": "broker",
    "127.0.0.1:8081": "proxy",
    "127.0.0.1:5557": "metrics",
}
FREE_PORTS = ["--namesrv-port", "0", "--broker-port", "0", "--proxy-port", "0", "--metrics-port", "0"]
_FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Block:
    info: tuple[str, ...]
    text: str
    line: int

    @property
    def file(self) -> str | None:
        return next((w.removeprefix("file=") for w in self.info if w.startswith("file=")), None)

    @property
    def tested(self) -> bool:
        return bool(self.info) and self.info[0] in ("bash", "sh") and "tested" in self.info


def blocks(page: Path) -> list[Block]:
    text = page.read_text()
    return [
        Block(tuple(m.group(1).split()), m.group(2), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
    ]


def _env() -> dict[str, str]:
    node_modules = [ROOT / "tests" / "compat" / d / "node_modules" for d in ("node", "node5")]
    return {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(ROOT),
        "NODE_PATH": os.pathsep.join(str(p) for p in node_modules),
        # The pages run pytest as an installed orbitmq's user would: the plugin comes from the package's
        # pytest11 entry point; this names the same module, for a checkout whose install predates it.
        "PYTEST_PLUGINS": "orbitmq.testing.pytest_plugin",
    }


@pytest.fixture(scope="module")
def addresses(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    [server] = [b for b in blocks(DOCS / "quickstart.md") if b.info[:2] == ("bash", "server")]
    data = tmp_path_factory.mktemp("quickstart-data")
    cmd = [*shlex.split(server.text.strip()), "--data-dir", str(data), *FREE_PORTS]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    assert proc.stdout is not None
    ready: dict[str, str] = {}
    try:
        for line in proc.stdout:
            words = line.split()
            if words[2:4] == ["ready", "on"]:
                ready[words[1]] = words[4]
            if words[:2] == ["orbitmq", "standalone"]:
                break
        assert "standalone" in ready, f"{cmd} did not get ready: {proc.stderr.read() if proc.stderr else ''}"
        yield {default: ready[component] for default, component in DEFAULTS.items()}
    finally:
        proc.terminate()
        proc.wait(30)


def _substitute(text: str, addresses: dict[str, str]) -> str:
    for default, real in addresses.items():
        text = text.replace(default, real)
    return text


def test_every_page_has_commands_that_run() -> None:
    assert [p.name for p in PAGES] == [
        "quickstart-embedded.md", "quickstart-node5.md", "quickstart-python5.md", "quickstart-remoting.md",
        "quickstart-sdk.md", "quickstart.md",
    ]  # fmt: skip
    for page in PAGES:
        assert any(b.tested for b in blocks(page)), f"{page.name} has no tested command block"


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_quick_start_runs_as_written(page: Path, addresses: dict[str, str], tmp_path: Path) -> None:
    for block in blocks(page):
        if block.file is not None:
            (tmp_path / block.file).write_text(_substitute(block.text, addresses))
        elif block.tested:
            script = _substitute(block.text, addresses)
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=tmp_path, env=_env(),
                                  capture_output=True, text=True, timeout=180)  # fmt: skip
            assert done.returncode == 0, (
                f"{page.name}:{block.line}: exit {done.returncode}\n$ {script}\n"
                f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
            )
