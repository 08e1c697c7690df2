"""The base layer: what every other layer shares and that imports nothing above it.

- :mod:`.errors` — the exception types every command maps to an exit code;
- :mod:`.results` — the result document (schema, atomic writes, loading);
- :mod:`.env` — the environment a measurement ran in;
- :mod:`.imresize` — MATLAB-exact ``imresize``.
"""
