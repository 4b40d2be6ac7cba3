from .non_local import NonLocalBlock
from .non_local_cfg import build_non_local_block, checked_non_local_cfg

__all__ = ['NonLocalBlock', 'build_non_local_block', 'checked_non_local_cfg']
