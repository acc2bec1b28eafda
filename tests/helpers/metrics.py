"""Reading an agent's Prometheus /metrics page in tests."""

from prometheus_client.parser import text_string_to_metric_families


def metric_samples(text: str) -> dict[str, float]:
    """The samples of a /metrics page: ``name`` or ``name{label="value",...}`` (labels sorted) -> value."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return found
