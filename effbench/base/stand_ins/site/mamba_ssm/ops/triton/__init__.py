"""Stand-in for ``mamba_ssm.ops.triton`` (effbench.base.stand_ins): layer norm and the selective state update."""
