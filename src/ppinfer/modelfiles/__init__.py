"""Model files on disk: which layout a directory holds, the model card (``inference.yml``),
what a program's output is, and the resolved model a run uses.

- :mod:`~ppinfer.modelfiles.formats`: detect and verify a model directory's layout
- :mod:`~ppinfer.modelfiles.modelcard`: read and write ``inference.yml`` (PaddleX/PaddleClas)
- :mod:`~ppinfer.modelfiles.program_output`: softmax, sigmoid or logits, from the program
- :mod:`~ppinfer.modelfiles.source`: ``ModelSource``, everything an engine needs to load
"""
