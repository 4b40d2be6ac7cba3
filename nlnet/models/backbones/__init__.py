from .det_resnet import NonLocalResNet  # noqa: F401
from .video_resnet import VideoResNet  # noqa: F401
