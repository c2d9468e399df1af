"""Render stage, environment part: the Argo CD and Flux objects that deliver rendered/ENV.

They are written to rendered/ENV/gitops/ and are not in rendered/ENV/kustomization.yaml:
they are applied once (by hand or by an app of apps), and then sync the rest.

- Argo CD: an Application for the environment folder, and the health checks for
  InferenceService and Job as an argocd-cm merge patch. Objects carry the sync wave of their
  kind (layout.KINDS), and a wave must be healthy before the next.
- Flux: a GitRepository and, per release, one Kustomization per phase folder (layout.PHASES)
  chained with dependsOn, each waiting or not as its phase says.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from generator import layout
from generator.bundle import header
from generator.render import Chart, RenderedFile, render_template, render_text


def render_gitops(chart: Chart, env: str, gitops: dict[str, Any], folders: Sequence[str],
                  namespaces: Sequence[str]) -> list[RenderedFile]:
    """`folders` are the phase folders of the bundle (`RELEASE/PHASE`), in apply order;
    `namespaces` those of its releases."""
    head = header(env, f"# Apply once (not synced by the environment itself): see rendered/{env}/gitops/README.md\n")
    root = gitops["renderedPath"].strip("/")
    context = {"env": env, "gitops": gitops, "path": f"{root}/{env}", "namespaces": sorted(set(namespaces)),
               "namespace": namespaces[0] if len(set(namespaces)) == 1 else None}
    out = []
    if gitops["argocd"]["enabled"] or gitops["flux"]["enabled"]:
        out.append(render_text(chart, "gitops/README.md", context, "gitops/README.md"))
    if gitops["argocd"]["enabled"]:
        for name in ("application.yaml", "argocd-cm-health.yaml"):
            out.append(render_template(chart, f"gitops/argocd/{name}", context, f"gitops/argocd/{name}", head))
    if gitops["flux"]["enabled"]:
        out.append(render_template(chart, "gitops/flux/gitrepository.yaml", context,
                                   "gitops/flux/gitrepository.yaml", head))
        previous: dict[str, str] = {}
        for folder in folders:
            release, phase = folder.split("/")
            name = f"llmpack-{env}-{release}-{phase}"
            step = next(p for p in layout.PHASES if p.folder == phase)
            timeout = str(gitops["flux"].get(step.flux_timeout, step.flux_timeout))
            phase_context = {**context, "release": release, "phase": phase, "name": name,
                             "path": f"./{root}/{env}/{folder}", "depends_on": previous.get(release),
                             "wait": step.flux_wait, "timeout": timeout}
            out.append(render_template(chart, "gitops/flux/kustomization.yaml", phase_context,
                                       f"gitops/flux/{release}-{phase}.yaml", head))
            previous[release] = name
    return out
