# A harness in the style of the NTIRE ESR organisers' test_demo.py, written the ways organisers write it:
# `effbench challenge init` reads its select_model() with ast (never runs it); tests/test_challenge_draft.py runs it
# as the organisers do, to compare.
import os.path

import torch


def select_model(args, device):
    model_id = args.model_id
    if model_id == 0:
        from models.team00_base import Base

        name, data_range = f"{model_id:02}_Base_baseline", 1.0
        model_path = os.path.join("model_zoo", "team00_base.pth")
        model = Base(feats=8, img_range=data_range)
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 1:
        pass
    elif model_id == 2:
        from models.team02_rep import RepNet

        name, data_range = f"{model_id:02}_RepNet", 1.0
        model_path = os.path.join("model_zoo", "team02_rep.pth")
        model = RepNet(feats=8, img_range=data_range)
        model.load_state_dict(torch.load(model_path)["params"], strict=True)
        model.repa()
    elif model_id == 3:
        from models.team03_ownload import OwnLoadNet

        name, data_range = f"{model_id:02}_OwnLoad", 1.0
        model_path = os.path.join("model_zoo", "team03_ownload.pth")
        model = OwnLoadNet(feats=8)
        model.load_state_dict(torch.load(model_path), strict=True)
    elif model_id == 4:
        from models.team04_switch import SwitchNet

        name, data_range = f"{model_id:02}_SwitchNet", 1.0
        model_path = os.path.join("model_zoo", "team04_switch.pth")
        model = SwitchNet(feats=8)
        model.load_state_dict(torch.load(model_path)["params_ema"], strict=True)
        for module in model.modules():
            if hasattr(module, "switch_deploy"):
                module.switch_deploy()
    elif model_id == 5:
        from models.team05_selfload import SelfLoading

        name, data_range = f"{model_id:02}_SelfLoading", 1.0
        model_path = os.path.join("model_zoo", "team05_selfload.pth")
        model = SelfLoading()
        model = model.cuda()
        model.load_weights(model_path)
    elif model_id == 6:
        import importlib

        module = importlib.import_module(f"models.team{model_id - 6:02}_base")
        name, data_range = f"{model_id:02}_RunTimeKey", 255.0
        model = getattr(module, "Base")(12).eval().to(device)  # noqa: B009 (the harness style)
        model_path = "./model_zoo/team06_runtime_key.pth"
        loadnet = torch.load(model_path, map_location=device)
        if "params_ema" in loadnet:
            keyname = "params_ema"
        else:
            keyname = "params"
        model.load_state_dict(loadnet[keyname], strict=True)
    elif model_id == 7:
        from models.team02_rep import RepNet

        name, data_range = f"{model_id:02}_NoCheckpoint", 1.0
        model_path = os.path.join("model_zoo", "team07_not_submitted.pth")
        model = RepNet(feats=6)
        model.load_state_dict(torch.load(model_path)["params_ema"], strict=True)
        model.repa()
    elif model_id in (8, 9):
        from models.team00_base import Base as Shared

        feats = 6 if model_id == 8 else 10
        name, data_range = f"{model_id:02}_Shared{feats}", 255.0
        model = Shared(feats, img_range=data_range)
    else:
        raise NotImplementedError(f"Model {model_id} is not implemented.")

    model.eval()
    tile = 64 if model_id == 9 else None
    for k, v in model.named_parameters():  # noqa: B007 (the harness style)
        v.requires_grad = False
    model = model.to(device)
    return model, name, data_range, tile
