"""Stand-in for ``mamba_ssm.modules`` (effbench.base.stand_ins): the Mamba block in ``mamba_simple``."""
