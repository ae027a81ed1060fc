"""core/records.py: ``@record`` behaves as ``@dataclass`` does for what our classes use
(the same class body, both ways, compared), and the run path's classes are records."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import pytest

from core import records


def _both(frozen: bool = False):
    """The same class made by dataclasses and by records."""
    def body(decorate, field):
        @decorate
        class Point:
            """A point."""

            x: int
            y: int = 0
            tags: list[str] = field(default_factory=list)
            label: str | None = field(default=None)
            kind: ClassVar[str] = "point"

            @property
            def norm1(self) -> int:
                return abs(self.x) + abs(self.y)

        return Point

    dc = body(dataclasses.dataclass(frozen=frozen), dataclasses.field)
    rec = body(records.record(frozen=frozen), records.field)
    return dc, rec


@pytest.mark.parametrize("frozen", [False, True])
def test_a_record_behaves_as_the_dataclass_would(frozen):
    dc, rec = _both(frozen)
    for args, kwargs in [((1,), {}), ((1, 2), {}), ((), {"x": 3, "tags": ["a"]}),
                         ((4,), {"label": "l", "y": 5})]:
        a, b = dc(*args, **kwargs), rec(*args, **kwargs)
        assert repr(a) == repr(b)
        assert (a.x, a.y, a.tags, a.label, a.norm1) == (b.x, b.y, b.tags, b.label, b.norm1)
        assert b == rec(*args, **kwargs) and not (b != rec(*args, **kwargs))
        assert b != rec(99) and b != a          # another class is never equal
    assert [f.name for f in dataclasses.fields(dc)] == list(records.fields(rec))
    assert rec.kind == "point" and "kind" not in records.fields(rec)
    assert rec(1).tags is not rec(1).tags     # a fresh list each time
    assert rec.y == dc.y == 0                 # defaults stay class attributes
    for bad_args, bad_kwargs in [((), {}), ((1, 2, [], None, 5), {}), ((1,), {"x": 2}),
                                 ((1,), {"nope": 1})]:
        with pytest.raises(TypeError):
            dc(*bad_args, **bad_kwargs)
        with pytest.raises(TypeError):
            rec(*bad_args, **bad_kwargs)


def test_frozen_records_refuse_assignment_and_hash_by_value():
    @records.record(frozen=True)
    class rec:
        x: int
        y: int = 0

    p = rec(1, 2)
    with pytest.raises(AttributeError):       # FrozenInstanceError, as dataclasses has
        p.x = 5
    with pytest.raises(records.FrozenInstanceError):
        del p.y
    assert hash(p) == hash(rec(1, 2)) and len({p, rec(1, 2), rec(2, 1)}) == 2


def test_mutable_records_are_unhashable_as_dataclasses_are():
    dc, rec = _both()
    with pytest.raises(TypeError):
        hash(dc(1))
    with pytest.raises(TypeError):
        hash(rec(1))
    p = rec(1)
    p.x = 7
    assert p.x == 7


def test_a_required_field_after_a_default_is_refused():
    with pytest.raises(TypeError):
        @records.record
        class Bad:
            a: int = 1
            b: int


def test_fields_of_a_base_come_first():
    @records.record
    class Base:
        a: int
        b: int = 2

    @records.record
    class Child(Base):
        c: int = 3

    assert records.fields(Child) == ("a", "b", "c")
    assert repr(Child(1)) == "test_fields_of_a_base_come_first.<locals>.Child(a=1, b=2, c=3)"


def test_the_run_paths_classes_are_records():
    """These were dataclasses; a ``run`` imports them all (test_import_cost checks that
    it no longer imports dataclasses)."""
    from core.reference import Reference, parse
    from core.runtime.cgroups import CgroupStats
    from core.runtime.security import Confinement
    from core.runtime.spec import RunOptions
    from core.runtime.start.launch import Launched
    from core.store.image import Image, LayerRecord
    from core.store.store import LayerInfo

    for cls in (Reference, CgroupStats, Confinement, RunOptions, Launched, Image, LayerRecord,
                LayerInfo):
        assert records.fields(cls), cls
        assert not dataclasses.is_dataclass(cls)
    ref = parse("busybox")
    assert ref == Reference("docker.io", "library/busybox", "latest") and hash(ref)
    assert ref.with_tag("1").tag == "1" and ref.tag == "latest"
    assert RunOptions(image="x").env == [] and RunOptions().env is not RunOptions().env
    assert set(CgroupStats().to_dict()) >= set(records.fields(CgroupStats))
