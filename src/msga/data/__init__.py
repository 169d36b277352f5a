"""Data: fetch and verify CIFAR-100, the synthetic fixture, and the device-resident loader."""
