"""Any NNI 3.0 model space as a teg-plugin search space, so that TEG scores and searches it.

:func:`space_from_model_space` reads the choices of a model space from ``model_space.simplify()``:

* a ``Categorical`` (what ``LayerChoice``, ``nni.choice`` and ``Repeat`` depths give) becomes a
  choice labelled like the mutable, whose options are its values (a ``LayerChoice`` over a dict has
  the dict's keys, over a list the indices ``0 .. n-1``);
* a ``CategoricalMultiple`` (what ``InputChoice`` gives) becomes a choice over the allowed subsets:
  with ``n_chosen=1`` its options are the candidates themselves (``InputChoice(3, 1)``: ``0, 1, 2``;
  the NNI sample holds ``[i]``), otherwise one option per subset, written as a JSON list
  (``"[0, 2]"``), at most :data:`MAX_OPTIONS` of them;
* values that are not ``str``/``int``/``float``/``bool``/``None`` (tuples, dicts...) become their
  ``repr`` strings; the NNI sample keeps the values themselves;
* continuous mutables (``nni.uniform``...) and constraints cannot be enumerated: a ``ValueError``
  names them and what to use instead.

The result is an :class:`NNIChoiceSpace`, a :class:`~teg_plugin.spaces.ChoiceSpace` whose
architectures map 1:1 to the model space's samples (:meth:`NNIChoiceSpace.sample_of`,
:meth:`NNIChoiceSpace.arch_of_sample`) and whose text form is the sample as JSON with sorted keys
(:func:`sample_text`), the same key :class:`~teg_plugin.nni.TEGEvaluator` caches scores under.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from nni.common.serializer import is_traceable
from nni.mutable import Categorical, CategoricalMultiple, Constraint, Numerical
from nni.nas.space import ExecutableModelSpace, SimplifiedModelSpace
from torch import nn

from teg_plugin.nni._supernet import BUILD_LOCK, build_supernet, supernet_problem
from teg_plugin.spaces import ChoiceArch, ChoiceSpace

#: The most options one choice may have (an ``InputChoice`` with ``n_chosen > 1`` has one per subset).
MAX_OPTIONS = 4096

#: Builds E's thin network from an NNI sample and the protocol's thin width.
ThinFromSample = Callable[[dict[str, Any], int], nn.Module]
#: Builds E's thin model space (the same labels, ``width`` channels, no stem) at the thin width.
ThinSpace = Callable[[int], nn.Module]


def sample_text(sample: Mapping[str, Any]) -> str:
    """An NNI sample as JSON with sorted keys: the text form of a model-space architecture and its
    score-cache key (values JSON cannot hold are written as their ``repr``).

    Example:
        >>> sample_text({"width": 16, "block": "conv3x3", "skip": [1]})
        '{"block": "conv3x3", "skip": [1], "width": 16}'
    """
    return json.dumps({str(key): value for key, value in sample.items()}, sort_keys=True, default=repr)


def model_space_name(model_space: Any) -> str:
    """The default name of ``model_space`` (a ``ModelSpace``, an NNI ``ExecutableModelSpace`` or a
    model frozen from one): ``"nni:"``, the class's import path, then its constructor arguments as
    JSON when it has any (a hash when that is long). It keys the score cache, so two model spaces of
    one class built with the same arguments share scores."""
    if isinstance(model_space, ExecutableModelSpace):
        model_space = getattr(model_space, "model", model_space)
    symbol = getattr(model_space, "trace_symbol", None) or type(model_space)
    if isinstance(symbol, str):
        path = symbol
    else:
        path = f"{getattr(symbol, '__module__', '?')}.{getattr(symbol, '__qualname__', repr(symbol))}"
    args = list(getattr(model_space, "trace_args", None) or ())
    kwargs = dict(getattr(model_space, "trace_kwargs", None) or {})
    if args or kwargs:
        text = json.dumps([args, kwargs], sort_keys=True, default=repr)
        if len(text) > 120:
            text = "#" + hashlib.sha256(text.encode()).hexdigest()[:16]
        path += text
    return f"nni:{path}"


def load_thin(spec: str | Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """The thin-network builder ``spec`` names: ``"package.module:function"`` (the function may be a
    dotted attribute path), or the callable itself (a :data:`ThinFromSample`, or a :data:`ThinSpace`
    for ``thin_space``)."""
    if callable(spec):
        return spec
    if not isinstance(spec, str) or ":" not in spec:
        raise ValueError(
            f"thin must be an import path 'package.module:function' (or a callable), got {spec!r}; the "
            "function takes (NNI sample dict, width) and returns E's thin network"
        )
    module_name, _, attr_path = spec.partition(":")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attr_path.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load the thin-network builder {spec!r}: {exc}") from exc
    if not callable(target):
        raise ValueError(f"the thin-network builder {spec!r} is a {type(target).__name__}, not a function")
    return target


def _plain(value: Any) -> bool:
    """Whether ``value`` can be a :class:`ChoiceSpace` option as it is."""
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, bool))


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _normal(value: Any) -> str:
    """A value after a JSON round trip (tuples become lists), for matching deserialised samples."""
    return json.dumps(value, sort_keys=True, default=repr)


@dataclass(frozen=True)
class _Choice:
    """One labelled mutable: its teg options and, position by position, the NNI sample values."""

    label: str
    options: tuple[Any, ...]
    #: Categorical: the values. CategoricalMultiple: the chosen candidates' positions in ``pool``.
    values: tuple[Any, ...]
    pool: tuple[Any, ...] | None = None

    @property
    def multiple(self) -> bool:
        return self.pool is not None

    def value(self, option: Any) -> Any:
        """The NNI sample value of ``option`` (a fresh list for a multiple choice)."""
        i = next((i for i, o in enumerate(self.options) if _same(o, option)), None)
        if i is None:
            raise ValueError(f"{option!r} is not an option of choice {self.label!r}; options: {list(self.options)}")
        if self.pool is None:
            return self.values[i]
        return [self.pool[j] for j in self.values[i]]

    def option(self, value: Any) -> Any:
        """The option of NNI sample value ``value`` (also accepted: the option itself)."""
        if self.pool is None:
            for match in (_same, lambda a, b: a == b, lambda a, b: _normal(a) == _normal(b)):
                i = next((i for i, v in enumerate(self.values) if match(v, value)), None)
                if i is not None:
                    return self.options[i]
        elif isinstance(value, (list, tuple)):
            positions = []
            for item in value:
                j = next((j for j, c in enumerate(self.pool) if c == item or _normal(c) == _normal(item)), None)
                if j is None:
                    break
                positions.append(j)
            else:
                key = tuple(sorted(positions))
                i = next((i for i, chosen in enumerate(self.values) if chosen == key), None)
                if i is not None and len(set(positions)) == len(positions):
                    return self.options[i]
        i = next((i for i, o in enumerate(self.options) if _same(o, value)), None)
        if i is not None:
            return self.options[i]
        allowed = [self.value(o) for o in self.options]
        raise ValueError(f"{value!r} is not a value of choice {self.label!r}; values: {allowed}")


def _categorical(label: str, mutable: Categorical) -> _Choice:
    values = tuple(mutable.values)
    if all(_plain(v) for v in values):
        return _Choice(label, values, values)
    options = tuple(repr(v) for v in values)
    if len(set(options)) != len(options):
        raise ValueError(f"choice {label!r}: two of its values {list(values)} have the same repr; make them distinct")
    return _Choice(label, options, values)


def _multiple(label: str, mutable: CategoricalMultiple) -> _Choice:
    pool = tuple(mutable.values)
    n = len(pool)
    k = mutable.n_chosen
    count = 2**n if k is None else math.comb(n, k)
    if count > MAX_OPTIONS:
        raise ValueError(
            f"choice {label!r} ({mutable!r}) has {count} subsets, more than {MAX_OPTIONS}: TEG strategies "
            "treat each subset as one option; choose fewer inputs (e.g. InputChoice(n, n_chosen=1)) or split it"
        )
    if k is None:
        subsets = [c for r in range(n + 1) for c in itertools.combinations(range(n), r)]
    else:
        subsets = list(itertools.combinations(range(n), k))
    if k == 1 and all(_plain(c) for c in pool):
        options: tuple[Any, ...] = pool
    elif all(_plain(c) for c in pool):
        options = tuple(json.dumps([pool[j] for j in chosen]) for chosen in subsets)
    else:
        options = tuple(repr([pool[j] for j in chosen]) for chosen in subsets)
    if len(set(map(repr, options))) != len(options):
        raise ValueError(f"choice {label!r}: two of its candidates {list(pool)} have the same repr; make them distinct")
    return _Choice(label, options, tuple(subsets), pool)


def _choices_of(model_space: Any) -> list[_Choice]:
    """The choices of ``model_space.simplify()`` (``ValueError`` naming every unsupported mutable)."""
    mutables = model_space.simplify()
    choices, problems = [], []
    for label, mutable in mutables.items():
        if isinstance(mutable, CategoricalMultiple):
            choices.append(_multiple(str(label), mutable))
        elif isinstance(mutable, Categorical):
            choices.append(_categorical(str(label), mutable))
        elif isinstance(mutable, Numerical):
            problems.append(
                f"{label!r} is continuous ({mutable!r}): TEG strategies search categorical choices; use "
                f"nni.choice({str(label)!r}, [a few values]) instead"
            )
        elif isinstance(mutable, Constraint):
            problems.append(
                f"{label!r} is a constraint ({type(mutable).__name__}): a TEG search space has none; leave the "
                "constraint out, or make invalid combinations impossible with the choices themselves"
            )
        else:
            problems.append(f"{label!r} is a {type(mutable).__name__}, which is not a categorical choice")
    if problems:
        raise ValueError("cannot search this model space with TEG: " + "; ".join(problems))
    if not choices:
        raise ValueError(
            "the model space has no choices: declare them with LayerChoice, InputChoice or nni.choice "
            "(registered with add_mutable, or passed to a Mutable* layer)"
        )
    return choices


class NNIChoiceSpace(ChoiceSpace):
    """A :class:`~teg_plugin.spaces.ChoiceSpace` made from an NNI model space by
    :func:`space_from_model_space` (see the module docs for how its choices are read).

    Architectures are :class:`~teg_plugin.spaces.ChoiceArch` mappings label -> option; the text form
    (:meth:`format`, :meth:`parse`) is the model space's sample as JSON with sorted keys.
    """

    def __init__(
        self,
        name: str,
        choices: Sequence[_Choice],
        freeze: Callable[[dict[str, Any]], nn.Module],
        *,
        thin: ThinFromSample | None = None,
        supernet_of: nn.Module | None = None,
        thin_space: ThinSpace | None = None,
    ) -> None:
        self._nni_choices = {choice.label: choice for choice in choices}
        self._freeze = freeze
        self._thin_of_sample = thin
        self._supernet_of = supernet_of
        self._thin_space = thin_space
        if thin_space is not None and supernet_of is None:
            raise ValueError("thin_space is E's thin supernet: it needs supernet=True")
        super().__init__(
            name,
            {choice.label: choice.options for choice in choices},
            self._build_model,
            thin=None if thin is None and thin_space is None else self._build_thin,
            supernet=None if supernet_of is None else self._build_supernet,
            thin_supernet=None if thin_space is None else self._build_thin_supernet,
        )

    def kept_values(self, kept: Mapping[str, Sequence[Any]]) -> dict[str, list[Any]]:
        """A mask (label -> kept options) as NNI sample values (an ``InputChoice``'s: index lists)."""
        return {
            label: [self._nni_choices[label].value(option) for option in options] for label, options in kept.items()
        }

    def supernet_problem(self, images: torch.Tensor, crops: torch.Tensor | None = None) -> str | None:
        """Why this space's supernet (every option kept) cannot be built or run on ``images`` (and its
        thin supernet on ``crops``), in one line naming the choice; ``None`` when it can."""
        if self._supernet_of is None:
            return f"{self.name} was read without a supernet (space_from_model_space(..., supernet=True))"
        full = self.kept_values(self.full_mask())
        problem = supernet_problem(self._supernet_of, full, images)
        if problem is None and self._thin_space is not None and crops is not None:
            with BUILD_LOCK:
                thin_space = self._thin_space(int(crops.shape[1]))
            problem = supernet_problem(thin_space, full, crops)
            if problem is not None:
                problem = f"thin space: {problem}"
        return problem

    def _build_supernet(self, kept: dict[str, tuple[Any, ...]]) -> nn.Module:
        assert self._supernet_of is not None
        return build_supernet(self._supernet_of, self.kept_values(kept))

    def _build_thin_supernet(self, kept: dict[str, tuple[Any, ...]], width: int) -> nn.Module:
        assert self._thin_space is not None
        with BUILD_LOCK:  # the thin space is built outside any model context, whatever other threads do
            return build_supernet(self._thin_space(width), self.kept_values(kept))

    def sample_of(self, arch: ChoiceArch) -> dict[str, Any]:
        """The NNI sample of ``arch`` (label -> value, in the model space's order)."""
        arch = self.from_params(arch)
        return {label: choice.value(arch[label]) for label, choice in self._nni_choices.items()}

    def arch_of_sample(self, sample: Mapping[str, Any]) -> ChoiceArch:
        """The architecture of an NNI sample of the model space (other keys, e.g. those of a mutable
        evaluator, are ignored; an option in place of its value is accepted too)."""
        missing = [label for label in self._nni_choices if label not in sample]
        if missing:
            raise ValueError(f"the NNI sample {dict(sample)} lacks the choices {missing} of {self.name}")
        return ChoiceArch([(label, choice.option(sample[label])) for label, choice in self._nni_choices.items()])

    def format(self, arch: ChoiceArch) -> str:
        return sample_text(self.sample_of(arch))

    def _from_text_params(self, params: dict[str, Any]) -> ChoiceArch:
        return self.arch_of_sample(params)

    def _build_model(self, choices: dict[str, Any]) -> nn.Module:
        with BUILD_LOCK:
            model = self._freeze(self.sample_of(ChoiceArch(list(choices.items()))))
        if isinstance(model, ExecutableModelSpace):
            model = model.executable_model()
        if not isinstance(model, nn.Module):
            raise TypeError(f"freezing the model space gave a {type(model).__name__}, not an nn.Module")
        return model

    def _build_thin(self, choices: dict[str, Any], width: int) -> nn.Module:
        if self._thin_of_sample is None:  # the thin space, one option per choice
            return self._build_thin_supernet({label: (option,) for label, option in choices.items()}, width)
        with BUILD_LOCK:  # a user's builder may freeze a model space (NNI's one model context)
            return self._thin_of_sample(self.sample_of(ChoiceArch(list(choices.items()))), width)


def space_from_model_space(
    model_space: Any,
    *,
    name: str | None = None,
    thin: ThinFromSample | str | None = None,
    supernet: bool = False,
    thin_space: ThinSpace | str | None = None,
) -> NNIChoiceSpace:
    """The teg-plugin search space of an NNI model space: one choice per labelled mutable.

    Its architectures are built as NNI builds the models of an experiment (the ``"simplified"``
    model format: the model space's class instantiated anew, with its constructor arguments, under
    the sample's ``model_context``), so a :class:`~teg_plugin.scorer.TEGScorer` of it scores the
    models NNI would train, none sharing a module with ``model_space``; every teg-plugin strategy
    searches it.

    Args:
        model_space: a ``ModelSpace`` (or the ``ExecutableModelSpace`` an NNI strategy receives).
        name: the space's name, which keys the score cache; default :func:`model_space_name`, the
            class's import path and constructor arguments. Set it when the models change in a way
            those do not show (e.g. you edited the class).
        thin: E's thin network, ``(NNI sample dict, width) -> nn.Module`` taking the protocol's
            crops ``(batch, width, 3, 3)``, or its import path ``"package.module:function"``.
            Without it E counts the patterns of the model itself over the T/G images, which
            saturates for wide models (every image its own pattern).
        supernet: give the space TE-NAS supernets for supernet pruning
            (:mod:`teg_plugin.nni._supernet`: every kept candidate of each choice active, outputs
            averaged), built from a copy of ``model_space`` as NNI dry-runs it.
        thin_space: with ``supernet``: E's thin model space, ``width -> ModelSpace`` (or its import
            path) with the same labels and options, taking the protocol's crops
            ``(batch, width, 3, 3)``; its supernets give E of every mask (and, without ``thin``, of
            every architecture).

    Raises:
        ValueError: a mutable that is not categorical (``nni.uniform``...), a constraint, or an
            ``InputChoice`` with more than :data:`MAX_OPTIONS` subsets; the message names it.

    Example:
        >>> import nni
        >>> from nni.nas.nn.pytorch import InputChoice, LayerChoice, ModelSpace, MutableConv2d
        >>> class Tiny(ModelSpace):
        ...     def __init__(self):
        ...         super().__init__()
        ...         width = nni.choice("width", [4, 8])
        ...         self.stem = MutableConv2d(3, width, 3, padding=1)
        ...         self.op = LayerChoice({"conv": MutableConv2d(width, width, 3, padding=1),
        ...                                "pool": nn.MaxPool2d(3, 1, 1)}, label="op")
        ...         self.skip = InputChoice(2, 1, label="skip")
        ...     def forward(self, x):
        ...         x = self.stem(x)
        ...         return self.skip([x, self.op(x)]).mean((2, 3))
        >>> space = space_from_model_space(Tiny())
        >>> space.choices()
        {'width': (4, 8), 'op': ('conv', 'pool'), 'skip': (0, 1)}
        >>> arch = space.parse('{"op": "pool", "skip": [1], "width": 8}')
        >>> space.sample_of(arch)
        {'width': 8, 'op': 'pool', 'skip': [1]}
        >>> type(space.build_proxy_network(space.mask_of(arch), width=3, cells_per_stage=1, num_classes=10)).__name__
        'Tiny'
    """
    if isinstance(model_space, ExecutableModelSpace):
        executable = model_space
    elif isinstance(model_space, nn.Module) and is_traceable(model_space) and hasattr(model_space, "simplify"):
        executable = SimplifiedModelSpace.from_model(model_space)
    else:
        raise TypeError(f"expected an NNI ModelSpace, got {type(model_space).__name__}")
    choices = _choices_of(executable)

    def freeze(sample: dict[str, Any]) -> nn.Module:
        # As NNI builds the models it trains (simplified format): a new model space instance made
        # under the sample's model context, so no module is shared with `model_space` or another model.
        return executable.freeze(sample).executable_model()

    source = None
    if supernet:
        source = executable.model if isinstance(model_space, ExecutableModelSpace) else model_space
        if not isinstance(source, nn.Module) and callable(getattr(source, "trace_symbol", None)):
            # NNI keeps a trace (class and arguments) of the model space: build it anew, outside any
            # model context, i.e. the space with every candidate in it.
            source = source.trace_symbol(*source.trace_args, **source.trace_kwargs)
        if not isinstance(source, nn.Module):
            raise TypeError(f"supernet=True needs the model space as an nn.Module, got {type(source).__name__}")
    return NNIChoiceSpace(
        model_space_name(model_space) if name is None else name,
        choices,
        freeze,
        thin=None if thin is None else load_thin(thin),
        supernet_of=source,
        thin_space=None if thin_space is None else load_thin(thin_space),
    )
