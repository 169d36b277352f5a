"""CIFAR-100's python format, the facts every data step shares (torch-free)."""

ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"  # the one folder of the archive
MEMBERS = ("train", "test", "meta")  # the pickles in it
SPLITS = ("train", "test")
NUM_CLASSES = 100  # fine labels
IMAGE_SHAPE = (3, 32, 32)  # a row of `data` is channel-major: 1024 red, 1024 green, 1024 blue bytes
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

# The most bytes extraction writes for each member, checked against the tar header before a byte is
# written and again while the bytes stream. A split is N images of 3,072 bytes plus its labels and
# file names (about 30 bytes an image): train (50,000 images) is 155 MB, test (10,000) 31 MB, meta
# (120 class names) 1.5 KB. The limits leave about 30% for pickles written otherwise (the synthetic
# fixture's longer file names, another protocol) and refuse anything that could fill a disk.
MEMBER_LIMITS = {"train": 200_000_000, "test": 40_000_000, "meta": 100_000}
# Other files in the folder are read past, never written: the official archive carries one, an
# editor's backup (file.txt~) of unrecorded but small size; each may declare at most this many bytes.
EXTRA_MEMBER_LIMIT = 10_000_000
# What the gzip may decompress to beyond the members' limits: tar headers, padding, extra files.
# A gzip bomb is stopped there, however much it would inflate to.
TAR_OVERHEAD = 20_000_000
