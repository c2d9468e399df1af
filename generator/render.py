"""Stage 5, render: chart templates + values + plan -> one object per file.

Templates are Jinja2 with StrictUndefined (a missing key is an error, never an empty
field) and no access to the environment or the clock. Each `templates/PHASE/NAME.yaml`
renders zero or one object, written to `RELEASE/PHASE/NAME.yaml`; the phases (storage,
download, serving) are applied in that order by Argo CD waves and Flux dependencies.
Values reach a template's text only through `{{ x | q }}`, which puts a placeholder in the
text and keeps the value aside: the text is parsed back and each placeholder replaced by
its value, so no value is ever read as YAML (nothing can inject structure) and parsing
stays fast. The object is written in llmpack's canonical form (emit.py), so the output
does not depend on template whitespace. `templates/*.md` render as text. Partials
`templates/_NAME.j2` are evaluated once per release, in name order, and every later
template sees them as `NAME` (`macros`, `pod`, `raw`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import __version__, emit, layout, templatecache
from generator.errors import TemplateError
from generator.plan import Plan

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class RenderedFile:
    """One output file: its path below rendered/ENV/, its text, and for an object its identity
    (kind, namespace, name) and, while the check stage needs it, the parsed object."""

    path: str
    text: str
    parsed: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    key: tuple[str, str, str] | None = None
    api_version: str = ""

    @classmethod
    def of(cls, path: str, text: str, obj: dict[str, Any] | None) -> RenderedFile:
        if obj is None:
            return cls(path, text)
        meta = obj.get("metadata") or {}
        return cls(path, text, obj, (str(obj.get("kind")), str(meta.get("namespace", "")), str(meta.get("name"))),
                   str(obj.get("apiVersion", "")))

    @property
    def obj(self) -> dict[str, Any] | None:
        """The object (parsed again from the text once the pipeline dropped it); None for a text file."""
        if self.key is None:
            return None
        if self.parsed is not None:
            return self.parsed
        return _parse(self.path, self.text)

    def light(self) -> RenderedFile:
        """The same file without the parsed object, to keep a large fleet in little memory."""
        return RenderedFile(self.path, self.text, None, self.key, self.api_version)

    def named(self) -> RenderedFile:
        """Only the file's path and identity (no text): what the checks across a bundle read."""
        return RenderedFile(self.path, "", None, self.key, self.api_version)


@dataclass(frozen=True)
class Chart:
    root: Path


def render(chart: Chart, plan: Plan, header: str) -> list[RenderedFile]:
    """The files of one release: each template's object (or nothing) at RELEASE/PHASE/NAME.yaml,
    with its kind's Argo CD sync wave when the environment uses Argo CD; text files as they render."""
    root = chart.root.resolve()
    env = _environment(root)
    context: dict[str, Any] = {"plan": plan, "files": _files(root), "llmpack_version": __version__, SPLICES: []}
    for partial in _partials(root):   # once per release, not once per template
        context[partial[1:].removesuffix(".j2")] = _render_one(env, partial, context, module=True)
    rendered = []
    for name in _template_names(root):
        text = _render_one(env, name, context)
        path = f"{plan.release}/{name}"
        if name.endswith(".md"):
            rendered.append(RenderedFile(path, text.strip() + "\n"))
            continue
        phase = layout.phase_of(name)
        obj = _parse(name, text, context[SPLICES])
        if obj is not None:
            kind = layout.kind_of(name, obj)
            if plan.argocd:
                _annotate(obj, phase.annotations(kind))
            rendered.append(RenderedFile.of(path, header + emit.dump(obj), obj))
    return rendered


def _annotate(obj: dict[str, Any], annotations: dict[str, str]) -> None:
    metadata = obj.setdefault("metadata", {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), **annotations}


def render_template(chart: Chart, template: str, context: dict[str, Any], path: str, header: str) -> RenderedFile:
    """Render one chart template (path relative to the chart) that must produce one object."""
    env = _environment(chart.root.resolve())
    splices: list[Any] = []
    text = _render_one(env, template, {**context, "files": _files(chart.root.resolve()), SPLICES: splices})
    obj = _parse(template, text, splices)
    if obj is None:
        raise TemplateError(template, None, "rendered nothing")
    return RenderedFile.of(path, header + emit.dump(obj), obj)


def render_text(chart: Chart, template: str, context: dict[str, Any], path: str) -> RenderedFile:
    """Render one chart template to a text file (no object)."""
    env = _environment(chart.root.resolve())
    text = _render_one(env, template, {**context, "llmpack_version": __version__, SPLICES: []})
    return RenderedFile(path, text.strip() + "\n")


def _render_one(env: jinja2.Environment, name: str, context: dict[str, Any], *, module: bool = False) -> Any:
    """A template's text (or, for a partial, its module), with template errors located."""
    import jinja2

    try:
        template = env.get_template(name)
        return template.make_module(context) if module else template.render(context)
    except jinja2.TemplateSyntaxError as err:
        raise TemplateError(err.name or name, err.lineno, err.message or str(err)) from None
    except (jinja2.UndefinedError, TypeError, ValueError, KeyError) as err:
        raise TemplateError(name, _template_line(name), str(err)) from None


def _template_line(name: str) -> int | None:
    """The template line of the innermost frame of the exception being handled."""
    tb = sys.exc_info()[2]
    line = None
    while tb is not None:
        code = tb.tb_frame.f_code
        if code.co_filename.endswith(name) and "__jinja_template__" in tb.tb_frame.f_globals:
            template = tb.tb_frame.f_globals["__jinja_template__"]
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line


SPLICES = "_llmpack_splices"      # the context entry holding the values `q` set aside
_PLACEHOLDER = re.compile(r"__llmpack_q([0-9]+)__")


@dataclass(frozen=True)
class _Hole:
    """A placeholder in parsed text (`text`, as written), to be filled with the `index`th value set aside."""
    text: str
    index: int


_LEAVES = frozenset({str, int, float, bool, type(None)})
_FILLED = frozenset({dict, list, _Hole})     # what _fill copies or replaces; other nodes are immutable scalars


def _splice(context: Any, value: Any) -> str:
    """The `q` filter: set the value aside (as plain data) and put a placeholder in the text."""
    import jinja2

    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    splices: list[Any] = context[SPLICES]
    splices.append(_plain(value))
    return f"__llmpack_q{len(splices) - 1}__"


def _plain(value: Any) -> Any:
    """JSON-like data: mappings, lists, strings, numbers, booleans and null (tuples become lists)."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, dict):     # leaves are taken as they are without a call: the common case
        return {k if type(k) is str else str(k): v if type(v) in _LEAVES else _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _LEAVES else _plain(v) for v in value]
    raise TypeError(f"cannot put a {type(value).__name__} in a manifest")


def _fill(node: Any, splices: list[Any]) -> Any:
    """A copy of the parsed text with each placeholder replaced by its value (none: its text)."""
    if type(node) is dict:
        return {k if type(k) not in _FILLED else _fill(k, splices): v if type(v) not in _FILLED else _fill(v, splices)
                for k, v in node.items()}
    if type(node) is list:
        return [v if type(v) not in _FILLED else _fill(v, splices) for v in node]
    return (splices[node.index] if splices else node.text) if type(node) is _Hole else node


def _parse(name: str, text: str, splices: list[Any] | None = None) -> dict[str, Any] | None:
    if not text.strip():
        return None
    obj = _fill(_composed(name, text), splices or [])   # a copy: the parsed text is shared
    if not isinstance(obj, dict) or "kind" not in obj:
        raise TemplateError(name, None, "a template must render one Kubernetes object (or nothing)")
    return obj


@lru_cache(maxsize=256)
def _composed(name: str, text: str) -> Any:
    """A template's rendered text as data, placeholders unfilled. Values reach the text only as
    placeholders, so every release whose template takes the same branches renders the same text:
    it is parsed once (an object's own text, parsed again for the checks, is cached alike; the
    cache holds at most 256 texts)."""
    import yaml

    try:
        node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise TemplateError(name, mark.line + 1 if mark else None, f"rendered text is not YAML: {err}") from None
    return _construct(name, node)


def _int(text: str) -> int:
    return int(text.replace("_", ""), 0) if text.startswith(("0x", "0o")) else int(text)


_SCALARS: dict[str, Any] = {
    "tag:yaml.org,2002:str": str,
    "tag:yaml.org,2002:int": _int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": lambda text: text.lower() in ("true", "yes", "on"),
    "tag:yaml.org,2002:null": lambda text: None,
}


def _construct(name: str, node: Any) -> Any:
    """Plain data from composed YAML nodes (the C composer does the parsing); duplicate keys and
    anything but strings, numbers, booleans, nulls, mappings and lists are template bugs."""
    tag = node.tag
    if tag == "tag:yaml.org,2002:map":
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _construct(name, key_node)
            if key in result:
                shown = key.text if isinstance(key, _Hole) else key
                raise TemplateError(name, key_node.start_mark.line + 1, f"duplicate key {shown!r}")
            result[key] = _construct(name, value_node)
        return result
    if tag == "tag:yaml.org,2002:seq":
        return [_construct(name, item) for item in node.value]
    convert = _SCALARS.get(tag)
    if convert is None:
        raise TemplateError(name, node.start_mark.line + 1, f"unsupported YAML value {node.value!r} ({tag})")
    if convert is str:
        match = _PLACEHOLDER.fullmatch(node.value)
        return _Hole(node.value, int(match.group(1))) if match else node.value
    return convert(node.value)


@lru_cache(maxsize=4)
def _environment(root: Path) -> jinja2.Environment:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(root / "templates"), str(root)]),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # noqa: S701 - YAML, not HTML; values are quoted by `q`
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters["q"] = jinja2.pass_context(_splice)
    # a template's globals as one dict, not a ChainMap over the environment's (never changed after this):
    # each render's context is built from them, 9 µs faster per template
    env.make_globals = lambda d: {**env.globals, **(d or {})}  # type: ignore[method-assign]
    templatecache.attach(env)
    return env


@lru_cache(maxsize=4)
def _files(root: Path) -> dict[str, str]:
    folder = root / "files"
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


@lru_cache(maxsize=4)
def _partials(root: Path) -> tuple[str, ...]:
    return tuple(sorted(p.name for p in (root / "templates").glob("_*.j2")))


@lru_cache(maxsize=4)
def _template_names(root: Path) -> tuple[str, ...]:
    """Template paths below templates/; a template's path is its output path below the release."""
    folder = root / "templates"
    return tuple(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                        if p.is_file() and not p.name.startswith("_")))
