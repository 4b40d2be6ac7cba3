from .non_local import NonLocalBlock, block_options

__all__ = ['NonLocalBlock', 'block_options']
