from .det_resnet import NLResNet  # noqa: F401
from .video_resnet import VideoResNet  # noqa: F401
