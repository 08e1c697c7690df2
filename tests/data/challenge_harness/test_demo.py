# A harness in the style of the NTIRE ESR organisers' test_demo.py, for the entries of this folder, runnable on a
# CPU: select_model() builds an entry, freezes it as theirs does, run() feeds the validation images through it
# without torch.no_grad(), and the counting tools run after that, on torch.rand (fvcore) as theirs do.
#
#   python test_demo.py --model_ids 1 2 6   ->  one JSON line per entry: params, flops (fvcore), convs
#
# tests/test_challenge_harness.py runs it to get the figures the organisers' tools give for each entry.
import argparse
import json

import torch
from fvcore.nn import FlopCountAnalysis

ENTRIES = {
    1: ("models.team01_mutate", "MutateNet"),
    2: ("models.team02_route", "RouteNet"),
    3: ("models.team03_ctor_forward", "CtorForwardNet"),
    4: ("models.team04_warmup", "WarmupNet"),
    5: ("models.team05_autocast", "AutocastNet"),
    6: ("models.team06_half", "HalfNet"),
    7: ("models.team07_scan", "ScanNet"),
    8: ("models.team08_ext_fallback", "ExtFallbackNet"),
    9: ("models.team09_opaque", "OpaqueNet"),
}


def select_model(model_id, device):
    import importlib

    module, cls = ENTRIES[model_id]
    model = getattr(importlib.import_module(module), cls)()
    model.eval()
    for _, v in model.named_parameters():
        v.requires_grad = False
    return model.to(device)


def run(model, images, device):
    for h, w in images:
        img_lr = torch.rand(1, 3, h, w).to(device)
        img_sr = model(img_lr)  # no torch.no_grad(), as the organisers' run()
        assert img_sr.shape[-2:] == (4 * h, 4 * w)


def main(args):
    device = torch.device("cpu")
    torch.set_num_threads(1)  # a CPU shared with other work: no intra-op thread pool to oversubscribe it
    for model_id in args.model_ids:
        torch.manual_seed(args.seed)
        model = select_model(model_id, device)
        run(model, [(16, 16), (24, 20)], device)
        params = sum(p.numel() for p in model.parameters())
        analysis = FlopCountAnalysis(model, torch.rand(1, 3, 256, 256).to(device))
        analysis.unsupported_ops_warnings(False)
        analysis.uncalled_modules_warnings(False)
        convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
        print(
            json.dumps(
                {"model_id": model_id, "params": params, "flops": int(analysis.total()), "convs": convs}
            )
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser("challenge_harness")
    parser.add_argument("--model_ids", type=int, nargs="+", required=True)
    parser.add_argument("--seed", type=int, default=0)
    main(parser.parse_args())
