"""What keeps a run alive: the divergence guard, crash-safe checkpoints and exact resume.

- The divergence guard keeps an in-memory copy of the last good model and optimiser; on a
  NaN/Inf loss or a spike far above the running mean it rolls back, halves the learning rate
  and carries on (the reports saw 0.02 -> 0.84 -> 1.74 jumps and cut the rate by hand).
- The checkpoint is written atomically after every epoch, so a kill at any moment leaves
  the previous one intact, and it is read with ``weights_only=True``.
- Batches and the learning rate are pure functions of the iteration, so a checkpoint needs
  only the networks, optimisers, the torch RNG and ``RunState`` for a resumed run to end
  with the weights of an uninterrupted one.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from srlab.zoo.weights import atomic_replace

__all__ = ["CHECKPOINT", "RunState", "Stateful", "Guard", "refuse_to_overwrite",
           "clear_interrupted_writes", "save_checkpoint", "load_checkpoint"]

CHECKPOINT = "checkpoint.pt"


class Stateful(Protocol):
    """A network or optimiser: what a checkpoint saves and restores."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> Any: ...


@dataclass
class RunState:
    """The run's bookkeeping that a checkpoint holds beside the tensors."""

    iteration: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per epoch (metrics.csv)
    best: tuple[float, float, int] = (-1.0, 0.0, 0)  # val PSNR, SSIM, epoch
    seconds: float = 0.0  # training time so far, over every segment
    # (precision, threads) from each iteration on where a resume changed them
    segments: list[dict[str, Any]] = field(default_factory=list)
    lr_scale: float = 1.0  # halved by each rollback
    rollbacks: int = 0
    loss_avg: float | None = None  # running mean of the loss, for the spike test

    def continue_with(self, setting: dict[str, Any]) -> None:
        """Open a new segment when a resumed run runs with another precision or threads."""
        if {k: self.segments[-1][k] for k in setting} != setting:
            self.segments.append({"from": self.iteration, **setting})


class Guard:
    """Divergence guard: rolls ``model`` and ``opt`` back to the last good state."""

    def __init__(self, model: nn.Module, opt: torch.optim.Optimizer, state: RunState, *,
                 factor: float, every: int, log: Callable[[str], None]) -> None:
        self.model, self.opt, self.state, self.log = model, opt, state, log
        self.factor, self.every = factor, every
        self.good = self._copy()

    def rolled_back(self, loss: float, it: int) -> bool:
        """True when ``loss`` is not finite or spikes above ``factor`` x the running mean;
        the guard has then rolled back and halved the rate, and the step must be skipped."""
        avg = self.state.loss_avg
        spike = avg is not None and loss > self.factor * avg and it > 20
        if math.isfinite(loss) and not spike:
            return False
        self._roll_back()
        self.log(f"divergence guard: loss {loss:.4g} at iteration {it} (running mean "
                 f"{avg if avg is not None else float('nan'):.4g}); rolled back, "
                 f"learning rate x{self.state.lr_scale:g}")
        return True

    def stepped(self, loss: float, it: int) -> None:
        """After the good step of iteration ``it``: update the running mean, and every
        ``every`` iterations keep the new state as the last good one."""
        avg = self.state.loss_avg
        self.state.loss_avg = loss if avg is None else 0.98 * avg + 0.02 * loss
        if (it + 1) % self.every == 0:
            self.good = self._copy()

    def check_weights(self, it: int) -> None:
        """Before anything is saved: roll back weights the last step made non-finite."""
        if all(torch.isfinite(p).all() for p in self.model.parameters()):
            return
        self._roll_back()
        self.log(f"divergence guard: non-finite weights at iteration {it}; rolled back, "
                 f"learning rate x{self.state.lr_scale:g}")

    def _copy(self) -> dict[str, Any]:
        return {"model": copy.deepcopy(self.model.state_dict()),
                "opt": copy.deepcopy(self.opt.state_dict())}

    def _roll_back(self) -> None:
        self.model.load_state_dict(self.good["model"])
        self.opt.load_state_dict(self.good["opt"])
        self.state.lr_scale *= 0.5
        self.state.rollbacks += 1


def refuse_to_overwrite(run_dir: Path, resume: bool) -> None:
    """A run directory with a checkpoint is continued with ``resume`` or left alone."""
    if not resume and (run_dir / CHECKPOINT).exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass --resume to continue it "
                              "or choose another run.name")


def clear_interrupted_writes(run_dir: Path) -> None:
    """Remove the temp files a kill during an atomic write left behind."""
    for stale in run_dir.glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def save_checkpoint(path: Path, state: RunState, parts: dict[str, Stateful]) -> None:
    """Write ``parts`` (model, optimiser, EMA, discriminator...), the torch RNG and ``state``
    atomically: a kill at any moment leaves the previous checkpoint intact."""
    ck = {name: part.state_dict() for name, part in parts.items()}
    ck.update({"torch_rng": torch.get_rng_state(), "iteration": state.iteration,
               "lr_scale": state.lr_scale, "rollbacks": state.rollbacks,
               "rows": json.dumps(state.rows), "seconds": state.seconds,
               "best": list(state.best), "loss_avg": state.loss_avg,
               "segments": json.dumps(state.segments)})
    atomic_replace(path, lambda tmp: torch.save(ck, tmp))


def load_checkpoint(path: Path, parts: dict[str, Stateful]) -> RunState:
    """Restore ``parts`` and the torch RNG from ``path``; the run's state to continue from.

    Our own checkpoint, still read with weights_only=True: a planted file cannot run code."""
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure means "not a checkpoint we wrote"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ValueError(f"cannot resume: {path} is not a readable srlab checkpoint ({first})") \
            from None
    for name, part in parts.items():
        part.load_state_dict(ck[name])
    torch.set_rng_state(ck["torch_rng"])
    # checkpoints from before segments were recorded: the earlier part is unknown
    segments = (json.loads(ck.get("segments", "null"))
                or [{"from": 0, "bf16": None, "threads": None}])
    return RunState(iteration=ck["iteration"], rows=json.loads(ck["rows"]),
                    best=tuple(ck["best"]), seconds=ck["seconds"], segments=segments,
                    lr_scale=ck["lr_scale"], rollbacks=ck["rollbacks"],
                    loss_avg=ck["loss_avg"])
