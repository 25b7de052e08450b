"""The FlashHead play over real SSH against the test host, with local git, HF hub and wheelhouse.

The GPU steps (cuda_toolkit, torch, flash_attn) are left out of the real runs (--skip); they are
exercised in check mode in test_gpu_steps.py. Tests in this module share one provisioned host and
run in order: full run, idempotent re-run, corruption, interruption, lock, local modifications.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.provision.conftest import GPU_STEPS, TOKEN, ProvisionHost, skip_args
from tests.provision.helpers import PsSampler, events, report, sha256, statuses

LITE_FILE = "Model_Lite/diffusion_pytorch_model.safetensors"
CKPT_REPO = "Soul-AILab/SoulX-FlashHead-1_3B"
ALL_STEPS = ["preflight", "system_packages", "cuda_toolkit", "venv", "torch", "flash_attn", "flashhead_repo",
             "checkpoints", "inference_module", "verify", "compile_cache"]


@pytest.fixture(scope="module")
def provisioned(fresh_host_factory, sshd_server, hub):
    host: ProvisionHost = fresh_host_factory("main")
    log_start = len(sshd_server.log())
    with PsSampler() as ps:
        result = host.provision(*skip_args(), "--output", "json")
    return {"host": host, "result": result, "ps": ps.text(), "sshd_log": sshd_server.log()[log_start:]}


def test_check_on_a_fresh_host_lists_every_step_and_changes_nothing(fresh_host_factory, hub):
    host = fresh_host_factory("fresh-check")
    packages = ["git", "ffmpeg", "build-essential", "python3-venv", "python3-dev", "libgl1"]
    host.write_inventory(system_packages=packages)
    installed = subprocess.run(["dpkg-query", "-W", "-f=${Status}\\n", *packages], capture_output=True,
                               text=True).stdout.count("install ok installed") == len(packages)
    requests_before = len(hub.log)
    result = host.provision("--check", "--diff", "--output", "json")
    assert result.returncode == 4, result.stderr  # ExitCode.CHANGES_PENDING
    data = report(result)
    assert [s["name"] for s in data["steps"]] == ALL_STEPS
    found = statuses(data)
    assert found.pop("system_packages") == ("ok" if installed else "pending")
    assert set(found.values()) == {"pending"}
    for step in data["steps"]:
        assert step["changes"] or step["name"] == "system_packages", f"{step['name']} lists no change"
    assert not host.model_root.exists() and not host.model_root.parent.joinpath("flashhead").exists()
    assert len(hub.log) == requests_before  # checks never download
    text = host.provision("--check", "--diff")
    assert text.returncode == 4 and "cuda-toolkit-12-8" in text.stdout and "pending" in text.stdout


def test_full_run_provisions_the_host(provisioned, hub):
    result, host = provisioned["result"], provisioned["host"]
    assert result.returncode == 0, result.stdout + result.stderr
    data = report(result)
    assert statuses(data) == {"preflight": "changed", "system_packages": "ok", "venv": "changed",
                              "flashhead_repo": "changed", "checkpoints": "changed", "inference_module": "changed",
                              "verify": "ok"}
    assert all(step["seconds"] >= 0 for step in data["steps"])
    repo_step = next(s for s in data["steps"] if s["name"] == "flashhead_repo")
    assert any("torch==2.5.1" in w and "keeping the play's" in w for w in repo_step["warnings"])
    root = host.model_root
    # the repo at the pinned commit, its requirements in the venv
    head = subprocess.run(["git", "-c", "safe.directory=*", "-C", str(root / "SoulX-FlashHead"), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert head == host.vars["flashhead_commit"]
    venv_python = root / ".venv" / "bin" / "python"
    assert subprocess.run([str(venv_python), "-c", "import loguru, inference, starlette"]).returncode == 0
    assert subprocess.run([str(venv_python), "-c", "import torch"], capture_output=True).returncode != 0  # owned
    # checkpoints: only what lite needs, every LFS file matching the hub's sha256
    model = root / "models" / "SoulX-FlashHead-1_3B"
    assert sha256(model / LITE_FILE) == hub.repos[CKPT_REPO].files[LITE_FILE].sha256
    assert not (model / "Model_Pro").exists() and not (model / "VAE_Wan").exists()
    assert (root / "models" / "wav2vec2-base-960h" / "pytorch_model.bin").exists()
    assert not (root / "models" / "wav2vec2-base-960h" / "tf_model.h5").exists()
    # the resolved commit and the verified hashes are recorded
    state = json.loads((root / ".flashhead" / "state.json").read_text())
    fetched = {s["repo"]: s for s in state["steps"]["checkpoints"]["snapshots"]}
    assert fetched[CKPT_REPO]["commit"] == hub.repos[CKPT_REPO].commit
    assert fetched[CKPT_REPO]["requested_revision"] == "main" and fetched[CKPT_REPO]["pinned"] is False
    manifest = json.loads((model / ".flashhead-manifest.json").read_text())
    assert manifest["files"][LITE_FILE]["hash"] == hub.repos[CKPT_REPO].files[LITE_FILE].sha256
    ckpt = next(s for s in data["steps"] if s["name"] == "checkpoints")
    assert any("unpinned revision 'main' resolved to" in w for w in ckpt["warnings"])
    # the event log: one run, every step timed, the lock released
    log = events(root)
    assert log[0]["event"] == "run_start" and log[-1]["event"] == "run_end" and log[-1]["ok"] is True
    assert {e["step"] for e in log if e["event"] == "step"} == set(ALL_STEPS) - set(GPU_STEPS)
    assert not (root / ".flashhead" / "lock").exists()
    # files belong to the login user, not root
    assert (root / ".venv").stat().st_uid == (root / ".flashhead").stat().st_uid != 0


def test_the_token_reaches_the_hub_and_never_a_log_or_argv(provisioned, hub):
    host = provisioned["host"]
    assert any(r["authorization"] == f"Bearer {TOKEN}" for r in hub.log)  # it was really used
    places = {
        "stdout": provisioned["result"].stdout, "stderr": provisioned["result"].stderr,
        "ps argv": provisioned["ps"], "sshd log (DEBUG)": provisioned["sshd_log"],
        "events.jsonl": (host.model_root / ".flashhead" / "events.jsonl").read_text(),
        "state.json": (host.model_root / ".flashhead" / "state.json").read_text(),
    }
    assert provisioned["ps"].count("\n") > 10 and "sshd" in provisioned["sshd_log"]
    for name, text in places.items():
        assert TOKEN not in text, f"the HF token leaked into {name}"
    leftovers = [p for p in Path("/tmp").glob(".flashhead-env-*") if TOKEN in p.read_text(errors="replace")]
    assert not leftovers, f"the token was left on the host's disk in {leftovers}"


def test_a_second_run_changes_nothing(provisioned, hub):
    host = provisioned["host"]
    downloads = len(hub.requests_for(LITE_FILE))
    result = host.provision(*skip_args(), "--output", "json")
    assert result.returncode == 0, result.stderr
    data = report(result)
    assert data["changed"] == [] and set(statuses(data).values()) == {"ok"}
    assert len(hub.requests_for(LITE_FILE)) == downloads
    check = host.provision(*skip_args(), "--check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_corrupted_checkpoint_is_detected_by_sha256_and_fetched_again(provisioned, hub):
    host = provisioned["host"]
    path = host.model_root / "models" / "SoulX-FlashHead-1_3B" / LITE_FILE
    data = bytearray(path.read_bytes())
    data[1000:1010] = bytes(b ^ 0xFF for b in data[1000:1010])  # same size: only a hash can tell
    path.write_bytes(bytes(data))
    check = host.provision(*skip_args(), "--check", "--output", "json")
    assert check.returncode == 4
    pending = next(s for s in report(check)["steps"] if s["name"] == "checkpoints")
    assert any(LITE_FILE in c and "changed since verified" in c for c in pending["changes"])
    gets = len(hub.requests_for(LITE_FILE))
    result = host.provision(*skip_args(), "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert statuses(report(result))["checkpoints"] == "changed"
    assert len(hub.requests_for(LITE_FILE)) > gets  # fetched again
    assert sha256(path) == hub.repos[CKPT_REPO].files[LITE_FILE].sha256


def test_a_mismatch_found_only_by_the_verify_pass_is_refetched(provisioned, hub):
    """huggingface_hub trusts its own metadata; our sha256 pass catches what it lets through."""
    host = provisioned["host"]
    model = host.model_root / "models" / "SoulX-FlashHead-1_3B"
    path = model / LITE_FILE
    data = bytearray(path.read_bytes())
    data[5] ^= 0xFF
    path.write_bytes(bytes(data))
    # make huggingface_hub believe the file is current: its metadata (commit, etag, timestamp)
    # says it was written after the file changed, so it skips the file without hashing it
    metadata = model / ".cache" / "huggingface" / "download" / (LITE_FILE + ".metadata")
    commit, etag, _timestamp = metadata.read_text().splitlines()[:3]
    metadata.write_text(f"{commit}\n{etag}\n{time.time() + 60}\n")
    result = host.provision(*skip_args(), "--step", "checkpoints", "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    step = report(result)["steps"][0]
    assert any("re-fetched after a failed verification" in w and LITE_FILE in w for w in step["warnings"]), step
    assert sha256(path) == hub.repos[CKPT_REPO].files[LITE_FILE].sha256


def test_an_interrupted_download_resumes(provisioned, hub):
    from tests.provision.hf_server import Fault

    host = provisioned["host"]
    model = host.model_root / "models" / "SoulX-FlashHead-1_3B"
    (model / LITE_FILE).unlink()
    # huggingface_hub writes in 10 MiB chunks: cut the 11 MiB file after the first chunk landed
    hub.faults[f"{CKPT_REPO}/{LITE_FILE}"] = Fault(drop_after=10 * 2**20 + 2**19, times=1)
    failed = host.provision(*skip_args(), "--output", "json")
    assert failed.returncode == 5, failed.stdout + failed.stderr  # a command on the host failed
    data = report(failed)
    assert statuses(data)["checkpoints"] == "failed"
    details = data["error"]["details"]
    assert details["exit_status"] != 0 and details["output_tail"]
    assert "hf_fetch" not in details["command"] and "python" in details["command"]  # the failing command
    partial = list((model / ".cache" / "huggingface" / "download").rglob("*.incomplete"))
    assert partial and partial[0].stat().st_size > 0
    cut_at = partial[0].stat().st_size
    hub.faults.clear()
    resumed = host.provision(*skip_args(), "--output", "json")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    data = report(resumed)
    assert data["resumed_from"] == "checkpoints" and statuses(data)["checkpoints"] == "changed"
    ranges = [r["range"] for r in hub.requests_for(LITE_FILE)[-1:]]
    assert ranges == [f"bytes={cut_at}-"], ranges  # it continued where the cut left it
    assert sha256(model / LITE_FILE) == hub.repos[CKPT_REPO].files[LITE_FILE].sha256


def test_a_held_lock_is_refused_with_the_holder_named(provisioned):
    host = provisioned["host"]
    lock = host.model_root / ".flashhead" / "lock"
    lock.write_text(json.dumps({"run_id": "20260101T000000Z-abc123", "user": "alice", "machine": "ops-box",
                                "pid": 4242, "started": "2026-01-01T00:00:00Z", "command": "flashhead provision"}))
    try:
        result = host.provision(*skip_args(), "--output", "json")
        assert result.returncode == 8, result.stdout + result.stderr
        error = report(result)["error"]
        assert error["error"] == "HostLocked" and "alice@ops-box (pid 4242" in error["message"]
        assert "--break-lock" in error["remedy"] and report(result)["steps"][-1]["name"] == "lock"
        text = host.provision(*skip_args())  # and for humans, on stderr
        assert text.returncode == 8 and "alice@ops-box" in text.stderr
        assert lock.exists()
        broken = host.provision(*skip_args(), "--break-lock")
        assert broken.returncode == 0, broken.stdout + broken.stderr
        assert not lock.exists()
        # a lock left by a run of this machine whose process died is stale: taken over, and said so
        dead = subprocess.Popen(["true"])
        dead.wait()
        lock.write_text(json.dumps({"run_id": "20260101T000000Z-dead00", "user": "root",
                                    "machine": socket.gethostname(), "pid": dead.pid,
                                    "started": "2026-01-01T00:00:00Z", "command": "flashhead provision"}))
        stale = host.provision(*skip_args(), "--output", "json")
        assert stale.returncode == 0, stale.stdout + stale.stderr
        assert any("stale lock of run 20260101T000000Z-dead00" in n for n in report(stale)["notes"])
        assert not lock.exists()
    finally:
        lock.unlink(missing_ok=True)


def test_local_modifications_are_reported_and_never_overwritten(provisioned, git_source):
    host = provisioned["host"]
    checkout = host.model_root / "SoulX-FlashHead"
    edited = checkout / "generate_video.py"
    edited.write_text("# a local fix on the host\n")
    try:
        same_commit = host.provision(*skip_args(), "--output", "json")
        assert same_commit.returncode == 0
        step = next(s for s in report(same_commit)["steps"] if s["name"] == "flashhead_repo")
        assert step["status"] == "ok" and any("generate_video.py" in w for w in step["warnings"])
        other = host.provision(*skip_args(), "--var", f"flashhead_commit={git_source.commits[0]}")
        assert other.returncode == 1, other.stdout + other.stderr
        assert "local modifications" in other.stderr and "flashhead_repo_force" in other.stderr
        assert edited.read_text() == "# a local fix on the host\n"
    finally:
        subprocess.run(["git", "-c", "safe.directory=*", "-C", str(checkout), "checkout", "--", "generate_video.py"],
                       check=True)


def test_prestaged_checkpoints_are_copied_and_verified_without_the_hub(provisioned, fresh_host_factory, shared_dir):
    staged = shared_dir / "staged"
    shutil.copytree(provisioned["host"].model_root / "models", staged,
                    ignore=shutil.ignore_patterns(".cache"))
    host = fresh_host_factory("airgapped")
    host.write_inventory(hf_endpoint="http://127.0.0.1:9")  # nothing listens: the hub is out of reach
    steps = ["--step", "preflight", "--step", "venv", "--step", "checkpoints"]
    result = host.provision(*steps, "--source", str(staged), "--output", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    model = host.model_root / "models" / "SoulX-FlashHead-1_3B"
    assert sha256(model / LITE_FILE) == sha256(staged / "SoulX-FlashHead-1_3B" / LITE_FILE)
    manifest = json.loads((model / ".flashhead-manifest.json").read_text())
    assert manifest["verified_against"] == "source manifest" and manifest["commit"] != "source"
    # a corrupted pre-staged copy is refused
    bad = staged / "SoulX-FlashHead-1_3B" / LITE_FILE
    data = bytearray(bad.read_bytes())
    data[0] ^= 0xFF
    bad.write_bytes(bytes(data))
    (model / LITE_FILE).unlink()
    refused = host.provision("--step", "checkpoints", "--source", str(staged), "--output", "json")
    assert refused.returncode == 5
    assert LITE_FILE in report(refused)["error"]["details"]["output_tail"]
    assert not (model / LITE_FILE).exists() or sha256(model / LITE_FILE) != sha256(bad)
