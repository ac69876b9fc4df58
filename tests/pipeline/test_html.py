import html as htmllib
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pytest

from audit import AuditConfig, run
from audit.data import Dataset, stratified_split
from audit.models import Model

EVIL = "<script>alert('x')</script>"


@pytest.fixture(scope="module")
def evil_report(tmp_path_factory, registry):
    import jax.numpy as jnp
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)  # ~85% accuracy: the policy fails
    data = Dataset(X=X, y=y, feature_names=(EVIL, "b", "c"), class_names=(EVIL, "ok"),
                   sensitive={"group": np.where(X[:, 1] > 0, EVIL, "g")}, splits=stratified_split(y), name=EVIL)
    model = Model.from_function(lambda p, x: jnp.stack([-x[:, 0] * p, x[:, 0] * p], -1), jnp.float32(2.0),
                                input_shape=(3,), class_names=(EVIL, "ok"))
    config = AuditConfig(name=EVIL, analyzers={"accuracy": {}}, registry=registry,
                         policy=[{"metric": "accuracy.accuracy", "min": 0.99},
                                 {"metric": "accuracy.recall:0", "min": 0.5, "severity": "warn"},
                                 {"metric": "accuracy.recall:1", "max": 1.0}],
                         card={"intended_use": EVIL, "limitations": [EVIL, "Only tested on synthetic rows."]})
    report = run(model, data, config, progress=False)
    path = tmp_path_factory.mktemp("html") / "report.html"
    report.to_html(path)
    return report, path


def test_html_is_self_contained_and_escaped(evil_report):
    report, path = evil_report
    html = path.read_text()
    assert EVIL not in html and "&lt;script&gt;" in html
    # one inline script (sorting and filtering the findings), no script from anywhere else, no user text in it
    assert html.lower().count("<script") == 1 and "<script>" in html
    script = html[html.index("<script>"):html.index("</script>")]
    assert "alert" not in script and "innerHTML" not in script
    assert not re.search(r"(src|href)\s*=\s*\"(?!data:|#)", html)  # only inline images and anchors
    assert "http://" not in html and "https://" not in html
    for anchor in ("summary", "findings", "card", "section-accuracy", "appendix"):
        assert f'id="{anchor}"' in html
    assert "FAIL" in html and report.metadata["data"]["fingerprint"] in html
    assert html.count("data:image/png;base64,") >= 2


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.hrefs, self.toc, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav":
            self.stack.append("nav")
        if "id" in attrs:
            self.ids.append(attrs["id"])
        if tag == "a" and "href" in attrs:
            self.hrefs.append(attrs["href"])
            if self.stack:
                self.toc.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "nav" and self.stack:
            self.stack.pop()


def _links(html):
    parser = _Links()
    parser.feed(html)
    return parser


def test_contents_and_every_link_resolve(evil_report):
    report, path = evil_report
    links = _links(path.read_text())
    assert len(links.ids) == len(set(links.ids))  # anchors are unique
    assert all(h.startswith("#") and h[1:] in links.ids for h in links.hrefs)  # every link lands somewhere
    assert links.toc == ["#summary", "#findings", "#card", *(f"#section-{n}" for n in report.sections), "#appendix"]


def test_each_finding_once_linked_to_and_from_its_section(evil_report):
    report, path = evil_report
    html = path.read_text()
    assert len(report.findings) >= 4 and {f.status for f in report.findings} >= {"fail", "pass"}
    for f in report.findings:
        assert html.count(htmllib.escape(f.message)) == 1, f.message
    rows = re.findall(r'<tr id="finding-(\d+)" data-status="(\w+)" data-section="(\w*)">', html)
    assert [int(n) for n, _, _ in rows] == list(range(1, len(report.findings) + 1))
    order = {"fail": 0, "warn": 1, "pass": 2}
    assert [order[s] for _, s, _ in rows] == sorted(order[f.status] for f in report.findings)
    # the section lists its findings by number only, linking to the table; the table links back
    section = html[html.index('id="section-accuracy"'):html.index('id="appendix"')]
    assert sorted(re.findall(r'href="#finding-(\d+)"', section), key=int) == [n for n, _, sec in rows if sec == "accuracy"]
    assert html.count('href="#section-accuracy"') == 1 + sum(sec == "accuracy" for _, _, sec in rows)  # TOC + rows
    # a section with a failure opens by default; the findings table's controls appear only with script
    assert re.search(r'id="section-accuracy">\s*<details open>', html)
    assert 'id="finding-filters" hidden' in html


def test_metric_headings_use_the_declared_titles(evil_report, accuracy_spec):
    report, path = evil_report
    html = path.read_text()
    shown = dict((key, title) for title, key in re.findall(r'<tr><td>([^<]*)<span class="key">([^<]+)</span></td>', html))
    assert set(shown) == {f"accuracy.{k}" for k in report.sections["accuracy"].metrics()}
    for key, title in shown.items():
        spec = next(s for s in accuracy_spec.result.METRICS if s.matches(key.split(".", 1)[1]))
        assert htmllib.unescape(title) == spec.title_for(key.split(".", 1)[1])
    # policy findings name their metric by its title, the raw key in small print
    assert "Accuracy = " in html and "Recall of 0 = " in html and "accuracy.accuracy = " not in html


def test_provenance_is_recorded_and_shown(evil_report):
    report, path = evil_report
    p = report.metadata["provenance"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", p["date"])
    from importlib.metadata import version
    assert p["flax_audit"] == version("flax-audit")
    assert "code" not in p  # audited from Python with no config file or factory: no checkout to name
    html = path.read_text()
    assert f"Generated {p['date']} by flax-audit {p['flax_audit']}" in html


def test_failed_render_leaves_no_file(tmp_path, evil_report, monkeypatch):
    import audit.render.html as html_module
    report, _ = evil_report

    def broken(_, renderer=None):
        raise RuntimeError("boom")

    monkeypatch.setattr(html_module, "render_report", broken)
    with pytest.raises(RuntimeError):
        report.to_html(tmp_path / "out.html")
    assert os.listdir(tmp_path) == []


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(CHROMIUM is None, reason="no headless Chromium on this machine (.ci/run installs Debian's "
                                             "chromium package; apt-get install chromium to run this test)")
def test_report_renders_in_headless_chromium(evil_report, tmp_path):
    _, path = evil_report
    shot = os.path.abspath(os.path.join("test-artifacts", "report.png"))
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    if os.path.exists(shot):
        os.remove(shot)
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1200,2400", f"--screenshot={shot}", f"file://{path}"],
        capture_output=True, text=True, timeout=120)
    assert os.path.exists(shot) and os.path.getsize(shot) > 20_000, result.stderr[-2000:]
    console_errors = [line for line in result.stderr.splitlines()
                      if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)]
    assert console_errors == []
    # the inline script ran: it showed the findings filters and counted the rows
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile2'}", "--dump-dom",
         f"file://{path}"], capture_output=True, text=True, timeout=120).stdout
    n = len(evil_report[0].findings)
    assert 'id="finding-filters" hidden' not in dom and f"{n} of {n} shown" in dom


def test_make_readable_moves_legends_off_the_data_and_raises_small_fonts():
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    from audit.render._readable import FOOTNOTE_PX, covers_data, make_readable

    fig = Figure(figsize=(10, 3.5))  # wider than the page: shown scaled down, so fonts must grow more
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        for k in range(4):
            ax.plot(np.linspace(0, 1, 50), np.linspace(0, 1, 50) * (k + 1) / 4, label=f"series {k}")
        ax.set_xlabel("x", fontsize=5)
        ax.legend(loc="center", fontsize=5)
    assert all(covers_data(fig, ax.get_legend()) for ax in fig.axes)
    make_readable(fig, dpi=110, min_px=FOOTNOTE_PX, max_width_px=900)
    assert not any(covers_data(fig, ax.get_legend()) for ax in fig.axes)
    width_in = fig.get_tightbbox(fig.canvas.get_renderer()).width
    px_per_pt = min(110, 900 / width_in) / 72
    sizes = [t.get_fontsize() * px_per_pt for t in fig.findobj(Text) if t.get_visible() and t.get_text()]
    assert min(sizes) >= FOOTNOTE_PX - 0.05
    # numeric tick labels that the larger font makes collide are thinned out
    from matplotlib.ticker import MaxNLocator

    from audit.render._readable import _overlapping
    fig = Figure(figsize=(9, 2))
    axes = fig.subplots(1, 6)
    for ax in axes:
        ax.hist(np.random.default_rng(0).normal(0.05, 0.02, 200), bins=20)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=11))
        ax.tick_params(labelsize=4)
    make_readable(fig)
    assert not any(_overlapping(ax.get_xticklabels(), fig.canvas.get_renderer()) for ax in axes)
    # a legend already outside the axes stays where it is
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], label="a")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0))
    before = ax.get_legend()
    make_readable(fig)
    assert ax.get_legend() is before


def test_figures_drawn_while_the_audit_runs_are_the_ones_rendered(monkeypatch, credit_model, credit_small):
    """`FigureRenderer` draws each section's figures on its thread as the section finishes (the
    audit's `on_section` hook); the report then shows those very images, drawn once, and is the
    same page as one rendered in the foreground. A result it was not given is drawn anew, and a
    figure that fails in the background fails the render."""
    import threading

    import audit.render.html as html_module
    from audit.render.html import FigureRenderer, render_report

    model, data = credit_model, credit_small
    config = AuditConfig(name="toy", analyzers={"imbalance": {}, "fairness": {"n_bootstrap": 20}})
    drawn, original = [], html_module._section_figures

    def counting(name, result):
        drawn.append((name, threading.current_thread().name))
        return original(name, result)

    monkeypatch.setattr(html_module, "_section_figures", counting)
    with FigureRenderer() as renderer:
        report = run(model, data, config, progress=False, on_section=renderer.submit)
        background = render_report(report, renderer=renderer)
    assert sorted(drawn) == [("fairness", "audit-figures_0"), ("imbalance", "audit-figures_0")]
    assert background.count("data:image/png;base64,") > 4
    assert background == render_report(report)  # the foreground draws the same images
    drawn.clear()
    with FigureRenderer() as renderer:
        renderer.submit("imbalance", report.sections["imbalance"].result)
        for name in ("imbalance", "fairness"):  # an equal result in another object is drawn anew
            result = report.sections[name].result
            again = type(result).from_dict(result.to_dict())
            assert renderer.figures(name, again) == original(name, result)
    assert [n for n, _ in drawn] == ["imbalance", "imbalance", "fairness"]

    def broken(name, result):
        raise RuntimeError("figure boom")

    monkeypatch.setattr(html_module, "_section_figures", broken)
    with FigureRenderer() as renderer:
        renderer.submit("imbalance", report.sections["imbalance"].result)
        with pytest.raises(RuntimeError, match="figure boom"):
            render_report(report, renderer=renderer)
