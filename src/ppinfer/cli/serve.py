"""``ppinfer serve``."""

from __future__ import annotations

import click

from ppinfer.cli.main import cli
from ppinfer.cli.options import FiniteFloat, device_options


@cli.command()
@click.option("--model", type=click.Path(), default=None,
              help="Model directory (layout detected). Default: the built-in model.")
@click.option("--engine", default=None,
              help="An engine name, or 'auto' (the fastest installed engine that agrees with "
                   "analysis). Default: $PPINFER_ENGINE, else auto where a peer of analysis "
                   "is installed, else analysis.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; 0.0.0.0 lets other machines connect.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="TCP port (0: any free port); 8080 is PaddleX's default.")
@click.option("--name", default=None,
              help="The model's name in /v2/models/NAME (default: the card's model name).")
@click.option("--max-batch", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Most images per engine call.")
@click.option("--max-delay-ms", type=FiniteFloat(min=0), default=5.0, show_default=True,
              help="Longest a request waits for others to share its engine call.")
@click.option("--max-queue", type=click.IntRange(min=1), default=256, show_default=True,
              help="Most requests inside the server at once; one more gets 503.")
@click.option("--timeout", type=FiniteFloat(min=0, min_open=True), default=30.0,
              show_default=True, help="Seconds a request may take before it gets 504.")
@click.option("--max-body-bytes", type=click.IntRange(min=1), default=20 << 20,
              show_default=True, help="Largest request body; larger ones get 413 unread.")
@click.option("--allow-urls", is_flag=True,
              help="Let PaddleX requests name an image by URL for the server to fetch "
                   "(off: the server fetches nothing a request names).")
@device_options(exclude=("batch_size",))
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True,
              help="Classes reported per image (a request may ask for another number).")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="One label a line (line i = class i).")
@click.option("--max-pixels", type=click.IntRange(min=1), default=None,
              help="Refuse images larger than this many pixels (default 100 megapixels).")
@click.option("--max-image-bytes", type=click.IntRange(min=1), default=None,
              help="Refuse image files larger than this many bytes (default: the body "
                   "limit).")
def serve(model, engine, host, port, name, max_batch, max_delay_ms, max_queue, timeout,
          max_body_bytes, allow_urls, top_k, labels_file, max_pixels, max_image_bytes,
          **device_kw) -> None:
    """Serve a model over HTTP until Ctrl-C or SIGTERM (which finish the requests in flight).

    \b
    ppinfer serve                          # built-in model, 127.0.0.1:8080
    ppinfer serve --model out/lite0 --port 9000 --max-batch 16
    curl --data-binary @cat.jpg http://127.0.0.1:8080/predict

    Routes: POST /predict (a raw file or multipart upload), POST /image-classification
    (PaddleX's contract), /v2/... (KServe v2 / Triton), GET /metrics, and a page at /.
    """
    from ppinfer.pipeline.limits import DEFAULT_MAX_PIXELS, set_decoder_pixel_limit

    set_decoder_pixel_limit(max_pixels or DEFAULT_MAX_PIXELS)  # before OpenCV loads
    from ppinfer.serving.server import serve as run

    run(model, engine=engine, host=host, port=port, name=name, max_batch=max_batch,
        max_delay_ms=max_delay_ms, max_queue=max_queue, timeout=timeout,
        max_body_bytes=max_body_bytes, allow_urls=allow_urls, top_k=top_k,
        labels=labels_file, max_pixels=max_pixels, max_image_bytes=max_image_bytes,
        batch_size=max_batch, **device_kw)
