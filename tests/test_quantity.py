"""Quantities are written as the API server returns them, so GitOps never sees a rewrite."""

from __future__ import annotations

import pytest

from generator import quantity


@pytest.mark.parametrize(("given", "canonical"), [
    ("6", "6"), (6, "6"), ("6000m", "6"), ("1500m", "1500m"), ("0.5", "500m"), ("1500", "1500"),
    ("1000k", "1M"), ("24Gi", "24Gi"), ("1.5Gi", "1536Mi"), ("2048Mi", "2Gi"), ("1024", "1024"),
    ("1000Mi", "1000Mi"), ("512Ki", "512Ki"), ("0.5Ki", "512"), ("1e3", "1e3"), ("1e6", "1e6"),
    ("100M", "100M"), ("0", "0"), ("0.1m", "100u"), ("12Gi", "12Gi"), ("1Ti", "1Ti"),
])
def test_canonical_form(given: str | int, canonical: str) -> None:
    assert quantity.canonical(given) == canonical


@pytest.mark.parametrize("bad", ["", "Gi", "1GB", "1.2.3", "-", "1 Gi", "ten"])
def test_not_a_quantity(bad: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        quantity.parse(bad)


def test_comparison_across_suffixes() -> None:
    assert quantity.value("12Gi") < quantity.value("24Gi") < quantity.value("30G")
    assert quantity.value("500m") == quantity.value("0.5")
