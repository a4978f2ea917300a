"""``srlab tune``: hyperparameter search with Optuna, over what the reports tuned by hand.

Searched: learning rate (log scale), weight decay (log scale), width/depth of the network
(only the constructor arguments the architecture has: ``feat``/``n1`` and ``blocks``/``depth``,
at half, equal and double the config's value), loss (l1 / mse / charbonnier) and optimiser
(adam / adamw / sgd). Each trial is a normal ``train()`` run (``runs/<name>/trial_NNN``) of
the config's length; its validation PSNR after every epoch goes to Optuna, whose
``MedianPruner`` stops trials running below the median of earlier trials at the same epoch,
so a CPU budget is spent on promising settings. All trials use the same validation split
(same seed), so their figures compare; confirm the winner on the benchmark sets, since picking
the best of N on one validation set is optimistic.

Results: ``runs/<name>/tune.md`` / ``tune.csv`` (one line per trial: parameters, best val
PSNR, state), rewritten after every trial, and ``tune.json`` with the best parameters as
``--set`` overrides for ``srlab train``.
"""

from __future__ import annotations

import copy
import csv
import inspect
import json
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srlab.train.config import Config

__all__ = ["tune", "TuneResult", "TrialRow", "search_space", "overrides_for"]

MISSING = "srlab tune needs the tune extra: pip install 'srlab[tune]'"
LOSSES = ("l1", "mse", "charbonnier")
OPTIMIZERS = ("adam", "adamw", "sgd")
WIDTH_ARGS = ("feat", "n1")  # constructor arguments searched as "channels"
DEPTH_ARGS = ("blocks", "depth")  # ... and as "blocks"


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ImportError(MISSING) from None
    return optuna


@dataclass
class TrialRow:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL | RUNNING
    best_psnr: float | None  # best validation PSNR reached (also for pruned trials)
    epochs: int  # epochs run
    seconds: float
    params: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class TuneResult:
    run_dir: Path
    best_params: dict[str, Any]
    best_psnr: float
    overrides: list[str]  # the best params as ``key=value`` for ``srlab train --set``
    trials: list[TrialRow]


def _arch_args(cfg: Config) -> dict[str, int]:
    """Searchable width/depth arguments of the model's constructor, with the config's values."""
    from srlab.zoo.registry import get_spec

    spec = get_spec(cfg.model.name)
    sig = inspect.signature(spec.builder)
    found = {}
    for name in WIDTH_ARGS + DEPTH_ARGS:
        p = sig.parameters.get(name)
        if p is None:
            continue
        value = cfg.model.kwargs.get(name, spec.kwargs.get(name, p.default))
        if isinstance(value, int) and not isinstance(value, bool):
            found[name] = value
    return found


def search_space(cfg: Config) -> dict[str, Any]:
    """The space ``tune`` searches for this config (names as Optuna parameters)."""
    space: dict[str, Any] = {"lr": (1e-5, 1e-2, "log"), "weight_decay": (1e-8, 1e-3, "log"),
                             "loss": LOSSES, "optimizer": OPTIMIZERS}
    for name, v in _arch_args(cfg).items():
        low = 2 if name == "depth" else (4 if name in WIDTH_ARGS else 1)
        space[name] = tuple(sorted({max(low, v // 2), v, 2 * v}))
    return space


def _suggest(trial, space: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for name, spec in space.items():
        if isinstance(spec[-1], str) and spec[-1] == "log":
            params[name] = trial.suggest_float(name, spec[0], spec[1], log=True)
        else:
            params[name] = trial.suggest_categorical(name, list(spec))
    return params


def _apply(cfg: Config, params: dict[str, Any]) -> Config:
    c = copy.deepcopy(cfg)
    for name, value in params.items():
        if name == "lr":
            c.optim.lr = float(value)
        elif name == "weight_decay":
            c.optim.weight_decay = float(value)
        elif name == "optimizer":
            c.optim.name = value
        elif name == "loss":
            c.loss.terms = {value: 1.0}
        else:
            c.model.kwargs = {**c.model.kwargs, name: value}
    return c


def overrides_for(params: dict[str, Any]) -> list[str]:
    """Parameters as ``srlab train --set`` assignments (YAML values, as load_config reads)."""
    out = []
    for name, value in params.items():
        if name == "lr":
            out.append(f"optim.lr={value:.4g}")
        elif name == "weight_decay":
            out.append(f"optim.weight_decay={value:.4g}")
        elif name == "optimizer":
            out.append(f"optim.name={value}")
        elif name == "loss":
            out.append(f"loss.terms={{{value}: 1.0}}")
        else:
            out.append(f"model.kwargs.{name}={value}")
    return out


def _train_with_reports(cfg: Config, report: Callable[[int, float], bool],
                        log: Callable[[str], None]):
    """train() with ``report(epoch, val_psnr) -> stop?`` called after every epoch."""
    from srlab.train.loop import train

    return train(cfg, resume=False, log=log, on_epoch=report)


def tune(cfg: Config, trials: int, *, timeout: float | None = None,
         log: Callable[[str], None] = print) -> TuneResult:
    """Search hyperparameters of ``cfg`` with ``trials`` training runs (or until ``timeout`` s).

    The timeout stops new trials from starting; a running trial finishes (or is pruned).
    """
    optuna = _optuna()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if trials < 1:
        raise ValueError(f"trials must be at least 1, not {trials}")
    root = Path(cfg.run.out_dir) / cfg.run.name
    if any(root.glob("trial_*/checkpoint.pt")):
        raise FileExistsError(f"{root} already holds tuning trials; choose another run.name")
    root.mkdir(parents=True, exist_ok=True)
    space = search_space(cfg)
    log(f"tune: {trials} trials over {', '.join(space)}; results in {root / 'tune.md'}")
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=cfg.run.seed),
        # small CPU budgets: judge after 3 finished trials, never on epoch 1 alone (steps are
        # 1-based epochs; MedianPruner skips steps < n_warmup_steps)
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=2),
    )
    rows: dict[int, TrialRow] = {}

    def objective(trial) -> float:
        params = _suggest(trial, space)
        tcfg = _apply(cfg, params)
        tcfg.run.name = f"{cfg.run.name}/trial_{trial.number:03d}"
        tcfg.run.progress = False
        row = rows[trial.number] = TrialRow(trial.number, "RUNNING", None, 0, 0.0, params)
        t0 = time.perf_counter()
        state = {"pruned": False}

        def report(epoch: int, psnr: float) -> bool:
            row.epochs = epoch
            row.best_psnr = psnr if row.best_psnr is None else max(row.best_psnr, psnr)
            trial.report(psnr, epoch)
            state["pruned"] = trial.should_prune()
            return state["pruned"]

        log(f"trial {trial.number}: " + " ".join(overrides_for(params)))
        try:
            sm = _train_with_reports(tcfg, report, log)
        except optuna.TrialPruned:
            row.state, row.seconds = "PRUNED", time.perf_counter() - t0
            raise
        except Exception as exc:
            row.state, row.seconds = "FAIL", time.perf_counter() - t0
            row.error = " ".join(str(exc).split())[:200]
            raise
        row.seconds = time.perf_counter() - t0
        if state["pruned"]:
            row.state = "PRUNED"
            raise optuna.TrialPruned(f"pruned at epoch {row.epochs}")
        row.state, row.best_psnr = "COMPLETE", sm.best_psnr
        return sm.best_psnr

    def after(study, trial) -> None:
        row = rows.get(trial.number)
        if row is not None:
            best = f"{row.best_psnr:.3f} dB" if row.best_psnr is not None else "-"
            log(f"trial {trial.number}: {row.state}, best val PSNR {best}, "
                f"{row.epochs} epochs, {row.seconds:.0f} s")
        _write(root, cfg, list(rows.values()), study)

    study.optimize(objective, n_trials=trials, timeout=timeout, callbacks=[after],
                   catch=(ValueError, RuntimeError))
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not done:
        raise RuntimeError(f"no trial completed (see {root / 'tune.md'})")
    best = study.best_trial
    result = TuneResult(run_dir=root, best_params=dict(best.params), best_psnr=float(best.value),
                        overrides=overrides_for(best.params), trials=list(rows.values()))
    log(f"best: trial {best.number}, val PSNR {best.value:.3f} dB; train with:\n  "
        + " ".join(f"--set {shlex.quote(o)}" for o in result.overrides))
    return result


def _write(root: Path, cfg: Config, rows: list[TrialRow], study) -> None:
    names = list(dict.fromkeys(k for r in rows for k in r.params))
    with open(root / "tune.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["trial", "state", "best_val_psnr", "epochs", "seconds", *names, "error"])
        for r in rows:
            w.writerow([r.number, r.state, "" if r.best_psnr is None else f"{r.best_psnr:.4f}",
                        r.epochs, f"{r.seconds:.1f}", *[r.params.get(n, "") for n in names],
                        r.error])

    def fmt(v: Any) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    try:
        best = study.best_trial
    except ValueError:  # no completed trial yet
        best = None
    lines = [f"# Hyperparameter search: {cfg.run.name}", "",
             f"model `{cfg.model.name}` x{cfg.model.scale}, {cfg.run.epochs} x "
             f"{cfg.run.iters_per_epoch} iterations per trial, Optuna TPE (seed "
             f"{cfg.run.seed}) + median pruning; best validation PSNR (Y) per trial.", "",
             "| trial | state | best val PSNR | epochs | seconds | " + " | ".join(names) + " |",
             "|" + "---|" * (5 + len(names))]
    for r in sorted(rows, key=lambda r: -(r.best_psnr if r.best_psnr is not None else -1e9)):
        psnr = "-" if r.best_psnr is None else f"{r.best_psnr:.3f}"
        if best is not None and r.number == best.number:
            psnr = f"**{psnr}**"
        state = r.state + (f" ({r.error})" if r.error else "")
        lines.append(f"| {r.number} | {state} | {psnr} | {r.epochs} | {r.seconds:.0f} | "
                     + " | ".join(fmt(r.params.get(n, "")) for n in names) + " |")
    info: dict[str, Any] = {"trials": [r.__dict__ for r in rows]}
    if best is not None:
        ov = overrides_for(best.params)
        lines += ["", f"Best: trial {best.number}, {best.value:.3f} dB. Train it with:", "",
                  "```", "srlab train CONFIG " + " ".join(f"--set {shlex.quote(o)}" for o in ov),
                  "```"]
        info.update(best_trial=best.number, best_psnr=best.value, best_params=best.params,
                    overrides=ov)
    (root / "tune.md").write_text("\n".join(lines) + "\n")
    (root / "tune.json").write_text(json.dumps(info, indent=2, default=str))
