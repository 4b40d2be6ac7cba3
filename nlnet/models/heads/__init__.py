"""Decode and classification heads; importing this module registers them."""
from .consensus_i3d_head import ConsensusI3DHead  # noqa: F401
from .fully_conv_head import FullyConvHead  # noqa: F401
from .multilabel_i3d_head import MultiLabelI3DHead  # noqa: F401
from .non_local_head import NonLocalHead  # noqa: F401
