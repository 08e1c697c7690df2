from models.common import Plain


class HalfNet(Plain):
    """fp16 parameters, x.half() inside forward, fp16 output."""

    def __init__(self):
        super().__init__(channels=32)
        self.half()

    def forward(self, x):
        return super().forward(x.half())
