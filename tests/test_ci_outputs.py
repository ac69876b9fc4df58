"""`audit run --junit / --summary-md`: the policy as JUnit XML and as a Markdown verdict."""

import textwrap
import xml.etree.ElementTree as ET

from audit import cli
from audit.pipeline._report import AuditReport, Section
from audit.render.ci import junit_xml, summary_markdown
from audit.results import Finding


def _report():
    findings = (
        Finding(id="policy:fairness.gap:sex", status="fail", title="fairness.gap:sex = 0.31 (breaks <= 0.1)",
                message='Gap <b>"&" between groups</b> | big.', metric="fairness.gap:sex", value=0.31,
                threshold=0.1),
        Finding(id="policy:imbalance.accuracy", status="pass", title="imbalance.accuracy = 0.93 (meets >= 0.9)",
                message="Accuracy.", metric="imbalance.accuracy", value=0.93, threshold=0.9),
        Finding(id="policy:slices.worst_error_ratio", status="warn",
                title="slices.worst_error_ratio = 3 (breaks <= 2)", message="Cohort error.",
                metric="slices.worst_error_ratio", value=3.0, threshold=2.0),
        Finding(id="slices.slices.cohort:1", status="warn", title="Cohort with a higher error",
                message="sector = retail and housing = rent: error 0.49 vs 0.07."),
    )
    sections = {"ood": Section(name="ood", title="OOD", failed="ValueError: <boom>\x00")}
    return AuditReport(name="ci <unit>", sections=sections, findings=findings, metadata={})


def test_junit_has_one_case_per_rule_and_failures_carry_value_and_threshold():
    root = ET.fromstring(junit_xml(_report()))
    suite = root.find("testsuite")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["fairness.gap:sex", "imbalance.accuracy",
                                              "slices.worst_error_ratio", "ood"]
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("4", "1", "1")
    assert suite.get("name") == "flax-audit: ci <unit>"  # escaped in the file, restored by the parser
    failure = cases[0].find("failure")
    assert "measured 0.31" in failure.get("message") and "breaks <= 0.1" in failure.get("message")
    assert 'Gap <b>"&" between groups</b>' in failure.text and "threshold: 0.1" in failure.text
    assert cases[1].find("failure") is None and cases[1].find("system-out") is None
    assert cases[2].find("failure") is None and "warning: measured 3" in cases[2].find("system-out").text
    assert cases[3].find("error").text == "ValueError: <boom>"


def test_summary_markdown_gives_verdict_failed_rules_and_warnings():
    md = summary_markdown(_report())
    assert md.splitlines()[0] == "## flax-audit: ci &lt;unit&gt;: **FAILED**"  # no raw HTML in a PR comment
    assert "1 of 3 policy rules passed; 1 failed, 2 warnings." in md
    assert "| fairness.gap:sex = 0.31 (breaks &lt;= 0.1) | 0.31 | 0.1 |" in md  # renders as <=
    assert "**Incomplete:** `ood` failed (ValueError: &lt;boom&gt;" in md
    assert "- **Cohort with a higher error**: sector = retail and housing = rent" in md
    assert "Gap" not in md  # a failed rule's long message is not repeated: the table says it


CONFIG = """\
name: ci-unit
seed: 0
data:
  dataset: credit
  options: {{n: 1500, hidden_cohort: true}}
model:
  path: {model}
  train: {{arch: mlp, epochs: 10, batch_size: 32, widths: [16]}}
analyzers:
  slices: {{min_size: 15}}
policy:
  - {{metric: slices.error, max: 0.5}}
  - {{metric: slices.worst_error_ratio, max: 1.5}}
card:
  intended_use: Screening loan applications for a person to review.
  limitations: [Synthetic data only]
"""


def test_cli_writes_junit_and_summary(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text(textwrap.dedent(CONFIG.format(model=tmp_path / "model")))
    junit, md = tmp_path / "ci" / "results.xml", tmp_path / "summary.md"
    card = tmp_path / "card.md"
    code = cli.main(["run", str(config), "--out", str(tmp_path / "out"), "--quiet", "--junit", str(junit),
                     "--summary-md", str(md), "--card-md", str(card)])
    assert code == 1  # the planted cohort breaks the slices rule
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert set(cases) == {"slices.error", "slices.worst_error_ratio"}
    assert cases["slices.error"].find("failure") is None
    failure = cases["slices.worst_error_ratio"].find("failure")
    assert "threshold: 1.5" in failure.text and "measured" in failure.get("message")
    text = md.read_text()
    assert "**FAILED**" in text and "slices.worst_error_ratio" in text
    html = (tmp_path / "out" / "report.html").read_text()
    assert "housing = rent and sector = retail" in html and "corrected p" in html
    # the model card: the config's text and the audit's findings; `audit card` writes the same card later
    text = card.read_text()
    assert "**Primary intended uses:** Screening loan applications for a person to review." in text
    assert "- Synthetic data only" in text and "| Worst cohort's error over the rest's (slices.worst_error_ratio) |" in text
    assert cli.main(["card", str(tmp_path / "out" / "report.json"), "-o", str(tmp_path / "again.md")]) == 0
    assert (tmp_path / "again.md").read_text() == text
    capsys.readouterr()
    assert cli.main(["run", str(config), "--junit", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert cli.main(["run", str(config), "--card-md", str(tmp_path)]) == 2
    assert "--card-md" in capsys.readouterr().err
