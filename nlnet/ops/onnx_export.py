"""Export a module to ONNX and check the file against PyTorch: :func:`export_onnx`.

    >>> from nlnet.ops import NonLocalBlock, export_onnx
    >>> block = NonLocalBlock(64, dim=3, sub_sample=True)
    >>> export_onnx(block, torch.randn(2, 64, 4, 14, 14), 'block.onnx', dynamic_axes={0: 'batch'})

``torch.onnx.export`` traces the module; each :class:`~nlnet.ops.NonLocalBlock` in it
then takes route ``exported`` (:mod:`.exported`), so blocks export in every mode,
scope and sub-sampling, alone or inside a network. The file is checked with
``onnx.checker`` and run by onnxruntime on the CPU on the example, against the
module's own (eager) forward. ``onnx``, ``onnxscript`` and ``onnxruntime`` are
imported only here, when called: they are deployment requirements, not nlnet.ops'.
"""
import dataclasses
import importlib
import io
import os

import torch

# Largest accepted max |onnxruntime - PyTorch| / max |PyTorch| of an output in float32.
MAX_RELATIVE_DIFFERENCE = 1e-4
# ``torch.onnx.export``'s two exporters: 'dynamo' (torch.export-based, PyTorch's default
# since 2.9) and 'torchscript' (the legacy tracer: several times faster to export, deprecated).
EXPORTERS = ('dynamo', 'torchscript')
INPUT_NAME = 'input'
# Upper bound of a dynamic axis for the dynamo exporter. torch.export guards that each
# pooled plane's elements fit int32 indexing (e.g. time <= 2**31 / (C H W)), which it cannot
# state for an unbounded axis; 1024 clips or frames keeps such bounds far away.
DYNAMIC_AXIS_MAX = 1024


class OnnxMismatchError(ValueError):
    """onnxruntime's output differs from PyTorch's by more than the tolerance."""


@dataclasses.dataclass
class OnnxExport:
    """An exported, checked model.

    Attributes:
        model (onnx.ModelProto): the ONNX model.
        path (str | None): where it was written (None: kept in memory only).
        max_relative_difference (float | None): max over the outputs of
            max |onnxruntime - PyTorch| / max |PyTorch| on the example (None
            without the check).
        output_shapes (list[tuple[int]]): the module's outputs on the example.
    """
    model: object
    path: object
    max_relative_difference: object
    output_shapes: list


def export_onnx(model, example, out_file=None, dynamic_axes=None, check=True, exporter='dynamo',
                tolerance=MAX_RELATIVE_DIFFERENCE, opset_version=None, verbose=True):
    """Export ``model`` on ``example`` to ONNX, check it and compare onnxruntime to PyTorch.

    The module runs in eval mode during the export and the check (each submodule's
    mode is restored after), without autograd.

    Args:
        model (nn.Module): maps one tensor to a tensor or a tuple of tensors,
            e.g. a :class:`~nlnet.ops.NonLocalBlock` ((N, C, *S) -> (N, C, *S)).
        example (Tensor): an input; its shape is the graph's, but for
            ``dynamic_axes``.
        out_file (str | os.PathLike | None): the ``.onnx`` file to write; None
            keeps the model in memory (:attr:`OnnxExport.model`).
        dynamic_axes (dict[int, str] | None): axes of the input left free in the
            graph, by name, e.g. ``{0: 'batch'}`` or ``{0: 'batch', 2: 'time'}``.
            With the dynamo exporter an axis is at most :data:`DYNAMIC_AXIS_MAX`
            and the example's size on it at least 2 (the export would specialise
            the graph to a size of 1); an axis the network specialises (a Python
            branch on it, a size of 1 after its strides), which the exporter
            fixes without a word, is an error.
        check (bool): run ``onnx.checker`` and onnxruntime (CPU) on ``example``
            and compare with the module's eager output.
        exporter (str): ``'dynamo'`` (default) or ``'torchscript'``, see
            :data:`EXPORTERS`.
        tolerance (float): largest accepted max relative difference.
        opset_version (int | None): ONNX opset; None: the exporter's default.
        verbose (bool): print the difference.

    Returns:
        OnnxExport: the model, its path and the max relative difference.

    Raises:
        ValueError: a bad argument (naming it), or a dynamic axis fixed in the graph
            (then nothing is written).
        OnnxMismatchError: onnxruntime's output differs by more than ``tolerance``
            (the file is written, for inspection).
    """
    if exporter not in EXPORTERS:
        raise ValueError(f'exporter must be one of {EXPORTERS}, got {exporter!r}')
    if not isinstance(example, torch.Tensor):
        raise ValueError(f'example must be a tensor (the one input), got {type(example)!r}')
    dynamic_axes = _checked_axes(dynamic_axes, example, exporter)
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            expected = _outputs(model(example))
            export = _EXPORTS[exporter]
            proto, save = export(model, example, dynamic_axes, len(expected), opset_version)
    finally:
        for module, training in modes:
            module.training = training
    path = None if out_file is None else os.fspath(out_file)
    _check_dynamic(proto, dynamic_axes, example, path)
    if path is not None:
        save(path)
    output_shapes = [tuple(output.shape) for output in expected]
    if not check:
        return OnnxExport(proto, path, None, output_shapes)
    onnx = _deployment_module('onnx')
    onnx.checker.check_model(proto)
    actual = run_onnxruntime(proto, example)
    difference = max(relative_difference(a, e) for a, e in zip(actual, expected))
    if verbose:
        print(f'ONNX {path or "model"}: max relative difference onnxruntime vs PyTorch '
              f'{difference:.2e} (tolerance {tolerance:.0e})')
    if not difference <= tolerance:
        raise OnnxMismatchError(
            f'ONNX {path or "model"}: onnxruntime differs from PyTorch by {difference:.3e} '
            f'(max |onnxruntime - PyTorch| / max |PyTorch|), above the tolerance {tolerance:.0e}')
    return OnnxExport(proto, path, difference, output_shapes)


def run_onnxruntime(model, example):
    """Outputs of the ONNX ``model`` (ModelProto or path) in onnxruntime on the CPU for the
    one input ``example``, as tensors."""
    onnxruntime = _deployment_module('onnxruntime')
    source = (os.fspath(model) if isinstance(model, (str, os.PathLike)) else
              model.SerializeToString())
    session = onnxruntime.InferenceSession(source, providers=['CPUExecutionProvider'])
    feed = {session.get_inputs()[0].name: example.detach().cpu().numpy()}
    return [torch.from_numpy(out) for out in session.run(None, feed)]


def relative_difference(actual, expected):
    """max |actual - expected| / max |expected| (the absolute difference where expected is 0)."""
    expected = expected.detach().cpu().to(actual.dtype)
    error = (actual - expected).abs().max().item()
    scale = expected.abs().max().item()
    return error / scale if scale > 0 else error


def _deployment_module(name):
    """``onnx``, ``onnxscript`` or ``onnxruntime``, or an error saying how to install them."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        raise ImportError(f'ONNX export needs {name}: pip install onnx onnxscript onnxruntime '
                          '(the pinned versions are in requirements/tests.txt)') from error


def _outputs(output):
    if isinstance(output, torch.Tensor):
        return [output]
    if isinstance(output, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in output):
        return list(output)
    raise ValueError('model must return a tensor or a tuple of tensors to export, got '
                     f'{type(output)!r}')


def _checked_axes(dynamic_axes, example, exporter):
    if not dynamic_axes:
        return {}
    if not isinstance(dynamic_axes, dict) or not all(
            isinstance(axis, int) and 0 <= axis < example.dim() and isinstance(name, str)
            and name.isidentifier() for axis, name in dynamic_axes.items()):
        raise ValueError(f'dynamic_axes must map axes of the {example.dim()}D example (0 to '
                         f'{example.dim() - 1}) to names, e.g. {{0: "batch"}}, got '
                         f'{dynamic_axes!r}')
    ones = [axis for axis in dynamic_axes if example.shape[axis] == 1]
    if exporter == 'dynamo' and ones:
        raise ValueError(f'dynamic_axes {ones}: the example has size 1 there, to which the '
                         'dynamo exporter specialises the graph; give an example of size >= 2 '
                         'on each dynamic axis')
    return dict(dynamic_axes)


def _check_dynamic(proto, dynamic_axes, example, path):
    """Refuse a graph whose input kept a dynamic axis fixed: the dynamo exporter fixes an
    axis silently where the network specialises it, e.g. to a size that is 1 inside it."""
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    fixed = {axis: name for axis, name in dynamic_axes.items() if not dims[axis].dim_param}
    if fixed:
        raise ValueError(f'ONNX {path or "model"}: the exporter fixed the dynamic axes '
                         f'{fixed} to the example\'s sizes '
                         f'{[example.shape[axis] for axis in fixed]}: the network specialises '
                         'them there (e.g. a size of 1 after its strides); export with a larger '
                         'example on those axes')


def _output_names(num_outputs):
    return ['output'] if num_outputs == 1 else [f'output{i}' for i in range(num_outputs)]


def _export_dynamo(model, example, dynamic_axes, num_outputs, opset_version):
    """The ModelProto and a function writing it to a path."""
    _deployment_module('onnxscript')  # the dynamo exporter's translator
    dynamic_shapes = None
    if dynamic_axes:
        dynamic_shapes = ({axis: torch.export.Dim(name, max=DYNAMIC_AXIS_MAX)
                           for axis, name in dynamic_axes.items()}, )
    program = torch.onnx.export(model, (example, ), dynamo=True, input_names=[INPUT_NAME],
                                output_names=_output_names(num_outputs),
                                dynamic_shapes=dynamic_shapes, opset_version=opset_version,
                                verbose=False)
    return program.model_proto, program.save


def _export_torchscript(model, example, dynamic_axes, num_outputs, opset_version):
    onnx = _deployment_module('onnx')
    buffer = io.BytesIO()
    names = _output_names(num_outputs)
    torch.onnx.export(model, (example, ), buffer, dynamo=False, input_names=[INPUT_NAME],
                      output_names=names, opset_version=opset_version,
                      dynamic_axes={INPUT_NAME: dynamic_axes} if dynamic_axes else None)
    proto = onnx.load_from_string(buffer.getvalue())
    return proto, lambda path: onnx.save(proto, path)


_EXPORTS = {'dynamo': _export_dynamo, 'torchscript': _export_torchscript}
