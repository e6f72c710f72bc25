"""What ``ganad models`` prints, read from the code itself.

* :func:`model_summaries`: every registered model with a one-line summary
  (the first paragraph of its class docstring, or of its module's);
* :func:`describe_params`: a model's parameters as ``{"name", "default",
  "doc"}``: names and defaults from the ``__init__`` signatures along the
  class's MRO (as :meth:`ganad.base.BaseDetector._param_names` collects the
  names; a subclass's default wins, and a fresh instance's value wins over
  both), meanings from the numpydoc-style
  "Parameters" sections of the class's and its bases' docstrings ("" when
  a parameter is not documented there);
* :func:`model_paper`: the first paragraph of the model's module docstring,
  which names the paper.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

from .registry import available_models, get_class

#: a "Parameters" entry: ``name : text``, ``a, b : text`` or ``name :`` (``**common`` entries too)
_ENTRY = re.compile(r"^(\*{0,2}[A-Za-z_]\w*(?:\s*,\s*\*{0,2}[A-Za-z_]\w*)*)\s*:(?:\s+(.*))?$")


def _first_paragraph(doc: str | None) -> str:
    """The docstring's first paragraph on one line ("" without a docstring)."""
    if not doc:
        return ""
    paragraph = inspect.cleandoc(doc).strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _module_doc(cls: type) -> str | None:
    module = sys.modules.get(cls.__module__)
    return getattr(module, "__doc__", None)


def model_summary(name: str) -> str:
    """One line on the model ``name``: its class docstring's first paragraph, else its module's."""
    cls = get_class(name)
    return _first_paragraph(cls.__dict__.get("__doc__")) or _first_paragraph(_module_doc(cls))


def model_summaries() -> list[tuple[str, str]]:
    """(name, one-line summary) of every registered model, sorted by name."""
    return [(name, model_summary(name)) for name in available_models()]


def model_paper(name: str) -> str:
    """The first paragraph of the model's module docstring (it names the paper)."""
    return _first_paragraph(_module_doc(get_class(name)))


def _is_section_header(lines: list[str], i: int) -> bool:
    line = lines[i].strip()
    underlined = i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}
    return bool(line) and underlined


def parse_parameters(doc: str | None) -> dict[str, str]:
    """``{name: meaning}`` from the "Parameters" section of a numpydoc-style docstring.

    An entry is ``name : text`` (or ``a, b : text``, one meaning for several
    names) at the section's indentation, continued by indented lines; both
    ``name : description`` and numpydoc's ``name : type`` + indented
    description are read (the latter as "type: description").  The section
    starts at a "Parameters" line underlined with dashes, or at a line
    "Parameters ...:" (BaseDetector's), and ends at the next section header or
    at unindented text that is not an entry.
    """
    if not doc:
        return {}
    lines = inspect.cleandoc(doc).splitlines()
    start = None
    for i, line in enumerate(lines):
        text = line.strip()
        if text == "Parameters" and _is_section_header(lines, i):
            start = i + 2
            break
        if re.fullmatch(r"Parameters\b[^:]*:", text):
            start = i + 1
            break
    if start is None:
        return {}
    out: dict[str, str] = {}
    names: list[str] = []
    head, body = "", []

    def flush() -> None:
        if names:
            if head and body and body[0][:1].isupper() and head[-1:] not in ".;:,":
                text = f"{head}: {' '.join(body)}"  # numpydoc: "name : type" + description
            else:
                text = " ".join([head, *body]).strip()
            for n in names:
                if not n.startswith("*"):
                    out.setdefault(n, " ".join(text.split()))

    base_indent = None
    for i in range(start, len(lines)):
        line = lines[i]
        if not line.strip():
            continue
        if _is_section_header(lines, i):
            break
        indent = len(line) - len(line.lstrip())
        if base_indent is None:
            base_indent = indent
        if indent > base_indent:
            if names:
                body.append(line.strip())
            continue
        m = _ENTRY.match(line.strip())
        if m is None:
            break  # unindented prose: the section is over
        flush()
        names = [n.strip() for n in m.group(1).split(",")]
        head, body = (m.group(2) or "").strip(), []
    flush()
    return out


def describe_params(name: str) -> list[dict[str, Any]]:
    """The parameters of model ``name``, in :meth:`_param_names` order, as
    ``{"name", "default", "doc", "allowed"}`` (``default`` is ``inspect.Parameter.empty``
    for a required parameter; ``doc`` is "" when undocumented; ``allowed`` says
    what the declared constraints accept, "" when none is declared)."""
    cls = get_class(name)
    defaults: dict[str, Any] = {}
    docs: dict[str, str] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is not None and klass is not object:
            for p in inspect.signature(init).parameters.values():
                if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    defaults.setdefault(p.name, p.default)
        for key, text in parse_parameters(klass.__dict__.get("__doc__")).items():
            docs.setdefault(key, text)
    # A default in a signature can be overridden on the way up (DeepSVDD passes
    # epochs=50 through **common): what a fresh instance holds is the real one.
    try:
        fresh = cls().get_params()
    except Exception:  # noqa: BLE001 - a model that needs arguments: the signatures' defaults
        fresh = {}
    from .params import describe as describe_constraint, merged_constraints

    allowed = {k: describe_constraint(v) for k, v in merged_constraints(cls).items()}
    return [{"name": n, "default": fresh.get(n, defaults.get(n, inspect.Parameter.empty)), "doc": docs.get(n, ""),
             "allowed": allowed.get(n, "")} for n in cls._param_names()]


def format_default(value: Any) -> str:
    """A default as ``ganad fit --param`` would take it: JSON-like where it can be."""
    if value is inspect.Parameter.empty:
        return "(required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, tuple):
        return "[" + ", ".join(format_default(v) for v in value) + "]"
    return repr(value)
