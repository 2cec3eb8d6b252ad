"""A third-party engine, as a plug-in package would ship it (used by test_cli.py)."""

from ppinfer.engines.executor_inference import ExecutorInferenceEngine


class ThirdPartyEngine(ExecutorInferenceEngine):
    """Runs inference models with the Executor, under its own name."""
