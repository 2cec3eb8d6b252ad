"""ppinfer: PaddlePaddle image classification from checkpoint to fast, correct predictions."""

__version__ = "0.1.0"
