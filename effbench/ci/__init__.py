"""CI: the regression gate (:func:`effbench.ci.gate.gate`), stored baselines, the statistics they use and the
gate's self-test. Submodules are imported on use: ``import effbench.ci`` pulls in neither torch nor pandas.
"""
