"""A challenge cell's status when its entry is not measured ok: why it could not be built (a package, CUDA, its
checkpoint), or why its counts cannot be trusted (CUDA-only code, an output written outside the trace)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["build_status", "special_status"]

_CUDA_SIGNS = (
    "torch not compiled with cuda",
    "found no nvidia driver",
    "cuda driver",
    "no cuda gpus are available",
    "triton",
    "cuda is not available",
    "only supported on cuda",
    "cuda_home",  # torch.utils.cpp_extension building a CUDA extension without a CUDA toolkit
    "nvcc",
)
#: packages that exist only for CUDA devices: an entry that cannot import them needs CUDA, not a package
_CUDA_ONLY_PACKAGES = ("triton",)


def build_status(exc: BaseException) -> str:
    """The status of an entry that could not be built: ``missing_package`` (an import the host lacks),
    ``needs_cuda`` (CUDA-only code on a host without CUDA), ``checkpoint_error``, else ``error``."""
    from ..base.errors import CheckpointError

    text = f"{type(exc).__name__}: {exc}".lower()
    chain: list[BaseException] = []
    e: BaseException | None = exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or e.__context__
    missing = [(c.name or "").split(".")[0] for c in chain if isinstance(c, ModuleNotFoundError)]
    if any(name in _CUDA_ONLY_PACKAGES for name in missing):
        return "needs_cuda"
    if missing or "missing package" in text:
        return "missing_package"
    if any(sign in text for sign in _CUDA_SIGNS):
        return "needs_cuda"
    if any(isinstance(c, CheckpointError) for c in chain):
        return "checkpoint_error"
    return "error"


def special_status(errors: Mapping[str, BaseException], metrics: Mapping[str, Any]) -> tuple[str, str] | None:
    """``needs_cuda`` (the forward runs CUDA-only code: jiterator, Triton) or ``opaque_op`` (an output written
    outside the dispatcher, so no trace counted what made it), with the reason; else ``None``."""
    if "needs_cuda" in errors:
        exc = errors["needs_cuda"]
        return "needs_cuda", f"the forward runs CUDA-only code: {type(exc).__name__}: {exc}"
    if metrics.get("opaque_ops"):
        what = "; ".join(
            f"{' / '.join(o['written_by'])} filled the {o['made_by'].removeprefix('aten.')} result made at "
            f"{o.get('made_at') or o['module'] or 'the model'} (read by {o['read_by']})"
            for o in metrics["opaque_ops"]
        )
        return "opaque_op", f"an output written outside the trace, so not counted: {what}"
    return None
