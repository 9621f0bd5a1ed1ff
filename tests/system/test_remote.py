"""Pools shared between two machines through a DVC remote on a real SSH server.

The second machine is a second clone in another folder, with an empty DVC cache, and the remote is
Debian's sshd on 127.0.0.1 (a free port, a throw-away config and ed25519 keys in a tmp folder,
stopped at the end). Clone A runs a small digits DAG (one seed, three epochs, a tiny model) and
pushes; clone B pulls, adds a reusing ablation and reproduces. The commands are those of
docs/operations.md, "Sharing pools", run word for word from the fenced blocks marked
``<!-- sharing-pools: NAME -->`` (the settings block's values are the test's own).

Translation calls are counted in every Python process the DAG starts: a ``sitecustomize`` on
``PYTHONPATH`` wraps ``m2m_pipeline.translate.translation_steps`` (the T gradient steps of every
translation, whatever calls it) to append a line per call to a log. Clone A's count is the positive
control (> 0); clone B's must stay 0.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

SSHD = Path("/usr/sbin/sshd")
DOC = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"^<!-- sharing-pools: (?P<name>[\w-]+) -->\n```(?:bash)?\n(?P<code>.*?)^```", re.S | re.M)
ABLATION = "M2m-Clean"
TIMEOUT = 900


def doc_blocks() -> dict[str, str]:
    """{name: code} of the marked blocks of the "Sharing pools" section."""
    return {m.group("name"): m.group("code") for m in BLOCK.finditer(DOC.read_text())}


# -- what the section promises, checked without a server -------------------------------------------

def test_every_dvc_output_is_cached_so_a_pull_restores_it():
    """Metrics, plots and reports are git-ignored, so an output outside the DVC cache (``cache:
    false``) or kept across runs (``persist``) cannot reach a second clone: every stage that made
    one would run again there."""
    for path in (ROOT / "dvc.yaml", ROOT / "stages" / "dvc.yaml.in"):
        text = path.read_text()
        assert not re.search(r"^\s*(cache:\s*false|persist:\s*true)", text, re.M), path
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind, []):
                opts = next(iter(out.values())) if isinstance(out, dict) else {}
                assert opts.get("cache", True) and not opts.get("persist", False), (name, kind, out)
    # folder deps (m2m_pipeline/training) must hash alike on a clone that never imported them
    ignored = (ROOT / ".dvcignore").read_text().split()
    assert "__pycache__/" in ignored and "*.pyc" in ignored


def test_sharing_section_names_backends_and_extras():
    text = DOC.read_text()
    section = text[text.index("## Sharing pools"):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    for word in ("SSH", "S3", "endpointurl", "shared file system", "pip install -e '.[ssh]'", "pip install -e '.[s3]'",
                 "dvc remote add", "dvc push --run-cache", "dvc pull --run-cache", "pools verify"):
        assert word in section, word
    blocks = doc_blocks()
    assert {"settings", "first", "second", "ablation"} <= set(blocks)
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.startswith("dvc-ssh") for r in extras["ssh"]) and any(r.startswith("dvc-s3") for r in extras["s3"])
    assert any(r.startswith("dvc-ssh") for r in extras["dev"])   # the test environment has the SSH back-end
    for name in ("first", "second"):
        assert re.findall(r"^pip install -e '\.\[(\w+)\]'$", blocks[name], re.M) == ["ssh"], name


# -- the server --------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, comment: str) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   timeout=60)


@contextlib.contextmanager
def sshd_on_loopback(folder: Path):
    """Debian's sshd on 127.0.0.1:<free port>, root login by a throw-away key only; yields
    (port, client key, known_hosts line). Stopped (SIGTERM, then SIGKILL) on exit."""
    folder.mkdir(mode=0o700)
    _keygen(folder / "host_key", "m2m-test-host")
    _keygen(folder / "client_key", "m2m-test-client")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    os.chmod(folder / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)   # sshd's privilege-separation folder
    for _ in range(3):   # a port taken between the probe and sshd's bind: try another
        port = _free_port()
        cfg = folder / "sshd_config"
        cfg.write_text("\n".join([
            f"ListenAddress 127.0.0.1:{port}",
            f"HostKey {folder / 'host_key'}",
            f"AuthorizedKeysFile {folder / 'authorized_keys'}",
            f"PidFile {folder / 'sshd.pid'}",
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",          # the keys live under /tmp, a world-writable parent
            "Subsystem sftp internal-sftp",
            "MaxStartups 64",          # DVC opens several sessions at once
            "MaxSessions 64",
            ""]))
        checked = subprocess.run([str(SSHD), "-t", "-f", str(cfg)], capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stderr
        log = open(folder / "sshd.log", "w")
        proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(cfg)], stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        up = False
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    up = True
                    break
            time.sleep(0.1)
        if up:
            break
        proc.kill()
        proc.wait()
        log.close()
        if "Address already in use" not in (folder / "sshd.log").read_text():
            pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()[-2000:]}")
    else:
        pytest.fail("sshd found no free port in three tries")
    host_key = (folder / "host_key.pub").read_text().split()
    try:
        yield port, folder / "client_key", f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# -- the clones --------------------------------------------------------------------------------

HOOK = '''"""tests/system/test_remote.py: count the translation calls of this process (see that file)."""
import importlib.machinery
import os
import sys

_LOG = os.environ.get("M2M_TEST_TRANSLATION_LOG")


class _CountTranslations:
    def find_spec(self, name, path=None, target=None):
        if name != "m2m_pipeline.translate" or not _LOG:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            steps = module.translation_steps

            def counted(*args, **kwargs):
                with open(_LOG, "a") as fh:
                    fh.write(f"{os.getpid()} {len(args[2]) if len(args) > 2 else -1}\\n")
                return steps(*args, **kwargs)

            module.translation_steps = counted

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _CountTranslations())
'''


PIP = r'''"""tests/system/test_remote.py's stand-in for the section's `pip install -e '.[EXTRA]'`: this
environment is installed already, so it installs nothing and checks that every requirement of the
extra, read from the clone's pyproject.toml, is installed here."""
import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version

args = sys.argv[1:]
match = re.fullmatch(r"\.\[(\w+)\]", args[2]) if args[:2] == ["install", "-e"] and len(args) == 3 else None
if match is None:
    sys.exit(f"stand-in pip: only `pip install -e '.[EXTRA]'` is expected here, got {args}")
with open("pyproject.toml", "rb") as fh:
    requirements = tomllib.load(fh)["project"]["optional-dependencies"][match.group(1)]
for req in requirements:
    name = re.split(r"[<>=!~ ;\[]", req)[0]
    try:
        print(f"stand-in pip: {name} {version(name)} is installed ({req})")
    except PackageNotFoundError:
        sys.exit(f"stand-in pip: {req} of extra {match.group(1)} is not installed")
'''


def _tiny_params(params: dict) -> dict:
    """params.yaml shrunk as tests/system/test_dvc.py does: one seed, 3 epochs (pools of epochs 1
    and 2), a width-8 model, 2 translation steps; M2m only, no ablation yet. A large step and a low
    gamma, so that such a g accepts some rows (about 25 of 290 an epoch) for the ablation to reuse."""
    params["presets"]["digits"].update(epochs=3, deferred_epoch=1, milestones=[2], warmup_epochs=1,
                                       model_args={"width": 8})
    params["presets"]["digits"]["m2m"].update(gamma=0.3)
    params["m2m"].update(steps=2, step_size=1.0)
    params["seeds"] = [0]
    params["train_f"]["methods"] = []
    params["train_m2m"]["methods"] = ["M2m"]
    params["evaluate"]["methods"] = ["M2m"]
    params["ablations"].update(reuse=[], translate=[])
    return params


def _project_repo(dest: Path) -> None:
    """A git repo of the project as it stands in the working tree (tracked and untracked files that
    git does not ignore; nothing of the real repo is committed), with the tiny params."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, timeout=120)
    if listed.returncode != 0:
        pytest.skip("the project is not a git checkout: the two-clone test clones it with git")
    for rel in filter(None, listed.stdout.decode().split("\0")):
        src = ROOT / rel
        if src.is_file():   # a file deleted in the working tree is left out
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    params = _tiny_params(yaml.safe_load((dest / "params.yaml").read_text()))
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _env(home: Path, hook: Path, clone: Path, log: Path, settings: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(settings)
    env.update({
        "HOME": str(home),   # the throw-away known_hosts; DVC's global config and site cache
        "PATH": os.pathsep.join([str(hook), str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": f"{hook}{os.pathsep}{clone}",   # the clone's own package, and the counter
        "M2M_TEST_TRANSLATION_LOG": str(log),
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "GIT_AUTHOR_NAME": "m2m test", "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "m2m test", "GIT_COMMITTER_EMAIL": "test@localhost",
        "DVC_NO_ANALYTICS": "1"})
    return env


def _sh(code: str, cwd: Path, env: dict[str, str], what: str) -> str:
    """Run shell lines as a user types them (bash, stop at the first failure); stdout + stderr."""
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT)
    assert done.returncode == 0, f"{what} failed ({done.returncode}):\n{code}\n{done.stdout[-4000:]}"
    return done.stdout


def _changed(clone: Path, env: dict[str, str]) -> dict:
    """`dvc status --json` (stdout only: warnings go to stderr)."""
    done = subprocess.run(["dvc", "status", "--json"], cwd=clone, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout or "{}")


def _file_hashes(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _pools_ls(clone: Path, env: dict[str, str]) -> list[dict]:
    out = _sh("m2m-pipeline pools ls pools --json", clone, env, "pools ls")
    return [{k: v for k, v in e.items() if k != "created"} for e in json.loads(out[out.index("["):])]


def _ran(output: str) -> list[str]:
    return re.findall(r"^Running stage '([^']+)'", output, re.M)


def _translations(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


@pytest.mark.slow
def test_second_clone_pulls_the_pools_and_runs_a_reusing_ablation_without_translating(tmp_path):
    if not SSHD.is_file():
        pytest.skip(f"{SSHD} is missing: install Debian's openssh-server (.ci/run does) for the SSH remote test")
    if os.geteuid() != 0:
        pytest.skip("sshd's privilege separation needs root (the test logs in as root with a throw-away key)")
    if shutil.which("ssh-keygen") is None or shutil.which("git") is None:
        pytest.skip("ssh-keygen and git are needed to make the keys and the clones")
    if shutil.which("dvc", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("dvc is not installed beside this Python")
    pytest.importorskip("dvc_ssh", reason="dvc-ssh is not installed: pip install -e '.[ssh]' (the dev extra has it)")
    blocks = doc_blocks()
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(HOOK)
    (hook / "pip").write_text(f"#!{sys.executable}\n" + PIP)
    (hook / "pip").chmod(0o755)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True, mode=0o700)

    seed = tmp_path / "seed"
    _project_repo(seed)
    origin = tmp_path / "origin.git"    # the team's git server
    clone_a = tmp_path / "machine-a" / "m2m-pipeline"
    second = tmp_path / "machine-b"     # the second machine's working folder
    second.mkdir()
    boot = _env(home, hook, seed, tmp_path / "unused.log", {})
    _sh(f"git init -q -b main && git add -A && git commit -q -m 'the project as tested' && "
        f"git clone -q --bare . {origin} && git clone -q {origin} {clone_a}", seed, boot, "making the clones")

    with sshd_on_loopback(tmp_path / "sshd") as (port, key, known_host):
        (home / ".ssh" / "known_hosts").write_text(known_host + "\n")   # as after a first `ssh` to the host
        remote = tmp_path / "remote"
        settings = {"REMOTE": f"ssh://127.0.0.1:{port}{remote}", "SSH_USER": "root", "SSH_KEY": str(key),
                    "GIT_URL": str(origin)}
        assert set(settings) == set(re.findall(r"^(\w+)=", blocks["settings"], re.M))

        # -- machine A: the DAG, then the section's commands --
        log_a = tmp_path / "translations-a.log"
        env_a = _env(home, hook, clone_a, log_a, settings)
        repro = _sh("dvc repro", clone_a, env_a, "dvc repro in clone A")
        assert "train_m2m@M2m-0" in _ran(repro) and "pretrain_g@0" in _ran(repro)
        assert _translations(log_a) > 0   # the counter sees translation where there is some
        pushed = _sh(blocks["first"], clone_a, env_a, "the first machine's commands")
        assert "pushed" in pushed, pushed[-2000:]
        pools_a = _file_hashes(clone_a / "pools")
        assert any(re.match(r"digits/M2m-seed0/epoch_\d+/x_delta/c/", f) for f in pools_a)
        listed_a = _pools_ls(clone_a, env_a)
        assert len(listed_a) == 2 and all(e["g_hash"] and e["f_hash"] and e["accepted"] > 0 for e in listed_a)
        files = [p for p in remote.rglob("*") if p.is_file()]
        print(f"\npush of the tiny digits DAG: {len(files)} files, {sum(p.stat().st_size for p in files)} bytes "
              f"on the remote ({sum((clone_a / 'pools' / f).stat().st_size for f in pools_a)} bytes of pools)")

        # -- machine B: a fresh clone with an empty cache --
        log_b = tmp_path / "translations-b.log"
        clone_b = second / "m2m-pipeline-b"
        env_b = _env(home, hook, clone_b, log_b, settings)
        pulled = _sh(blocks["second"], second, env_b, "the second machine's commands")
        assert "Data and pipelines are up to date." in pulled, pulled[-3000:]
        assert _changed(clone_b, env_b) == {}
        assert _file_hashes(clone_b / "pools") == pools_a   # byte for byte, every file
        listed_b = _pools_ls(clone_b, env_b)
        assert listed_b == listed_a                        # the same pools, with A's g and f hashes
        assert all(e["g_hash"] in pulled for e in listed_a)   # the section's `pools ls` shows them
        assert len(re.findall(r"^ok\s.*\(epoch \d+\): .* sha256 checked", pulled, re.M)) == 2   # pools verify

        # what a reusing ablation invalidates there, before running it: that stage and the report
        params = (clone_b / "params.yaml").read_text()
        edited = yaml.safe_load(params)
        edited["ablations"]["reuse"] = [ABLATION]
        (clone_b / "params.yaml").write_text(yaml.safe_dump(edited, sort_keys=False))
        status = _changed(clone_b, env_b)
        (clone_b / "params.yaml").write_text(params)
        # check_params tracks the whole params.yaml, so any edit re-runs it (its output, the same for
        # every valid params.yaml, then leaves the stages below it as they were)
        assert set(status) == {"check_params", f"ablate_reuse@{ABLATION}-0", "report"}, status

        epochs_before = sorted(p.relative_to(clone_b).as_posix() for p in clone_b.rglob("epoch_*"))
        ran = _sh(blocks["ablation"], clone_b, env_b, "the reusing ablation")
        assert _ran(ran) == ["check_params", f"ablate_reuse@{ABLATION}-0", "report"], ran[-3000:]
        assert _translations(log_b) == 0, log_b.read_text()
        assert sorted(p.relative_to(clone_b).as_posix() for p in clone_b.rglob("epoch_*")) == epochs_before
        assert _file_hashes(clone_b / "pools") == pools_a
        metrics = json.loads((clone_b / "metrics" / "digits" / f"{ABLATION}-seed0.json").read_text())
        assert 0 <= metrics["best_val"]["test"]["bacc"] <= 100
        history = json.loads((clone_b / "plots" / "digits" / f"{ABLATION}-seed0.json").read_text())
        used = {row["epoch"]: row["n_used"] for row in history if row["n_used"]}
        assert used == {e["epoch"]: e["accepted"] for e in listed_a}   # it trained on the pulled rows
        assert f"| {ABLATION} |" in (clone_b / "reports" / "digits" / "ablations.md").read_text()

    # a chunk damaged on the way (same size): `pools verify` refuses it, naming pool and epoch
    chunk = sorted((clone_b / "pools" / "digits" / "M2m-seed0" / "epoch_2" / "x_delta" / "c").rglob("*"))[-1]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    verify = subprocess.run(["m2m-pipeline", "pools", "verify", "pools/digits/M2m-seed0"], cwd=clone_b, env=env_b,
                            capture_output=True, text=True, timeout=TIMEOUT)
    assert verify.returncode == 2
    assert verify.stderr.count("\n") == 1 and "epoch 2: pool pools/digits/M2m-seed0/epoch_2 is damaged" in verify.stderr
