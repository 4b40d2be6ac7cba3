"""The non-local block's kernels: custom autograd Functions that keep no N x M matrix.

One module per idea: :mod:`.softmax_attention` (softmax attention, Eq. 2 and 3),
:mod:`.projection` (theta/phi/g as one GEMM), :mod:`.dot_product` (Eq. 4),
:mod:`.concatenation` (Eq. 5), :mod:`.output_norm` (W_z with its BatchNorm);
:mod:`.common` holds what they share.
"""
