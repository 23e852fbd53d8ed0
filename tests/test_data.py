"""Tests for teg_plugin.data: ImageData, the embedded sample and every load_data source."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from teg_plugin.data import (
    DATASET_NAMES,
    NUM_CLASSES,
    DataNotFoundError,
    ImageData,
    load_data,
)

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def _tiny(**overrides: object) -> ImageData:
    fields: dict[str, object] = dict(
        name="tiny",
        images=torch.arange(2 * 3 * 2 * 2, dtype=torch.uint8).reshape(2, 3, 2, 2),
        labels=torch.tensor([0, 1]),
        num_classes=2,
        mean=(0.5, 0.4, 0.3),
        std=(0.2, 0.25, 0.5),
        source="test",
    )
    fields.update(overrides)
    return ImageData(**fields)  # type: ignore[arg-type]


# --- the embedded sample ------------------------------------------------------------------------


def test_embedded_sample_contents() -> None:
    data = load_data("embedded")
    assert len(data) == 500
    assert data.images.shape == (500, 3, 32, 32) and data.images.dtype == torch.uint8
    assert data.labels.dtype == torch.int64
    assert torch.bincount(data.labels).tolist() == [50] * 10
    assert data.num_classes == 10 == NUM_CLASSES["embedded"]
    assert data.mean == CIFAR10_MEAN and data.std == CIFAR10_STD
    assert data.source.startswith("embedded CIFAR-10 sample (")
    # Real photographs, not noise: channel means near CIFAR-10's.
    channel_means = data.images.float().mean(dim=(0, 2, 3)) / 255
    assert torch.allclose(channel_means, torch.tensor(CIFAR10_MEAN), atol=0.05)


def test_embedded_resource_arrays() -> None:
    from importlib import resources

    with (
        (resources.files("teg_plugin") / "_resources" / "cifar10_sample.npz").open("rb") as f,
        np.load(f, allow_pickle=False) as npz,
    ):
        assert sorted(npz.files) == ["images", "labels", "source_index"]
        assert npz["images"].shape == (500, 32, 32, 3) and npz["labels"].dtype == np.uint8
        assert npz["source_index"][:3].tolist() == [0, 1, 2] and npz["source_index"][50] == 500


def test_name_is_case_and_separator_insensitive() -> None:
    assert load_data(" Embedded ").name == "embedded"
    assert set(DATASET_NAMES) >= {"cifar10", "cifar100", "imagenet16-120", "folder", "synthetic", "embedded"}


# --- ImageData ----------------------------------------------------------------------------------


def test_batch_normalisation_is_exact() -> None:
    data = _tiny()
    x, y = data.batch([1, 0, 1])
    assert x.dtype == torch.float32 and x.shape == (3, 3, 2, 2)
    assert y.dtype == torch.int64 and y.tolist() == [1, 0, 1]
    raw = data.images[[1, 0, 1]].double() / 255
    mean = torch.tensor(data.mean, dtype=torch.float64).view(1, 3, 1, 1)
    std = torch.tensor(data.std, dtype=torch.float64).view(1, 3, 1, 1)
    assert torch.allclose(x.double(), (raw - mean) / std, rtol=0, atol=1e-6)
    # Pixel value 5 in channel 1 of image 0: (5/255 - 0.4) / 0.25.
    assert x[1, 1, 0, 1].item() == pytest.approx((5 / 255 - 0.4) / 0.25, abs=1e-6)
    x2, _ = data.batch(torch.tensor([0]))
    assert torch.equal(x2[0], x[1])


def test_batch_rejects_bad_indices() -> None:
    data = _tiny()
    with pytest.raises(IndexError, match=r"\[0, 2\)"):
        data.batch([0, 2])
    with pytest.raises(IndexError):
        data.batch([-1])
    with pytest.raises(TypeError, match="integers"):
        data.batch([0.5])
    assert data.batch([])[0].shape == (0, 3, 2, 2)


def test_fingerprint_stable_and_sensitive() -> None:
    first, second = load_data("embedded"), load_data("embedded")
    assert first.fingerprint() == second.fingerprint()
    assert len(first.fingerprint()) == 64
    images = first.images.clone()
    images[123, 1, 4, 5] ^= 1
    changed = ImageData(
        name=first.name,
        images=images,
        labels=first.labels,
        num_classes=10,
        mean=first.mean,
        std=first.std,
        source=first.source,
    )
    assert changed.fingerprint() != first.fingerprint()
    relabelled = ImageData(
        name=first.name,
        images=first.images,
        labels=first.labels.roll(1),
        num_classes=10,
        mean=first.mean,
        std=first.std,
        source=first.source,
    )
    assert relabelled.fingerprint() != first.fingerprint()
    assert _tiny(source="elsewhere").fingerprint() == _tiny().fingerprint()
    assert _tiny(std=(0.2, 0.25, 0.51)).fingerprint() != _tiny().fingerprint()


def test_fingerprint_is_pinned() -> None:
    # Fixed digests: the same in every process and on every machine (source is not hashed).
    assert _tiny().fingerprint() == "0ad33fd1288abcf728e842181362b3e324b5f689fcfb6f07262e3624d25ea533"
    assert load_data("embedded").fingerprint() == ("175a37caf7e56909c8c73b295c6196eb3ae03fda8e463ec098501736cf178957")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"images": torch.zeros(2, 3, 2, 2)}, "uint8"),
        ({"images": torch.zeros(2, 3, 4, dtype=torch.uint8)}, r"\(N, C, H, W\)"),
        ({"labels": torch.tensor([0, 1], dtype=torch.int32)}, "int64"),
        ({"labels": torch.tensor([0, 1, 1])}, "2 images but 3 labels"),
        ({"labels": torch.tensor([0, 2])}, r"\[0, 2\)"),
        ({"labels": torch.tensor([-1, 0])}, r"\[0, 2\)"),
        (
            {"images": torch.zeros(0, 3, 2, 2, dtype=torch.uint8), "labels": torch.zeros(0, dtype=torch.int64)},
            "at least one image",
        ),
        ({"mean": (0.5, 0.5)}, "one value per channel"),
        ({"std": (0.2, 0.0, 0.5)}, "std must be finite and > 0"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_bad_construction(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _tiny(**overrides)


def test_frozen_and_tuple_stats() -> None:
    data = _tiny(mean=[0.5, 0.4, 0.3])
    assert data.mean == (0.5, 0.4, 0.3)
    with pytest.raises(AttributeError):
        data.name = "other"  # type: ignore[misc]


# --- load_data sources --------------------------------------------------------------------------


def test_synthetic_is_deterministic() -> None:
    a, b = load_data("synthetic"), load_data("SYNTHETIC")
    assert a.images.shape == (512, 3, 32, 32) and a.images.dtype == torch.uint8
    assert a.num_classes == 10 and a.mean == (0.5,) * 3 and a.std == (0.5,) * 3
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert set(a.labels.tolist()) == set(range(10))


def test_unknown_name_lists_known_names(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as info:
        load_data("mnist", root=tmp_path)
    for name in DATASET_NAMES:
        assert name in str(info.value)


def test_missing_cifar_without_download(tmp_path: Path) -> None:
    for name in ("cifar10", "CIFAR_100", "cifar100"):
        with pytest.raises(DataNotFoundError, match="download") as info:
            load_data(name, root=tmp_path)
        assert str(tmp_path) in str(info.value)
        assert isinstance(info.value, FileNotFoundError)
    # A folder without valid files goes through torchvision's integrity check.
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"truncated")
    with pytest.raises(DataNotFoundError, match="corrupted.*download"):
        load_data("cifar10", root=tmp_path)


def test_cifar_conversion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real files cannot be downloaded here, so stand in for torchvision's loader.
    import torchvision.datasets

    class FakeCIFAR10:
        def __init__(self, root: str, train: bool, download: bool) -> None:
            assert train and root == str(tmp_path)
            self.data = np.arange(2 * 32 * 32 * 3, dtype=np.int64).reshape(2, 32, 32, 3).astype(np.uint8)
            self.targets = [3, 7]
            self.classes = [str(i) for i in range(10)]

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeCIFAR10)
    (tmp_path / "cifar-10-batches-py").mkdir()
    data = load_data("cifar10", root=tmp_path)
    assert data.images.shape == (2, 3, 32, 32) and data.labels.tolist() == [3, 7]
    assert data.images[1, 2, 4, 5].item() == FakeCIFAR10(str(tmp_path), True, False).data[1, 4, 5, 2]
    assert data.mean == CIFAR10_MEAN and data.std == CIFAR10_STD and data.num_classes == 10


def test_default_falls_back_to_embedded_with_notice(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="teg_plugin.data"):
        data = load_data(root=tmp_path)
    assert data.name == "embedded" and len(data) == 500
    notices = [r.getMessage() for r in caplog.records if r.name.startswith("teg_plugin.data")]
    assert len(notices) == 1
    assert "CIFAR-10 not found" in notices[0] and str(tmp_path) in notices[0] and "embedded" in notices[0]
    assert "\n" not in notices[0]


@pytest.mark.parametrize(
    ("name", "root", "download", "expected"),
    [
        ("embedded", "somewhere", False, "the data root 'somewhere' (--data-root) ignored for the embedded dataset"),
        (
            "synthetic",
            None,
            True,
            "download (--download; only CIFAR-10/100 can be downloaded) ignored for the synthetic dataset",
        ),
        ("embedded", "x", True, "the data root 'x' (--data-root) and download (--download"),
    ],
)
def test_settings_a_dataset_does_not_use_are_named_once(
    name: str, root: str | None, download: bool, expected: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="teg_plugin.data"):
        load_data(name, root, download=download)
    notices = [r.getMessage() for r in caplog.records if r.name.startswith("teg_plugin.data")]
    assert len(notices) == 1 and expected in notices[0], notices


def test_settings_a_dataset_uses_are_not_warned_about(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="teg_plugin.data"):
        load_data("embedded")
        load_data("synthetic")
        with pytest.raises(DataNotFoundError):
            load_data("cifar10", tmp_path)  # the root is used (and holds nothing), no download asked
    assert not [r for r in caplog.records if r.name.startswith("teg_plugin.data")]


def test_default_root_from_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TEG_DATA_ROOT", str(tmp_path / "env-root"))
    with caplog.at_level(logging.WARNING, logger="teg_plugin.data"):
        load_data()
    assert str(tmp_path / "env-root") in caplog.text


def _write_imagenet16(folder: Path) -> list[tuple[np.ndarray, int]]:
    """Ten tiny batch files; returns the (row, label) pairs ImageNet16-120 must keep, in order."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    kept = []
    for i in range(1, 11):
        labels = [1, 120, 121, 1000, (i * 7) % 130 + 1]
        data = rng.integers(0, 256, size=(len(labels), 3 * 16 * 16), dtype=np.uint8)
        kept += [(row, label) for row, label in zip(data, labels) if label <= 120]
        with (folder / f"train_data_batch_{i}").open("wb") as f:
            pickle.dump({"data": data, "labels": labels, "mean": data.mean(axis=0)}, f, protocol=2)
    return kept


@pytest.mark.parametrize("subdir", ["", "ImageNet16"])
def test_imagenet16_120_from_files(tmp_path: Path, subdir: str) -> None:
    root = tmp_path / "root"
    kept = _write_imagenet16(root / subdir if subdir else root)
    data = load_data("ImageNet16_120", root=root)
    assert data.name == "imagenet16-120" and data.num_classes == 120 == NUM_CLASSES["imagenet16-120"]
    assert data.images.shape == (len(kept), 3, 16, 16)
    assert data.labels.tolist() == [label - 1 for _, label in kept]
    assert int(data.labels.min()) == 0 and int(data.labels.max()) == 119
    # Rows are channel-major: the first 256 values are the red plane.
    row = kept[1][0]
    assert torch.equal(data.images[1], torch.from_numpy(row.reshape(3, 16, 16)))
    assert data.mean == (0.4811, 0.4575, 0.4078) and data.std == (0.2605, 0.2533, 0.2683)


def test_imagenet16_missing(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="train_data_batch_1") as info:
        load_data("imagenet16-120", root=tmp_path)
    assert str(tmp_path / "ImageNet16") in str(info.value)


def test_imagenet16_refuses_foreign_pickles(tmp_path: Path) -> None:
    _write_imagenet16(tmp_path / "ImageNet16")
    with (tmp_path / "ImageNet16" / "train_data_batch_3").open("wb") as f:
        pickle.dump({"data": Path("x"), "labels": []}, f)
    with pytest.raises(pickle.UnpicklingError, match="pathlib"):
        load_data("imagenet16-120", root=tmp_path)


def _write_png_folder(root: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(1)
    for cls, count in (("cat", 2), ("dog", 1)):
        (root / cls).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 256, size=(8, 12, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / cls / f"{i}.png")
    Image.fromarray(np.full((4, 4), 200, dtype=np.uint8), mode="L").save(root / "dog" / "grey.png")
    (root / "dog" / "notes.txt").write_text("not an image")


def test_image_folder(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    _write_png_folder(root)
    for data in (load_data("folder", root=root, image_size=6), load_data(str(root), image_size=6)):
        assert data.name == "folder" and data.num_classes == 2
        assert data.images.shape == (4, 3, 6, 6) and data.images.dtype == torch.uint8
        assert data.labels.tolist() == [0, 0, 1, 1]
        assert torch.all(data.images[3] == 200)  # greyscale became RGB
        expected_mean = (data.images.double() / 255).mean(dim=(0, 2, 3))
        assert data.mean == pytest.approx(expected_mean.tolist())
        assert all(s > 0 for s in data.std)
        assert data.source == str(root.resolve())


def test_image_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_data("folder", root=tmp_path / "missing")
    with pytest.raises(DataNotFoundError, match="no class subfolders"):
        load_data("folder", root=tmp_path)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match="one class subfolder"):  # G needs two classes
        load_data("folder", root=tmp_path)
    (tmp_path / "other_class").mkdir()
    with pytest.raises(DataNotFoundError, match="empty_class"):
        load_data("folder", root=tmp_path)


def test_folder_given_as_path_object(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"  # a Path always means a folder, even one named like a dataset
    _write_png_folder(root)
    assert load_data(root, image_size=6).name == "folder"
    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_data(tmp_path / "missing")


def test_dataset_of_wrong_type() -> None:
    with pytest.raises(TypeError, match="TensorDataset"):
        load_data(torch.utils.data.TensorDataset(torch.zeros(2, 3, 32, 32)))  # type: ignore[arg-type]


def test_bad_image_size() -> None:
    with pytest.raises(ValueError, match="image_size must be >= 1, got 0"):
        load_data("synthetic", image_size=0)
    with pytest.raises(TypeError, match="image_size must be an int, got 32.0"):
        load_data("synthetic", image_size=32.0)  # type: ignore[arg-type]
