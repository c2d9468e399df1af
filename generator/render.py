"""Stage 5, render: chart templates + values + plan -> one object per file.

Templates are Jinja2 with StrictUndefined (a missing key is an error, never an empty
field) and no access to the environment or the clock. Each `templates/PHASE/NAME.yaml`
renders zero or one object, written to `RELEASE/PHASE/NAME.yaml`; the phases (storage,
download, serving) are applied in that order by Argo CD waves and Flux dependencies.
The text is parsed back and written in llmpack's canonical form (emit.py), so the output
does not depend on template whitespace. `templates/*.md` render as text; files starting
with `_` are partials.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from generator import __version__, emit
from generator.errors import TemplateError
from generator.plan import Plan

if TYPE_CHECKING:
    import jinja2


@dataclass(frozen=True)
class RenderedFile:
    """One output file of a release: its path below rendered/ENV/, text, and object (None for text)."""

    path: str
    text: str
    obj: dict[str, Any] | None


@dataclass(frozen=True)
class Chart:
    root: Path

    @property
    def templates(self) -> Path:
        return self.root / "templates"

    @property
    def defaults(self) -> Path:
        return self.root / "values.yaml"


def render(chart: Chart, values: dict[str, Any], plan: Plan, header: str) -> list[RenderedFile]:
    env = _environment(chart.root.resolve())
    context = {"values": values, "plan": plan, "files": _files(chart.root.resolve()),
               "llmpack_version": __version__}
    rendered = []
    for name in _template_names(chart.root.resolve()):
        text = _render_one(env, name, context)
        path = f"{plan.release}/{name}"
        if name.endswith(".md"):
            rendered.append(RenderedFile(path, text.strip() + "\n", None))
            continue
        obj = _parse(name, text)
        if obj is not None:
            rendered.append(RenderedFile(path, header + emit.dump(obj), obj))
    return rendered


def render_template(chart: Chart, template: str, context: dict[str, Any], path: str, header: str) -> RenderedFile:
    """Render one chart template (path relative to the chart) that must produce one object."""
    env = _environment(chart.root.resolve())
    text = _render_one(env, template, {**context, "files": _files(chart.root.resolve())})
    obj = _parse(template, text)
    if obj is None:
        raise TemplateError(template, None, "rendered nothing")
    return RenderedFile(path, header + emit.dump(obj), obj)


def render_text(chart: Chart, template: str, context: dict[str, Any], path: str) -> RenderedFile:
    """Render one chart template to a text file (no object)."""
    env = _environment(chart.root.resolve())
    text = _render_one(env, template, {**context, "llmpack_version": __version__})
    return RenderedFile(path, text.strip() + "\n", None)


def _render_one(env: jinja2.Environment, name: str, context: dict[str, Any]) -> str:
    import jinja2

    try:
        return env.get_template(name).render(context)
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


def _parse(name: str, text: str) -> dict[str, Any] | None:
    import yaml

    if not text.strip():
        return None
    try:
        obj = yaml.load(text, Loader=_strict_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise TemplateError(name, mark.line + 1 if mark else None, f"rendered text is not YAML: {err}") from None
    if not isinstance(obj, dict) or "kind" not in obj:
        raise TemplateError(name, None, "a template must render one Kubernetes object (or nothing)")
    return obj


@lru_cache(maxsize=1)
def _strict_loader() -> type:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[misc, valid-type]
        """SafeLoader that refuses duplicate keys (a template bug would otherwise be silent)."""

        def construct_mapping(self, node: Any, deep: bool = False) -> dict[Any, Any]:
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key!r}", key_node.start_mark)
                seen.add(key)
            return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]

    StrictLoader.add_constructor("tag:yaml.org,2002:map", StrictLoader.construct_mapping)
    return StrictLoader


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
    env.filters["q"] = emit.flow
    return env


@lru_cache(maxsize=4)
def _files(root: Path) -> dict[str, str]:
    folder = root / "files"
    if not folder.is_dir():
        return {}
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()) if p.is_file()}


@lru_cache(maxsize=4)
def _template_names(root: Path) -> tuple[str, ...]:
    """Template paths below templates/; a template's path is its output path below the release."""
    folder = root / "templates"
    return tuple(sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                        if p.is_file() and not p.name.startswith("_")))
