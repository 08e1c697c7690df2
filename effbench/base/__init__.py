"""The base layer: what every other layer shares and that imports nothing above it.

- :mod:`.errors` — the exception types every command maps to an exit code;
- :mod:`.results` — the result document (schema, atomic writes, loading);
- :mod:`.env` — the environment a measurement ran in;
- :mod:`.imresize` — MATLAB-exact ``imresize``;
- :mod:`.inputs` — input sizes, dtypes, devices and CPU threads, each checked in one place;
- :mod:`.images` — image files (read, write, list), LR generation and the one ``uint8`` rounding rule (MATLAB's).
"""
