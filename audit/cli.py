"""The `audit` command.

Exit codes (every command, `audit demo` included): 0 success (policy passed), 1 policy failed
or a regression, 2 bad input or an error,
with a one-line reason on stderr (the traceback only with --debug).
"""

from __future__ import annotations

import argparse
import atexit
import os
import sys
import traceback
from typing import Sequence

from audit.errors import AuditInputError


def _train(args: argparse.Namespace) -> int:
    import numpy as np

    from audit import datasets
    from audit.models import train

    if os.path.isfile(os.path.join(args.out, "manifest.json")) and not args.force:
        raise AuditInputError(f"{args.out!r} already holds a checkpoint (an audit config may use it); "
                              "choose another --out, or pass --force to replace it.")
    data = datasets.load(args.dataset, seed=args.seed)
    options = {} if args.epochs is None else {"epochs": args.epochs}
    model = train(args.arch or ("cnn" if data.kind == "image" else "mlp"), data, seed=args.seed,
                  progress=not args.quiet, **options)
    test = data.part("test")
    accuracy = model.accuracy(test.X, test.y)
    majority = float((test.y == np.bincount(test.y).argmax()).mean())
    model = model.replace(metadata={**model.metadata, "data": {
        **model.metadata.get("data", {}), "config": {"dataset": args.dataset}, "seed": args.seed}})
    path = model.save(args.out)
    history = model.metadata["training"]
    print(f"{data.name}: test accuracy {accuracy:.4f} (majority class {majority:.4f}), "
          f"best epoch {history['best_epoch']} of {len(history['epochs'])}, {history['seconds']:.1f} s")
    print(f"checkpoint written to {os.path.abspath(path)}")
    return 0


def _summary(report) -> str:
    counts = {s: sum(f.status == s for f in report.findings) for s in ("pass", "warn", "fail")}
    lines = [f"{report.name}: {report.verdict.upper()} ({counts['pass']} passed, {counts['warn']} warnings, "
             f"{counts['fail']} failed)"]
    lines += [f"  fail  {f.title}" for f in report.findings if f.status == "fail"]
    return "\n".join(lines)


def _audit(config, *, progress: bool, out: str | None) -> tuple:
    """Run the audit `config` names; with `out`, write report.json and report.html there, the
    sections' figures drawn while the later analyzers run. Returns (report, json path, html path)."""
    from audit.pipeline import run_config
    from audit.render.html import FigureRenderer

    if out is None:
        return run_config(config, progress=progress)[0], None, None
    with FigureRenderer() as renderer:
        report, _, _ = run_config(config, progress=progress, on_section=renderer.submit)
        if progress:
            print("writing the report ...", file=sys.stderr, flush=True)
        return (report, *_write_outputs(report, out, renderer))


def _write_outputs(report, out: str, renderer=None) -> tuple[str, str]:
    """report.json (+ sidecar) and report.html; the HTML is rendered first, so a failure leaves nothing."""
    from audit.pipeline._report import write_atomic
    from audit.render.html import render_report

    html = render_report(report, renderer=renderer).encode()
    json_path = report.to_json(os.path.join(out, "report.json"))
    html_path = os.path.join(out, "report.html")
    write_atomic(html_path, html)
    return json_path, html_path


def _write_ci_outputs(report, *, junit: str | None, summary_md: str | None, card_md: str | None = None) -> None:
    """--junit (each policy rule a test case), --summary-md (a verdict for a pull-request comment) and
    --card-md (the model card as Markdown)."""
    from audit.pipeline._report import write_atomic
    from audit.render.card import card_markdown
    from audit.render.ci import junit_xml, summary_markdown

    if junit:
        write_atomic(junit, junit_xml(report))
    if summary_md:
        write_atomic(summary_md, summary_markdown(report).encode())
    if card_md:
        write_atomic(card_md, card_markdown(report).encode())


def _compile_cache(setting: str | None) -> str | None:
    """Turn on JAX's persistent compilation cache for `audit run` / `audit demo`, so an audit run
    again (the usual loop: retrain, re-audit) reuses the compiled attacks and explainers instead
    of compiling them anew; most of a small model's audit is compilation. `setting` is a folder,
    "off", or None for $AUDIT_COMPILE_CACHE, else ~/.cache/flax-audit/xla. A cache folder the user
    gave JAX already (JAX_COMPILATION_CACHE_DIR) wins. Returns the folder in use, or None."""
    import jax

    if jax.config.jax_compilation_cache_dir:
        return jax.config.jax_compilation_cache_dir
    setting = setting if setting is not None else os.environ.get("AUDIT_COMPILE_CACHE")
    if setting is not None and setting.strip().lower() in ("off", "0", "false", "no", ""):
        return None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.abspath(setting or os.path.join(base, "flax-audit", "xla"))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as exc:
        raise AuditInputError(f"cannot create the compilation cache folder {folder} ({exc.strerror}); pass "
                              "--compile-cache DIR with a writable folder, or --compile-cache off.") from None
    jax.config.update("jax_compilation_cache_dir", folder)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)  # skip only trivial programs
    return folder


def _run(args: argparse.Namespace) -> int:
    from audit.pipeline import AuditConfig

    for flag, path, example in (("--junit", args.junit, "results.xml"), ("--summary-md", args.summary_md, "summary.md"),
                                ("--card-md", args.card_md, "card.md")):
        if path and os.path.isdir(path):
            raise AuditInputError(f"{flag} {path} is a folder; give a file name, e.g. {flag} {example}.")
    _compile_cache(args.compile_cache)
    config = AuditConfig.from_yaml(args.config)
    if args.chunk_rows is not None or args.sample_rows is not None:  # stream the data file (audit.data.open_stream)
        config = _streaming(config, args.chunk_rows, args.sample_rows)
    rank = _join(config) if args.distributed or config.distributed else 0
    # every process computes the same report; process 0 writes it
    report, json_path, html_path = _audit(config, progress=not args.quiet and rank == 0, out=None if rank else (
        args.out or os.path.join("reports", "out", config.name)))
    code = 2 if report.incomplete else 0 if report.passed else 1
    if rank != 0:
        return code
    _write_ci_outputs(report, junit=args.junit, summary_md=args.summary_md, card_md=args.card_md)
    print(_summary(report))
    print(f"report written to {os.path.abspath(html_path)} (and {os.path.basename(json_path)})")
    if report.incomplete:
        _say_incomplete(report)
    return code


def _join(config) -> int:
    """`audit run --distributed` / a `distributed:` section: join the other processes (jax.distributed;
    unset settings come from SLURM / Open MPI or JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES,
    JAX_PROCESS_ID) before any JAX computation. Returns this process's index."""
    from audit import parallel

    try:
        return parallel.initialize(**dict(config.distributed))
    except (ValueError, RuntimeError) as exc:
        raise AuditInputError(f"could not join the distributed run ({exc}); give the distributed: section "
                              "coordinator_address, num_processes and process_id, or set "
                              "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID, or launch "
                              "under SLURM (srun).") from None


def _streaming(config, chunk_rows: int | None, sample_rows: int | None):
    """The config with data.stream set from --chunk-rows / --sample-rows (over the config's own)."""
    import dataclasses

    from audit.pipeline import AuditConfig

    d = dict(config.data)
    if "csv" not in d and "parquet" not in d:
        raise AuditInputError("--chunk-rows / --sample-rows stream a data file: the config's data section "
                              "must name a 'csv' or 'parquet' file.")
    stream = dict(d["stream"]) if isinstance(d.get("stream"), dict) else {}
    stream.update({k: v for k, v in (("chunk_rows", chunk_rows), ("sample_rows", sample_rows)) if v is not None})
    checked = AuditConfig.from_dict({**config.to_dict(), "data": {**d, "stream": stream}}, source=config.source,
                                    lines=config.lines, registry=config.registry)
    return dataclasses.replace(config, data=checked.data)


def _say_incomplete(report) -> None:
    for name, section in report.sections.items():
        if section.failed:
            print(f"audit: error: section {name!r} failed: {section.failed} (the report is marked incomplete; "
                  "the other sections are in it)", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from audit.pipeline import AuditReport

    if not args.html and not args.single_file:
        raise AuditInputError("give --html FILE (the HTML report) and/or --single-file FILE (one JSON file "
                              "with every array inline, to share).")
    report = AuditReport.load(args.result)
    for path in ([report.to_html(args.html)] if args.html else []) + (
            [report.to_json(args.single_file, single_file=True)] if args.single_file else []):
        print(f"report written to {os.path.abspath(path)}")
    return 0


def _card(args: argparse.Namespace) -> int:
    from audit.pipeline import AuditReport
    from audit.pipeline._report import write_atomic
    from audit.render.card import card_markdown

    if os.path.isdir(args.out):
        raise AuditInputError(f"-o {args.out} is a folder; give a file name, e.g. -o card.md.")
    text = card_markdown(AuditReport.load(args.result))
    write_atomic(args.out, text.encode())
    print(f"model card written to {os.path.abspath(args.out)}")
    return 0


def _diff(args: argparse.Namespace) -> int:
    from audit.pipeline import AuditReport
    from audit.pipeline._diff import diff_reports

    result = diff_reports(AuditReport.load(args.old), AuditReport.load(args.new), tolerance=args.tolerance)
    lines = result.lines(show_all=args.all)
    print("\n".join(lines) if lines else "no differences beyond the tolerance")
    if result.regressed:
        print(f"{len(result.regressions)} regression(s)")
        return 1
    return 0


def _config_path(name: str) -> str:
    """reports/<name>.yaml in the working directory (a checkout), else the copy shipped in the
    package (audit/demos/, links to reports/ in the checkout; real files in a wheel)."""
    for path in (os.path.join(os.getcwd(), "reports", f"{name}.yaml"),
                 os.path.join(os.path.dirname(os.path.abspath(__file__)), "demos", f"{name}.yaml")):
        if os.path.isfile(path):
            return path
    raise AuditInputError(f"demo config {name}.yaml not found in reports/ nor in the installed package; "
                          "reinstall flax-audit.")


def _demo(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    from audit.pipeline import AuditConfig

    passed, incomplete = True, False
    _compile_cache(args.compile_cache)
    for name in args.only or DEMOS:
        start = time.perf_counter()
        config = AuditConfig.from_yaml(_config_path(name))
        # models/<name> under the working folder, also when the config comes from the package
        config = dataclasses.replace(config, model={**config.model, "path": os.path.abspath(
            os.path.join(args.models, config.name))})
        report, _, html_path = _audit(config, progress=not args.quiet, out=os.path.join(args.out, config.name))
        print(_summary(report))
        print(f"  {time.perf_counter() - start:.0f} s; report: {os.path.abspath(html_path)}")
        passed = passed and report.passed
        if report.incomplete:
            _say_incomplete(report)
            incomplete = True
    print("open the reports above in a browser, or explore them with `audit dashboard`")
    return 2 if incomplete else 0 if passed else 1  # the same contract as `audit run`


def _dashboard_app() -> str:
    """dashboards/app.py of the checkout this package runs from, else of the working directory."""
    for base in (os.path.dirname(os.path.dirname(os.path.abspath(__file__))), os.getcwd()):
        path = os.path.join(base, "dashboards", "app.py")
        if os.path.isfile(path):
            return path
    raise AuditInputError("dashboards/app.py not found; run `audit dashboard` from the flax-audit checkout.")


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _dashboard(args: argparse.Namespace) -> int:
    if args.result is not None and not os.path.isfile(args.result):
        raise AuditInputError(f"report {args.result!r} does not exist; give a report.json written by `audit run`.")
    if not 0 <= args.port < 65536:
        raise AuditInputError(f"--port {args.port} must be between 1 and 65535 (0: any free port).")
    port = args.port or _free_port()
    command = [sys.executable, "-m", "streamlit", "run", _dashboard_app(), "--server.port", str(port),
               "--server.address", "localhost", "--server.headless", "true" if args.headless else "false",
               "--server.maxUploadSize", "50", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--client.toolbarMode", "viewer"]
    if args.result is not None:
        command += ["--", os.path.abspath(args.result)]
    print(f"dashboard on http://localhost:{port} (Ctrl-C stops it)", flush=True)
    return _supervise(command)


def _supervise(command: list[str]) -> int:
    """Run `command` as a child; SIGTERM / SIGHUP / Ctrl-C are passed on to it and its exit is
    awaited, so stopping `audit dashboard` never leaves a Streamlit server behind."""
    import signal
    import subprocess

    child = subprocess.Popen(command)
    forwarded = [0]

    def forward(signum, frame):  # noqa: ARG001 - the signal handler signature
        forwarded[0] = signum
        if child.poll() is None:
            child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        try:
            code = child.wait()
        except BaseException:
            child.terminate()
            raise
        finally:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if forwarded[0] else code


DEMOS = ("credit", "mnist")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit", description="Audit JAX/Flax classifiers: "
                                     "explanations, robustness, fairness, class imbalance.")
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    p = commands.add_parser("train", help="train a zoo model on a bundled dataset and save a checkpoint")
    p.add_argument("--dataset", required=True, help="credit, breast_cancer, digits or mnist")
    p.add_argument("--out", required=True, help="checkpoint directory to write")
    p.add_argument("--arch", choices=("mlp", "cnn"), help="zoo architecture (default: by data kind)")
    p.add_argument("--epochs", type=int, help="maximum epochs (early stopping may end sooner)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--force", action="store_true", help="replace a checkpoint already at --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)

    p = commands.add_parser("run", help="run the audit a YAML config describes; write report.html and report.json")
    p.add_argument("config", help="audit config (YAML), e.g. reports/credit.yaml")
    p.add_argument("--out", help="output folder (default reports/out/<config name>)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--junit", metavar="XML", help="also write the policy as JUnit XML (one test case per rule)")
    p.add_argument("--summary-md", metavar="MD", help="also write a short Markdown verdict (for a PR comment)")
    p.add_argument("--card-md", metavar="MD", help="also write the model card (the config's card: section and "
                   "the audit's findings) as Markdown")
    p.add_argument("--chunk-rows", type=int, metavar="N", help="stream the data file N rows at a time (data "
                   "larger than memory; imbalance and fairness count every row, other sections use a sample)")
    p.add_argument("--sample-rows", type=int, metavar="N", help="with streaming: rows in the seeded sample that "
                   "fits the encoding and feeds the per-example sections (default 20000)")
    p.add_argument("--distributed", action="store_true",
                   help="run as one of several processes (jax.distributed: SLURM, Open MPI or the JAX_* variables "
                        "say the rest); rows split over every process's devices, process 0 writes the report")
    p.add_argument("--compile-cache", metavar="DIR", help="keep compiled programs here for the next run "
                   "(default $AUDIT_COMPILE_CACHE or ~/.cache/flax-audit/xla; 'off' to disable)")
    p.set_defaults(handler=_run)

    p = commands.add_parser("report", help="render a saved report.json as HTML, or export it as one file")
    p.add_argument("result", help="report.json written by `audit run`")
    p.add_argument("--html", help="HTML file to write")
    p.add_argument("--single-file", help="JSON file to write with every array inline (no .arrays.npz), to share")
    p.set_defaults(handler=_report)

    p = commands.add_parser("card", help="write the model card of a saved report.json as Markdown")
    p.add_argument("result", help="report.json written by `audit run`")
    p.add_argument("-o", "--out", required=True, help="Markdown file to write, e.g. card.md")
    p.set_defaults(handler=_card)

    p = commands.add_parser("diff", help="compare two reports; exit 1 when the new one regressed")
    p.add_argument("old", help="report.json of the earlier model")
    p.add_argument("new", help="report.json of the new model")
    p.add_argument("--tolerance", type=float, default=0.01, help="ignore metric moves up to this (absolute)")
    p.add_argument("--all", action="store_true", help="also list changed interval bounds")
    p.set_defaults(handler=_diff)

    p = commands.add_parser("demo", help="train the bundled models if needed and audit credit and mnist "
                            "(exit 1 when a policy fails, like `audit run`)")
    p.add_argument("--out", default=os.path.join("reports", "out"), help="output folder")
    p.add_argument("--models", default="models", help="checkpoint folder (reused when present; default models)")
    p.add_argument("--only", nargs="+", choices=DEMOS, help="run only these demos")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--compile-cache", metavar="DIR", help="keep compiled programs here for the next run "
                   "(default $AUDIT_COMPILE_CACHE or ~/.cache/flax-audit/xla; 'off' to disable)")
    p.set_defaults(handler=_demo)

    p = commands.add_parser("dashboard", help="explore a report (and the model behind it) in a Streamlit app")
    p.add_argument("result", nargs="?", help="report.json to open (default: choose in the app)")
    p.add_argument("--port", type=int, default=8501, help="localhost port (0: any free port; default 8501)")
    p.add_argument("--headless", action="store_true", help="do not open a browser window")
    p.set_defaults(handler=_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except AuditInputError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"audit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("audit: interrupted", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI promises one line, not a traceback
        if args.debug:
            traceback.print_exc()
        print(f"audit: error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 2


def entry() -> None:
    """The `audit` console script and `python -m audit.cli`: `main`, then a process exit that skips
    tearing the interpreter down. Once the outputs are written, freeing XLA's compiled programs and
    every loaded module one by one took 1.0-1.4 s of a 25-60 s audit. The exit handler is
    registered before any library registers its own, so every one of theirs (jax's clean-up, a
    distributed run's shutdown, logging) still runs first; then both streams are flushed."""
    code: list[int] = []

    def end_now() -> None:
        if code:  # main returned; an exception escaping it ends the process the usual way
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code[0])

    atexit.register(end_now)
    code.append(main())
    sys.exit(code[0])


if __name__ == "__main__":
    entry()
