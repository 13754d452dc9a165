"""Classifiers: registered builders, trained and cached by `bench.models.train`.

Every model maps images in [0,1] (N,1,28,28) to logits and owns its normalisation. Each
built-in's name is written here once; its builder carries `@MODELS.register()` without a name.
A builder takes `n_classes` (set from the dataset) and the run's `model_params` as keywords.
"""

from bench.contract.registry import MODELS

MODELS.declare("cnn", "bench.models.cnn:build_cnn",
               "seed-report baseline CNN: conv32-pool-conv64-pool-fc128-dropout-fc10 (~225k params)")
MODELS.declare("timm", "bench.models.timm_backbones:build_timm",
               "any timm backbone by name (model_params.arch), 1-channel 28x28 stem, optional attn_layer "
               "in every block or once at the head (placement), width/depth for EfficientNet-B0, MobileNetV2")
MODELS.declare("resnet_cbam", "bench.models.timm_backbones:build_resnet_cbam",
               "small timm ResNet (one BasicBlock per stage), 28x28 stem, attn_layer (default cbam) in every block or at the head")
