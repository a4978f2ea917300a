"""What every peer shares: its descriptor and the one-line error of a peer that cannot run."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Peer", "PeerUnavailable"]


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here (its extra, its files or a working OpenCV missing), with
    the one-line reason: callers skip it (or stop with that line) instead of failing on a
    multi-line C++ error text or a traceback."""


@dataclass(frozen=True)
class Peer:
    """One peer: someone else's published upscaler, scored and timed beside srlab's models and
    never offered by ``srlab upscale``. ``params`` is None where the count is not known
    without the files (the ncnn peers count theirs from the installed graph, ``peer_params``)."""

    name: str  # the name srlab's commands take (-m NAME)
    family: str  # how it runs: "opencv" (cv2.dnn_superres) or "ncnn" (pip ncnn, CPU)
    source: str  # where the files come from
    scales: tuple[int, ...]
    licence: str  # of the weights and of the package that ships them, as found
    what: str  # one line: architecture, training, intended input
    params: int | None = None
