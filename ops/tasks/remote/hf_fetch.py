"""Checkpoints on the host: check (stdlib), fetch + verify (huggingface_hub), and the sha256 pass.

`check SPEC_JSON`  read-only: each snapshot's manifest (`{dir}/.flashhead-manifest.json`) matches
                   the wanted repo, revision and patterns, and every file still has the size and
                   mtime it had when verified. Exit 0 done, 1 pending.
`fetch SPEC_JSON`  snapshot_download at the resolved commit (resumes partial files; `@@progress`
                   lines report the bytes as they arrive), then verify
                   every file: LFS files by sha256 against the hub's metadata (`lfs.sha256`), other
                   files by their git blob id. A mismatch is deleted and fetched again once. Files
                   verified before and unchanged (size + mtime) are not re-hashed. Writes the manifest.
                   With `source` set, copies from a pre-staged directory instead of the hub.
The token comes from HF_TOKEN in the environment, the endpoint from HF_ENDPOINT.
"""

from __future__ import annotations

import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

MANIFEST = ".flashhead-manifest.json"
SCHEMA = "flashhead.checkpoints/v1"
CHUNK = 8 * 2**20
COMMIT = re.compile(r"^[0-9a-f]{40}$")


def sha256_file(path: str) -> str:
    """sha256 of a file, read in 8 MiB chunks (hashlib releases the GIL: files hash in parallel)."""
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
    return digest.hexdigest()


def git_blob_id(path: str) -> str:
    """The git blob id (sha1 of `blob <size>\\0` + content) the hub lists for non-LFS files."""
    digest = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_files(jobs: list[tuple[str, str]], workers: int | None = None) -> list[str]:
    """Hash (path, kind) pairs in parallel; kind is `sha256` or `blob`."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: sha256_file(job[0]) if job[1] == "sha256" else git_blob_id(job[0]), jobs))


def selected(path: str, patterns: list[str] | None) -> bool:
    return not patterns or any(fnmatch.fnmatch(path, p) for p in patterns)


def read_manifest(directory: str) -> dict | None:
    try:
        with open(os.path.join(directory, MANIFEST)) as handle:
            manifest = json.load(handle)
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and manifest.get("schema") == SCHEMA else None


def write_manifest(directory: str, manifest: dict) -> None:
    path = os.path.join(directory, MANIFEST)
    with open(path + ".tmp", "w") as handle:
        json.dump(manifest, handle, indent=1, sort_keys=True)
    os.replace(path + ".tmp", path)


def stale_files(directory: str, manifest: dict) -> list[str]:
    """Files whose size or mtime changed since they were verified (or that are gone)."""
    stale = []
    for name, entry in manifest["files"].items():
        try:
            stat = os.stat(os.path.join(directory, name))
        except OSError:
            stale.append(f"{name} (missing)")
            continue
        if stat.st_size != entry["size"] or stat.st_mtime_ns != entry["mtime_ns"]:
            stale.append(f"{name} (changed since verified)")
    return stale


def check(specs: list[dict]) -> int:
    pending = 0
    for spec in specs:
        manifest = read_manifest(spec["dir"])
        status: dict = {"repo": spec["repo"], "dir": spec["dir"], "revision": spec["revision"]}
        if manifest is None:
            status["pending"] = ["not downloaded (no verified manifest)"]
        elif manifest.get("requested_revision") != spec["revision"] or manifest.get("patterns") != spec["patterns"]:
            status["pending"] = [f"revision/patterns changed (have {manifest.get('requested_revision')})"]
        else:
            status["pending"] = stale_files(spec["dir"], manifest)
            status["commit"], status["files"] = manifest.get("commit"), len(manifest["files"])
        pending += bool(status["pending"])
        print("@@snapshot " + json.dumps(status))
    return 1 if pending else 0


def verify(directory: str, expected: dict[str, dict], previous: dict[str, dict]) -> tuple[dict, list[str]]:
    """Verify files against expected {path: {kind, hash, size}}; reuse `previous` entries when unchanged."""
    entries, jobs, bad = {}, [], []
    for name, want in expected.items():
        path = os.path.join(directory, name)
        try:
            stat = os.stat(path)
        except OSError:
            bad.append(f"{name}: missing")
            continue
        if want.get("size") is not None and stat.st_size != want["size"]:
            bad.append(f"{name}: size {stat.st_size}, expected {want['size']}")
            continue
        old = previous.get(name)
        entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "kind": want["kind"]}
        if old and old.get("size") == stat.st_size and old.get("mtime_ns") == stat.st_mtime_ns \
                and old.get("hash") == want["hash"] and want["hash"]:
            entries[name] = {**entry, "hash": old["hash"], "rehashed": False}
        else:
            jobs.append((name, path, entry))
    digests = hash_files([(path, entry["kind"]) for _, path, entry in jobs])
    for (name, _path, entry), digest in zip(jobs, digests, strict=True):
        want_hash = expected[name]["hash"]
        if want_hash and digest != want_hash:
            bad.append(f"{name}: {entry['kind']} {digest}, expected {want_hash}")
            continue
        entries[name] = {**entry, "hash": digest, "rehashed": True}
    return entries, bad


def discard(directory: str, problems: list[str]) -> None:
    """Remove files that failed verification: bad data never stays in the model dir."""
    for problem in problems:
        path = os.path.join(directory, problem.split(":", 1)[0])
        if os.path.isfile(path):
            os.remove(path)


class Progress:
    """Prints `@@progress {json}` (the file in flight, its bytes, all bytes, the rate) every `interval`
    seconds while bytes arrive, and nothing while they do not: silence means a stalled download.
    `sizes()` says how many bytes of each expected file are on disk (partial files included)."""

    def __init__(self, expected: dict[str, int], sizes: Callable[[], dict[str, int]], interval: float = 1.0):
        self.expected, self.sizes, self.interval = expected, sizes, interval
        self.total = sum(expected.values())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        before, then = None, time.monotonic()
        while not self._stop.wait(self.interval):
            try:
                found = self.sizes()
            except OSError:
                continue  # a file renamed while we looked: look again next time
            done = sum(min(found.get(name, 0), size) for name, size in self.expected.items())
            now = time.monotonic()
            if before is not None and done == before:
                continue
            active = [n for n, size in self.expected.items() if 0 < found.get(n, 0) < size]
            current = max(active, key=lambda n: self.expected[n], default="")
            rate = (done - before) / (now - then) if before is not None else 0.0
            print("@@progress " + json.dumps({
                "file": current, "file_done": found.get(current, 0), "file_total": self.expected.get(current, 0),
                "done": done, "total": self.total, "rate": round(rate),
                "files_done": sum(1 for n, size in self.expected.items() if found.get(n, 0) >= size),
                "files_total": len(self.expected)}), flush=True)
            before, then = done, now


def hub_sizes(directory: str, expected: dict[str, dict]) -> dict[str, int]:
    """Bytes on disk per expected file: huggingface_hub downloads into
    `.cache/huggingface/download/**/<hash>.<etag>[.<id>].incomplete`, the etag being the file's sha256
    (LFS) or blob id, then renames it into place."""
    partial = {os.path.basename(path): os.path.getsize(path) for path in glob.glob(
        os.path.join(directory, ".cache", "huggingface", "download", "**", "*.incomplete"), recursive=True)}
    found = {}
    for name, want in expected.items():
        growing = [count for part, count in partial.items() if want.get("hash") and f".{want['hash']}." in part]
        if growing:
            found[name] = max(growing)
        elif os.path.isfile(os.path.join(directory, name)):
            found[name] = os.path.getsize(os.path.join(directory, name))
    return found


def fetch_from_hub(spec: dict) -> dict:
    from huggingface_hub import HfApi, constants, hf_hub_download, snapshot_download

    api = HfApi()
    info = api.repo_info(spec["repo"], revision=spec["revision"], files_metadata=True)
    commit = info.sha
    expected = {}
    for sibling in getattr(info, "siblings", None) or []:
        if not selected(sibling.rfilename, spec["patterns"]):
            continue
        if sibling.lfs is not None:
            expected[sibling.rfilename] = {"kind": "sha256", "hash": sibling.lfs.sha256, "size": sibling.lfs.size}
        else:
            expected[sibling.rfilename] = {"kind": "blob", "hash": sibling.blob_id, "size": sibling.size}
    directory = spec["dir"]
    os.makedirs(directory, exist_ok=True)
    old = read_manifest(directory) or {}
    previous = old.get("files", {}) if old.get("commit") == commit else {}
    sizes = {name: int(want["size"] or 0) for name, want in expected.items()}
    constants.DOWNLOAD_CHUNK_SIZE = 2**20  # written to disk every MiB (not 10): finer progress
    with Progress(sizes, lambda: hub_sizes(directory, expected)):
        snapshot_download(spec["repo"], revision=commit, local_dir=directory, allow_patterns=spec["patterns"],
                          max_workers=int(spec.get("max_workers", 8)))
    entries, bad = verify(directory, expected, previous)
    refetched = []
    for problem in bad:
        name = problem.split(":", 1)[0]
        refetched.append(problem)
        for path in (os.path.join(directory, name),
                     os.path.join(directory, ".cache", "huggingface", "download", name + ".metadata")):
            if os.path.exists(path):
                os.remove(path)
        hf_hub_download(spec["repo"], name, revision=commit, local_dir=directory, force_download=True)
    if bad:
        entries_again, still_bad = verify(directory, {p.split(":", 1)[0]: expected[p.split(":", 1)[0]]
                                                      for p in bad}, {})
        if still_bad:
            discard(directory, still_bad)
            raise SystemExit(f"checkpoint verification failed for {spec['repo']}@{commit}: " + "; ".join(still_bad))
        entries.update(entries_again)
    return {"commit": commit, "files": entries, "refetched": refetched, "verified_against": "hub metadata"}


def copy_from_source(spec: dict, source: str) -> dict:
    """Copy a pre-staged snapshot (`{source}/{basename of dir}`), verify against its manifest if any."""
    origin = os.path.join(source, os.path.basename(spec["dir"].rstrip("/")))
    if not os.path.isdir(origin):
        raise SystemExit(f"pre-staged source missing: {origin} does not exist (expected a copy of {spec['repo']})")
    staged = read_manifest(origin)
    expected = {}
    for root, dirs, files in os.walk(origin):
        dirs[:] = [d for d in dirs if d != ".cache"]
        for file in files:
            name = os.path.relpath(os.path.join(root, file), origin)
            if name == MANIFEST or not selected(name, spec["patterns"]):
                continue
            want = (staged or {}).get("files", {}).get(name, {})
            expected[name] = {"kind": want.get("kind", "sha256"), "hash": want.get("hash"), "size": want.get("size")}
            target = os.path.join(spec["dir"], name)
            if not os.path.exists(target) or os.path.getsize(target) != os.path.getsize(os.path.join(root, file)):
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(os.path.join(root, file), target + ".partial")
                os.replace(target + ".partial", target)
    entries, bad = verify(spec["dir"], expected, {})
    if bad:
        discard(spec["dir"], bad)
        raise SystemExit(f"checkpoint verification failed for {origin}: " + "; ".join(bad))
    return {"commit": (staged or {}).get("commit", "source"), "files": entries, "refetched": [],
            "verified_against": "source manifest" if staged else "nothing (no manifest in the source: hashes recorded)"}


def fetch(specs: list[dict], source: str | None) -> int:
    for spec in specs:
        started = time.monotonic()
        result = copy_from_source(spec, source) if source else fetch_from_hub(spec)
        manifest = {"schema": SCHEMA, "repo": spec["repo"], "requested_revision": spec["revision"],
                    "commit": result["commit"], "patterns": spec["patterns"],
                    "files": {n: {k: v for k, v in e.items() if k != "rehashed"} for n, e in result["files"].items()},
                    "verified_against": result["verified_against"],
                    "verified_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        write_manifest(spec["dir"], manifest)
        rehashed = sum(1 for e in result["files"].values() if e["rehashed"])
        print("@@fetched " + json.dumps({"repo": spec["repo"], "dir": spec["dir"], "commit": result["commit"],
                                         "requested_revision": spec["revision"], "files": len(result["files"]),
                                         "bytes": sum(e["size"] for e in result["files"].values()),
                                         "rehashed": rehashed, "refetched": result["refetched"],
                                         "verified_against": result["verified_against"],
                                         "pinned": bool(COMMIT.match(spec["revision"])),
                                         "seconds": round(time.monotonic() - started, 3)}), flush=True)
    return 0


def main(argv: list[str]) -> int:
    mode, specs = argv[0], json.loads(argv[1])
    if mode == "check":
        return check(specs)
    return fetch(specs, argv[2] if len(argv) > 2 and argv[2] else None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
