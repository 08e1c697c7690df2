import torch.nn as nn
from models.team02_rep import RepConv


class SwitchBlock(RepConv):
    def switch_deploy(self):
        self.fuse()


class SwitchNet(nn.Module):
    def __init__(self, feats=8):
        super().__init__()
        self.head = nn.Conv2d(3, feats, 3, 1, 1)
        self.blocks = nn.Sequential(SwitchBlock(feats), SwitchBlock(feats), SwitchBlock(feats))
        self.tail = nn.Sequential(nn.Conv2d(feats, 3 * 16, 3, 1, 1), nn.PixelShuffle(4))

    def forward(self, x):
        return self.tail(self.blocks(self.head(x)))
