"""Every Python block of README.md and docs/*.md runs as written (with long training cut short), and
the README's Quickstart is the two make targets CI runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


DOCS = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))] if python_blocks(p)]


def shortened(code: str) -> str:
    """The block with every iteration count cut to a few steps (the text is run, not the training)."""
    return re.sub(r"\b(n_iters|first_phase_iters|first_iters)=[\d_]+", r"\1=6", code)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_python_block_runs(path, tmp_path, monkeypatch):
    """The blocks of one file run in order in one namespace, as a reader would paste them."""
    blocks = python_blocks(path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, code in enumerate(blocks):
        exec(compile(shortened(code), f"{path.name} block {i + 1}", "exec"), namespace)
    if path.name == "README.md":
        assert (tmp_path / "egnot.pt").is_file()  # its example saves a model


def test_readme_and_the_method_docs_have_python_examples():
    assert {p.name for p in DOCS} >= {"README.md", "architecture.md", "egnot.md", "uotm.md", "wae.md"}


def test_readme_quickstart_is_two_make_targets_and_ci_runs_the_test_one():
    text = (ROOT / "README.md").read_text()
    quick = text.split("## Quickstart")[1].split("```bash")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in quick.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert ci.strip().splitlines()[-1] == "make test"
