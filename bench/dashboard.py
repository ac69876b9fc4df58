"""Dashboard responsiveness in headless Chromium: page loads and what-ifs, on the credit test split
and on a 100k-row one.

For each `--rows` (total credit rows; the test split is a fifth of them) it trains a small MLP, audits
it (imbalance, fairness, robustness, certify, slices; reports/out/bench-dashboard-<rows>/), serves
`audit dashboard` on a free port and drives Chromium over DevTools (dashboards/_browser.py):

- page load: open each page's own URL until the text is there, no script runs and it stays still;
- what-if: focus a slider and press an arrow key (eps on Robustness and Certification, the decision
  threshold on Fairness and Imbalance, the income range of the Error-analysis cohort builder), then
  time until the page's results (its text, sliders left out) change and no element of the previous run
  is left stale. The first press
  warms the caches; the median of the next `--presses` is the warm latency, the max the worst one.

    python bench/dashboard.py [--rows 20000 500000] [--presses 5]

Streamlit debounces slider input by ~0.2 s; that is inside the numbers. The RAI dashboard (Microsoft's
responsibleai) is not run here (it needs its own server, a scikit-learn-style model and Python 3.8-3.10
pins); its documentation says it struggles past about 20k rows.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from dashboards._browser import Browser  # noqa: E402

ANALYZERS = {"imbalance": {}, "fairness": {"n_bootstrap": 200, "proxies": False},
             "robustness": {"n": 200, "eps": [0.05, 0.1, 0.2], "attacks": ["fgsm", "pgd"], "steps": 10,
                            "min_perturbation_n": 0, "bootstrap": 100, "impute_k": []},
             "certify": {"n": 200, "eps": [0.0, 0.05, 0.1], "attacks": ["fgsm", "pgd"], "steps": 10,
                         "n_samples": 200},
             "slices": {}}
# page url, text that shows it rendered, what-if: (slider label, key, presses' metric text)
PAGES = {"overview": ("Verdict", None),
         "robustness": ("Prediction after", ("eps (linf)", "ArrowRight")),
         "fairness": ("Move the decision threshold", ("Decide", "ArrowRight")),
         "imbalance": ("Balanced accuracy", ("Decide", "ArrowRight")),
         "certification": ("Smoothing certified accuracy", ("eps (linf)", "ArrowRight")),
         "slices": ("Cohort builder", ("income between", "ArrowRight"))}  # the range's lower end


def make_report(rows: int, epochs: int) -> str:
    """reports/out/bench-dashboard-<rows>/report.json (made once)."""
    from audit import datasets, run, train
    from audit.pipeline import AuditConfig

    folder = os.path.join(ROOT, "reports", "out", f"bench-dashboard-{rows}")
    path = os.path.join(folder, "report.json")
    if os.path.isfile(path):
        return path
    data = datasets.load("credit", n=rows, seed=0)
    model = train("mlp", data, epochs=epochs, batch_size=256, widths=(32, 16), progress=False, seed=0)
    model.save(os.path.join(folder, "model"))
    config = AuditConfig(name=f"bench-dashboard-{rows}", seed=0, data={"dataset": "credit", "options": {"n": rows}},
                         model={"path": os.path.join(folder, "model")}, analyzers=ANALYZERS,
                         policy=({"metric": "fairness.demographic_parity_difference:sex", "max": 0.02},))
    return run(model, data, config, progress=True).to_json(path)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(report: str) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "audit.cli", "dashboard", report, "--port", str(port),
                               "--headless"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(f"http://localhost:{port}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return server, f"http://localhost:{port}"
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError("the dashboard server did not come up")
        time.sleep(0.5)


FOCUS = """(() => {
  const boxes = [...document.querySelectorAll('[data-testid="stSlider"]')];
  const box = boxes.find(b => b.textContent.includes(%s));
  if (!box) return false;
  const thumbs = box.querySelectorAll('input[type="range"]');
  if (!thumbs.length) return false;
  thumbs[%d < 0 ? thumbs.length - 1 : %d].focus();
  return true;
})()"""
ADD_FILTER = """(() => {
  const boxes = [...document.querySelectorAll('[data-testid="stMultiSelect"]')];
  const box = boxes.find(b => b.textContent.includes('Narrow it with filters'));
  if (!box) return false;
  box.querySelector('input').focus();
  return true;
})()"""


RESULTS = """(() => {
  const main = document.querySelector('[data-testid="stMain"]').cloneNode(true);
  main.querySelectorAll('[data-testid="stSlider"]').forEach(e => e.remove());
  return main.innerText;
})()"""


def what_if(browser: Browser, label: str, key: str, presses: int, thumb: int = -1) -> list[float]:
    """Seconds from each key press on the slider labelled `label` until the page shows new results
    (its text, sliders left out, changed) and every element of the rerun is in place (no stale
    element, no running widget)."""
    times = []
    for _ in range(presses + 1):
        if not browser.js(FOCUS % (json.dumps(label), thumb, thumb)):
            raise RuntimeError(f"no slider labelled {label!r}")
        before = browser.js(RESULTS)
        start = time.perf_counter()
        browser.key(key)
        deadline, idle = start + 120, 0
        while idle < 2:  # two polls in a row: results changed and nothing running
            time.sleep(0.03)
            idle = idle + 1 if browser.js(RESULTS) != before and not browser.busy() else 0
            if time.perf_counter() > deadline:
                raise TimeoutError(f"{label!r}: the results did not change within 120 s")
        times.append(time.perf_counter() - start - 0.03)  # minus the confirming poll
        browser.settle("", settle=0.5, poll=0.1)
    return times


def measure(rows: int, *, epochs: int, presses: int) -> dict:
    report = make_report(rows, epochs)
    test_rows = json.load(open(report))["metadata"]["data"]["splits"]["test"]
    server, base = serve(report)
    out = {"rows": rows, "test rows": test_rows, "pages": {}}
    try:
        with Browser(width=1400, height=1600) as browser:
            browser.open(f"{base}/overview", "Verdict", timeout=600)  # first open: model, data, compiles
            for page, (marker, action) in PAGES.items():
                start = time.perf_counter()
                browser.open(f"{base}/{page}", marker, timeout=600, settle=0.5, poll=0.1)
                load = time.perf_counter() - start - 0.5  # minus the settle wait
                entry = {"load_s": round(load, 2)}
                if action is not None:
                    label, key = action
                    if page == "slices":  # add the income filter through the multiselect
                        browser.js(ADD_FILTER)
                        browser.type("income")
                        browser.key("Enter")
                        browser.settle("income between", settle=0.5, poll=0.1)
                    t = what_if(browser, label, key, presses, thumb=0 if page == "slices" else -1)
                    entry.update(first_s=round(t[0], 2), warm_median_s=round(statistics.median(t[1:]), 2),
                                 warm_max_s=round(max(t[1:]), 2))
                out["pages"][page] = entry
                print(rows, page, entry, flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[20000, 500000])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--presses", type=int, default=5)
    args = parser.parse_args()
    results = [measure(r, epochs=args.epochs, presses=args.presses) for r in args.rows]
    print("| test rows | page | load (s) | what-if first (s) | warm median (s) | warm max (s) |")
    print("|---|---|---|---|---|---|")
    for res in results:
        for page, e in res["pages"].items():
            print(f"| {res['test rows']} | {page} | {e['load_s']} | {e.get('first_s', '')} | "
                  f"{e.get('warm_median_s', '')} | {e.get('warm_max_s', '')} |")


if __name__ == "__main__":
    main()
