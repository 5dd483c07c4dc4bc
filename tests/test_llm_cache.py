"""The checkpoint cache: versions, rebuilds of stale or corrupt entries, safety, the lock."""

import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from rlcourse.llm import cache


def _builder(calls: list, value: float = 1.0):
    def build(folder: Path) -> None:
        calls.append(folder)
        save_file({"w": torch.full((3,), value)}, str(folder / "model.safetensors"))
        (folder / "notes.txt").write_text("built")
    return build


def test_version_is_a_hash_of_config_and_code():
    v = cache.entry_version({"a": 1, "b": [1, 2]}, "c1")
    assert v == cache.entry_version({"b": [1, 2], "a": 1}, "c1")  # key order is irrelevant
    assert v != cache.entry_version({"a": 2, "b": [1, 2]}, "c1")
    assert v != cache.entry_version({"a": 1, "b": [1, 2]}, "c2")
    assert len(v) == 16
    with pytest.raises(TypeError, match="JSON"):
        cache.entry_version({"a": object()}, "c1")
    with pytest.raises(ValueError, match="names"):
        cache.entry_path("../escape", v)


def test_root_from_argument_env_and_default(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.CACHE_ENV, str(tmp_path / "env"))
    assert cache.cache_root() == tmp_path / "env"
    assert cache.cache_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv(cache.CACHE_ENV)
    assert cache.cache_root().parts[-2:] == ("data", "cache")


def test_build_once_then_reuse(tmp_path):
    calls = []
    first = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    again = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    assert len(calls) == 1 and first.built and not again.built
    assert first.path == again.path and again.reason == "valid"
    assert load_file(str(first.path / "model.safetensors"))["w"].tolist() == [1.0] * 3
    assert not [p for p in tmp_path.iterdir() if p.name.startswith((".tmp", ".trash"))]


def test_changed_config_or_code_builds_a_new_entry_and_keeps_the_old(tmp_path):
    calls = []
    a = cache.get_or_build("m", {"x": 1}, _builder(calls, 1.0), "v1", root=tmp_path)
    b = cache.get_or_build("m", {"x": 2}, _builder(calls, 2.0), "v1", root=tmp_path)
    c = cache.get_or_build("m", {"x": 1}, _builder(calls, 3.0), "v2", root=tmp_path)
    assert len(calls) == 3 and len({a.path, b.path, c.path}) == 3
    assert load_file(str(a.path / "model.safetensors"))["w"][0] == 1.0  # never overwritten
    assert cache.list_entries("m", tmp_path) == sorted([a.path, b.path, c.path])


@pytest.mark.parametrize("damage, reason", [
    (lambda p: (p / "model.safetensors").write_bytes(b"garbage"), "corrupt: files differ"),
    (lambda p: (p / "notes.txt").unlink(), "corrupt: files differ"),
    (lambda p: (p / cache.MANIFEST).unlink(), "no readable manifest"),
    (lambda p: (p / cache.MANIFEST).write_text("{"), "no readable manifest"),
    (lambda p: (p / "extra.bin").write_bytes(b"pickle"), "pickle-based"),
])
def test_corrupt_entries_are_detected_and_rebuilt(tmp_path, damage, reason):
    calls = []
    entry = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    damage(entry.path)
    assert reason in cache.check_entry(entry.path, entry.version)
    again = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    assert len(calls) == 2 and again.built and reason in again.reason
    assert cache.check_entry(again.path, again.version) is None


def test_stale_manifest_is_rebuilt(tmp_path):
    calls = []
    entry = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    manifest = json.loads((entry.path / cache.MANIFEST).read_text())
    manifest["version"] = "0" * 16
    (entry.path / cache.MANIFEST).write_text(json.dumps(manifest))
    again = cache.get_or_build("m", {"x": 1}, _builder(calls), "v1", root=tmp_path)
    assert again.built and again.reason.startswith("stale")


def test_failed_or_unsafe_builds_leave_nothing_behind(tmp_path):
    def failing(folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("training crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        cache.get_or_build("m", {"x": 1}, failing, "v1", root=tmp_path)
    with pytest.raises(cache.CacheError, match="no .safetensors"):
        cache.get_or_build("m", {"x": 1}, lambda f: (f / "w.txt").write_text("x"), "v1",
                           root=tmp_path)
    with pytest.raises(cache.CacheError, match="pickle"):
        cache.get_or_build("m", {"x": 1}, lambda f: torch.save({}, f / "model.bin"), "v1",
                           root=tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


def test_leftovers_of_a_killed_build_are_removed(tmp_path):
    version = cache.entry_version({"x": 1}, "v1")
    dead = tmp_path / f".tmp-m-{version}-deadbeef"
    dead.mkdir()
    (dead / "model.safetensors").write_bytes(b"half")
    other = tmp_path / f".tmp-other-{version}-deadbeef"  # another entry's build: not ours
    other.mkdir()
    cache.get_or_build("m", {"x": 1}, _builder([]), "v1", root=tmp_path)
    assert not dead.exists() and other.exists()


def test_threads_build_an_entry_once(tmp_path):
    calls, results = [], []

    def slow(folder):
        threading.Event().wait(0.3)
        _builder(calls)(folder)

    workers = [threading.Thread(target=lambda: results.append(
        cache.get_or_build("m", {"x": 1}, slow, "v1", root=tmp_path, verbose=False)))
        for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(calls) == 1
    assert sorted(r.built for r in results) == [False, False, True]


def test_two_processes_build_an_entry_once(tmp_path):
    log = tmp_path / "builds.log"
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from safetensors.torch import save_file
        import torch
        from rlcourse.llm import cache

        def build(folder):
            with open({str(log)!r}, "a") as f:
                f.write("built\\n")
            time.sleep(1.0)
            save_file({{"w": torch.ones(2)}}, str(folder / "model.safetensors"))

        e = cache.get_or_build("m", {{"x": 1}}, build, "v1", root={str(tmp_path)!r},
                               verbose=False)
        print(e.built)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(outs) == ["False", "True"]
    assert log.read_text().count("built") == 1
