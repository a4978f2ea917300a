"""Weights files from strangers: code-executing pickles, corrupt safetensors, lying metadata.

``--weights FILE`` and ``load_model(weights=...)`` take files users download. A pickle-based
``.pth`` can run arbitrary code the moment it is unpickled, so the first property is that such
a file is refused *without running* — the payloads below create a marker file when
unpickled, the tests assert it never appears, and a control test proves the payloads are
live. The others: a damaged or truncated safetensors file, or one whose metadata names
another model, scale or architecture, is a ``WeightsError`` with one readable line (the CLI
prints it as one ``srlab: error:`` line), never a traceback, a crash or a giant allocation.
"""

from __future__ import annotations

import json
import pathlib
import pickle
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from test_cli import assert_one_line_error, run

from srlab.api import load_model
from srlab.image.imageio import save_image
from srlab.zoo.registry import build_model
from srlab.zoo.weights import WeightsError, WeightsMeta, read_weights, save_weights

NAME, SCALE, KWARGS = "span", 2, {"feat": 8, "blocks": 1}


class Payload:
    """Unpickling this calls ``Path.touch(marker)``: stands in for any code an attacker wants."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_payload(path: Path, marker: Path, kind: str) -> Path:
    """``zip``: torch.save's format with a payload beside real tensors; ``raw``: a bare
    pickle stream (the legacy format)."""
    if kind == "zip":
        torch.save({"head.weight": torch.zeros(8, 3, 3, 3), "x": Payload(marker)}, path)
    else:
        path.write_bytes(pickle.dumps({"head.weight": Payload(marker)}, protocol=2))
    return path


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "in.png"
    save_image(np.full((6, 8, 3), 90, np.uint8), path)
    return path


def _state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    net = build_model(NAME, SCALE, **KWARGS)
    return {k: v.detach().contiguous() for k, v in net.state_dict().items()}


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "good.safetensors"
    net = build_model(NAME, SCALE, **KWARGS)
    net.load_state_dict(_state())
    save_weights(net, WeightsMeta(arch=NAME, scale=SCALE, kwargs=dict(KWARGS)), path)
    return path


def _assert_weights_error(path: Path, *fragments: str) -> str:
    with pytest.raises(WeightsError) as err:
        load_model(NAME, SCALE, weights=path)
    msg = str(err.value)
    assert "\n" not in msg and msg.strip(), msg
    for frag in fragments:
        assert frag in msg, (frag, msg)
    return msg


def _assert_cli_refuses(capsys, image: Path, weights: Path, *fragments: str) -> None:
    out = image.parent / "out.png"
    code, _, err = run(capsys, "upscale", image, "-o", out, "-m", NAME, "-s", str(SCALE),
                       "--weights", weights)
    assert_one_line_error(code, err, 1, *fragments)
    assert not out.exists()


# ------------------------------------------------------------------ code-executing pickles


@pytest.mark.parametrize("kind", ["zip", "raw"])
@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt", ".safetensors"])
def test_pickle_payload_is_refused_without_running(capsys, tmp_path, image, kind, suffix,
                                                   record_property):
    marker = tmp_path / "PWNED"
    evil = write_payload(tmp_path / f"model{suffix}", marker, kind)
    _assert_weights_error(evil, evil.name)
    assert not marker.exists(), "the pickle payload ran inside load_model"
    _assert_cli_refuses(capsys, image, evil, evil.name)
    assert not marker.exists(), "the pickle payload ran inside srlab upscale"
    record_property("reliability", {"weights_case": f"pickle-{kind}{suffix}", "refused": True})


def test_pickle_checkpoint_is_refused_on_resume(tmp_path, image_folder):
    """A planted run/checkpoint.pt is read with weights_only=True by --resume too."""
    from test_train import _cfg

    from srlab.train.loop import train

    marker = tmp_path / "PWNED"
    run_dir = tmp_path / "runs" / "run"
    run_dir.mkdir(parents=True)
    write_payload(run_dir / "checkpoint.pt", marker, "zip")
    with pytest.raises(ValueError, match="not a readable srlab checkpoint"):
        train(_cfg(image_folder, tmp_path / "runs"), resume=True, log=lambda _: None)
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["zip", "raw"])
def test_control_the_payloads_are_live(tmp_path, kind):
    """Without weights_only the same files do run code: the refusals above are real."""
    marker = tmp_path / "PWNED"
    path = write_payload(tmp_path / "model.pth", marker, kind)
    if kind == "zip":
        torch.load(path, weights_only=False)
    else:
        pickle.loads(path.read_bytes())  # noqa: S301 - deliberately unsafe, in a temp dir
    assert marker.exists()


# ------------------------------------------------------------------ corrupt safetensors


def _header_len(data: bytes) -> int:
    return struct.unpack("<Q", data[:8])[0]


def test_good_file_loads(good_file):
    up = load_model(NAME, SCALE, weights=good_file)
    assert up.meta is not None and up.meta.arch == NAME


def test_truncated_safetensors(capsys, tmp_path, image, good_file, record_property):
    data = good_file.read_bytes()
    n = _header_len(data)
    offsets = sorted({0, 1, 7, 8, 8 + n // 2, 8 + n - 1, 8 + n, 8 + n + 1,
                      (8 + n + len(data)) // 2, len(data) - 4, len(data) - 1})
    for off in offsets:
        path = tmp_path / f"cut{off}.safetensors"
        path.write_bytes(data[:off])
        with pytest.raises(WeightsError) as err:
            read_weights(path)
        assert "\n" not in str(err.value) and path.name in str(err.value), (off, err.value)
        _assert_weights_error(path, path.name)
        _assert_cli_refuses(capsys, image, path, path.name)
    record_property("reliability", {"weights_truncations": len(offsets)})


def test_every_header_byte_flip_is_refused_or_harmless(tmp_path, good_file, record_property):
    """Flip each header byte (xor 0x01 keeps ASCII and turns digits into other digits:
    shapes, offsets, lengths; xor 0xFF makes invalid UTF-8). The result must be a
    WeightsError, or a model whose tensors are exactly the original ones (a flip inside a
    free-text metadata field such as the recipe changes nothing that matters)."""
    data = good_file.read_bytes()
    end = 8 + _header_len(data)
    original = _state()
    refused = harmless = 0
    path = tmp_path / "flipped.safetensors"
    t0 = time.perf_counter()
    for pos in range(end):
        for mask in (0x01, 0xFF):
            flipped = bytearray(data)
            flipped[pos] ^= mask
            path.write_bytes(bytes(flipped))
            try:
                up = load_model(NAME, SCALE, weights=path, fuse=False)
            except WeightsError as exc:
                assert "\n" not in str(exc), (pos, mask, exc)
                refused += 1
                continue
            got = up.net.state_dict()
            assert got.keys() == original.keys(), (pos, mask)
            for k, v in original.items():
                assert torch.equal(got[k], v), (pos, mask, k)
            harmless += 1
    assert refused > 0 and refused + harmless == 2 * end
    record_property("reliability", {"weights_header_flips": 2 * end,
                                    "weights_header_flips_refused": refused,
                                    "weights_header_flips_harmless": harmless,
                                    "seconds": round(time.perf_counter() - t0, 1)})


# ------------------------------------------------------------------ lying metadata


def _with_meta(meta: object, state: dict[str, torch.Tensor] | None = None
               ) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / "w.safetensors"
        text = meta if isinstance(meta, str) else json.dumps(meta)
        save_file(state if state is not None else _state(), str(path), {"srlab": text})
        return path

    return make


def _meta(**changes: object) -> dict[str, object]:
    base = {"arch": NAME, "scale": SCALE, "kwargs": dict(KWARGS), "params": 0, "recipe": "",
            "train_seconds": 0.0, "metrics": {}, "license": "MIT", "trained": True}
    return {**base, **changes}


def _foreign_pth(folder: Path) -> Path:
    path = folder / "foreign.pth"
    torch.save({k: v[..., :1] if v.ndim == 4 else v for k, v in _state().items()}, path)
    return path


def _dropped(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in state.items() if k != "tail.bias"}


BAD_META: dict[str, tuple[Callable[[Path], Path], str]] = {
    "other arch": (_with_meta(_meta(arch="espcn")), "holds espcn x2, not span x2"),
    "other scale": (_with_meta(_meta(scale=4)), "holds span x4, not span x2"),
    "shapes do not fit kwargs": (_with_meta(_meta(kwargs={"feat": 16, "blocks": 1})),
                                 "does not fit the model: shape mismatch"),
    "tensor missing": (_with_meta(_meta(), _dropped(_state())), "missing ['tail.bias']"),
    "tensor extra": (_with_meta(_meta(), {**_state(), "extra.weight": torch.zeros(2)}),
                     "unexpected ['extra.weight']"),
    "unknown constructor argument": (_with_meta(_meta(kwargs={"colour": "red"})),
                                     "cannot be built"),
    "kwargs not a mapping": (_with_meta(_meta(kwargs=[1, 2])), "cannot be built"),
    "enormous architecture": (_with_meta(_meta(kwargs={"feat": 10**6, "blocks": 1})),
                              "does not fit the model"),
    "negative size": (_with_meta(_meta(kwargs={"feat": -1, "blocks": 1})), "cannot be built"),
    "metadata not JSON": (_with_meta("{not json"), "not a valid srlab record"),
    "metadata unknown field": (_with_meta(_meta(evil=1)), "not a valid srlab record"),
    "metadata a list": (_with_meta("[1, 2]"), "not a valid srlab record"),
    "foreign .pth with wrong shapes": (_foreign_pth, "does not fit the model"),
}


@pytest.mark.parametrize("case", list(BAD_META))
def test_lying_metadata_is_one_clear_error(capsys, tmp_path, image, case, record_property):
    make, fragment = BAD_META[case]
    path = make(tmp_path)
    t0 = time.perf_counter()
    _assert_weights_error(path, path.name, fragment)
    assert time.perf_counter() - t0 < 30  # refused before building anything big
    _assert_cli_refuses(capsys, image, path, path.name, fragment)
    record_property("reliability", {"weights_case": case, "refused": True})
