"""A versioned checkpoint cache: build a trained model once, reuse it only while it is valid.

Entries live in one folder, ``$RLCOURSE_CACHE`` or ``<repo>/data/cache`` (git-ignored), as
``<name>-<version>/``. The version is a hash of the entry's config dict and a code version
string that the training code bumps whenever it changes what it would produce, so a changed
config or changed code never finds the old entry. Each entry holds safetensors weights and a
manifest with the SHA-256 of every file; :func:`get_or_build`

* reuses an entry only if its manifest matches the version and every file's hash;
* rebuilds a missing, stale or corrupt entry (and says why), never silently reusing it;
* refuses pickle-based files (``.bin``, ``.pt``, ``.pkl``): weights are loaded as safetensors;
* builds in a temporary folder and renames it into place, so a reader never sees half an entry;
* holds a file lock per entry, so two processes that need the same entry build it once.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "RLCOURSE_CACHE"
MANIFEST = "rlcourse-manifest.json"
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*")


class CacheError(RuntimeError):
    """A cache entry could not be built or is unusable."""


@dataclass(frozen=True)
class CacheEntry:
    """Where an entry is, its version, and whether this call built it (and why)."""

    path: Path
    version: str
    built: bool
    reason: str  # "valid" when reused, else why it was (re)built: missing, stale, corrupt ...


def cache_root(root: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``root`` if given, else ``$RLCOURSE_CACHE``, else <repo>/data/cache."""
    if root is None:
        root = os.environ.get(CACHE_ENV) or Path(__file__).resolve().parents[2] / "data" / "cache"
    return Path(root).expanduser()


def entry_version(config: dict, code_version: str) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of ``config`` and ``code_version``.

    Key order does not matter; any changed value, or a bumped ``code_version``, changes it.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    try:
        blob = json.dumps({"config": config, "code": str(code_version)}, sort_keys=True)
    except TypeError as err:
        raise TypeError(f"config must hold JSON values only: {err}") from None
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def entry_path(name: str, version: str, root: str | os.PathLike | None = None) -> Path:
    """Folder of entry ``name`` at ``version``; names use letters, digits, '_' and '.'."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"cache entry names use letters, digits, '_' and '.', got {name!r}")
    return cache_root(root) / f"{name}-{version}"


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` except the manifest, by relative path."""
    return {p.relative_to(folder).as_posix(): _digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != MANIFEST}


def check_entry(path: Path, version: str) -> str | None:
    """None if the entry at ``path`` is complete and matches ``version``, else the reason."""
    if not path.is_dir():
        return "missing"
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "corrupt: no readable manifest"
    if manifest.get("version") != version:
        return f"stale: version {manifest.get('version')!r}, wanted {version!r}"
    files = _files(path)
    unsafe = [f for f in files if f.endswith(UNSAFE_SUFFIXES)]
    if unsafe:
        return f"corrupt: pickle-based files {unsafe} are never loaded"
    if not any(f.endswith(".safetensors") for f in files):
        return "corrupt: no .safetensors weights"
    if files != manifest.get("files"):
        changed = {f for f, _ in set(files.items()) ^ set(manifest.get("files", {}).items())}
        return f"corrupt: files differ from the manifest ({', '.join(sorted(changed))})"
    return None


def _discard(path: Path) -> None:
    """Move ``path`` aside (atomic) and delete it."""
    trash = path.with_name(f".trash-{path.name}-{uuid.uuid4().hex[:8]}")
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _build_into(path: Path, version: str, config: dict, code_version: str,
                build: Callable[[Path], None]) -> None:
    """Run ``build`` in a temporary folder beside ``path``, write the manifest, rename."""
    tmp = path.with_name(f".tmp-{path.name}-{uuid.uuid4().hex[:8]}")
    tmp.mkdir(parents=True)
    try:
        build(tmp)
        manifest = {"version": version, "code_version": str(code_version), "config": config,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "files": _files(tmp)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True),
                                    encoding="utf-8")
        reason = check_entry(tmp, version)
        if reason is not None:
            raise CacheError(f"the build of {path.name} wrote an unusable entry: {reason}")
        os.rename(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def get_or_build(name: str, config: dict, build: Callable[[Path], None], code_version: str,
                 root: str | os.PathLike | None = None, timeout: float = 900.0,
                 verbose: bool = True) -> CacheEntry:
    """The valid entry ``name`` for ``config`` and ``code_version``, built first if needed.

    ``build(folder)`` must write the checkpoint into the empty ``folder`` with safetensors
    weights (e.g. ``model.save_pretrained(folder)``). Runs under a file lock, so concurrent
    callers wait for one build instead of building twice.
    """
    from filelock import FileLock

    version = entry_version(config, code_version)
    path = entry_path(name, version, root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.parent / f".{path.name}.lock"), timeout=timeout):
        reason = check_entry(path, version)
        if reason is None:
            return CacheEntry(path, version, built=False, reason="valid")
        if verbose:
            print(f"cache: building {path.name} ({reason})")
        for prefix in (".tmp", ".trash"):  # leftovers of a killed build; we hold the lock
            for leftover in path.parent.glob(f"{prefix}-{path.name}-*"):
                shutil.rmtree(leftover, ignore_errors=True)
        if path.exists():
            _discard(path)
        _build_into(path, version, config, code_version, build)
    return CacheEntry(path, version, built=True, reason=reason)


def list_entries(name: str, root: str | os.PathLike | None = None) -> list[Path]:
    """Folders of every cached version of ``name`` (e.g. to show or prune stale ones)."""
    entry_path(name, "0", root)  # validates the name
    return sorted(p for p in cache_root(root).glob(f"{name}-*") if p.is_dir())
