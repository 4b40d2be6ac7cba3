"""``non_local_cfg``: the argument through which a model passes options to its non-local blocks."""
from collections.abc import Mapping

from .non_local import NonLocalBlock


def checked_non_local_cfg(non_local_cfg, owner, derived_keys):
    """A copy of the user's ``non_local_cfg`` after refusing the keys ``owner`` derives itself.

    Args:
        non_local_cfg (dict | None): :class:`NonLocalBlock` arguments given to
            the model ``owner``; None is an empty dict.
        owner (str): the model's class name, for the error.
        derived_keys (Sequence[str]): block arguments the model sets itself
            (the channels, the dimension, ...); setting one is an error naming
            ``non_local_cfg``, the key, ``owner`` and the value.

    Returns:
        dict: a new dict, so that the model may add its own keys to it.
    """
    if non_local_cfg is None:
        return {}
    if not isinstance(non_local_cfg, Mapping):
        raise TypeError(f'non_local_cfg of {owner} must be a dict of NonLocalBlock arguments '
                        f'or None, got {non_local_cfg!r}')
    for key in derived_keys:
        if key in non_local_cfg:
            raise ValueError(f'non_local_cfg must not set {key!r}: {owner} derives it '
                             f'(got {key}={non_local_cfg[key]!r})')
    return dict(non_local_cfg)


def build_non_local_block(non_local_cfg, **derived):
    """``NonLocalBlock(**derived, **non_local_cfg)``, its errors prefixed with ``non_local_cfg: ``.

    The block validates its own arguments; the prefix tells the user that the
    bad key is one of the model's ``non_local_cfg`` (the ``derived`` ones are
    the model's own, refused in ``non_local_cfg`` by :func:`checked_non_local_cfg`).
    """
    try:
        return NonLocalBlock(**derived, **non_local_cfg)
    except (TypeError, ValueError) as error:
        raise type(error)(f'non_local_cfg: {error}') from error
