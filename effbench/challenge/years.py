"""The rules of each NTIRE Efficient Super-Resolution challenge year, 2022-2026, as data.

One :class:`ChallengeYear` per year, read from the organisers' own harness (``test_demo.py``, which times,
counts and scores every entry) and README, and from the challenge reports. Query it with :func:`year_rules` (a
:class:`~effbench.base.errors.UsageError` names the valid years) and :func:`challenge_years`; the table itself
is private, so every rule lives in this one place.

Sources (each year's ``sources`` field lists its own; every baseline figure names where it was published):

- 2022: https://github.com/ofsoundof/NTIRE2022_ESR (``test_demo.py``, ``README.md``); report: Li et al.,
  "NTIRE 2022 Challenge on Efficient Super-Resolution: Methods and Results", CVPRW 2022 (abstract at
  https://www.researchgate.net/publication/360538735); the baseline's figures: FMEN (Du et al., "Fast and
  Memory-Efficient Network Towards Efficient Image Super-Resolution", CVPRW 2022,
  https://github.com/NJU-Jet/FMEN) Table 4, measured with the official setting on a GTX 1080Ti (its text:
  ``shared/paper/fmen-cvprw2022.txt``).
- 2023: https://github.com/ofsoundof/NTIRE2023_ESR (``test_demo.py``: RFDN baseline ``models/team00_RFDN.py``,
  data range 255, the 2022 hook tool ``get_model_flops`` / ``get_model_activation`` for FLOPs, #Acts and #Conv
  on 3x256x256, DIV2K_valid 0801-0900 as the validation set, DIV2K_test 0901-1000 and LSDIR_DIV2K_test as test
  sets). Its README is a title only and the 2023 report could not be consulted here: the tracks and the PSNR
  threshold below are **not verified** (the 2022 ones are assumed; the NTIRE 2025 README calls EFDN "the 1st
  place for the overall performance of NTIRE2023", so an overall track existed), nor are the baseline's
  published 2023 runtime, memory or PSNR (the figures given are E-RFDN's under the 2022 harness, FMEN Table
  4).
- 2024: https://github.com/Amazingren/NTIRE2024_ESR (a copy in ``shared/challenges/ntire2024``: ``README.md``,
  ``test_demo.py``, ``results.json`` / ``results.txt`` of the baseline); report: Ren et al., "The Ninth NTIRE
  2024 Efficient Super-Resolution Challenge Report", CVPRW 2024, https://arxiv.org/abs/2404.10343.
- 2025: https://github.com/Amazingren/NTIRE2025_ESR (``README.md``; its ``test_demo.py`` is the early version
  of the 2026 repository's, logger "NTIRE2025-EfficientSR", EFDN baseline with data range 1.0); report: Ren et
  al., "The Tenth NTIRE 2025 Efficient Super-Resolution Challenge Report", https://arxiv.org/abs/2504.10686.
- 2026: https://github.com/Amazingren/NTIRE2026_ESR (``README.md``, ``test_demo.py``: SPAN baseline ``SPAN(3,
  3, upscale=4, feature_channels=28)``, data range 1.0); report: "The Eleventh NTIRE 2026 Efficient
  Super-Resolution Challenge Report", https://arxiv.org/abs/2604.03198.

Validation image sizes: the DIV2K validation HR images (0801-0900) are 2040 pixels on their long side, so
their x4 LR images are 510 on theirs; the largest LR image is taken as 510x510: an **assumption** (the image
files are not here), supported by FMEN Table 4, whose IMDN memory on DIV2K val (471.76 MB) is effbench's
prediction for the 2022 IMDN baseline at 510x510 (470.3 MiB) within 0.3 %. The sizes of LSDIR's validation
images were not found in a public source; that none of them needs more memory than a 510x510 LR image is
**inferred** from the 2024 baseline's recorded ``valid_memory`` (467.70 MiB over the whole DIV2K_LSDIR_valid run,
``results.json``): effbench predicts the organisers' own RLFN (``models/team00_RLFN.py:RLFN_Prune``) at 469.6 MiB
for a 510x510 input (+0.4 %), so the set's peak is the DIV2K part's. (The zoo's RLFN frees its block outputs
earlier and predicts 315.3 MiB there: the entry's own code is what must be predicted.)"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from ..base.errors import UsageError

__all__ = [
    "Baseline",
    "ChallengeYear",
    "ImageSet",
    "MemoryRule",
    "PsnrRule",
    "RuntimeProtocol",
    "ScoreRule",
    "challenge_years",
    "year_rules",
]

#: the metrics a year counts, in the order the harness reports them
COUNTED = ("params", "flops", "activations", "convs")
#: the metrics a score-based year turns into exp(2 x / x_baseline) terms
SCORED = ("runtime", "flops", "params")


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class Baseline:
    """The year's reference entry and its published figures.

    ``published`` keys: ``runtime_ms`` (the score's runtime: mean of the valid and test averages),
    ``runtime_valid_ms``, ``runtime_test_ms``, ``params_m``, ``flops_g``, ``activations_m``, ``convs``,
    ``memory_mib``, ``psnr_valid``, ``psnr_test``: only those published; ``sources`` names where each one is.
    """

    model: str  #: the method's name, as the README calls it ("RLFN")
    entry: str  #: its effbench spec in the organisers' repository ("models/team00_RLFN.py:RLFN_Prune")
    zoo: str | None  #: the effbench zoo model, when the zoo has it
    data_range: float  #: the input range the harness feeds it (255.0 or 1.0)
    published: Mapping[str, float]
    sources: Mapping[str, str]
    #: positional and keyword constructor arguments in the harness
    args: tuple[object, ...] = ()
    kwargs: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unsourced = set(self.published) - set(self.sources)
        if unsourced:
            raise ValueError(f"baseline {self.model}: no source for {', '.join(sorted(unsourced))}")
        for name in ("published", "sources", "kwargs"):
            object.__setattr__(self, name, _frozen(getattr(self, name)))

    def names(self) -> tuple[str, ...]:
        """Every name a result of this model may carry: the method, the entry's class, the zoo name."""
        return tuple(n for n in (self.model, self.entry.rpartition(":")[2], self.zoo) if n)


@dataclass(frozen=True)
class RuntimeProtocol:
    """How the harness times an entry (its ``run()``): per image, on the device, forward only."""

    timer: str  #: what brackets the forward
    per_image: bool  #: one time per image (not per batch or per loop)
    aggregate: str  #: how per-image times become a set's runtime
    sets: tuple[str, ...]  #: the sets whose averages are averaged into the score's runtime
    runs: int | None  #: whole-harness runs averaged (None: not published)
    cudnn_benchmark: bool
    warmup_images: int  #: forwards before the first timed one (0: the first image pays CUDA/cuDNN start-up)
    device: str  #: the organisers' GPU
    source: str


@dataclass(frozen=True)
class ImageSet:
    """One part of a validation set: its images and its largest x4 LR image."""

    name: str
    files: str  #: the HR file names
    count: int
    largest_lr: tuple[int, int]  #: (H, W) of the largest LR image by pixel count
    largest_lr_source: str
    assumed: bool  #: True when ``largest_lr`` is inferred rather than read from the images


@dataclass(frozen=True)
class MemoryRule:
    """The memory column: ``torch.cuda.max_memory_allocated`` after the whole validation run (never reset
    between images, model weights included), in MiB."""

    function: str
    scope: str
    validation_set: str
    parts: tuple[ImageSet, ...]
    source: str

    @property
    def largest_lr(self) -> tuple[int, int]:
        """The (H, W) at which to predict the column when the images are absent: the largest LR image."""
        return max((p.largest_lr for p in self.parts), key=lambda hw: hw[0] * hw[1])

    @property
    def largest_assumed(self) -> bool:
        """Whether the largest LR size is an assumption (see the module docstring)."""
        return next(p for p in self.parts if p.largest_lr == self.largest_lr).assumed


@dataclass(frozen=True)
class PsnrRule:
    """Eligibility: average PSNR at or above the thresholds, computed as the harness does."""

    valid_threshold_db: float
    valid_set: str
    test_threshold_db: float | None  #: None: no published test threshold
    test_set: str
    border: int  #: pixels cropped from each side (the scale)
    channels: str  #: "RGB": on the three channels, not the Y channel
    quantised: bool  #: output clamped, rounded to uint8 before PSNR; HR modcropped to a multiple of the scale
    verified: bool
    source: str


@dataclass(frozen=True)
class ScoreRule:
    """How entries are ranked.

    ``kind="score"``: ``Score_x = exp(exponent * x / x_baseline)`` for x in ``weights``, ``Score_Final`` their
    weighted sum, lower is better; each sub-track ranks by its own term, the main track by the final score.
    ``kind="rank"``: each track ranks entries by the sum of their per-metric ranks over its ``tracks``
    metrics (every one lower-is-better).
    """

    kind: Literal["score", "rank"]
    weights: Mapping[str, float]  #: score years: runtime / flops / params -> weight
    tracks: Mapping[str, tuple[str, ...]]  #: track -> the metrics it ranks by
    exponent: float
    verified: bool
    source: str

    def __post_init__(self) -> None:
        if self.kind == "score" and set(self.weights) != set(SCORED):
            raise ValueError(f"a score year weighs exactly {', '.join(SCORED)}")
        object.__setattr__(self, "weights", _frozen(self.weights))
        object.__setattr__(self, "tracks", _frozen(self.tracks))


@dataclass(frozen=True)
class ChallengeYear:
    """Every rule of one NTIRE ESR year (see the module docstring for the sources)."""

    year: int
    counting: Mapping[
        str, str
    ]  #: params / flops / activations / convs -> the effbench convention of its tool
    counting_input: tuple[int, int, int, int]  #: the NCHW input the counting tools run on
    counting_tools: str  #: the organisers' counting tools, in words, with where the harness calls them
    baseline: Baseline
    runtime: RuntimeProtocol
    memory: MemoryRule
    psnr: PsnrRule
    score: ScoreRule
    sources: tuple[str, ...]
    notes: str = ""

    def __post_init__(self) -> None:
        missing = set(COUNTED) - set(self.counting)
        if missing:
            raise ValueError(f"{self.year}: counting rules lack {', '.join(sorted(missing))}")
        object.__setattr__(self, "counting", _frozen(self.counting))


# ------------------------------------------------------------------------------------------------------------
# shared pieces

_HOOK = "ntire2022"  # effbench's convention reproducing utils/model_summary.py (the organisers' hook tool)
_INPUT = (1, 3, 256, 256)
_HOOK_COUNTING = (
    {"params": _HOOK, "flops": _HOOK, "activations": _HOOK, "convs": _HOOK},
    _INPUT,
    "utils/model_summary.py get_model_flops / get_model_activation on torch.FloatTensor(1, 3, 256, 256) "
    "(test_demo.py main(): input_dim = (3, 256, 256)); params = sum of parameter numel",
)
_FVCORE_COUNTING = (
    {"params": _HOOK, "flops": "fvcore", "activations": _HOOK, "convs": _HOOK},
    _INPUT,
    "fvcore FlopCountAnalysis(model, torch.rand(1, 3, 256, 256)).total() for FLOPs (ops fvcore does not handle, "
    "e.g. padding='same' convolutions, count 0); utils/model_summary.py get_model_activation on (3, 256, 256) for "
    "#Acts and #Conv (test_demo.py main()); params = sum of parameter numel",
)

_DIV2K_VALID = ImageSet(
    "DIV2K_valid",
    "0801.png-0900.png",
    100,
    (510, 510),
    "assumed: DIV2K HR images are 2040 px on the long side; FMEN Table 4's IMDN memory fits a 510x510 input",
    True,
)
_LSDIR_VALID = ImageSet(
    "LSDIR_valid",
    "000001.png-000100.png",
    100,
    (510, 510),
    "inferred, as an upper bound: the 2024 baseline's recorded valid_memory over DIV2K_LSDIR_valid (467.70 MiB, "
    "results.json) is effbench's prediction for the organisers' RLFN_Prune at 510x510 (469.6 MiB); LSDIR's "
    "image sizes were not found in a public source",
    True,
)


def _runtime(sets: tuple[str, ...], runs: int | None, device: str, source: str) -> RuntimeProtocol:
    return RuntimeProtocol(
        timer="torch.cuda.Event start.record() / end.record() around model(img_lr), then torch.cuda.synchronize(); "
        "the LR image is on the device before start, the SR image leaves it after end",
        per_image=True,
        aggregate="arithmetic mean of the per-image times over each set",
        sets=sets,
        runs=runs,
        cudnn_benchmark=False,
        warmup_images=0,
        device=device,
        source=source,
    )


def _memory(validation_set: str, parts: tuple[ImageSet, ...]) -> MemoryRule:
    return MemoryRule(
        function="torch.cuda.max_memory_allocated(torch.cuda.current_device()) / 1024**2",
        scope="after the whole validation run: the peak over every image, model weights included, never reset",
        validation_set=validation_set,
        parts=parts,
        source="test_demo.py run(): results[f'{mode}_memory']",
    )


def _psnr(
    valid: float, valid_set: str, test: float | None, test_set: str, verified: bool, source: str
) -> PsnrRule:
    return PsnrRule(valid, valid_set, test, test_set, 4, "RGB", True, verified, source)


_RANK_TRACKS = {
    "main": ("runtime",),
    "complexity": ("params", "flops"),
    "overall": ("runtime", "params", "flops", "activations", "memory"),
}


def _scores(weights: tuple[float, float, float], source: str) -> ScoreRule:
    tracks = {"main": ("score_final",), **{k: (f"score_{k}",) for k in SCORED}}
    return ScoreRule("score", dict(zip(SCORED, weights)), tracks, 2.0, True, source)


# ------------------------------------------------------------------------------------------------------------
# the years

_R22 = "https://github.com/ofsoundof/NTIRE2022_ESR"
_R23 = "https://github.com/ofsoundof/NTIRE2023_ESR"
_R24 = "https://github.com/Amazingren/NTIRE2024_ESR"
_R25 = "https://github.com/Amazingren/NTIRE2025_ESR"
_R26 = "https://github.com/Amazingren/NTIRE2026_ESR"
_FMEN = "FMEN (Du et al., CVPRW 2022) Table 4: official setting, GTX 1080Ti, PyTorch 1.4"

_YEARS: dict[int, ChallengeYear] = {
    2022: ChallengeYear(
        2022,
        *_HOOK_COUNTING,
        Baseline(
            "IMDN",
            "models/imdn_baseline.py:IMDN",
            "imdn_ntire",
            1.0,
            {
                "runtime_ms": 50.86,
                "params_m": 0.894,
                "flops_g": 58.53,
                "activations_m": 154.14,
                "convs": 43,
                "memory_mib": 471.76,
                "psnr_valid": 29.13,
            },
            dict.fromkeys(
                ("runtime_ms", "params_m", "flops_g", "activations_m", "convs", "memory_mib", "psnr_valid"),
                _FMEN,
            ),
            kwargs={"in_nc": 3, "out_nc": 3, "nc": 64, "nb": 8, "upscale": 4},
        ),
        _runtime(
            ("DIV2K_valid", "DIV2K_test"), None, "NVIDIA Titan Xp", f"{_R22} README (Ave. Time), test_demo.py"
        ),
        _memory("DIV2K_valid", (_DIV2K_VALID,)),
        _psnr(29.00, "DIV2K_valid", None, "DIV2K_test (0901-1000)", True, "2022 report abstract"),
        ScoreRule("rank", {}, _RANK_TRACKS, 2.0, True, f"{_R22} README (Tracks 1-3), 2022 report"),
        (_R22, "https://arxiv.org/abs/2205.05675"),
        "Track 1 (main) ranks by runtime averaged over DIV2K valid and test; track 2 sums the ranks of params and "
        "FLOPs; track 3 those of runtime, params, FLOPs, activations and memory. PSNR and #Conv are not ranked.",
    ),
    2023: ChallengeYear(
        2023,
        *_HOOK_COUNTING,
        Baseline(
            "RFDN",
            "models/team00_RFDN.py:RFDN",
            "e_rfdn",
            255.0,
            {"params_m": 0.433, "flops_g": 27.1, "activations_m": 112.03, "convs": 64},
            dict.fromkeys(
                ("params_m", "flops_g", "activations_m", "convs"), f"{_FMEN} (E-RFDN, the 2022 harness)"
            ),
        ),
        _runtime(("DIV2K_valid", "DIV2K_test"), None, "not verified", f"{_R23} test_demo.py"),
        _memory("DIV2K_valid", (_DIV2K_VALID,)),
        _psnr(
            29.00,
            "DIV2K_valid",
            None,
            "DIV2K_test (0901-1000) and LSDIR_DIV2K_test (--hybrid_test)",
            False,
            f"not verified: 2022's threshold assumed, the 2023 harness ({_R23} test_demo.py) validating on DIV2K_valid",
        ),
        ScoreRule("rank", {}, _RANK_TRACKS, 2.0, False, "not verified: the 2022 tracks assumed"),
        (_R23,),
        "Verified from the harness: RFDN baseline (data range 255), the 2022 hook tool for FLOPs, #Acts and #Conv "
        "(no fvcore), 3x256x256 counting input, DIV2K_valid 0801-0900 validation. Not verified: tracks, PSNR "
        "threshold, GPU, runs averaged, the baseline's 2023 runtime/memory/PSNR.",
    ),
    2024: ChallengeYear(
        2024,
        *_FVCORE_COUNTING,
        Baseline(
            "RLFN",
            "models/team00_RLFN.py:RLFN_Prune",
            "rlfn",
            255.0,
            {
                "runtime_ms": 13.54,
                "runtime_valid_ms": 16.18,
                "runtime_test_ms": 10.89,
                "params_m": 0.317,
                "flops_g": 19.67,
                "activations_m": 80.05,
                "convs": 39,
                "memory_mib": 467.70,
                "psnr_valid": 26.96,
                "psnr_test": 27.07,
            },
            {
                **dict.fromkeys(
                    (
                        "runtime_ms",
                        "runtime_valid_ms",
                        "runtime_test_ms",
                        "params_m",
                        "flops_g",
                        "psnr_valid",
                    ),
                    f"{_R24} README (average of 5 runs, RTX 3090)",
                ),
                "psnr_test": f"{_R24} README",
                **dict.fromkeys(
                    ("activations_m", "convs", "memory_mib"),
                    f"{_R24} results.json (one recorded run, valid set)",
                ),
            },
        ),
        _runtime(
            ("DIV2K_LSDIR_valid", "DIV2K_LSDIR_test"),
            5,
            "NVIDIA GeForce RTX 3090",
            f"{_R24} README (ranking step 1; baseline runtime), test_demo.py run()",
        ),
        _memory("DIV2K_LSDIR_valid", (_LSDIR_VALID, _DIV2K_VALID)),
        _psnr(26.90, "DIV2K_LSDIR_valid", 26.99, "DIV2K_LSDIR_test", True, f"{_R24} README (ranking step 2)"),
        _scores((0.7, 0.15, 0.15), f"{_R24} README (How the Ranking Strategy Works)"),
        (_R24, "https://arxiv.org/abs/2404.10343"),
        "results.json's first valid image took 1033.8 ms (no warm-up): it is in the recorded mean.",
    ),
    2025: ChallengeYear(
        2025,
        *_FVCORE_COUNTING,
        Baseline(
            "EFDN",
            "models/team00_EFDN.py:EFDN",
            None,
            1.0,
            {
                "runtime_ms": 16.69,
                "runtime_valid_ms": 18.77,
                "runtime_test_ms": 14.61,
                "params_m": 0.276,
                "flops_g": 16.70,
                "psnr_valid": 26.93,
                "psnr_test": 27.01,
            },
            dict.fromkeys(
                (
                    "runtime_ms",
                    "runtime_valid_ms",
                    "runtime_test_ms",
                    "params_m",
                    "flops_g",
                    "psnr_valid",
                    "psnr_test",
                ),
                f"{_R25} README (average of 5 runs, RTX A6000)",
            ),
        ),
        _runtime(
            ("DIV2K_LSDIR_valid", "DIV2K_LSDIR_test"),
            5,
            "NVIDIA RTX A6000",
            f"{_R25} README (ranking step 1), test_demo.py run()",
        ),
        _memory("DIV2K_LSDIR_valid", (_LSDIR_VALID, _DIV2K_VALID)),
        _psnr(26.90, "DIV2K_LSDIR_valid", 26.99, "DIV2K_LSDIR_test", True, f"{_R25} README (ranking step 2)"),
        _scores((0.7, 0.15, 0.15), f"{_R25} README (How the Ranking Strategy Works)"),
        (_R25, "https://arxiv.org/abs/2504.10686"),
    ),
    2026: ChallengeYear(
        2026,
        *_FVCORE_COUNTING,
        Baseline(
            "SPAN",
            "models/team00_SPAN.py:SPAN",
            None,
            1.0,
            {
                "runtime_ms": 7.74,
                "runtime_valid_ms": 8.00,
                "runtime_test_ms": 7.47,
                "params_m": 0.151,
                "flops_g": 9.83,
                "psnr_valid": 26.94,
                "psnr_test": 27.01,
            },
            {
                **dict.fromkeys(
                    ("runtime_ms", "runtime_valid_ms", "runtime_test_ms"),
                    f"{_R26} final README and results.json (RTX A6000; the February README gave 5.59 ms: "
                    "5.62 valid / 5.57 test)",
                ),
                **dict.fromkeys(
                    ("params_m", "flops_g", "psnr_valid", "psnr_test"),
                    f"{_R26} README (average of 5 runs, RTX A6000)",
                ),
            },
            args=(3, 3),
            kwargs={"upscale": 4, "feature_channels": 28},
        ),
        _runtime(
            ("DIV2K_LSDIR_valid", "DIV2K_LSDIR_test"),
            5,
            "NVIDIA RTX A6000",
            f"{_R26} README (ranking step 1), test_demo.py run()",
        ),
        _memory("DIV2K_LSDIR_valid", (_LSDIR_VALID, _DIV2K_VALID)),
        _psnr(26.90, "DIV2K_LSDIR_valid", 26.99, "DIV2K_LSDIR_test", True, f"{_R26} README (ranking step 2)"),
        _scores((0.8, 0.1, 0.1), f"{_R26} README (How the Ranking Strategy Works)"),
        (_R26, "https://arxiv.org/abs/2604.03198"),
        "The harness loads the SPAN baseline with strict=False.",
    ),
}


def challenge_years() -> tuple[int, ...]:
    """The years with rules, oldest first."""
    return tuple(sorted(_YEARS))


def year_rules(year: int) -> ChallengeYear:
    """The rules of ``year``; a :class:`UsageError` naming the valid years for any other."""
    try:
        return _YEARS[int(year)]
    except (KeyError, TypeError, ValueError):
        valid = ", ".join(map(str, challenge_years()))
        raise UsageError(f"no NTIRE ESR rules for year {year!r}; valid years: {valid}") from None
