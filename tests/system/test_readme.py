"""Every README code block that touches a pool runs as written, on a real (tiny) digits pool laid
out where the README says: python blocks are executed, and the `m2m-pipeline pool`/`pools` lines of
shell blocks go through the CLI's entry point."""

import re
import shlex
import sys

import pytest

from m2m_pipeline import cli
from m2m_pipeline.plan import make_plan
from m2m_pipeline.pools import generate_pool
from m2m_pipeline.store import write_prepared
from m2m_pipeline.training import load_checkpoint, model_from_checkpoint

from tests.conftest import ROOT

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def readme_blocks():
    """(language, code) of every fenced block of README.md that names a pool folder."""
    text = (ROOT / "README.md").read_text()
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text) if "pools/" in m.group(2)]


def pool_commands(code: str) -> list[list[str]]:
    """The `m2m-pipeline pools ...` lines of a shell block, comments cut."""
    out = []
    for line in code.splitlines():
        words = shlex.split(line, comments=True)
        if len(words) > 1 and words[0] == "m2m-pipeline" and words[1] == "pools":
            out.append(words[1:])
    return out


@pytest.fixture(scope="module")
def readme_tree(tmp_path_factory, trained, digits, tiny_m2m):
    """pools/digits/M2m-seed0/epoch_{39,40} and data/prepared/digits under one folder, as in the README."""
    root = tmp_path_factory.mktemp("readme")
    write_prepared(root / "data" / "prepared" / "digits", digits)
    g = model_from_checkpoint(load_checkpoint(trained / "g" / "last.pt", data=digits))
    f = model_from_checkpoint(load_checkpoint(trained / "warm" / "last.pt", data=digits))
    for e in (39, 40):
        plan = make_plan(digits.train.y, digits.class_counts, seed=0, epoch=e, order="balanced", attempts=True,
                         augment=digits.augment, batch_size=64)
        generate_pool(g=g, f=f, data=digits, plan=plan, cfg=tiny_m2m, seed=0,
                      out=root / "pools" / "digits" / "M2m-seed0" / f"epoch_{e}")
    return root


def test_readme_has_pool_blocks():
    langs = [lang for lang, _ in readme_blocks()]
    assert langs.count("python") >= 2 and sum(len(pool_commands(c)) for lang, c in readme_blocks() if not lang) >= 4


def test_readme_python_blocks_run(readme_tree, monkeypatch, capsys):
    monkeypatch.chdir(readme_tree)
    for lang, code in readme_blocks():
        if lang == "python":
            scope: dict = {}
            exec(compile(code, "README.md", "exec"), scope)
            if "accepted" in scope:  # the first block: the selection holds exactly the accepted rows
                assert bool(scope["accepted"].accepted.all()) and scope["accepted"].sizes["sample"] == int(
                    scope["ds"].accepted.sum())
            if "x_star" in scope:
                assert scope["x_star"].shape[0] == int(scope["rows"]["accepted"].sum())
    assert "class" in capsys.readouterr().out


def test_readme_pool_commands_run(readme_tree, monkeypatch, capsys):
    monkeypatch.chdir(readme_tree)
    ran = []
    for lang, code in readme_blocks():
        if lang:
            continue
        for args in pool_commands(code):
            monkeypatch.setattr(sys, "argv", ["m2m-pipeline", *args])
            try:
                cli.main()
            except SystemExit as exc:
                assert not exc.code, (args, capsys.readouterr().err)
            ran.append(args[:2])
            for i, a in enumerate(args):  # every --out the README names is written
                if a == "--out":
                    assert (readme_tree / args[i + 1]).exists(), args
    assert ["pools", "report"] in ran and ["pools", "ls"] in ran
