"""The studies as declared tables: one :class:`Study` per paper experiment, one :class:`Variant` per row.

The table (:data:`STUDIES`) is read-only and its studies are frozen: add a row in one call, e.g. your own
attention block in Table 2::

    from effbench.studies import attention_variant, register_variant
    register_variant("attention", attention_variant("Baseline+Mine", "my_blocks.py:MyAttention"))

or any whole network by spec: ``register_variant("attention", Variant("Mine", "my_net.py:MyNet",
baseline="Baseline"))``; a new study with :func:`register_study`. For one run only, a study's
:meth:`Study.adding` and :meth:`Study.only` give changed copies and leave the table alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..base.errors import UsageError

__all__ = [
    "STUDIES",
    "Study",
    "Variant",
    "attention_variant",
    "get_study",
    "register_study",
    "register_variant",
]

_V = "effbench.studies.variants"
#: The typical DIV2K validation LR image at x4 (HR 2040x1356 -> 510x339), where Tables 1 and 2 were timed.
DIV2K_VALID_X4 = (339, 510)


@dataclass(frozen=True)
class Variant:
    """One row of a study.

    Args:
        name: row label (as in the paper's table).
        spec: zoo name, ``file.py:Name`` or ``package.module:Name`` of a network (3-channel LR in, SR out).
        kwargs: keyword arguments for the spec (zoo overrides or the factory's arguments).
        baseline: the row this one's time and memory changes are computed against (``None``: no comparison).
        paper: the paper's figures for the row: ``params``, ``time_ms``, ``time_change_pct`` (vs ``baseline``),
            ``mem_x`` (peak features in C x H x W), ``mem_direction`` (-1 / +1: the paper says the peak goes
            down / up vs ``baseline``).
        group: rows sharing a group share a baseline (Table 1: ``EDSR-baseline`` / ``FMEN``).
        scale: upscaling factor of the variant.
        note: a short remark printed under the table.
    """

    name: str
    spec: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    baseline: str | None = None
    paper: dict[str, float] = field(default_factory=dict)
    group: str = ""
    scale: int = 4
    note: str = ""


@dataclass(frozen=True)
class Study:
    """A paper experiment: its rows, default size/repeats, and the text that explains its configuration."""

    name: str
    title: str
    source: str
    variants: tuple[Variant, ...]
    default_size: tuple[int, int] = (128, 128)
    default_repeats: int = 10
    paper_setting: str = ""
    notes: tuple[str, ...] = ()
    default_baseline: str | None = None
    paper_size: tuple[int, int] | None = None  #: LR size the paper timed (DIV2K-valid x4: about 339x510)
    paper_device: str | None = None  #: key of effbench.timing.roofline.DEVICE_PEAKS for the paper's GPU

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.variants))
        object.__setattr__(self, "notes", tuple(self.notes))
        seen: set[str] = set()
        for v in self.variants:
            if v.name in seen:
                raise UsageError(f"study {self.name!r} has two variants named {v.name!r}")
            seen.add(v.name)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(
            f"study {self.name!r} has no variant {name!r}; it has {', '.join(v.name for v in self.variants)}"
        )

    def adding(self, *variants: Variant) -> Study:
        """A copy with ``variants`` added as its last rows (a name the study has already is refused)."""
        return replace(self, variants=(*self.variants, *variants))

    def only(self, names: Iterable[str]) -> Study:
        """A copy with the rows ``names`` and the baselines they are compared with; an unknown name is a
        :class:`~effbench.base.errors.UsageError` listing the rows."""
        wanted = list(names)
        have = {v.name for v in self.variants}
        unknown = [n for n in wanted if n not in have]
        if unknown:
            raise UsageError(f"--only: unknown row(s) {', '.join(unknown)}; rows: {', '.join(sorted(have))}")
        keep = set(wanted) | {v.baseline for v in self.variants if v.name in wanted and v.baseline}
        return replace(self, variants=tuple(v for v in self.variants if v.name in keep))


def attention_variant(
    name: str,
    block_spec: str,
    baseline: str = "Baseline",
    paper: dict[str, float] | None = None,
    **block_kwargs: Any,
) -> Variant:
    """A Table 2 row: the 15-ERB baseline with ``block_spec(n_feats, **block_kwargs)`` after every 3 ERBs."""
    kw: dict[str, Any] = {"attention": block_spec}
    if block_kwargs:
        kw["attention_kwargs"] = block_kwargs
    return Variant(name, f"{_V}:attention_net", kw, baseline=baseline, paper=dict(paper or {}))


def _blocks() -> Study:
    edsr, fmen = "EDSR-baseline", "FMEN"
    rows = [
        Variant(
            "EDSR-baseline RB",
            "edsr_baseline",
            {"block": "rb"},
            baseline="EDSR-baseline RB",
            group=edsr,
            paper={"params": 1518e3, "time_ms": 99.8},
        ),
        Variant(
            "EDSR-baseline PB",
            "edsr_baseline",
            {"block": "pb"},
            baseline="EDSR-baseline RB",
            group=edsr,
            paper={"mem_direction": -1},
        ),
        Variant(
            "EDSR-baseline ERB",
            f"{_V}:edsr_erb",
            {},
            baseline="EDSR-baseline RB",
            group=edsr,
            paper={"params": 1518e3, "time_ms": 90.6, "time_change_pct": -9.2, "mem_direction": -1},
        ),
        Variant(
            "FMEN RB",
            "fmen",
            {"block": "rb"},
            baseline="FMEN RB",
            group=fmen,
            paper={"params": 769e3, "time_ms": 46.1},
        ),
        Variant(
            "FMEN PB", "fmen", {"block": "pb"}, baseline="FMEN RB", group=fmen, paper={"mem_direction": -1}
        ),
        Variant(
            "FMEN ERB",
            "fmen",
            {"block": "erb"},
            baseline="FMEN RB",
            group=fmen,
            paper={"params": 769e3, "time_ms": 40.4, "time_change_pct": -12.4, "mem_direction": -1},
        ),
    ]
    return Study(
        "blocks",
        "RB vs PB vs ERB (paper Table 1, Fig. 4-5)",
        "FMEN paper Sec. 3.3, 4.2, Table 1",
        tuple(rows),
        default_size=(128, 128),
        default_repeats=10,
        paper_setting="average of 10 runs over the DIV2K validation set at x4 (LR about 510x350) on an Nvidia 1080Ti",
        notes=(
            "ERB rows are the deploy form (each RRRB folded into one 3x3 conv), so an ERB network is, at inference, "
            "the PB network: two 3x3 convs and an activation per block, no skip. RB differs from PB only by the "
            "skip (one extra add and one extra C x H x W feature kept alive).",
            "EDSR-baseline ERB keeps EDSR's ReLU, mean shifts and long skip; FMEN RB/PB use LeakyReLU(0.1) "
            "(models/fmen.py `make_block`). Params are equal within each group, as the paper states.",
            "The paper gives no PB time and no memory figures for Table 1; Sec. 3.3 states the direction: removing "
            "the skip saves one C x H x W feature of memory and its memory-access time.",
        ),
        default_baseline="FMEN RB",
        paper_size=DIV2K_VALID_X4,
        paper_device="gtx1080ti",
    )


def _attention() -> Study:
    rows = [
        Variant(
            "Baseline",
            f"{_V}:attention_net",
            {},
            baseline="Baseline",
            paper={"params": 779e3, "time_ms": 45.25, "time_change_pct": 0.0},
        ),
        attention_variant(
            "Baseline+CCA",
            "effbench.zoo.models.imdn:CCA",
            paper={"params": 782e3, "time_ms": 50.55, "time_change_pct": 11.7},
        ),
        attention_variant(
            "Baseline+ESA",
            "effbench.zoo.models.rfdn:ESA",
            reduction=13,
            paper={"params": 784e3, "time_ms": 52.11, "time_change_pct": 15.2},
        ),
        Variant(
            "FMEN (HFAB)",
            "fmen",
            {},
            baseline="Baseline",
            paper={"params": 769e3, "time_ms": 46.13, "time_change_pct": 1.9},
        ),
    ]
    return Study(
        "attention",
        "Attention blocks in a 15-ERB baseline (paper Table 2)",
        "FMEN paper Sec. 4.4, Table 2",
        tuple(rows),
        default_size=(128, 128),
        default_repeats=10,
        paper_setting="average time over the DIV2K validation set at x4 (LR about 510x350) on an Nvidia 1080Ti",
        notes=(
            "Baseline configuration (the paper gives only '15 ERBs, similar depth and params as FMEN, 779K'): "
            "`ERBBackbone` (head 3x3, 15 ERBs, lr 3x3 + global skip, 3x3 to 48 channels + PixelShuffle x4) with "
            "width 52 and the ERBs counted in deploy form, as FMEN's 769K is. Params = 279 C^2 + 491 C + 48 = "
            "779,996 at C = 52 (+0.13%). Rejected: C = 64 (the `ERBBackbone` default) gives 1,174,256 (+51%); "
            "C = 51 gives 750,768 (-3.6%); adding FMEN's warm-up conv gives 774,228 at C = 51 (-0.6%) or 804,384 "
            "at C = 52 (+3.3%); train-form ERBs (80 C^2 + 10 C each) would need C = 25 (770,948, -1.0%), a trunk "
            "less than half FMEN's 64 channels.",
            "CCA: IMDN's block with its default reduction 16 (52 -> 3 -> 52 channels): 5 blocks add 1,835 params "
            "(781,831 in all, paper 782K). ESA: RFDN's block with 4 inner channels (reduction 13): 5 blocks add "
            "5,420 (785,416, paper 784K); RFDN's default reduction 4 (13 channels) would add 38,675 (818,671, "
            "+4.4%), so the paper must have used a slimmer ESA; 3 channels give 783,571, equally within 1%.",
            "The HFAB row is FMEN itself (zoo `fmen`, 768,400 params in deploy form), as in the paper.",
        ),
        default_baseline="Baseline",
        paper_size=DIV2K_VALID_X4,
        paper_device="gtx1080ti",
    )


def _fusion() -> Study:
    rows: list[Variant] = []
    for n in range(2, 7):
        rows.append(
            Variant(
                f"plain N={n}",
                f"{_V}:plain_probe",
                {"n": n, "c": 64},
                baseline=f"plain N={n}",
                scale=1,
                group=f"N={n}",
                paper={"mem_x": 2.0},
            )
        )
        rows.append(
            Variant(
                f"fusion N={n}",
                f"{_V}:fusion_probe",
                {"n": n, "c": 64},
                baseline=f"plain N={n}",
                scale=1,
                group=f"N={n}",
                paper={"mem_x": 2.0 * n, "mem_direction": 1, "time_direction": 1},
            )
        )
    return Study(
        "fusion",
        "Plain vs fusion topology, peak memory (paper Sec. 3.1, Fig. 2)",
        "FMEN paper Sec. 3.1, Fig. 2",
        tuple(rows),
        default_size=(128, 128),
        default_repeats=10,
        paper_setting="analysis (no measurement): peak >= 2 x N x C x H x W at the concat of N features, "
        "2 x C x H x W for a plain stack; and (Sec. 2) fusion 'usually reduces inference speed because "
        "of introducing extra nodes (e.g., concatenation, 1x1 convolution) and frequent memory access'",
        paper_size=DIV2K_VALID_X4,
        paper_device="gtx1080ti",
        notes=(
            "N = number of C x H x W features fused (the paper's N): the fusion block is "
            "`effbench.memory.fusion_block(N - 1, C)` (input + N - 1 chained 3x3 convs, concat of N, 1x1 fuse "
            "NC -> C). Its plain counterpart has the same N - 1 3x3 convs followed by N chained 1x1 convs C -> C "
            "(bias on the last only): exactly the same params and MACs, no feature kept.",
            "The formula is checked on the bare structures (input of C channels freed after use, as for a block "
            "inside a network; live features only, parameters excluded, 512-byte blocks). The sweep cells wrap "
            "each structure in a 3x3 head (3 -> C) and a 1x1 tail (C -> 3) so that it runs as an SR network at x1: "
            "their peaks add the parameters, the 3-channel image kept by the caller and the CUDA allocator model.",
        ),
    )


_STUDIES: dict[str, Study] = {s.name: s for s in (_blocks(), _attention(), _fusion())}
#: Every study by name, read-only: add rows with :func:`register_variant`, studies with :func:`register_study`.
STUDIES: Mapping[str, Study] = MappingProxyType(_STUDIES)


def get_study(name: str) -> Study:
    """The study called ``name``; a :class:`~effbench.base.errors.UsageError` names the known ones otherwise."""
    try:
        return STUDIES[name]
    except KeyError:
        raise UsageError(f"unknown study {name!r}; choose one of {', '.join(STUDIES)}") from None


def register_study(study: Study) -> Study:
    """Add ``study`` to :data:`STUDIES` (``effbench study NAME`` then runs it); a name already there is refused."""
    if study.name in _STUDIES:
        raise UsageError(f"study {study.name!r} is already registered")
    _STUDIES[study.name] = study
    return study


def register_variant(study_name: str, variant: Variant) -> Study:
    """Add ``variant`` as the last row of the registered study ``study_name``; returns the study as it now is
    (a new frozen value: copies taken before keep their rows)."""
    study = get_study(study_name).adding(variant)
    _STUDIES[study_name] = study
    return study
