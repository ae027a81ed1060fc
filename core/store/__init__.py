"""core.store: the OCI image layout at the root, layers, archives."""
