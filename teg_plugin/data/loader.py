"""`load_data`: one entry point from a dataset name (or folder path) to an `ImageData`."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import MappingProxyType

from .._checks import check_int
from ._cifar import load_cifar
from ._embedded import load_embedded
from ._folder import load_folder
from ._imagenet16 import load_imagenet16_120
from ._synthetic import load_synthetic
from .errors import DataNotFoundError
from .image_data import ImageData

logger = logging.getLogger(__name__)

#: Canonical dataset names accepted by :func:`load_data` (besides a folder path).
DATASET_NAMES: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120", "folder", "synthetic", "embedded")

#: Number of classes of each named dataset whose class count is fixed (``folder`` depends on the folder).
NUM_CLASSES = MappingProxyType(
    {
        "cifar10": 10,
        "cifar100": 100,
        "imagenet16-120": 120,
        "synthetic": 10,
        "embedded": 10,
    }
)

# Spellings people commonly use, mapped to canonical names (after lower-casing and "_" -> "-").
_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100"}

#: Environment variable naming the default data root (``./data`` when unset or empty).
DATA_ROOT_ENV = "TEG_DATA_ROOT"


def default_data_root() -> Path:
    """``$TEG_DATA_ROOT`` if set and non-empty, else ``./data``."""
    return Path(os.environ.get(DATA_ROOT_ENV) or "data")


def load_data(
    name: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    *,
    download: bool = False,
    image_size: int = 32,
) -> ImageData:
    """The TRAINING split of a dataset: the pool scorers draw their batches from.

    Args:
        name: One of :data:`DATASET_NAMES` (case-insensitive; ``_`` accepted for ``-``; ``cifar-10``
            and ``cifar-100`` accepted too), or the path of an existing directory in ``ImageFolder``
            layout (``root`` is then ignored). A known name wins over a directory of the same name
            (pass ``./cifar10`` or a :class:`~pathlib.Path` to mean the directory). ``None`` means CIFAR-10 if it is found under
            ``root`` (or ``download`` is true), else the embedded 500-image CIFAR-10 sample; the
            fallback is announced by one warning on the ``teg_plugin.data.loader`` logger, which
            Python prints to stderr as a single line when logging is not configured. A ``root``
            given here must be an existing folder then (unless ``download``), or this raises.
        root: Where dataset files live (for ``folder``: the image folder itself). Defaults to
            :func:`default_data_root`.
        download: Fetch CIFAR-10/100 into ``root`` if missing. Other datasets ignore it, with a
            warning (as do ``synthetic``, ``embedded`` and a folder path for an explicit ``root``).
        image_size: Side length images of a folder dataset are resized and centre-cropped to. Named
            datasets keep their native resolution (32, or 16 for ImageNet16-120).

    Raises:
        ValueError: unknown ``name`` (the message lists the known names) or ``image_size`` < 1.
        TypeError: ``name`` is neither a string, a path nor ``None``, or ``image_size`` is not an int.
        DataNotFoundError: the dataset's files are missing, or ``name`` is ``None`` and the ``root``
            given is missing or a file; the message says where the loader looked and how to fix it.
    """
    image_size = check_int("image_size", image_size, minimum=1)
    data_root = Path(root) if root is not None else default_data_root()
    if name is None:
        if root is not None:
            _check_named_root(data_root, download=download)
        return _load_default(data_root, download=download)
    kind = dataset_kind(name)
    _warn_unused(kind, root, download)
    if kind == "path":
        return load_folder(Path(name), image_size=image_size)
    if kind in ("cifar10", "cifar100"):
        return load_cifar(kind, data_root, download=download)
    if kind == "imagenet16-120":
        return load_imagenet16_120(data_root)
    if kind == "folder":
        return load_folder(data_root, image_size=image_size)
    if kind == "synthetic":
        return load_synthetic()
    return load_embedded()


def _warn_unused(kind: str, root: str | os.PathLike[str] | None, download: bool) -> None:
    """One warning when the caller gave a data root or asked for a download that ``kind`` has no use for."""
    unused = []
    if root is not None and kind in ("synthetic", "embedded", "path"):
        unused.append(f"the data root {os.fspath(root)!r} (--data-root)")
    if download and kind not in ("cifar10", "cifar100"):
        unused.append("download (--download; only CIFAR-10/100 can be downloaded)")
    if unused:
        what = "an image folder given by its path" if kind == "path" else f"the {kind} dataset"
        logger.warning("teg-plugin: %s ignored for %s", " and ".join(unused), what)


def dataset_kind(name: str | os.PathLike[str]) -> str:
    """What :func:`load_data` makes of ``name``, without loading anything: one of
    :data:`DATASET_NAMES`, or ``"path"`` for an image folder given by its path (a path object, or a
    string naming an existing directory that is not a dataset name).

    Raises:
        ValueError: an unknown name that is not an existing directory either.
        TypeError: ``name`` is neither a string nor a path.
    """
    if isinstance(name, os.PathLike):  # a path object always means an image folder
        return "path"
    if not isinstance(name, str):
        raise TypeError(
            f"dataset must be a name ({', '.join(DATASET_NAMES)}), an image-folder path or None; "
            f"got a {type(name).__module__}.{type(name).__qualname__}"
        )
    key = name.strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key in DATASET_NAMES:
        return key
    if Path(name).is_dir():
        return "path"
    raise ValueError(
        f"unknown dataset {name!r}: expected one of {', '.join(DATASET_NAMES)}, or the path of an existing image folder"
    )


def _check_named_root(root: Path, *, download: bool) -> None:
    """A data root the caller named must exist (unless a download will create it) and be a folder:
    falling back to the embedded sample would hide the typo."""
    if root.is_file():
        raise DataNotFoundError(
            f"the data root {str(root)!r} (--data-root) is a file; give the folder holding the dataset files"
        )
    if not root.exists() and not download:
        raise DataNotFoundError(
            f"the data root {str(root)!r} (--data-root) does not exist; give the folder holding "
            "the dataset files, add --download to fetch CIFAR-10 into it, or leave "
            "--data-root out for the embedded sample"
        )


def _load_default(root: Path, *, download: bool) -> ImageData:
    try:
        return load_cifar("cifar10", root, download=download)
    except DataNotFoundError:
        if download:  # asked for CIFAR-10 explicitly: a failed download is an error, not a fallback
            raise
        logger.warning(
            "teg-plugin: CIFAR-10 not found under %s; using the embedded 500-image CIFAR-10 "
            "sample (pass --data-root/--dataset to change)",
            root.resolve(),
        )
        return load_embedded()
