"""Step 4 of the data: read the extracted CIFAR pickles safely and pack both splits into one
tensor file that records which archive it came from; load it back, checked."""

from __future__ import annotations

import math
import os
import pickle
import reprlib
import warnings
from pathlib import Path

import numpy as np

from msga.data import FetchError
from msga.data.format import FOLDER, IMAGE_SHAPE, MAX_IMAGES, MEMBER_LIMITS, NUM_CLASSES, SPLITS
from msga.infra.atomic import atomic_output

# What an array of a CIFAR pickle may hold: numpy's pickle code of a numeric dtype (e.g. 'u1') and a
# byte order; no object, text, structured or datetime dtype (they carry Python objects or layouts).
_DTYPE_CODES = {"b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8"}
_BYTE_ORDERS = {"|", "<", ">", "="}


_SHORT = reprlib.Repr()  # a hostile pickle's values, named in an error, in a few dozen characters
_SHORT.maxstring = _SHORT.maxother = 40


def _refuse(what: str, *values) -> pickle.UnpicklingError:
    shown = f"({', '.join(map(_SHORT.repr, values))})" if values else ""
    return pickle.UnpicklingError(f"refusing {what}{shown}: a CIFAR pickle holds plain values and numeric arrays only")


class _Budget:
    """The bytes one kind of decoding may still make while one pickle loads: no more than the pickle's
    own size. A pickle can name one object many times for a few bytes each (its memo), so without a
    bound a small file could make an array, or a bytes object, per mention: gigabytes from kilobytes."""

    __slots__ = ("left", "what")

    def __init__(self, limit: int, what: str):
        self.left, self.what = limit, what

    def spend(self, n: int) -> None:
        self.left -= n
        if self.left < 0:
            raise pickle.UnpicklingError(f"refusing to decode more {self.what} than the pickle's own bytes hold "
                                         "(it names one value many times, to expand when loaded)")


class _DtypeSpec:
    """A dtype being unpickled: built by us from its code and checked state (numpy's own dtype
    __setstate__ would accept fields, subarrays and object members)."""

    __slots__ = ("dtype",)

    def __init__(self, code: str):
        self.dtype = np.dtype(code)

    def __repr__(self):
        return f"numpy.dtype({str(self.dtype)!r})"

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, sizes..., flags): a plain dtype has one
        # byte order character and otherwise only None and integers
        if not isinstance(state, tuple):
            raise _refuse(f"a numpy dtype state of type {type(state).__name__}")
        texts = [s for s in state if isinstance(s, str)]
        others_plain = all(s is None or type(s) is int for s in state if not isinstance(s, str))
        if not others_plain or len(texts) != 1 or texts[0] not in _BYTE_ORDERS:
            raise _refuse(f"the numpy dtype state {_SHORT.repr(state)}")
        if texts[0] in "<>":
            self.dtype = self.dtype.newbyteorder(texts[0])


class _Array(np.ndarray):
    """An array being unpickled: its state (shape, dtype, order, bytes) is checked before numpy
    sees it; the dtype must be one of ours and the bytes exactly fill the shape."""

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 5 and state[0] == 1:
            state = state[1:]  # (version, shape, dtype, fortran, bytes); old numpy wrote no version
        if not (isinstance(state, tuple) and len(state) == 4):
            raise _refuse("an array state that is not (shape, dtype, order, bytes)")
        shape, spec, fortran, raw = state
        if isinstance(raw, str):  # Python 2 wrote the bytes as a str; encoding="latin1" maps it 1:1
            raw = raw.encode("latin1")
        if not (isinstance(shape, tuple) and len(shape) <= 32 and all(type(n) is int and n >= 0 for n in shape)
                and isinstance(spec, _DtypeSpec) and type(fortran) in (bool, int) and fortran in (0, 1)
                and isinstance(raw, bytes) and math.prod(shape) * spec.dtype.itemsize == len(raw)):
            raise _refuse("an array whose state is not a shape, a numeric dtype, an order and exactly its bytes")
        self.budget.spend(len(raw))  # set by _Reconstruct, before numpy copies the bytes in
        super().__setstate__((1, shape, spec.dtype, bool(fortran), raw))


class _Global:
    """A global a CIFAR pickle may name. It has no attributes (no __dict__, no slots), so a BUILD
    opcode cannot change it; calling it checks its arguments."""

    __slots__ = ()
    NAME = ""

    def __repr__(self):
        return self.NAME

    def __setstate__(self, state):
        raise _refuse(f"a BUILD on {self.NAME}")


class _NdarrayName(_Global):
    """`numpy.ndarray`: only an argument of _reconstruct, never the class itself (NEWOBJ on the
    real class would allocate an array of any size the pickle asks for)."""

    __slots__ = ()
    NAME = "numpy.ndarray"


_NDARRAY = _NdarrayName()


class _Reconstruct(_Global):
    """numpy's `_reconstruct(ndarray, (0,), b'b')`, as numpy's pickles call it: an empty array
    that BUILD then fills through _Array.__setstate__, within the budget of array bytes."""

    __slots__ = ("budget",)
    NAME = "numpy _reconstruct"

    def __init__(self, budget: _Budget):
        self.budget = budget

    def __call__(self, subtype=None, shape=None, typecode=None, *extra):
        if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b") or extra:
            raise _refuse(self.NAME, subtype, shape, typecode, *extra)
        array = _Array((0,), np.uint8)
        array.budget = self.budget
        return array


class _Dtype(_Global):
    """`numpy.dtype(code, align, copy)`, as numpy's pickles call it (Python 2 wrote 0 and 1)."""

    __slots__ = ()
    NAME = "numpy.dtype"

    def __call__(self, code=None, align=False, copy=True, *extra):
        if not (isinstance(code, str) and code in _DTYPE_CODES and align in (0, 1) and copy in (0, 1)) or extra:
            raise _refuse(self.NAME, code, align, copy, *extra)
        return _DtypeSpec(code)


class _Latin1(_Global):
    """`_codecs.encode(text, 'latin1')`: how a protocol 2 pickle written by Python 3 holds bytes;
    within the budget of encoded bytes (one text, named again and again, would be encoded anew each time)."""

    __slots__ = ("budget",)
    NAME = "_codecs.encode"

    def __init__(self, budget: _Budget):
        self.budget = budget

    def __call__(self, text=None, encoding=None, *extra):
        if not isinstance(text, str) or encoding != "latin1" or extra:
            raise _refuse(self.NAME, text, encoding, *extra)
        self.budget.spend(len(text))
        return text.encode("latin1")


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles what a CIFAR pickle holds: dicts, lists, strings, numbers and numeric arrays.

    Exactly the globals numpy's array pickles name are admitted, each as an object of ours that
    checks its arguments. No name is looked up in any module: no dotted path (numpy.lib...os.system),
    no other numpy function (numpy.save, numpy.load), no builtin can be reached. The arrays, and the
    bytes decoded from text, may hold no more bytes than the pickle itself (`size`): real CIFAR stores
    each array's bytes in the pickle once.
    """

    def __init__(self, file, size: int, **kwargs):
        super().__init__(file, **kwargs)
        reconstruct = _Reconstruct(_Budget(size, "array bytes"))
        self.globals = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,  # numpy 1 (and Python 2) pickles
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,  # numpy 2
            ("numpy", "ndarray"): _NDARRAY,
            ("numpy", "dtype"): _Dtype(),
            ("_codecs", "encode"): _Latin1(_Budget(size, "bytes from text")),
        }

    def find_class(self, module, name):
        try:
            return self.globals[module, name]
        except (KeyError, TypeError):  # TypeError: a name that is not even hashable text
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR pickle") from None


_NOT_CIFAR = ("the archive it came from is not CIFAR-100's python version: check data.tarball / data.url "
              "and data.md5")


def read_pickle(path: str | Path, max_bytes: int | None = None) -> dict:
    """The dict of a CIFAR pickle, read by the restricted unpickler; its arrays are plain ndarrays.
    A file over `max_bytes` is refused before a byte of it is unpickled."""
    size = 0
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if max_bytes is not None and size > max_bytes:
                raise FetchError(f"{path} is {size:,} bytes, more than the {max_bytes:,} a CIFAR-100 pickle of "
                                 f"its kind can need; nothing of it was read; {_NOT_CIFAR}")
            obj = _ArrayUnpickler(f, size, encoding="latin1").load()
    except FetchError:
        raise
    except OSError as err:
        raise FetchError(f"cannot read {path}: {err.strerror or err}; run the extract step again "
                         "(`snakemake data`, or `msga extract`)") from err
    except MemoryError:  # its message is empty; what it means is not
        raise FetchError(f"ran out of memory while unpickling {path} ({size:,} bytes): this machine lacks the "
                         "memory free for it, or the pickle is built to expand when loaded. Nothing in it was run; "
                         f"free memory and retry, or, if it persists, {_NOT_CIFAR}") from None
    except Exception as err:  # whatever the bytes make the unpickler raise, nothing of them ran
        raise FetchError(f"{path} is not a CIFAR pickle: {str(err) or type(err).__name__}. Nothing in it was run; "
                         f"{_NOT_CIFAR}") from err
    if not isinstance(obj, dict):
        raise FetchError(f"{path} holds a {type(obj).__name__}, expected a dict")
    return {key: value.view(np.ndarray) if isinstance(value, _Array) else value for key, value in obj.items()}


def _folder(root: str | Path) -> Path:
    root = Path(root)
    return root if root.name == FOLDER else root / FOLDER


def _images(path: Path, value, split: str) -> np.ndarray:
    """The image rows, uint8 (N, 3072): one array, as CIFAR stores them, whose bytes were in the pickle
    (the unpickler's budget); a list of rows could name one row a million times. At most MAX_IMAGES."""
    if not isinstance(value, np.ndarray) or value.dtype != np.uint8 or value.ndim != 2 \
            or value.shape[1] != math.prod(IMAGE_SHAPE):
        found = f"{value.dtype} {value.shape}" if isinstance(value, np.ndarray) else f"a {type(value).__name__}"
        raise FetchError(f"{path}: 'data' is {found}, expected uint8 (N, 3072): one array, as CIFAR stores it")
    if len(value) > MAX_IMAGES[split]:
        raise FetchError(f"{path}: 'data' holds {len(value):,} images, more than the {MAX_IMAGES[split]:,} a "
                         f"{split} split may hold (CIFAR-100 has 50,000 and 10,000)")
    return value


def _labels(path: Path, value, n: int) -> np.ndarray:
    """The fine labels as int64 (N,): a list of N integers or an integer array of N; checked before any
    conversion, so a list that names another list N times is never expanded."""
    wrong = FetchError(f"{path}: 'fine_labels' must be {n} integers in [0, {NUM_CLASSES})")
    if isinstance(value, (list, tuple)):
        if len(value) != n or not all(type(label) is int for label in value):
            raise wrong
        value = np.array(value, dtype=np.int64) if n else np.zeros(0, np.int64)
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "iu" or value.shape != (n,):
        raise wrong
    if n and (value.min() < 0 or value.max() >= NUM_CLASSES):
        raise wrong
    return value.astype(np.int64)


def _class_names(path: Path, value) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(c, str) for c in value):
        raise FetchError(f"{path}: 'fine_label_names' is not a list of names, expected {NUM_CLASSES}")
    if len(value) != NUM_CLASSES:
        raise FetchError(f"{path}: {len(value)} class names, expected {NUM_CLASSES}")
    return list(value)


def load_split(root: str | Path, split: str) -> tuple:
    """(images uint8 (N, 3, 32, 32), fine labels int64 (N,), class names), in file order."""
    import torch

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    folder = _folder(root)
    entry = read_pickle(folder / split, MEMBER_LIMITS[split])
    meta = read_pickle(folder / "meta", MEMBER_LIMITS["meta"])
    for key in ("data", "fine_labels"):
        if key not in entry:
            raise FetchError(f"{folder / split} lacks the key {key!r} (keys: {sorted(map(str, entry))})")
    if "fine_label_names" not in meta:
        raise FetchError(f"{folder / 'meta'} lacks the key 'fine_label_names'")
    data = _images(folder / split, entry["data"], split)
    n = data.shape[0]
    labels = _labels(folder / split, entry["fine_labels"], n)
    classes = _class_names(folder / "meta", meta["fine_label_names"])
    images = torch.from_numpy(data.reshape(n, *IMAGE_SHAPE).copy())  # (N, 3, 32, 32): rows are channel-major
    return images, torch.from_numpy(labels), classes


def pack(root: str | Path, out: str | Path, dataset_id: str, archive_md5: str) -> Path:
    """Both splits in one tensor file (a few hundred MB that reload in well under a second), with
    the identity of the data: the dataset id the DAG gave it and the md5 of its archive."""
    import torch

    train_x, train_y, classes = load_split(root, "train")
    test_x, test_y, _ = load_split(root, "test")
    payload = {
        "train_images": train_x, "train_labels": train_y,
        "test_images": test_x, "test_labels": test_y,
        "classes": classes,
        "dataset": {"id": dataset_id, "archive_md5": archive_md5},
    }
    with atomic_output(out) as tmp:
        torch.save(payload, tmp)
    return Path(out)


PACKED_KEYS = {"train_images", "train_labels", "test_images", "test_labels", "classes", "dataset"}


def _layout_problem(key: str, tensor) -> str | None:
    """What is wrong with how a packed tensor is stored, or None: `pack` writes each tensor as one
    contiguous block that is its whole storage. A stride of 0, or a view, would let a small file claim
    any number of images (one image expanded 10^8 times is 3 kB on disk)."""
    stored, needed = tensor.untyped_storage().nbytes(), tensor.numel() * tensor.element_size()
    if tensor.is_contiguous() and tensor.storage_offset() == 0 and stored == needed:
        return None
    return (f"{key} are not stored as `msga pack` writes them, one contiguous block that is its whole storage "
            f"(strides {tuple(tensor.stride())}, offset {tensor.storage_offset()}, {stored:,} bytes stored for "
            f"{needed:,} bytes of values)")


def _split_problem(data: dict, split: str) -> str | None:
    """What is wrong with one split of a packed file, or None: uint8 images (N, 3, 32, 32) and as
    many int64 labels, each a class index, each stored whole; N at most the format's MAX_IMAGES."""
    import torch

    images, labels = data[f"{split}_images"], data[f"{split}_labels"]
    for key, value in ((f"{split}_images", images), (f"{split}_labels", labels)):
        if not isinstance(value, torch.Tensor) or value.layout != torch.strided:
            return f"{key} is a {type(value).__name__}, not a tensor"
    n = len(images) if images.dim() else 0
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != IMAGE_SHAPE:
        return f"{split}_images are {images.dtype} {tuple(images.shape)}, expected uint8 (N, 3, 32, 32)"
    if not n:
        return f"{split}_images hold no image"
    if problem := _layout_problem(f"{split}_images", images):
        return problem
    if n > MAX_IMAGES[split]:
        return f"{split}_images hold {n:,} images, more than the {MAX_IMAGES[split]:,} a {split} split may hold"
    if labels.dtype != torch.int64 or tuple(labels.shape) != (n,):
        return f"{split}_labels are {labels.dtype} {tuple(labels.shape)}, expected int64 ({n},): one per image"
    if problem := _layout_problem(f"{split}_labels", labels):
        return problem
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= NUM_CLASSES:
        return f"{split}_labels range over [{low}, {high}], outside the class indices [0, {NUM_CLASSES})"
    return None


def _packed_problem(data) -> str | None:
    """What is wrong with a packed file's contents, or None if it is what `pack` writes."""
    if not isinstance(data, dict):
        return f"holds a {type(data).__name__}, not the dict `msga pack` writes"
    if set(data) != PACKED_KEYS:
        return f"is not a packed CIFAR file of this version (keys {sorted(map(str, data))})"
    classes, dataset = data["classes"], data["dataset"]
    if not isinstance(classes, list) or len(classes) != NUM_CLASSES or not all(isinstance(c, str) for c in classes):
        found = f"{len(classes)} entries" if isinstance(classes, list) else f"a {type(classes).__name__}"
        return f"lists {found} as classes, expected {NUM_CLASSES} class names"
    if not (isinstance(dataset, dict) and all(isinstance(dataset.get(k), str) for k in ("id", "archive_md5"))):
        return "does not record its dataset (an id and the archive's md5)"
    for split in SPLITS:
        if problem := _split_problem(data, split):
            return problem
    return None


def load_packed(path: str | Path) -> dict:
    """The packed tensors, checked (types, shapes, layout, counts, label ranges) before training sees them;
    weights_only=True so the file cannot run code."""
    import torch

    path = Path(path)
    rebuild = "Delete it and run `snakemake data` (or `msga pack`) to pack it again."
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        raise FetchError(f"packed data {path} {what}; run `snakemake data` (or `msga pack`)")
    try:
        with warnings.catch_warnings():  # torch's notes on odd pickles: the checks below say what matters
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # torch's message advises weights_only=False: the unsafe way, never ours
        raise FetchError(f"{path} holds objects other than tensors and plain values; they were not loaded, as "
                         f"they could run code. It is not a file `msga pack` wrote. {rebuild}") from None
    except OSError as err:
        raise FetchError(f"cannot read packed data {path}: {err.strerror or err}") from None
    except Exception as err:  # torch reports a damaged file as RuntimeError, KeyError, EOFError, ...
        raise FetchError(f"{path} is damaged or not a file `msga pack` wrote ({type(err).__name__} while loading "
                         f"it). {rebuild}") from None
    if problem := _packed_problem(data):
        raise FetchError(f"{path} {problem}; training on it would fail or mislead. {rebuild}")
    return data
