"""Stand-in for ``mamba_ssm.ops`` (effbench.base.stand_ins): the selective scan in ``selective_scan_interface``."""
