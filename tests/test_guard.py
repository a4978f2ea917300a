"""srlab.train.guard on a one-layer net: the spike rule, rollback, and a checkpoint round trip."""

from __future__ import annotations

import torch
from torch import nn

from srlab.train.guard import Guard, RunState, load_checkpoint, save_checkpoint


def _net_and_opt() -> tuple[nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(0)
    net = nn.Linear(2, 1)
    return net, torch.optim.SGD(net.parameters(), lr=0.1)


def test_a_spike_after_warmup_rolls_back_and_halves_the_rate():
    net, opt = _net_and_opt()
    state, lines = RunState(), []
    guard = Guard(net, opt, state, factor=4.0, every=5, log=lines.append)
    for it in range(25):  # after 25 steps the guard keeps the state (every 5)
        assert not guard.rolled_back(1.0, it)
        guard.stepped(1.0, it)
    good = net.weight.detach().clone()
    with torch.no_grad():
        net.weight.add_(1.0)
    guard.stepped(1.0, 25)  # 26 steps: not a multiple of 5, so this state is not kept
    assert guard.rolled_back(4.5, 26)  # 4.5 > 4 x the running mean of 1
    assert state.lr_scale == 0.5 and state.rollbacks == 1
    assert torch.equal(net.weight, good)
    assert "divergence guard: loss 4.5 at iteration 26" in lines[0]


def test_no_spike_test_in_the_first_iterations_but_nan_always_rolls_back():
    net, opt = _net_and_opt()
    state = RunState(loss_avg=0.01)
    guard = Guard(net, opt, state, factor=4.0, every=5, log=lambda _: None)
    assert not guard.rolled_back(1.0, 20)
    assert guard.rolled_back(float("nan"), 3)
    assert state.rollbacks == 1


def test_checkpoint_round_trip_restores_parts_rng_and_state(tmp_path):
    net, opt = _net_and_opt()
    state = RunState(iteration=6, rows=[{"epoch": 1}], best=(30.0, 0.9, 1), seconds=2.5,
                     segments=[{"from": 0, "bf16": False, "threads": 1}], lr_scale=0.5,
                     rollbacks=1, loss_avg=0.25)
    save_checkpoint(tmp_path / "ck.pt", state, {"model": net, "opt": opt})
    expected = torch.rand(3)
    other = nn.Linear(2, 1)
    other_opt = torch.optim.SGD(other.parameters(), lr=0.1)
    back = load_checkpoint(tmp_path / "ck.pt", {"model": other, "opt": other_opt})
    assert back == state
    assert torch.equal(torch.rand(3), expected)  # the RNG continues where it was saved
    assert torch.equal(other.weight, net.weight)
