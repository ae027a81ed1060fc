import pytest

from core import prunefilter
from core.errors import UsageError

NOW = 1_800_000_000.0


def test_parse_groups_by_key_and_refuses_what_it_does_not_know():
    f = prunefilter.parse(["until=24h", "label=a", "label!=b=1", "LABEL=c=2"])
    assert f == {"until": ["24h"], "label": ["a", "c=2"], "label!": ["b=1"]}
    assert prunefilter.parse(None) == {} and prunefilter.parse([]) == {}
    with pytest.raises(UsageError, match="invalid filter 'dangling'"):
        prunefilter.parse(["dangling=true"])  # a typo must never widen a prune
    with pytest.raises(UsageError, match="expected name=value"):
        prunefilter.parse(["label"])
    with pytest.raises(UsageError, match="expected name=value"):
        prunefilter.parse(["until="])
    with pytest.raises(UsageError, match="invalid value for filter until"):
        prunefilter.parse(["until=yesterday"])


@pytest.mark.parametrize("filters, created, labels, ok", [
    ({}, None, None, True),
    ({"until": ["1h"]}, NOW - 7200, {}, True),        # two hours old: before "an hour ago"
    ({"until": ["1h"]}, NOW - 60, {}, False),
    ({"until": ["1h"]}, None, {}, False),             # unknown age: kept
    ({"until": [str(int(NOW - 100))]}, NOW - 200, {}, True),
    ({"until": ["2027-01-15T00:00:00Z"]}, NOW, {}, False),
    ({"label": ["env"]}, NOW, {"env": "ci"}, True),
    ({"label": ["env=ci"]}, NOW, {"env": "ci"}, True),
    ({"label": ["env=prod"]}, NOW, {"env": "ci"}, False),
    ({"label": ["env", "team"]}, NOW, {"env": "ci"}, False),  # both needed
    ({"label!": ["keep"]}, NOW, {"keep": ""}, False),
    ({"label!": ["keep=yes"]}, NOW, {"keep": "no"}, True),
    ({"label!": ["keep=yes"]}, NOW, {"keep": "yes"}, False),
    ({"label!": ["keep"]}, NOW, None, True),
])
def test_matches(filters, created, labels, ok):
    assert prunefilter.matches(filters, created, labels, now=NOW) is ok
