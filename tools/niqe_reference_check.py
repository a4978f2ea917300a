"""Check srlab's NIQE against BasicSR's reference implementation, feature by feature.

srlab ships its own pristine model, so its absolute NIQE values are not the published ones;
what can be checked is the algorithm. This runs BasicSR's ``basicsr/metrics/niqe.py``
(which its README says matches the MATLAB release: 5.7296 on its ``tests/data/baboon.png``,
Set14's baboon) and srlab's ``image.niqe`` on the same images, both with the MATLAB
release's pristine model that BasicSR ships (``niqe_pris_params.npz``, read with
``allow_pickle=False``), and prints the largest per-block feature difference and both
scores. Nothing of BasicSR is copied into srlab; it is read from a folder you fetch:

    pip download basicsr==1.4.2 --no-deps --no-build-isolation -d /tmp/ref
    tar xzf /tmp/ref/basicsr-1.4.2.tar.gz -C /tmp/ref
    python tools/niqe_reference_check.py /tmp/ref/basicsr-1.4.2 IMAGE [IMAGE ...]

Needs SciPy, OpenCV and torch (BasicSR's imports), which the dev environment has.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import numpy as np


def _basicsr_niqe(root: Path) -> types.ModuleType:
    """basicsr.metrics.niqe without running basicsr/__init__.py (which imports its whole
    training stack): the packages are stubbed so only the metric's own imports load."""
    import scipy.ndimage

    sys.modules.setdefault("scipy.ndimage.filters", scipy.ndimage)  # removed in new SciPy
    for name, sub in (("basicsr", ""), ("basicsr.utils", "utils"), ("basicsr.metrics",
                                                                   "metrics")):
        mod = types.ModuleType(name)
        mod.__path__ = [str(root / "basicsr" / sub)]
        sys.modules[name] = mod
    color = importlib.import_module("basicsr.utils.color_util")
    sys.modules["basicsr.utils"].bgr2ycbcr = color.bgr2ycbcr  # what metric_util imports
    return importlib.import_module("basicsr.metrics.niqe")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("basicsr", type=Path, help="an extracted basicsr source folder")
    ap.add_argument("images", type=Path, nargs="+")
    args = ap.parse_args()

    from srlab.image import niqe as nq
    from srlab.image.datasets import load_hr

    ref = _basicsr_niqe(args.basicsr)
    params = np.load(args.basicsr / "basicsr" / "metrics" / "niqe_pris_params.npz",
                     allow_pickle=False)
    matlab = nq.NiqeModel(params["mu_pris_param"].ravel(), params["cov_pris_param"])
    window = params["gaussian_window"]
    print(f"MATLAB 7x7 window vs srlab's separable one: max difference "
          f"{np.abs(np.outer(nq._G, nq._G) - window).max():.1e}")
    print("| image | blocks | max feature difference (scale 1) | BasicSR NIQE | srlab NIQE |")
    print("|---|---|---|---|---|")
    for path in args.images:
        rgb = load_hr(path)
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[..., None], 3, axis=2)
        theirs = ref.calculate_niqe(rgb[..., ::-1].copy(), 0, input_order="HWC",
                                    convert_to="y")
        ours = nq.niqe(rgb, matlab)
        # BasicSR's per-block features on its own MSCN of srlab's luma (the same plane:
        # both round BT.601 Y), against srlab's first-scale features
        y = nq.luma(rgb)
        h, w = y.shape[0] // 96 * 96, y.shape[1] // 96 * 96
        y = y[:h, :w]
        mu = ref.convolve(y, window, mode="nearest")
        sigma = np.sqrt(np.abs(ref.convolve(y * y, window, mode="nearest") - mu * mu))
        mscn = (y - mu) / (sigma + 1)
        theirs_f = np.array([ref.compute_feature(mscn[i:i + 96, j:j + 96])
                             for j in range(0, w, 96) for i in range(0, h, 96)])
        ours_f = nq.block_features(rgb)[0][:, :18]
        diff = np.nanmax(np.abs(theirs_f - ours_f))
        print(f"| {path.name} | {len(ours_f)} | {diff:.1e} | {theirs:.4f} | {ours:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
