"""Every entry an NTIRE organisers' repository builds, counted under ``full``: ``python tests/ntire_unknown_ops.py
REPO`` prints one JSON line per ``model_id`` of its ``test_demo.select_model()`` (the ops ``full`` has no rule
for, or why the entry was not built here). Built as tests/ntire_official.py builds them (CPU ``torch.load``,
``.cuda()`` kept on the CPU, ``utils.utils_image`` stubbed)."""

import argparse
import json
import os
import re
import sys
import types


def main() -> None:
    repo = os.path.abspath(sys.argv[1])
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

    from effbench.base.errors import ModelError
    from effbench.counting import profile_trace
    from effbench.counting._trace import record

    with open("test_demo.py", encoding="utf-8") as f:
        ids = sorted({int(m) for m in re.findall(r"model_id\s*==\s*(\d+)", f.read())})
    for model_id in ids:
        try:
            model, name, _, _ = test_demo.select_model(
                argparse.Namespace(model_id=model_id), torch.device("cpu")
            )
        except BaseException as exc:  # the entry cannot be built here: say why
            print(json.dumps({"id": model_id, "built": False, "error": f"{type(exc).__name__}: {exc}"[:300]}))
            continue
        try:
            trace = record(model, (1, 3, 64, 64))
        except (
            ModelError
        ):  # a model in its own precision (fp16 parameters): traced in it, as the harness runs it
            dtype = next(model.parameters()).dtype
            trace = record(model, (1, 3, 64, 64), dtype, keep_dtypes=True)
        full = profile_trace(trace, "full")
        print(json.dumps({"id": model_id, "name": name, "built": True, "unknown_ops": full.unknown_ops}))


if __name__ == "__main__":
    main()
