"""The trained-model cache: keys, atomic writes, refusal of tampered entries, and train_score hits."""
import os
import pickle
from pathlib import Path

import pytest
import torch

import diffviz.cache as cache_mod
from diffviz.cache import Cache, CacheError, CacheWarning, canonical_json, default_cache_dir, key_hash
from diffviz.models import ScoreMLP
from diffviz.processes import VP
from diffviz.train import train_score

KEY = {"process": {"process": "VP", "beta_min": 0.1}, "steps": 20, "lr": 2e-3, "seed": 0, "shape": (2,)}
STATE = {"w": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1.5, -2.0], dtype=torch.float64)}


def _files(directory: Path):
    return sorted(p.name for p in directory.iterdir())


def test_canonical_key_and_hash():
    assert canonical_json({"b": 1, "a": [1, 2]}) == canonical_json({"a": (1, 2), "b": 1}) == '{"a":[1,2],"b":1}'
    assert canonical_json({"x": 0.1}) == '{"x":0.1}'  # floats by repr: round-trips exactly
    assert key_hash(KEY) != key_hash({**KEY, "seed": 1}) and len(key_hash(KEY)) == 64
    small = canonical_json({"m": torch.tensor([1.0, 2.0])})
    assert '"values":[1.0,2.0]' in small and '"dtype":"float32"' in small
    assert "sha256" in canonical_json({"data": torch.zeros(100, 64)})  # large tensors by digest
    assert key_hash({"data": torch.zeros(100, 64)}) != key_hash({"data": torch.ones(100, 64)})
    with pytest.raises(TypeError, match="JSON-like"):
        canonical_json({"f": object()})


def test_cache_folder_argument_then_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFVIZ_CACHE_DIR", str(tmp_path / "env"))
    assert Cache(tmp_path / "arg").directory == tmp_path / "arg"
    assert Cache().directory == tmp_path / "env" == default_cache_dir()
    monkeypatch.delenv("DIFFVIZ_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Cache().directory == tmp_path / "home" / ".cache" / "diffviz"


def test_round_trip(tmp_path):
    cache = Cache(tmp_path / "c")
    assert cache.load(KEY) is None and not (tmp_path / "c").exists()  # reading creates nothing
    path = cache.save(KEY, STATE, {"losses": torch.ones(3), "elapsed": 1.25})
    assert path == cache.path(KEY) and path.name == key_hash(KEY) + ".pt" and KEY in cache
    entry = cache.load(KEY)
    assert all(torch.equal(entry["state_dict"][k], STATE[k]) for k in STATE)
    assert entry["key"] == {**KEY, "shape": [2]} and entry["meta"]["elapsed"] == 1.25
    assert cache.entries() == [path] and _files(tmp_path / "c") == [path.name]


def test_entry_under_another_key_is_refused(tmp_path):
    cache = Cache(tmp_path)
    other = {**KEY, "seed": 1}
    cache.save(KEY, STATE)
    os.replace(cache.path(KEY), cache.path(other))  # a file placed under the wrong name
    with pytest.raises(CacheError, match="does not match the requested key") as info:
        cache.load(other)
    assert cache.path(other).name in str(info.value)


def _malicious(marker: Path):
    class Payload:
        def __reduce__(self):
            return os.mkdir, (str(marker),)  # harmless but visible if ever unpickled

    return {"format": 1, "key": KEY, "state_dict": {"w": Payload()}, "meta": {}}


@pytest.mark.parametrize("damage", ["flip", "weight_bit", "truncate", "pickle", "raw_pickle", "not_an_entry",
                                    "empty"])
def test_tampered_entries_are_refused(tmp_path, damage):
    cache = Cache(tmp_path)
    path = cache.save(KEY, STATE)
    raw = path.read_bytes()
    marker = tmp_path / "pwned"
    if damage == "flip":
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes(b ^ 0xFF for b in raw[middle:middle + 64]) + raw[middle + 64:])
    elif damage == "weight_bit":  # inside tensor data, which torch's zip reader does not check
        at = raw.find(STATE["w"].numpy().tobytes())
        assert at > 0
        path.write_bytes(raw[:at + 5] + bytes([raw[at + 5] ^ 0x10]) + raw[at + 6:])
    elif damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "pickle":
        torch.save(_malicious(marker), path)
    elif damage == "raw_pickle":
        path.write_bytes(pickle.dumps(_malicious(marker), protocol=2))
    elif damage == "not_an_entry":
        torch.save({"w": torch.ones(2)}, path)
    else:
        path.write_bytes(b"")
    with pytest.raises(CacheError, match="refused") as info:
        cache.load(KEY)
    assert str(path) in str(info.value)
    assert not marker.exists(), "loading must never run pickled code"


def test_non_finite_weights_are_refused(tmp_path):
    """A well-formed entry, with a valid digest, holding non-finite weights is refused too."""
    cache = Cache(tmp_path)
    cache.save(KEY, {"w": torch.tensor([float("nan")])})
    with pytest.raises(CacheError, match="non-finite"):
        cache.load(KEY)


@pytest.mark.parametrize("where", ["replace", "save"])
def test_interrupted_write_leaves_no_entry_and_no_litter(tmp_path, monkeypatch, where):
    cache = Cache(tmp_path)
    (tmp_path / "mine.txt").write_text("a user's file")
    if where == "replace":
        def boom(*args, **kwargs):
            raise KeyboardInterrupt

        monkeypatch.setattr(cache_mod.os, "replace", boom)
    else:

        def half_save(obj, f, *args, **kwargs):
            f.write(b"PK\x03\x04 partial bytes")
            raise OSError("disk full")

        monkeypatch.setattr(cache_mod.torch, "save", half_save)
    with pytest.raises((KeyboardInterrupt, OSError)):
        cache.save(KEY, STATE)
    monkeypatch.undo()
    assert _files(tmp_path) == ["mine.txt"]
    assert cache.load(KEY) is None


def _train(cache, seed=0, calls=None):
    on_step = None if calls is None else (lambda step, loss: calls.append(step))
    return train_score(_Dots(), VP(), net=ScoreMLP(2, hidden=16, depth=1), steps=15, batch_size=32, seed=seed,
                       progress=False, cache=cache, on_step=on_step)


class _Dots:
    """Two points +-1 blurred a little: a minimal target with sample() and key()."""

    shape = (2,)

    def key(self):
        return {"name": "dots"}

    def sample(self, n, *, generator=None, device=None, dtype=torch.float32):
        sign = torch.randint(2, (n, 1), generator=generator, device=generator.device) * 2.0 - 1.0
        return (sign + 0.1 * torch.randn(n, 2, generator=generator, device=generator.device)).to(dtype)


def test_second_train_score_call_hits_the_cache(tmp_path):
    cache = Cache(tmp_path)
    first_calls, second_calls = [], []
    first = _train(cache, calls=first_calls)
    assert len(first_calls) == 15 and not first.history.from_cache
    assert cache.entries() == [first.history.cache_path]
    second = _train(cache, calls=second_calls)
    assert second_calls == [] and second.history.from_cache  # no training at all
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in second.state_dict().items())
    torch.testing.assert_close(second.history.losses, first.history.losses)
    assert not second.training and not any(p.requires_grad for p in second.parameters())
    third = _train(cache, seed=1)  # another seed is another model
    assert not third.history.from_cache and len(cache.entries()) == 2


def test_cache_folder_path_and_true(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFVIZ_CACHE_DIR", str(tmp_path / "env"))
    assert _train(True).history.cache_path.parent == tmp_path / "env"
    assert _train(str(tmp_path / "p")).history.cache_path.parent == tmp_path / "p"
    assert _train(False).history.cache_path is None
    with pytest.raises(ValueError, match="cache"):
        _train(3)


def test_refused_entry_is_moved_aside_and_retrained(tmp_path):
    cache = Cache(tmp_path)
    (tmp_path / "notes.txt").write_text("keep me")
    first = _train(cache)
    path = first.history.cache_path
    tampered = path.read_bytes()[:100]
    path.write_bytes(tampered)
    calls = []
    with pytest.warns(CacheWarning, match="refused"):
        again = _train(cache, calls=calls)
    assert len(calls) == 15 and not again.history.from_cache
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in again.state_dict().items())
    moved = [p for p in tmp_path.iterdir() if ".rejected-" in p.name]
    assert len(moved) == 1 and moved[0].read_bytes() == tampered  # kept for inspection, not deleted
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert cache.load(first.history.key) is not None  # the fresh entry is valid
    assert sorted(_files(tmp_path)) == sorted(["notes.txt", path.name, moved[0].name])


def test_weights_of_another_architecture_are_refused_by_train_score(tmp_path):
    cache = Cache(tmp_path)
    first = _train(cache)
    entry = cache.load(first.history.key)
    bad = {k: v for k, v in entry["state_dict"].items() if not k.startswith("net.out")}
    cache.save(first.history.key, bad, entry["meta"])
    with pytest.warns(CacheWarning, match="do not fit"):
        again = _train(cache)
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in again.state_dict().items())
