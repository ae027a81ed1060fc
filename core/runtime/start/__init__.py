"""Starting a container's processes: the sealed start (seal, boot, launch), the init and
its rootfs, the shim, exec's entry (exec, enter) and what init and exec share (process,
console)."""
