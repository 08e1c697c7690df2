from models.team02_rep import RepConv, RepNet


class OwnLoadNet(RepNet):
    """Fuses its branches inside load_state_dict: its checkpoint holds the fused form only."""

    def load_state_dict(self, state_dict, strict=True, fused=True):
        if fused:
            self.repa()
        return super().load_state_dict(state_dict, strict)


__all__ = ["OwnLoadNet", "RepConv"]
