"""Kubernetes name and label rules, for the plan stage (values) and the check stage (objects)."""

from __future__ import annotations

import re

DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")


def is_label(name: str, limit: int = 63) -> bool:
    """A DNS-1035 label (starts with a letter): Service and InferenceService names."""
    return len(name) <= limit and DNS_LABEL.fullmatch(name) is not None


def is_subdomain(name: str) -> bool:
    """A DNS-1123 subdomain: most object names."""
    return len(name) <= 253 and DNS_SUBDOMAIN.fullmatch(name) is not None


def label_problem(key: str, value: str) -> str | None:
    """Why a label is invalid in Kubernetes, or None."""
    prefix, _, name = key.rpartition("/")
    if (prefix and not is_subdomain(prefix)) or not 0 < len(name) <= 63 or not _LABEL_NAME.fullmatch(name):
        return "not a valid label key (optional DNS prefix/, then at most 63 of A-Z a-z 0-9 - _ .)"
    if len(value) > 63 or not LABEL_VALUE.fullmatch(value):
        return "label values are at most 63 characters of A-Z a-z 0-9 - _ . (alphanumeric at both ends)"
    return None
