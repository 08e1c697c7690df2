"""What :func:`effbench.benchmark` returns: :class:`BenchmarkResult`, a frozen record that reads as the
``effbench.result/1`` document it writes (``res["metrics"]["runtime_ms"]``, ``res.get("dataset")``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..base.identity import ModelIdentity
from ..base.results import new_result

__all__ = ["BenchmarkResult"]


@dataclass(frozen=True)
class BenchmarkResult(Mapping[str, Any]):
    """One runtime measurement: what was timed (``identity``, ``input_shape``, ``scale``, ``device``, ``dtype``,
    ``protocol``, ``backend``, ``dataset``), how (``settings``), the measured values (``measured``: runtime
    statistics, measured peak memory and energy on CUDA, PSNR with a data set, the roofline bound, the backend's
    export figures) and the environment (``env``, the machine's load included).

    Read as a mapping it is the result document (:meth:`to_dict`), so ``res["metrics"]``, ``"env" in res`` and
    ``dict(res)`` work; :meth:`metrics` gives the measured metrics by catalogue key."""

    identity: ModelIdentity
    input_shape: tuple[int, int, int, int]
    scale: int | None
    device: str
    dtype: str
    protocol: str
    backend: str
    dataset: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    _doc: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        doc = new_result(
            self.identity.name,
            self.identity.spec,
            identity=self.identity.as_dict(),
            scale=self.scale,
            input_shape=list(self.input_shape),
            device=self.device,
            dtype=self.dtype,
            protocol=self.protocol,
            convention=None,
            backend=self.backend,
        )
        doc.update(dataset=self.dataset, settings=self.settings, metrics=self.measured, env=self.env)
        object.__setattr__(self, "_doc", doc)

    def metrics(self) -> dict[str, Any]:
        """The measured metrics, keyed by :mod:`effbench.base.catalogue` keys (runtime statistics, measured peak
        memory and energy on CUDA, PSNR with a data set, the roofline bound)."""
        return dict(self.measured)

    def to_dict(self) -> dict[str, Any]:
        """The ``effbench.result/1`` document (a new dict, ready for JSON)."""
        return dict(self._doc)

    def __getitem__(self, key: str) -> Any:
        return self._doc[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc)

    def __len__(self) -> int:
        return len(self._doc)
