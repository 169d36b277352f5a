"""CIFAR-100's python format, the facts every data step shares (torch-free)."""

ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"  # the one folder of the archive
MEMBERS = ("train", "test", "meta")  # the pickles in it
SPLITS = ("train", "test")
NUM_CLASSES = 100  # fine labels
IMAGES = {"train": 50_000, "test": 10_000}  # CIFAR-100's splits: 500 and 100 images a class
IMAGE_SHAPE = (3, 32, 32)  # a row of `data` is channel-major: 1024 red, 1024 green, 1024 blue bytes
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

# The most images a split may hold. CIFAR-100 has 50,000 and 10,000; the synthetic fixture may be
# written larger, up to 800 and 160 images a class (data.synthetic's maxima in the params schema, which
# a test ties to these). A pickle claiming more is refused before its arrays are converted or copied.
MAX_IMAGES = {"train": 80_000, "test": 16_000}
# The most bytes extraction writes for each member, checked against the tar header before a byte is
# written and again while the bytes stream. An image takes its 3,072 pixel bytes in a split's pickle,
# or up to twice that in a protocol 2 pickle written by Python 3 (the synthetic fixture is one: bytes
# are stored as latin-1 text, whose upper half takes two bytes in UTF-8), plus its labels and file name.
# So: 6,400 bytes an image, for the most images a split may hold. The official train is 155 MB (limit
# 512 MB), test 31 MB (102 MB), meta 1.5 kB (100 kB); the synthetic fixture at CIFAR-100's size writes
# 195 MB and 39 MB.
MAX_BYTES_PER_IMAGE = 2 * 3072 + 256
MEMBER_LIMITS = {**{split: n * MAX_BYTES_PER_IMAGE for split, n in MAX_IMAGES.items()}, "meta": 100_000}
# Other files in the folder are read past, never written: the official archive carries one, an
# editor's backup (file.txt~) of unrecorded but small size; each may declare at most this many bytes.
EXTRA_MEMBER_LIMIT = 10_000_000
# What the gzip may decompress to beyond the members' limits: tar headers, padding, extra files.
# A gzip bomb is stopped there, however much it would inflate to.
TAR_OVERHEAD = 20_000_000
MAX_TAR_BYTES = sum(MEMBER_LIMITS.values()) + TAR_OVERHEAD  # the most the gzip may decompress to
# The most bytes of an extended tar header (a pax header, a GNU long name), which tarfile reads whole into
# memory (a 100 MB pax header took 304 MB): one holds a few names and numbers, under a kilobyte.
MAX_EXTENDED_HEADER = 1_000_000
# The most bytes a download may bring. The official archive is 169,001,437 bytes; a mirror serves the
# same file. No archive extraction can accept is larger than the tar it holds by more than gzip's
# framing (under 0.01% for incompressible data), so a server sending more than this plus a 0.1%
# margin sends something extraction would refuse: the download stops there instead of filling a disk.
MAX_ARCHIVE_BYTES = MAX_TAR_BYTES + MAX_TAR_BYTES // 1000
OFFICIAL_ARCHIVE_BYTES = 169_001_437  # cifar-100-python.tar.gz as the URL serves it


def split_sizes(data: dict) -> dict[str, int]:
    """Images in each split of the data a params file's `data` section names: CIFAR-100's, or the
    synthetic fixture's per-class counts times the classes."""
    if data["source"] == "synthetic":
        return {split: NUM_CLASSES * data["synthetic"][f"{split}_per_class"] for split in SPLITS}
    return dict(IMAGES)
