"""The README's imbalanced-learn pipeline with M2mOverSampler runs as written (issue 18)."""

import re
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def sampler_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [m.group(2) for m in FENCE.finditer(text) if m.group(1) == "python" and "M2mOverSampler" in m.group(2)]


def test_readme_pipeline_snippet_runs(capsys):
    blocks = sampler_blocks()
    assert len(blocks) == 1 and "make_pipeline(" in blocks[0]
    scope: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), scope)
    m2m = scope["m2m"]
    counts = Counter(scope["y"].tolist())
    assert m2m.n_attempts_ == max(counts.values()) - min(counts.values())     # the minority filled up
    assert m2m.n_accepted_ + m2m.n_duplicates_ == m2m.n_attempts_
    assert scope["model"].predict(scope["X"]).shape == scope["y"].shape
    assert f"{m2m.n_accepted_} of {m2m.n_attempts_} new rows are translations" in capsys.readouterr().out
