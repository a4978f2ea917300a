"""OpenCV's ``dnn_superres`` networks as peers: what a user would pick instead of srlab.

Pretrained TensorFlow graphs from the shared folder (``peers/opencv-dnn-superres``), run
through ``cv2.dnn_superres`` and scored or timed beside our models, never shipped as ours.
A peer that cannot run here raises ``PeerUnavailable`` with a one-line reason (the registry
of every peer, OpenCV's and the others, is ``srlab.eval.peers``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from srlab.eval.peers.base import PeerUnavailable
from srlab.image.datasets import shared_dir

__all__ = ["OPENCV_PEERS", "opencv_peer", "peer_weights"]

# registry-style name -> (algorithm, file prefix)
OPENCV_PEERS = {
    "opencv-espcn": ("espcn", "ESPCN"),
    "opencv-fsrcnn": ("fsrcnn", "FSRCNN"),
    "opencv-fsrcnn-small": ("fsrcnn", "FSRCNN-small"),
}

ArrayFn = Callable[[np.ndarray], np.ndarray]


def peer_weights(name: str, scale: int) -> Path:
    """Where the peer's graph for ``scale`` lives (it may be missing)."""
    return shared_dir() / "peers" / "opencv-dnn-superres" / f"{OPENCV_PEERS[name][1]}_x{scale}.pb"


def _opencv_failure(version: str, exc: Exception) -> str:
    """Why OpenCV could not load a peer. OpenCV 5's dnn engine no longer reads TensorFlow
    graphs (its readModel of a .pb fails in the ONNX importer), hence pyproject's opencv<5."""
    if _major(version) >= 5:
        return f"OpenCV {version} cannot read TensorFlow .pb models (needs opencv<5)"
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
    detail = lines[0].split(" error: ", 1)[-1]
    return f"OpenCV {version} could not load the model: {detail}"


def _major(version: str) -> int:
    """4 for '4.14.0', 5 for '5.1.0-dev'; 0 when unreadable (then no 'needs opencv<5' claim)."""
    head = version.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def opencv_peer(name: str, scale: int) -> ArrayFn:
    """uint8 array -> uint8 array through the peer ``name`` (a key of ``OPENCV_PEERS``)."""
    algo, prefix = OPENCV_PEERS[name]
    what = f"OpenCV {prefix} peer unavailable"
    try:
        import cv2
    except ImportError:
        raise PeerUnavailable(f"{what}: OpenCV is not installed "
                              "(pip install 'opencv-contrib-python-headless<5')") from None
    if not hasattr(cv2, "dnn_superres"):
        raise PeerUnavailable(f"{what}: cv2.dnn_superres is missing (needs opencv-contrib)")
    path = peer_weights(name, scale)
    if not path.is_file():
        raise PeerUnavailable(f"{what}: weights not found at {path} (set SRLAB_SHARED)")
    sr = cv2.dnn_superres.DnnSuperResImpl_create()
    try:
        sr.readModel(str(path))
        sr.setModel(algo, scale)
        sr.upsample(np.zeros((8, 8, 3), np.uint8))  # a dnn may fail only at its first pass
    except cv2.error as exc:
        raise PeerUnavailable(f"{what}: {_opencv_failure(cv2.__version__, exc)}") from None

    def run(img: np.ndarray) -> np.ndarray:
        if img.ndim == 2:
            out = sr.upsample(cv2.cvtColor(img, cv2.COLOR_GRAY2BGR))
            return cv2.cvtColor(out, cv2.COLOR_BGR2GRAY)
        out = sr.upsample(np.ascontiguousarray(img[..., ::-1]))
        return np.ascontiguousarray(out[..., ::-1])

    return run
