"""Convention ``ntire2022``: the official NTIRE 2022/2023 efficient-SR tool (``utils/model_summary.py`` of
ofsoundof/NTIRE2022_ESR, after K. Zhang's AIM 2020 script), reproduced rule for rule, quirks included.

- Only ``module(...)`` calls of modules inside the model are seen (the tool registers forward hooks on
  ``model.modules()``): functional calls (``F.conv2d``, ``torch.sigmoid``, ``x * y``, pixel shuffle,
  interpolation) count nothing.
- Types are matched with ``isinstance`` (subclasses count): Conv2d/ConvTranspose2d, BatchNorm2d, Linear,
  ReLU/PReLU/ELU/LeakyReLU/ReLU6. Conv1d/Conv3d and everything else count 0.
- Conv: ``prod(kernel) * in_channels * (out_channels // groups) * batch * prod(output spatial)`` per call, bias
  ignored. ConvTranspose2d uses the *output* spatial size too (the tool's quirk).
- ReLU family: ``output.numel()``. BatchNorm2d: ``batch * num_features * prod(output spatial)``, doubled if
  affine. Linear: ``input.shape[0] * input.shape[1] * output.shape[1]`` (``input.shape[0] * output.shape[0]``
  for 1-D input) -- the tool's formula, which is not the true cost for inputs of more than 2 dimensions.
- Activations: ``output.numel()`` of every Conv2d/ConvTranspose2d call; #conv: the number of such calls.
- The tool's "FLOPs" are multiply-accumulates: ``flops == macs`` here. Params: every parameter's numel.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch import nn

from .._records import ModuleCall, OpTrace, tensors_in
from . import Convention, Cost, Counts, RuleKey, Tally, out, register_convention

ModuleRule = Callable[[ModuleCall], Cost]


class Ntire2022(Convention):
    name = "ntire2022"
    description = "official NTIRE 2022/2023 hook tool (module calls only; FLOPs = MACs)"
    order = 1

    def __init__(self) -> None:
        super().__init__()
        self.module_rules: dict[type[nn.Module], ModuleRule] = {}

    def table_for(self, key: RuleKey) -> dict[Any, Any]:
        """Module types (``nn.Conv2d``) key the module table."""
        if isinstance(key, type) and issubclass(key, nn.Module):
            return self.module_rules
        return super().table_for(key)

    def module(self, *types: type[nn.Module]) -> Callable[[ModuleRule], ModuleRule]:
        """Register a rule for module types (matched with isinstance, nearest base class first)."""

        def wrap(fn: ModuleRule) -> ModuleRule:
            for t in types:
                self.add_rule(t, fn)
            return fn

        return wrap

    def module_rule(self, mod: nn.Module) -> ModuleRule | None:
        for cls in type(mod).__mro__:
            rule = self.module_rules.get(cls)
            if rule is not None:
                return rule
        return None

    def count(self, trace: OpTrace) -> Counts:
        tally = Tally(trace)
        rules: dict[type, ModuleRule | None] = {}  # by module type, looked up once per type
        for call in trace.modules:
            if not call.in_model:
                continue
            kind = type(call.module)
            if kind not in rules:
                rules[kind] = self.module_rule(call.module)
            rule = rules[kind]
            if rule is None or call.output is None:
                continue
            cost = rule(call)
            o = tensors_in(call.output)
            tally.add(type(call.module).__name__, call.name, cost, o[0].nbytes if o else 0)
        return tally.counts()


NTIRE2022 = register_convention(Ntire2022())


def _conv_activation(call: ModuleCall) -> tuple[int, int]:
    return out(call).numel, 1


@NTIRE2022.module(nn.Conv2d, nn.ConvTranspose2d)
def _conv_cost(call: ModuleCall) -> Cost:
    m = call.module
    o = out(call)
    per_position = math.prod(m.kernel_size) * m.in_channels * (m.out_channels // m.groups)
    macs = int(per_position) * (o.shape[0] * math.prod(o.shape[2:]))
    act, convs = _conv_activation(call)
    return Cost(macs=macs, flops=macs, activations=act, convs=convs)


@NTIRE2022.module(nn.ReLU, nn.PReLU, nn.ELU, nn.LeakyReLU, nn.ReLU6)
def _relu(call: ModuleCall) -> Cost:
    n = out(call).numel
    return Cost(macs=n, flops=n)


@NTIRE2022.module(nn.Linear)
def _linear(call: ModuleCall) -> Cost:
    x = tensors_in(call.inputs)[0]
    o = out(call)
    if len(x.shape) == 1:
        n = x.shape[0] * o.shape[0]
    else:
        n = x.shape[0] * x.shape[1] * o.shape[1]
    return Cost(macs=n, flops=n)


@NTIRE2022.module(nn.BatchNorm2d)
def _bn(call: ModuleCall) -> Cost:
    o = out(call)
    n = o.shape[0] * call.module.num_features * math.prod(o.shape[2:])
    if call.module.affine:
        n *= 2
    return Cost(macs=n, flops=n)
