"""What a model needs done to an image before inference. No heavy imports here.

Also the translation to and from PaddleClas 2.x ``PreProcess.transform_ops`` (the list an
``inference.yml`` carries, as written by ``export_for_fd`` and PaddleX), so a model's own file
decides its preprocessing. ``deploy/python/preprocess.py`` in PaddleClas defines the ops.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, replace
from typing import Any

from ppinfer.errors import ConfigError

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos")
BACKENDS = ("cv2", "pil")
MAX_SIDE = 8192  # resize and crop sizes: a card cannot make every image gigapixels

# ResizeImage ``interpolation`` spellings, per backend, and what each means here. PaddleClas 2.x
# (deploy/python/preprocess.py) lower-cases and knows nearest/bilinear/bicubic/area/lanczos (cv2)
# and nearest/bilinear/bicubic/box/lanczos/hamming (pil); PaddleX 3.x upper-cases and knows
# NEAREST/LINEAR/BICUBIC/AREA/LANCZOS4 (cv2) and NEAREST/BILINEAR/BICUBIC/BOX/LANCZOS4 (pil).
# ppinfer reads both (case-insensitive); "cubic" is in PaddleX's docstrings.
_READ_SPELLINGS = {
    "cv2": {"nearest": "nearest", "bilinear": "bilinear", "linear": "bilinear",
            "bicubic": "bicubic", "cubic": "bicubic", "area": "area",
            "lanczos": "lanczos", "lanczos4": "lanczos"},
    "pil": {"nearest": "nearest", "bilinear": "bilinear", "linear": "bilinear",
            "bicubic": "bicubic", "cubic": "bicubic", "box": "area", "area": "area",
            "lanczos": "lanczos", "lanczos4": "lanczos"},
}
# What ppinfer writes: a spelling both readers accept. Under cv2 they share no word for bilinear,
# but both default to it, so the key is left out; under pil PaddleX's default ("LINEAR") is not a
# PIL filter, so "bilinear" is written out. Lanczos has no common spelling: PaddleX's is written.
_WRITE_SPELLINGS = {
    "cv2": {"nearest": "nearest", "bilinear": None, "bicubic": "bicubic", "area": "area",
            "lanczos": "LANCZOS4"},
    "pil": {"nearest": "nearest", "bilinear": "bilinear", "bicubic": "bicubic", "area": "box",
            "lanczos": "LANCZOS4"},
}
PADDLECLAS_OPS = ("DecodeImage", "ResizeImage", "CropImage", "NormalizeImage", "ToCHWImage")


class PreprocessConfigError(ConfigError, ValueError):
    """An invalid preprocessing setting.

    Also a ValueError, so code that parses a whole file (``modelcard``) can catch it and name
    the file.
    """


@dataclass(frozen=True)
class PreprocessConfig:
    """PaddleClas eval transform: resize short side, center crop, ``(x * scale - mean) / std``, CHW.

    Images are RGB after decoding. Defaults are PaddleClas's ImageNet ones.
    """

    resize_short: int = 256
    crop_size: tuple[int, int] = (224, 224)  # (width, height), as PaddleClas's CropImage size
    interpolation: str = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    # PaddleClas ResizeImage's `backend`: "cv2" (default) or "pil" (Pillow's filters, used by
    # some transformer configs; needs Pillow installed).
    backend: str = "cv2"
    # (width, height): resize to exactly this instead of by the short side (ResizeImage `size`).
    resize_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        # Normalise sequences (YAML gives lists) so the frozen object stays hashable.
        for name in ("crop_size", "mean", "std", "resize_size"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))
        if self.interpolation not in INTERPOLATIONS:
            raise PreprocessConfigError(
                f"interpolation {self.interpolation!r} is not one of {', '.join(INTERPOLATIONS)}"
            )
        if self.backend not in BACKENDS:
            raise PreprocessConfigError(
                f"resize backend {self.backend!r} is not one of {', '.join(BACKENDS)}"
            )
        self._check_sizes()
        if len(self.mean) != 3 or len(self.std) != 3:
            raise PreprocessConfigError("mean and std need one value per RGB channel (3 each)")
        numbers = {"scale": (self.scale,), "mean": self.mean, "std": self.std}
        for name, values in numbers.items():
            if not all(math.isfinite(float(v)) for v in values):
                raise PreprocessConfigError(f"{name} {list(values)} is not finite (NaN or inf)")
        if any(float(s) == 0.0 for s in self.std):
            raise PreprocessConfigError(f"std {list(self.std)} has a zero: it divides the pixels")

    def _check_sizes(self) -> None:
        sides = [*self.crop_size, *(self.resize_size or ()), self.resize_short]
        if max(sides) > MAX_SIDE:
            raise PreprocessConfigError(
                f"a resize or crop of {max(sides)} pixels is over ppinfer's limit of {MAX_SIDE}: "
                "every image would be resized to it"
            )
        if len(self.crop_size) != 2 or min(self.crop_size) < 1:
            raise PreprocessConfigError(
                f"crop_size {self.crop_size} must be two positive integers (width, height)"
            )
        if self.resize_size is not None:
            if len(self.resize_size) != 2 or min(self.resize_size) < 1:
                raise PreprocessConfigError(
                    f"resize_size {self.resize_size} must be two positive integers (width, height)"
                )
            fits = all(c <= r for c, r in zip(self.crop_size, self.resize_size))
            limit = f"resize size {self.resize_size[0]}x{self.resize_size[1]}"
        else:
            if self.resize_short < 1:
                raise PreprocessConfigError(f"resize_short {self.resize_short} must be positive")
            fits = max(self.crop_size) <= self.resize_short
            limit = f"resize_short {self.resize_short}"
        if not fits:
            raise PreprocessConfigError(
                f"crop {self.crop_size[0]}x{self.crop_size[1]} is larger than the {limit}: "
                "the crop must fit inside the resized image"
            )

    @classmethod
    def from_paddleclas_ops(cls, ops: list[dict[str, Any]] | None) -> PreprocessConfig:
        """Build from PaddleClas ``PreProcess.transform_ops`` (a list of one-key mappings).

        Accepts DecodeImage (RGB, HWC only), ResizeImage, CropImage, NormalizeImage and
        ToCHWImage; any other op, or an argument ppinfer would ignore, raises
        :class:`PreprocessConfigError` naming it.
        """
        if not isinstance(ops, list):
            raise PreprocessConfigError(
                f"transform_ops must be a list of operations, not {type(ops).__name__}"
            )
        parsed: dict[str, dict[str, Any]] = {}
        for position, entry in enumerate(ops):
            name, args = _split_op(entry, position)
            if name in parsed:
                raise PreprocessConfigError(f"transform_ops lists {name} twice")
            parsed[name] = args
        names = list(parsed)
        if "ResizeImage" not in parsed:
            raise PreprocessConfigError(
                "transform_ops has no ResizeImage: ppinfer needs one to size the input"
            )
        _decode_args(parsed.get("DecodeImage"))
        kwargs = _resize_args(parsed["ResizeImage"])
        if "ToCHWImage" not in parsed:
            raise PreprocessConfigError(
                "transform_ops has no ToCHWImage: ppinfer always feeds CHW input to the model"
            )
        if "CropImage" in parsed and names.index("CropImage") < names.index("ResizeImage"):
            raise PreprocessConfigError("transform_ops crops before resizing: ppinfer cannot")
        kwargs["crop_size"] = _crop_args(parsed.get("CropImage"), kwargs)
        if "NormalizeImage" in parsed:
            after_chw = names.index("NormalizeImage") > names.index("ToCHWImage")
            kwargs.update(_normalize_args(parsed["NormalizeImage"], after_chw))
        else:  # no normalisation: raw 0..255 pixel values
            kwargs.update(scale=1.0, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
        return cls(**kwargs)

    def for_input_shape(self, input_shape: tuple[int, int, int]) -> PreprocessConfig:
        """This preprocessing with the crop following ``input_shape`` (C, H, W) and the resize
        scaled in proportion, e.g. 256 -> 224 becomes 146 -> 128 for a 128x128 input.

        A crop that the scaled short side cannot hold (a wide 160x80 input: short side 91) is
        not cropped at all: the image is resized to exactly the input, as PaddleClas's
        text-line configs do (``ResizeImage: {size: [160, 80]}``)."""
        _, height, width = input_shape
        if (width, height) == tuple(self.crop_size):
            return self
        if self.resize_size is None:
            short = round(min(width, height) * self.resize_short / min(self.crop_size))
            if max(width, height) <= short:
                return replace(self, crop_size=(width, height), resize_short=short)
        return replace(self, crop_size=(width, height), resize_size=(width, height))

    def to_paddleclas_ops(self) -> list[dict[str, Any]]:
        """The PaddleClas ``transform_ops`` list for this config (plain lists, YAML-safe)."""
        resize: dict[str, Any]
        if self.resize_size is not None:
            resize = {"size": [int(v) for v in self.resize_size]}
        else:
            resize = {"resize_short": int(self.resize_short)}
        spelling = _WRITE_SPELLINGS[self.backend][self.interpolation]
        if spelling is not None:
            resize["interpolation"] = spelling
        if self.backend != "cv2":
            resize["backend"] = self.backend
        width, height = (int(v) for v in self.crop_size)
        return [
            {"ResizeImage": resize},
            {"CropImage": {"size": width if width == height else [width, height]}},
            {
                "NormalizeImage": {
                    "scale": float(self.scale),
                    "mean": [float(v) for v in self.mean],
                    "std": [float(v) for v in self.std],
                    "order": "",
                }
            },
            {"ToCHWImage": None},
        ]


IMAGENET_PREPROCESS = PreprocessConfig()


def _split_op(entry: Any, position: int) -> tuple[str, dict[str, Any]]:
    if not isinstance(entry, dict) or len(entry) != 1:
        raise PreprocessConfigError(
            f"transform_ops entry {position} must be a one-key mapping like "
            f"{{'ResizeImage': {{'resize_short': 256}}}}, not {entry!r}"
        )
    name, args = next(iter(entry.items()))
    if name not in PADDLECLAS_OPS:
        raise PreprocessConfigError(
            f"transform_ops has an operation ppinfer does not know: {name!r} "
            f"(known: {', '.join(PADDLECLAS_OPS)})"
        )
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise PreprocessConfigError(f"{name}'s arguments must be a mapping, not {args!r}")
    return name, args


def _reject_unknown(op: str, args: dict[str, Any], known: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(known))
    if unknown:
        raise PreprocessConfigError(
            f"{op} has argument(s) ppinfer does not support: {', '.join(unknown)} "
            f"(supported: {', '.join(known)})"
        )


def _size_pair(op: str, value: Any) -> tuple[int, int]:
    """PaddleClas sizes: an int (square) or [width, height]."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        return (value, value)
    if (
        isinstance(value, (list, tuple))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (int(value[0]), int(value[1]))
    raise PreprocessConfigError(f"{op} size {value!r} must be an integer or [width, height]")


def _resize_args(args: dict[str, Any]) -> dict[str, Any]:
    _reject_unknown(
        "ResizeImage", args, ("resize_short", "size", "interpolation", "backend", "return_numpy")
    )
    out: dict[str, Any] = {}
    short = args.get("resize_short")
    if short is not None and (not isinstance(short, int) or isinstance(short, bool)):
        raise PreprocessConfigError(f"ResizeImage resize_short {short!r} must be an integer")
    if short is not None and short > 0:  # PaddleClas: resize_short wins over size
        out["resize_short"] = short
    elif args.get("size") is not None:
        out["resize_size"] = _size_pair("ResizeImage", args["size"])
    else:
        raise PreprocessConfigError("ResizeImage needs resize_short or size")
    backend = args.get("backend", "cv2")
    if not isinstance(backend, str) or backend.lower() not in BACKENDS:
        raise PreprocessConfigError(
            f"ResizeImage backend {backend!r} is not one of {', '.join(BACKENDS)}"
        )
    out["backend"] = backend.lower()
    interpolation = args.get("interpolation")
    if interpolation is not None:  # absent: bilinear, as in PaddleClas (and PaddleX for cv2)
        out["interpolation"] = _read_interpolation(interpolation, out["backend"])
    if args.get("return_numpy", True) is not True:
        raise PreprocessConfigError("ResizeImage return_numpy must be true (ppinfer uses arrays)")
    return out


def _read_interpolation(value: Any, backend: str) -> str:
    spellings = _READ_SPELLINGS[backend]
    if not isinstance(value, str) or value.strip().lower() not in spellings:
        known = ", ".join(spellings)
        raise PreprocessConfigError(
            f"ResizeImage interpolation {value!r} is not one ppinfer knows for backend "
            f"{backend} ({known}; any case)"
        )
    return spellings[value.strip().lower()]


def _decode_args(args: dict[str, Any] | None) -> None:
    if args is None:
        return
    _reject_unknown("DecodeImage", args, ("to_rgb", "to_np", "channel_first"))
    if args.get("to_rgb", True) is not True or args.get("channel_first", False) is not False:
        raise PreprocessConfigError(
            "DecodeImage must decode to RGB, channels last (to_rgb: true, channel_first: false)"
        )


def _crop_args(args: dict[str, Any] | None, resize: dict[str, Any]) -> tuple[int, int]:
    if args is None:
        if "resize_size" in resize:  # a fixed-size resize needs no crop
            return resize["resize_size"]
        raise PreprocessConfigError(
            "transform_ops resizes by the short side but has no CropImage: the input size "
            "would vary with each image"
        )
    _reject_unknown("CropImage", args, ("size",))
    if "size" not in args:
        raise PreprocessConfigError("CropImage needs a size")
    return _size_pair("CropImage", args["size"])


def _normalize_args(args: dict[str, Any], after_chw: bool) -> dict[str, Any]:
    _reject_unknown(
        "NormalizeImage", args, ("scale", "mean", "std", "order", "output_fp16", "channel_num")
    )
    order = args.get("order", "chw")  # PaddleClas's default, for a CHW image
    if order not in ("", "hwc", "chw"):
        raise PreprocessConfigError(f"NormalizeImage order {order!r} is not '', 'hwc' or 'chw'")
    if (order == "chw") != after_chw:
        where = "after" if after_chw else "before"
        raise PreprocessConfigError(
            f"NormalizeImage order {order!r} does not fit its place {where} ToCHWImage "
            "(use order: '' before ToCHWImage)"
        )
    if args.get("output_fp16", False) is not False:
        raise PreprocessConfigError("NormalizeImage output_fp16 is not supported: set it false")
    if args.get("channel_num", 3) != 3:
        raise PreprocessConfigError("NormalizeImage channel_num must be 3 (RGB input)")
    out: dict[str, Any] = {}
    if args.get("scale") is not None:
        out["scale"] = parse_scale(args["scale"])
    for key in ("mean", "std"):
        if args.get(key) is not None:
            value = args[key]
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise PreprocessConfigError(f"NormalizeImage {key} {value!r} must be 3 numbers")
            out[key] = tuple(float(v) for v in value)
    return out


_ARITHMETIC = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def parse_scale(value: Any) -> float:
    """NormalizeImage's ``scale``: a number, or a string like ``'1.0/255.0'``.

    PaddleClas runs such strings through ``eval``; here only numbers and ``+ - * /`` are allowed.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(_eval_arithmetic(ast.parse(value.strip(), mode="eval").body))
        except (SyntaxError, ValueError, ZeroDivisionError):
            pass
    raise PreprocessConfigError(
        f"NormalizeImage scale {value!r} is not a number or a fraction like '1.0/255.0'"
    )


def _eval_arithmetic(node: ast.AST) -> float:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
        return _ARITHMETIC[type(node.op)](_eval_arithmetic(node.left), _eval_arithmetic(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.UAdd, ast.USub)):
        operand = _eval_arithmetic(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    raise ValueError("not plain arithmetic")
