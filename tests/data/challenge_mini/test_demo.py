# A harness in the style of the NTIRE ESR organisers' test_demo.py: `effbench challenge init` parses its
# select_model() (never runs it).
import os

import torch


def select_model(args, device):
    model_id = args.model_id
    if model_id == 0:
        from models.team01_common import CommonNet

        name, data_range = f"{model_id:02}_CommonNet_baseline", 255.0
        model_path = os.path.join("model_zoo", "team01_common.pth")
        model = CommonNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 2:
        from models.team02_pkg import PkgNet

        name, data_range = f"{model_id:02}_PkgNet", 1.0
        model_path = os.path.join("model_zoo", "team02_pkg.pth")
        model = PkgNet(channels=8, blocks=2)
        model.load_state_dict(torch.load(model_path)["params_ema"], strict=True)
    elif model_id == 3:
        import importlib

        module = importlib.import_module(f"models.team{model_id:02}_positional")
        name, data_range = f"{model_id:02}_PosNet", 1.0
        model = getattr(module, "PosNet")(3, 8, 4, blocks=2).eval().to(device)  # noqa: B009 (the harness style)
        model_path = os.path.join("model_zoo", "team03_positional.pth")
        model.load_state_dict(torch.load(model_path), strict=False)
    elif model_id == 4:
        from models.team04_cuda import CudaNet

        name, data_range = f"{model_id:02}_CudaNet", 1.0
        model_path = os.path.join("model_zoo", "team04_cuda.pth")
        model = CudaNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 5:
        from models.team05_mean import MeanNet

        name, data_range = f"{model_id:02}_MeanNet", 1.0
        model_path = os.path.join("model_zoo", "team05_mean.pth")
        model = MeanNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 6:
        from models.team06_datadep import DataDepNet

        name, data_range = f"{model_id:02}_DataDepNet", 1.0
        model_path = os.path.join("model_zoo", "team06_datadep.pth")
        model = DataDepNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 7:
        from models.team07_prints import PrintNet

        name, data_range = f"{model_id:02}_PrintNet", 255.0
        model_path = os.path.join("model_zoo", "team07_prints.pth")
        model = PrintNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 8:
        from models.team08_same import SameNet

        name, data_range = f"{model_id:02}_SameNet", 1.0
        model_path = os.path.join("model_zoo", "team08_same.pth")
        model = SameNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 9:
        from models.team09_missing import MissingNet

        name, data_range = f"{model_id:02}_MissingNet", 1.0
        model_path = os.path.join("model_zoo", "team09_missing.pth")
        model = MissingNet()
        model.load_state_dict(torch.load(model_path), strict=True)
    else:
        raise NotImplementedError(f"Model {model_id} is not implemented.")
    model.eval()
    return model, name, data_range, None
