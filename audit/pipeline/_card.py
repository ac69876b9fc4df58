"""The `card:` section of an audit config: what a model card says that only its authors can write.

The fields follow Model Cards for Model Reporting (Mitchell et al., 2019): model details, intended
use, factors, metrics, evaluation and training data, ethical considerations, caveats and
recommendations. The quantitative analysis, training curves and data summary come from the audit
itself (audit/render/card.py). Each field is a string or a list of strings (rendered as bullets).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from audit.errors import AuditInputError

# key -> (card heading it belongs to, its label on the card, what it says); in the card's order.
FIELDS: dict[str, tuple[str, str, str]] = {
    "model_details": ("Model details", "", "What the model is: its type, what it was trained to predict."),
    "developers": ("Model details", "Developed by", "The person or organisation that developed the model."),
    "version": ("Model details", "Version", "The model's version."),
    "date": ("Model details", "Date", "When the model was made."),
    "license": ("Model details", "License", "The model's license."),
    "citation": ("Model details", "Citation", "How to cite the model."),
    "references": ("Model details", "References", "Papers or other resources about the model."),
    "contact": ("Model details", "Contact", "Where to send questions or comments about the model."),
    "intended_use": ("Intended use", "Primary intended uses", "The uses the model was made for."),
    "intended_users": ("Intended use", "Primary intended users", "Who the model was made for."),
    "out_of_scope": ("Intended use", "Out-of-scope uses", "Uses the model is not meant for, or must not be used for."),
    "factors": ("Factors", "", "Groups, instruments and environments whose performance should be checked."),
    "metrics": ("Metrics", "", "Why these performance measures and decision thresholds were chosen."),
    "training_data": ("Training data", "", "Where the training data came from and how it was prepared."),
    "evaluation_data": ("Evaluation data", "", "Which data the model was evaluated on, and why."),
    "ethical_considerations": ("Ethical considerations", "", "Sensitive data, risks, harms and their mitigations."),
    "limitations": ("Caveats and recommendations", "Limitations", "Where the model is known to fail."),
    "recommendations": ("Caveats and recommendations", "Recommendations", "What users of the model should do or avoid."),
}
# The card's headings in order (Mitchell et al., 2019, section 4); the audit fills in the quantitative analyses.
HEADINGS = ("Model details", "Intended use", "Factors", "Metrics", "Training data", "Evaluation data",
            "Quantitative analyses", "Ethical considerations", "Caveats and recommendations")


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""


def check_card(card: Any, where: Callable[..., str]) -> None:
    """AuditInputError naming the first unknown key or a value that is not text (a string or a list of
    strings); `where(*keys)` formats a key path with its config line."""
    if card is None:
        return
    if not isinstance(card, Mapping):
        raise AuditInputError(f"{where('card')} must be a mapping of card fields, e.g. "
                              "{intended_use: ..., limitations: [...]}; got " + type(card).__name__ + ".")
    for key, value in card.items():
        if key not in FIELDS:
            raise AuditInputError(f"unknown key {where('card', key)}; a model card takes: {list(FIELDS)}.")
        ok = _text(value) or (isinstance(value, list) and value and all(_text(v) for v in value))
        if not ok:
            raise AuditInputError(f"{where('card', key)} must be text or a list of text (bullet points), "
                                  f"got {value!r}.")


def card_fields(card: Mapping[str, Any] | None) -> dict[str, list[tuple[str, str, list[str], bool]]]:
    """The given fields under their card headings: {heading: [(key, label, texts, is_list), ...]};
    a string is one paragraph (is_list False), a list is bullet points."""
    out: dict[str, list[tuple[str, str, list[str], bool]]] = {}
    for key, (heading, label, _) in FIELDS.items():
        value = (card or {}).get(key)
        if value:
            is_list = not isinstance(value, str)
            out.setdefault(heading, []).append((key, label, list(value) if is_list else [value], is_list))
    return out
