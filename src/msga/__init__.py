"""msga: replication of joint multi-scale convolution and global attention on CIFAR-100."""

__version__ = "0.1.0"
