"""``@record``: dataclass-like classes for the one-shot verbs' path, without dataclasses.

A ``@dataclass`` is built at import: dataclasses generates the source of ``__init__``,
``__repr__`` and ``__eq__`` and compiles it, every time the module is imported (the
bytecode cache does not hold it). The eight dataclasses a ``nutshell run`` imported
(RunOptions, Reference, Image, ...) plus ``import dataclasses`` itself were ~13 ms of
the ~140 ms of a ``run --rm ... true`` (issue 16). A ``@record`` class gets the same
behaviour from generic methods written once, here, so making one costs a walk over its
annotations:

* ``__init__`` takes the fields positionally in declaration order (a base class's
  first) or by keyword; a field without a default is required; ``field(default=...)``
  and ``field(default_factory=...)`` work as in dataclasses;
* ``__eq__`` compares the fields of two instances of the same class; ``__repr__`` shows
  them; ``frozen=True`` refuses assignment (``FrozenInstanceError``, an AttributeError)
  and makes instances hashable, as ``@dataclass(frozen=True)`` does; otherwise instances
  are unhashable, as with ``@dataclass``;
* :func:`fields` gives the field names.

Type checkers see a dataclass (``dataclass_transform``). Instances are built by a loop
instead of generated code: ~1 µs more each, which nothing here makes in bulk.
Imports nothing, so it costs nothing to load.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar, dataclass_transform

    T = TypeVar("T")
else:
    def dataclass_transform(**_kw):
        return lambda f: f


class FrozenInstanceError(AttributeError):
    """Assignment to a field of a ``frozen`` record."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class Field:
    """A field's default or default factory, as ``field()`` declares it."""

    __slots__ = ("default", "default_factory")

    def __init__(self, default: Any = MISSING, default_factory: Any = MISSING) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.default = default
        self.default_factory = default_factory


def field(*, default: Any = MISSING, default_factory: Any = MISSING) -> Any:
    """A field's default (``default``) or a callable making it for each instance
    (``default_factory``: ``field(default_factory=list)``)."""
    return Field(default, default_factory)


def fields(cls_or_instance: Any) -> tuple[str, ...]:
    """The field names of a record class or instance, in ``__init__``'s order."""
    return cls_or_instance.__record_fields__


def _is_classvar(annotation: Any) -> bool:
    text = annotation if isinstance(annotation, str) else repr(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record (see the module's docstring); ``@record`` or
    ``@record(frozen=True)``."""
    def wrap(cls: type[T]) -> type[T]:
        names: list[str] = []
        defaults: dict[str, Any] = {}
        factories: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            for name, annotation in klass.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
                if _is_classvar(annotation):
                    continue
                if name not in names:
                    names.append(name)
                value = klass.__dict__.get(name, MISSING)
                if isinstance(value, Field):
                    if value.default_factory is not MISSING:
                        factories[name] = value.default_factory
                        defaults.pop(name, None)
                    elif value.default is not MISSING:
                        defaults[name] = value.default
                        factories.pop(name, None)
                    if klass is cls:
                        delattr(cls, name)
                elif value is not MISSING:
                    defaults[name] = value
                    factories.pop(name, None)
        seen_default = False
        for name in names:
            if name in defaults or name in factories:
                seen_default = True
            elif seen_default:
                raise TypeError(f"{cls.__name__}: non-default field {name!r} follows a "
                                "field with a default")
        for name, value in defaults.items():
            setattr(cls, name, value)     # class attributes, as dataclasses leaves them
        methods = {"__record_fields__": tuple(names), "__record_factories__": factories,
                   "__init__": _init, "__repr__": _repr, "__eq__": _eq,
                   "__hash__": _hash if frozen else None}
        if frozen:
            methods.update(__setattr__=_frozen_setattr, __delattr__=_frozen_delattr)
        for name, value in methods.items():
            setattr(cls, name, value)
        return cls

    return wrap if cls is None else wrap(cls)


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    cls = type(self)
    names = cls.__record_fields__
    if len(args) > len(names):
        raise TypeError(f"{cls.__name__}() takes {len(names)} positional arguments "
                        f"but {len(args)} were given")
    setter = object.__setattr__
    for name, value in zip(names, args):
        if name in kwargs:
            raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
        setter(self, name, value)
    factories = cls.__record_factories__
    for name in names[len(args):]:
        if name in kwargs:
            setter(self, name, kwargs.pop(name))
        elif name in factories:
            setter(self, name, factories[name]())
        elif not hasattr(cls, name):
            raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        else:
            setter(self, name, getattr(cls, name))
    if kwargs:
        raise TypeError(f"{cls.__name__}() got an unexpected keyword argument "
                        f"{next(iter(kwargs))!r}")


def _values(self: Any) -> tuple:
    return tuple(getattr(self, name) for name in type(self).__record_fields__)


def _repr(self: Any) -> str:
    cls = type(self)
    inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in cls.__record_fields__)
    return f"{cls.__qualname__}({inner})"


def _eq(self: Any, other: Any) -> Any:
    if other.__class__ is self.__class__:
        return _values(self) == _values(other)
    return NotImplemented


def _hash(self: Any) -> int:
    return hash(_values(self))


def _frozen_setattr(self: Any, name: str, value: Any) -> None:
    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_delattr(self: Any, name: str) -> None:
    raise FrozenInstanceError(f"cannot delete field {name!r}")
