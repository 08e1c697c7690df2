"""The NTIRE organisers' own counting of one entry, run as their harness runs it: ``python tests/ntire_official.py
REPO MODEL_ID [--hook-flops] [--select-only] [--forward HxW]`` prints one JSON line.

It imports the repository's ``test_demo.py`` and calls its ``select_model()`` (their constructor arguments,
checkpoint, data range and whatever they call after loading), runs the model forward as ``main()`` does before it
counts (``run()`` over the validation images, autograd on, the parameters frozen: here one ``torch.rand`` image of
``--forward`` size, 64x64 by default, scaled to the data range: what an entry changes in itself on its first
forward does not depend on the image's size; ``--select-only`` skips it), then counts as
``main()`` does: ``utils/model_summary.get_model_activation`` on (3, 256, 256) for #Acts and #Conv,
``fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total()`` for FLOPs (or ``get_model_flops``, the
2022/2023 hook tool, with ``--hook-flops``), ``sum(p.numel())`` for params.

What differs from the organisers' GPU machine is made as it is there, nothing that touches the counting:
``utils.utils_image`` (image I/O needing OpenCV, unused by select_model) is an empty module; ``torch.load`` maps to
the CPU; on a host without CUDA ``.cuda()`` returns the CPU tensor or module (NTIRE 2024's SPAN entries call it in
``__init__``); torchvision and basicsr import beside the installed torch (:mod:`effbench.base.thirdparty`); and a
checkpoint the repository lacks loads as nothing (``torch.load`` gives an empty stand-in that
``load_state_dict`` skips), so the entry is counted with its constructor's weights, as effbench counts it
(``"weights": "missing"`` in the output).
"""

import argparse
import json
import os
import sys
import types


class _NoWeights(dict):
    """What ``torch.load`` gives for a checkpoint the repository lacks: every entry of it is itself."""

    def __getitem__(self, key):
        return self

    def get(self, key, default=None):
        return self


def main() -> None:
    repo, model_id = sys.argv[1], int(sys.argv[2])
    hook_flops = "--hook-flops" in sys.argv
    size = (64, 64)
    if "--forward" in sys.argv:
        h, _, w = sys.argv[sys.argv.index("--forward") + 1].partition("x")
        size = (int(h), int(w or h))
    os.chdir(repo)
    sys.path.insert(0, repo)
    import torch

    from effbench.base.thirdparty import model_import_compat

    missing: list[str] = []
    load = torch.load

    def cpu_load(f, *a, **k):
        if isinstance(f, (str, os.PathLike)) and not os.path.exists(f):
            missing.append(str(f))
            return _NoWeights()
        k.pop("map_location", None)
        return load(f, *a, map_location="cpu", weights_only=False, **k)

    torch.load = cpu_load
    load_state_dict = torch.nn.Module.load_state_dict

    def load_unless_missing(self, state_dict, *a, **k):
        if isinstance(state_dict, _NoWeights):
            return None
        return load_state_dict(self, state_dict, *a, **k)

    torch.nn.Module.load_state_dict = load_unless_missing
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    sys.modules["utils.utils_image"] = types.ModuleType("utils.utils_image")
    try:
        with model_import_compat():
            import test_demo

            model, name, data_range, _ = test_demo.select_model(
                argparse.Namespace(model_id=model_id), torch.device("cpu")
            )
    except Exception as exc:  # the entry cannot be built here: say why
        print(json.dumps({"id": model_id, "error": f"{type(exc).__name__}: {exc}"[:400]}))
        return
    from utils.model_summary import get_model_activation, get_model_flops

    if "--select-only" not in sys.argv:  # main(): run(valid) before counting, as select_model left the model
        model(torch.rand(1, 3, *size) * data_range)
    acts, convs = get_model_activation(model, (3, 256, 256))
    if hook_flops:
        flops = get_model_flops(model, (3, 256, 256), False)
    else:
        from fvcore.nn import FlopCountAnalysis

        flops = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total()
    out = {
        "id": model_id,
        "name": name,
        "data_range": data_range,
        "params": sum(p.numel() for p in model.parameters()),
        "flops": int(flops),
        "activations": int(acts),
        "convs": int(convs),
    }
    if missing:
        out["weights"] = "missing"
    print(json.dumps(out))


if __name__ == "__main__":
    main()
