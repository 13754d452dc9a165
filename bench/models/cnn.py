"""The seed report's baseline CNN (Keras MNIST example shape): 225,034 parameters.

conv 32 3x3 + ReLU, max-pool 2, conv 64 3x3 + ReLU, max-pool 2, flatten (64*5*5),
dense 128 + ReLU, dropout 0.5, dense 10.
"""

from __future__ import annotations

from typing import Annotated

from torch import nn

from bench.contract.models import Normalized
from bench.contract.params import Range
from bench.models import MODELS


@MODELS.register()
def build_cnn(n_classes: int = 10, mean: Annotated[float, Range("[-10, 10]")] = 0.1307,
              std: Annotated[float, Range("(0, 100]")] = 0.3081) -> nn.Module:
    """The baseline CNN wrapped to take [0,1] pixels."""
    net = nn.Sequential()
    net.add_module("conv1", nn.Conv2d(1, 32, 3))
    net.add_module("relu1", nn.ReLU())
    net.add_module("pool1", nn.MaxPool2d(2))
    net.add_module("conv2", nn.Conv2d(32, 64, 3))
    net.add_module("relu2", nn.ReLU())
    net.add_module("pool2", nn.MaxPool2d(2))
    net.add_module("flatten", nn.Flatten())
    net.add_module("fc1", nn.Linear(64 * 5 * 5, 128))
    net.add_module("relu3", nn.ReLU())
    net.add_module("dropout", nn.Dropout(0.5))
    net.add_module("fc2", nn.Linear(128, n_classes))
    return Normalized(net, mean, std, cam_layer="relu2")
