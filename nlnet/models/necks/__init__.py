from .nl_fpn import NonLocalFPN  # noqa: F401
