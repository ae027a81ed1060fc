"""Offline test images: a busybox rootfs made from the host's busybox-static."""

from workbench.default_image import GROUP, PASSWD, make_busybox_rootfs  # noqa: F401

BUSYBOX = "/bin/busybox"
