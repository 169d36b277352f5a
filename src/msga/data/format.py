"""CIFAR-100's python format, the facts every data step shares (torch-free)."""

ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER = "cifar-100-python"  # the one folder of the archive
MEMBERS = ("train", "test", "meta")  # the pickles in it
SPLITS = ("train", "test")
NUM_CLASSES = 100  # fine labels
IMAGE_SHAPE = (3, 32, 32)  # a row of `data` is channel-major: 1024 red, 1024 green, 1024 blue bytes
OFFICIAL_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
