"""``GET /``: a small page to try the model: pick or drop an image, see the top-k as bars.
It posts the file to ``/predict`` (the plain route) and draws what comes back."""


import html

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ppinfer: {name}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body {{ font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem }}
 #drop {{ border: 2px dashed #888; border-radius: .5rem; padding: 2rem; text-align: center }}
 #drop.over {{ background: #eef }}
 img {{ max-width: 100%; max-height: 16rem; display: block; margin: 1rem auto }}
 .row {{ display: grid; grid-template-columns: 12rem 1fr 4rem; gap: .5rem; margin: .3rem 0 }}
 .bar {{ background: #4a7; height: 1.2rem; border-radius: .2rem }}
 .error {{ color: #b00 }}
</style></head>
<body>
<h1>{name}</h1>
<div id="drop"><p>Drop an image here, or <input type="file" id="file" accept="image/*"></p></div>
<img id="preview" alt="" hidden>
<div id="result" aria-live="polite"></div>
<script>
const result = document.getElementById("result"), drop = document.getElementById("drop");
async function classify(file) {{
  const preview = document.getElementById("preview");
  preview.src = URL.createObjectURL(file); preview.hidden = false;
  result.textContent = "…";
  const response = await fetch("predict", {{method: "POST", body: file,
                                           headers: {{"X-File-Name": file.name}}}});
  const answer = await response.json();
  result.textContent = "";
  if (answer.error) {{
    const p = document.createElement("p"); p.className = "error"; p.textContent = answer.error;
    result.appendChild(p); return;
  }}
  answer.label_names.forEach((label, i) => {{
    const row = document.createElement("div"); row.className = "row";
    const name = document.createElement("span"); name.className = "label"; name.textContent = label;
    const track = document.createElement("div");
    const bar = document.createElement("div"); bar.className = "bar";
    bar.style.width = (100 * answer.scores[i]).toFixed(1) + "%"; track.appendChild(bar);
    const score = document.createElement("span"); score.className = "score";
    score.textContent = answer.scores[i].toFixed(4);
    row.append(name, track, score); result.appendChild(row);
  }});
}}
document.getElementById("file").addEventListener("change", e => classify(e.target.files[0]));
drop.addEventListener("dragover", e => {{ e.preventDefault(); drop.classList.add("over"); }});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", e => {{ e.preventDefault(); drop.classList.remove("over");
  if (e.dataTransfer.files.length) classify(e.dataTransfer.files[0]); }});
</script>
</body></html>
"""


def add_routes(app, context) -> None:
    from fastapi.responses import HTMLResponse

    text = PAGE.format(name=html.escape(context.model_name))

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def page() -> HTMLResponse:
        return HTMLResponse(text)
