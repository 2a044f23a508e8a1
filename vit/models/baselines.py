"""A convolutional baseline for the data-scaling experiment: the ResNet that He et al. (2016,
Sec. 4.2) built for small images, from `paddle.vision`'s own residual block.

The ImageNet ResNets of `paddle.vision.models` open with a 7x7 stride-2 convolution and a max
pool, which would leave a 16x16 digit as a 4x4 grid before the first block. This one keeps the
image's resolution: a 3x3 stem, then three stages of n basic blocks with 16, 32 and 64 channels
(the second and third halve the grid), global average pooling and a linear classifier: 6n + 2
layers. ResNet-20 (n = 3) has 0.27 M parameters, the size of the CPU-sized ViTs. A width k
multiplies every layer's channels (16k, 32k, 64k), BiT's "ResNet-50x3" scheme (Kolesnikov et
al. 2020): ResNet-20x2 has 1.09 M parameters.
"""

import warnings

import paddle.nn as nn
from paddle.vision.models.resnet import BasicBlock

from ..errors import ModelError

# Paddle's BatchNorm warns on every training forward that it tracks the running statistics,
# which is what this model wants. Python shows a warning once per place only until a filter
# changes, and the training loop's libraries change filters, so a ResNet run printed it again
# and again; this filter is the one place that silences it.
warnings.filterwarnings("ignore", message="When training, we now always track global mean",
                        category=UserWarning)


class SmallImageResNet(nn.Layer):
    """ResNet-(6n+2) for small images.

    Args:
        depth: 6n + 2 layers (20, 32, 44, 56, ...).
        num_classes: classes of the head.
        in_chans: image channels.
        img_size: the input size the model is trained at (any size works; recorded so
            checkpoints describe their input like the ViTs' do).
        width: channel multiplier k of every layer.
    """

    def __init__(self, depth: int = 20, num_classes: int = 10, in_chans: int = 3,
                 img_size=32, width: int = 1):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ModelError(f"ResNet depth {depth} is not 6n + 2", "use 20, 32, 44 or 56")
        if not isinstance(width, int) or width < 1:
            raise ModelError(f"ResNet width {width} must be a positive whole number",
                             "use 1, 2 or 4")
        blocks = (depth - 2) // 6
        self.img_size, self.in_chans = img_size, in_chans
        self.stem = nn.Sequential(nn.Conv2D(in_chans, 16 * width, 3, padding=1, bias_attr=False),
                                  nn.BatchNorm2D(16 * width), nn.ReLU())
        self.inplanes = 16 * width
        self.stages = nn.Sequential(*[self._stage(planes * width, blocks, 1 if index == 0 else 2)
                                      for index, planes in enumerate((16, 32, 64))])
        self.pool = nn.AdaptiveAvgPool2D(1)
        self.head = nn.Linear(64 * width, num_classes)

    def _stage(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(nn.Conv2D(self.inplanes, planes, 1, stride=stride,
                                                 bias_attr=False), nn.BatchNorm2D(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*layers)

    @property
    def num_features(self) -> int:
        return self.head.weight.shape[0]

    def forward_features(self, x):
        """Images [B, C, H, W] -> the pooled features [B, 64 x width] the head reads."""
        return self.pool(self.stages(self.stem(x))).flatten(1)

    def forward(self, x):
        """Images [B, C, H, W] -> logits [B, num_classes]."""
        return self.head(self.forward_features(x))
