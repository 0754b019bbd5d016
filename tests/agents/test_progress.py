"""Progress output (bar on a terminal, lines elsewhere, silent when off) and the agents' import graph."""

import ast
import io
from pathlib import Path

import pytest
from rich.console import Console

from gradgym.agents import AGENTS
from gradgym.agents.progress import Progress

AGENTS_DIR = Path(__file__).resolve().parents[2] / "gradgym" / "agents"


def _feed(bar: Progress) -> None:
    with bar:
        for i in range(1, 11):
            bar.update(i * 100, i * 0.5, 10.0 + i, force=i % 5 == 0)


def test_plain_lines_when_not_a_terminal():
    buf = io.StringIO()
    bar = Progress("ppo pend seed 0", 1000, True, every_s=3600, console=Console(file=buf, force_terminal=False))
    assert not bar.is_bar
    _feed(bar)
    lines = buf.getvalue().splitlines()
    # The first update, then the forced ones (evaluation points); the rest are rate-limited.
    assert len(lines) == 3, lines
    assert lines[-1] == "[ppo pend seed 0] 1,000/1,000 env steps (100%) | 200 steps/s | return 20.00 | 5.0 s | ETA 0:00:00"
    assert "ETA 0:00:04" in lines[0]  # 900 steps left at 200 steps/s: 4.5 s


@pytest.mark.parametrize("width", [80, 160])
def test_bar_on_a_terminal(width):
    buf = io.StringIO()
    label = "ppo inverted_pendulum seed 0"
    bar = Progress(label, 1000, True, console=Console(file=buf, force_terminal=True, width=width))
    assert bar.is_bar
    _feed(bar)
    last = buf.getvalue().split("\r")[-1]
    # The numbers stay whole on a narrow terminal (the label gives way); a bar is drawn.
    assert "━" in last and "1,000/1,000 · 200 steps/s · return 20.00 · ETA 0:00:00" in last
    assert (label in last) == (width == 160)
    bar.update(5, 1.0, 0.0)  # after close: nothing, no error
    assert buf.getvalue().split("\r")[-1] == last


def test_disabled_is_silent(capsys):
    _feed(Progress("x", 1000, False))
    assert capsys.readouterr() == ("", "")


def _imports(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
    return mods


def test_trainer_dispatches_through_the_registry_without_import_cycles():
    specs = {name: info.load() for name, info in AGENTS.items()}
    agent_modules = {(s.agent_class or s.train_fn).__module__ for s in specs.values()}
    trainer = _imports(AGENTS_DIR / "trainer.py")
    assert not trainer & agent_modules, "trainer.py must reach agents through AGENTS, not imports"
    for mod in agent_modules:
        path = AGENTS_DIR / f"{mod.rsplit('.', 1)[1]}.py"
        assert "gradgym.agents.trainer" not in _imports(path), f"{path.name} imports the trainer"
    for name, spec in specs.items():
        assert (spec.agent_class is None) != (spec.train_fn is None), name
        assert spec.train_fn is None or callable(spec.train_fn), name
