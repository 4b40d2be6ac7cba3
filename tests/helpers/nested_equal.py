"""Exact equality of nested checkpoint or dump contents, naming the first place that differs."""
import numpy as np
import torch


def assert_nested_equal(ours, theirs, path):
    """``ours`` equals ``theirs``: tensors by ``torch.equal``, arrays in dtype and value, dicts,
    lists and tuples item by item, anything else by ``==``; ``path`` names the place (e.g.
    ``'state_dict'``) in the assertion's message, extended by keys and indices."""
    if isinstance(ours, torch.Tensor):
        assert torch.equal(ours, theirs), path
    elif isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), path
    elif isinstance(ours, dict):
        assert ours.keys() == theirs.keys(), path
        for key in ours:
            assert_nested_equal(ours[key], theirs[key], f'{path}.{key}')
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), path
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            assert_nested_equal(mine, other, f'{path}[{index}]')
    else:
        assert ours == theirs, path
