from .non_local_fpn import NonLocalFPN  # noqa: F401
