from .non_local import NonLocalBlock

__all__ = ['NonLocalBlock']
