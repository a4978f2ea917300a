"""The zoo as shipped (zoo.catalog): one descriptor per (model, scale), one default, one
name/scale check for every face, and the one tile policy (api.TilePolicy)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from srlab import batch, cli
from srlab.api import TILE_POLICY, TilePolicy, load_model
from srlab.zoo import catalog, weights
from srlab.zoo.registry import MODELS, ChoiceError, UnknownModelError, default_model
from srlab.zoo.weights import read_weights, shipped_weights_path

# ------------------------------------------------------------------ descriptors


def test_every_pair_has_one_uniform_descriptor():
    entries = {e.name: e for e in catalog.model_catalog()}
    assert set(entries) == {*MODELS, "auto"}
    for name, spec in MODELS.items():
        assert entries[name].scales == sorted(spec.scales)
        for s, v in entries[name].variants.items():
            assert (v.name, v.scale) == (name, s)
            assert v.kind == catalog.KIND[spec.family]
            assert v.in_channels in (1, 3)
            assert v.supports.ensemble and v.supports.tiling
            shipped = shipped_weights_path(name, s)
            assert v.path == (shipped if shipped.is_file() else None)
            assert v.trained == (v.classical or (v.meta is not None and v.meta.trained))


def test_span_descriptor_reads_the_weights_header():
    v = catalog.variant("span", 4)
    _, meta = read_weights(shipped_weights_path("span", 4))
    assert meta is not None
    assert v.kind == "main" and v.trained and not v.classical
    assert v.params == meta.params and v.meta == meta
    assert v.set5_psnr == pytest.approx(meta.metrics["Set5"]["psnr"])
    assert v.in_channels == 1  # luma network: colour comes from bicubic
    assert v.supports.denoise  # span-real ships at x4 too
    assert load_model("span", 4).in_channels == v.in_channels


def test_classical_descriptor():
    v = catalog.variant("bicubic", 2)
    assert (v.kind, v.classical, v.trained, v.params, v.path) == ("baseline", True, True, 0,
                                                                   None)
    assert v.set5_psnr is None and not v.supports.denoise


def test_a_corrupt_file_is_described_not_raised(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    (tmp_path / "espcn_x2.safetensors").write_bytes(b"not a safetensors file")
    v = catalog.variant("espcn", 2)
    assert v.corrupt and v.meta is None and not v.trained
    assert v.path == tmp_path / "espcn_x2.safetensors"
    row = next(r for r in cli.models.model_rows() if r["model"] == "espcn")
    assert "x2(corrupt)" in row["weights"]


def test_shipped_models_are_the_files():
    at4 = catalog.shipped_models(4)
    assert "span" in at4 and "bicubic" not in at4
    assert at4 == [n for n in MODELS if shipped_weights_path(n, 4).is_file()]
    assert set(at4) <= set(catalog.shipped_models())


def test_models_table_reads_the_catalog():
    rows = {r["model"].rstrip(" *"): r for r in cli.models.model_rows()}
    assert list(rows) == list(MODELS)
    span = catalog.variant("span", 4)
    assert f"x4 {span.set5_psnr:.2f}" in rows["span"]["Set5 PSNR"]
    assert rows["span"]["model"] == "span *"  # the default model


# ------------------------------------------------------------------ the default, the check


def test_default_name():
    assert catalog.default_name(4) == "auto"  # span and span-real ship at x4
    assert catalog.default_name(4, allow_auto=False) == default_model(4)
    assert catalog.default_name(3) == default_model(3)  # no span-real at x3
    assert catalog.resolve(None, 4) == "auto"
    assert catalog.resolve(None, 4, allow_auto=False) == default_model(4)


AUTO_MISSING = ("auto needs the span and span-real weights at x4, which are not shipped; "
                "name a model instead")


@pytest.mark.parametrize("name, scale, kwargs, message", [
    ("fcn-multi", 3, {}, "model 'fcn-multi' supports scales [2, 4], not 3"),
    ("auto", 3, {}, "auto works at scales [2, 4], not 3"),
    ("auto", 4, {"allow_auto": False}, "'auto' chooses a network per image; name one network "
                                       "here"),
])
def test_resolve_refuses_in_one_sentence(name, scale, kwargs, message):
    with pytest.raises(ChoiceError) as info:
        catalog.resolve(name, scale, **kwargs)
    assert str(info.value) == message


def test_resolve_unknown_and_untrained():
    with pytest.raises(UnknownModelError, match="unknown model 'nope' \\(known: "):
        catalog.resolve("nope", 4)
    untrained = next(e for e in catalog.model_catalog() if not e.trained and e.name != "auto")
    s = untrained.scales[0]
    assert catalog.resolve(untrained.name, s) == untrained.name  # the CLI runs it (warns)
    with pytest.raises(ChoiceError, match="has no trained weights"):
        catalog.resolve(untrained.name, s, trained_only=True)


def test_resolve_auto_without_its_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "SHIPPED_DIR", tmp_path)
    with pytest.raises(ChoiceError) as info:
        catalog.resolve("auto", 4)
    assert str(info.value) == AUTO_MISSING
    assert catalog.default_name(4) == default_model(4)


def test_every_face_says_the_same_sentence(tmp_path, capsys):
    """CLI, batch, web and the Python API refuse a bad pair with the catalogue's words."""
    from srlab.web import state

    message = "model 'fcn-multi' supports scales [2, 4], not 3"
    src = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src)
    # (without a weights file, any factor runs: fcn-multi x4, resized to 3x; image.outsize)
    assert cli.main(["upscale", str(src), "-m", "fcn-multi", "-s", "3", "--weights",
                     str(tmp_path / "w.safetensors")]) == 2
    assert capsys.readouterr().err.strip() == f"srlab: error: {message}"
    with pytest.raises(batch.UsageError, match=message.replace("[", "\\[")):
        batch.upscale_files([src], batch.UpscaleOptions(model="fcn-multi", scale=3))
    with pytest.raises(state.WebError) as info:
        state.Options("fcn-multi", 3).checked()
    assert info.value.message == message
    with pytest.raises(ValueError) as err:
        load_model("fcn-multi", 3)
    assert str(err.value) == message
    assert not (tmp_path / "a_x3.png").exists()


def test_srlab_upscale_resolves_the_model_once(tmp_path, monkeypatch, capsys):
    calls: list[tuple] = []
    real_resolve, real_default = catalog.resolve, catalog.default_name

    def resolve(*args, **kwargs):
        calls.append(("resolve", args))
        return real_resolve(*args, **kwargs)

    def default_name(*args, **kwargs):
        calls.append(("default", args))
        return real_default(*args, **kwargs)

    monkeypatch.setattr(catalog, "resolve", resolve)
    monkeypatch.setattr(catalog, "default_name", default_name)
    src = tmp_path / "a.png"
    Image.fromarray(np.full((12, 10, 3), 128, np.uint8)).save(src)
    code = cli.main(["upscale", str(src), "-s", "3", "--backend", "torch", "-q"])
    assert code == 0, capsys.readouterr().err
    # one resolve; default_name is also read per scale by catalog.run_scales (--scale plans)
    assert [c for c in calls if c[0] == "resolve"] == [("resolve", (None, 3))], calls
    assert calls[-1] == ("default", (3,)), calls
    assert Image.open(tmp_path / "a_x3.png").size == (30, 36)


def test_upscale_files_takes_one_options_value(tmp_path):
    src = tmp_path / "a.png"
    Image.fromarray(np.full((6, 5, 3), 9, np.uint8)).save(src)
    opts = batch.UpscaleOptions(model="nearest", scale=2, output=tmp_path / "out")
    res = batch.upscale_files([src], opts)
    assert res.ok and res.written[0].target == tmp_path / "out" / "a.png"
    res = batch.upscale_files([src], opts, scale=3)  # a field replaced for one call
    assert res.ok and res.written[0].out_size == (15, 18)


# ------------------------------------------------------------------ the one tile policy


def test_tile_policy_is_the_cli_rule():
    assert TILE_POLICY == TilePolicy(tile=512, above_pixels=2_000_000)
    assert TILE_POLICY.tile_for(1000, 2000) == 0  # 2 Mpx exactly: one pass
    assert TILE_POLICY.tile_for(1001, 2000) == 512
    assert TILE_POLICY.tile_for(10, 10, 64) == 64  # a size given wins
    assert TILE_POLICY.count(1000, 2000) == 1
    assert TILE_POLICY.count(1001, 2000) == 2 * 4
    assert TILE_POLICY.count(100, 70, 32) == 4 * 3
    assert TILE_POLICY.tile_for(6000, 8000) == 512  # the huge speed run's image


def test_web_uses_the_same_rule_with_its_own_sizes():
    from srlab.web import state

    assert state.TILES == TilePolicy(tile=256, above_pixels=2 * 256 * 256)
    assert state.tile_for(362, 362, 0) == 0 and state.tile_for(363, 362, 0) == 256
    assert state.tile_for(5000, 5000, 64) == 64
    assert state.tiles_of(600, 300, 0) == 3 * 2  # width, height


def test_cli_help_and_defaults_say_what_the_policy_and_catalogue_do():
    """--help cannot import torch, so it spells the figures out: they must stay the same."""
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    upscale = sub.choices["upscale"]
    tile = next(a for a in upscale._actions if a.dest == "tile")
    mpx = TILE_POLICY.above_pixels / 1e6
    assert f"images above {mpx:g} Mpx use {TILE_POLICY.tile}" in tile.help
    scale = next(a for a in upscale._actions if a.dest == "scale")
    assert scale.default == catalog.DEFAULT_SCALE


def test_models_table_counts_the_weights_that_ship_and_names_their_scale():
    """vdsr-5 ships only at x2 (1 channel): its row must not show the untrained x4 RGB build."""
    from srlab.cli.models import model_rows
    from srlab.zoo.weights import read_weights, shipped_weights_path

    rows = {r["model"].rstrip(" *"): r for r in model_rows()}
    _, meta = read_weights(shipped_weights_path("vdsr-5", 2))
    assert rows["vdsr-5"]["params"] == f"{meta.params / 1e3:.1f}K (x2)"
    _, meta = read_weights(shipped_weights_path("span", 4))
    assert rows["span"]["params"] == f"{meta.params / 1e3:.1f}K"
