"""``GET /``: one small page. Pick or drop an image; it is sent to ``POST /predict`` and the
top-k come back as bars. No script or style from anywhere else (it works offline), and every
label is set as text, never as HTML."""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.responses import HTMLResponse

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ppinfer · __MODEL__</title>
<style>
 body { font: 15px/1.4 system-ui, sans-serif; max-width: 42rem; margin: 2rem auto;
        padding: 0 1rem; color: #222; }
 #drop { border: 2px dashed #999; border-radius: 8px; padding: 1.5rem; text-align: center; }
 #drop.over { border-color: #2a6; background: #f3fbf5; }
 #preview { max-width: 100%; max-height: 16rem; margin-top: 1rem; display: none; }
 ol { padding: 0; list-style: none; }
 li { margin: .4rem 0; }
 .bar { background: #2a6; height: .6rem; border-radius: 3px; }
 .score { float: right; font-variant-numeric: tabular-nums; }
 #error { color: #b00; }
</style></head>
<body>
<h1>ppinfer · __MODEL__</h1>
<div id="drop">
  <p>Drop an image here, or <input type="file" id="file" accept="image/*"></p>
  <img id="preview" alt="">
</div>
<p id="status"></p><p id="error"></p>
<ol id="results"></ol>
<script>
const drop = document.getElementById("drop"), list = document.getElementById("results");
const statusLine = document.getElementById("status"), errorLine = document.getElementById("error");
async function classify(file) {
  list.replaceChildren(); errorLine.textContent = ""; statusLine.textContent = "Classifying…";
  const preview = document.getElementById("preview");
  preview.src = URL.createObjectURL(file); preview.style.display = "block";
  try {
    const response = await fetch("predict?top_k=__TOPK__", {method: "POST", body: file});
    const answer = await response.json();
    statusLine.textContent = "";
    if (answer.error) { errorLine.textContent = answer.error; return; }
    answer.label_names.forEach((name, i) => {
      const item = document.createElement("li"), score = answer.scores[i];
      item.className = "prediction"; item.dataset.classId = answer.class_ids[i];
      const label = document.createElement("span"); label.className = "label";
      label.textContent = name;
      const value = document.createElement("span"); value.className = "score";
      value.textContent = score.toFixed(4);
      const bar = document.createElement("div"); bar.className = "bar";
      bar.style.width = (100 * score).toFixed(1) + "%";
      item.append(label, value, bar); list.append(item);
    });
    statusLine.textContent = "Top " + answer.label_names.length + " for " + file.name + ":";
  } catch (e) { statusLine.textContent = ""; errorLine.textContent = String(e); }
}
document.getElementById("file").addEventListener("change", e => {
  if (e.target.files.length) classify(e.target.files[0]);
});
drop.addEventListener("dragover", e => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {
  e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) classify(e.dataTransfer.files[0]);
});
</script>
</body></html>
"""


async def page(request: Request) -> HTMLResponse:
    state = request.app.state.ppinfer
    text = PAGE.replace("__MODEL__", html.escape(state.model_name)).replace(
        "__TOPK__", str(int(state.top_k)))
    return HTMLResponse(text, headers={"Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "img-src blob:; connect-src 'self'")})
