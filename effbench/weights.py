"""Checkpoints: the weights cache, download with SHA-256 check, key-layout mapping and strict loading.

Key layouts are a table: ``KEY_LAYOUTS[name]`` is a pure function mapping a checkpoint's state dict onto the
model's key names. Architecture files register their own with :func:`register_key_layout`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

StateDict = dict[str, torch.Tensor]
KeyLayout = Callable[[StateDict], StateDict]

KEY_LAYOUTS: dict[str, KeyLayout] = {}


def register_key_layout(name: str) -> Callable[[KeyLayout], KeyLayout]:
    """Register a state-dict key mapping under ``name`` (referenced by ``PretrainedCfg.key_layout``)."""

    def wrap(fn: KeyLayout) -> KeyLayout:
        KEY_LAYOUTS[name] = fn
        return fn

    return wrap


@register_key_layout("module_prefix")
def strip_module_prefix(sd: StateDict) -> StateDict:
    """DataParallel checkpoints: drop the leading ``module.`` of every key."""
    return {k.removeprefix("module."): v for k, v in sd.items()}
