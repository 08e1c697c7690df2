"""The NTIRE organisers' own counting of one entry, run as their harness runs it: ``python tests/ntire_official.py
REPO MODEL_ID`` prints one JSON line.

It imports the repository's ``test_demo.py`` and calls its ``select_model()`` (their constructor arguments,
checkpoint and data range), then counts as its ``main()`` does: ``utils/model_summary.get_model_activation`` on
(3, 256, 256) for #Acts and #Conv, ``fvcore.nn.FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total()`` for
FLOPs (or ``get_model_flops``, the 2022/2023 hook tool, with ``--hook-flops``), ``sum(p.numel())`` for params.
Three things are changed, none of which touches the counting: ``utils.utils_image`` (image I/O needing torchvision
and OpenCV, unused by select_model) is replaced by an empty module, ``torch.load`` maps to the CPU, and on a host
without CUDA ``.cuda()`` returns the CPU tensor or module (NTIRE 2024's SPAN entries call it in ``__init__``).
"""

import argparse
import json
import os
import sys
import types


def main() -> None:
    repo, model_id = sys.argv[1], int(sys.argv[2])
    hook_flops = "--hook-flops" in sys.argv
    os.chdir(repo)
    sys.path.insert(0, repo)
    import torch

    load = torch.load
    torch.load = lambda f, *a, **k: load(f, map_location="cpu", weights_only=False)
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *a, **k: self
        torch.nn.Module.cuda = lambda self, *a, **k: self
    sys.modules["utils.utils_image"] = types.ModuleType("utils.utils_image")
    import test_demo
    from utils.model_summary import get_model_activation, get_model_flops

    try:
        model, name, data_range, _ = test_demo.select_model(
            argparse.Namespace(model_id=model_id), torch.device("cpu")
        )
    except Exception as exc:  # the entry cannot be built here: say why
        print(json.dumps({"id": model_id, "error": f"{type(exc).__name__}: {exc}"[:400]}))
        return
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
    print(json.dumps(out))


if __name__ == "__main__":
    main()
