"""The base layer: what every other layer shares and that imports nothing above it.

- :mod:`.errors` — the exception types every command maps to an exit code;
- :mod:`.inputs` — input sizes, dtypes, devices and CPU threads, each checked in one place;
- :mod:`.images` — image files (read, write, list), LR generation, the one ``uint8`` rounding rule (MATLAB's);
- :mod:`.imresize` — MATLAB-exact ``imresize``;
- :mod:`.results` — the result document (schema, validation, atomic writes, loading);
- :mod:`.identity` — what makes a measured model that model, and display names that never merge two;
- :mod:`.catalogue` — every metric's key, title, unit, direction and kind;
- :mod:`.stats` — statistics without torch (the median's confidence interval, the gate's tests);
- :mod:`.measurement` — the measurement registry, the frozen ``Workload``, ``run_measurements``;
- :mod:`.options` — options dataclasses a caller may also give as keywords, checked once;
- :mod:`.env` — the environment a measurement ran in (load included) and the memory still available;
- :mod:`.modules` — the module-stack hook every tracer shares;
- :mod:`.model_code` — guards around running model code (left as found, prints to stderr, CUDA on CPU);
- :mod:`.plugins` — outside modules that register models, conventions or metrics;
- :mod:`.timeout` — a wall-clock limit on anything that runs a model;
- :mod:`.procs` — process ownership: a subreaper finds and kills whatever model code started (the cell supervisor).
"""
