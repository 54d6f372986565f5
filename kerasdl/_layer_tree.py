"""A model's layers seen through nested models (private helpers).

A backbone placed in a ``Sequential`` or a functional model is ONE layer
of it: a nested ``keras.Model`` whose own layers hold the weights.
``freeze``, ``layer_groups`` and ``discriminative_optimizer`` look
through such nesting with these helpers.

- A *leaf* is a layer that is not a ``keras.Model``. ``leaves(model)``
  lists them depth-first: a nested model's layers stand where the nested
  model stands in ``model.layers``. A layer met twice (shared) is listed
  once, where it is first met.
- A layer's *qualified name* joins the names of the nested models above
  it and its own with ``/``: ``"backbone/conv1"``. Top-level layers keep
  their plain name.
- The *head* starts at the first top-level layer named ``"head"`` or
  ``"head_..."`` (``vision_model`` names its head layers so); without
  one, at the last top-level layer with weights, looked into when it is a
  nested model. Everything before it is the *body*.

Example:

>>> import keras
>>> inner = keras.Sequential([keras.Input((2,)),
...                           keras.layers.Dense(3, name="a"),
...                           keras.layers.Dense(3, name="b")], name="bb")
>>> model = keras.Sequential([inner, keras.layers.Dense(1, name="out")])
>>> [leaf.name for leaf in leaves(model)]
['bb/a', 'bb/b', 'out']
>>> head_start(model).name
'out'
"""

import collections

import keras

HEAD_PREFIX = "head_"

Leaf = collections.namedtuple("Leaf", ["name", "layer", "parents"])
Leaf.__doc__ = """A layer that is not a model, with its qualified name and
the nested models above it (outermost first, the root model left out)."""


def _children(layer):
    return list(layer.layers) if isinstance(layer, keras.Model) else []


def nodes(model):
    """``[(qualified_name, layer, parents)]`` of every layer under
    ``model``, nested models included, depth-first; each layer once."""
    out, seen = [], set()

    def walk(container, prefix, parents):
        for layer in _children(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            name = prefix + layer.name
            out.append((name, layer, parents))
            if isinstance(layer, keras.Model):
                walk(layer, name + "/", parents + (layer,))

    walk(model, "", ())
    return out


def leaves(model):
    """The layers that are not models, depth-first, as ``Leaf`` tuples."""
    return [Leaf(name, layer, parents) for name, layer, parents in
            nodes(model) if not isinstance(layer, keras.Model)]


def within(leaf, layer):
    """True when ``leaf`` is ``layer`` or lies inside it."""
    return leaf.layer is layer or any(p is layer for p in leaf.parents)


def is_head_name(name):
    return name == "head" or name.startswith(HEAD_PREFIX)


def find(model, name):
    """The layer called ``name`` (qualified, or plain when only one layer
    of the tree has it), or ``None``.

    Raises:
        ValueError: a plain name that several nested layers share.
    """
    tree = nodes(model)
    for qualified, layer, _ in tree:
        if qualified == name:
            return layer
    matches = [(q, layer) for q, layer, _ in tree if layer.name == name]
    if len(matches) > 1:
        raise ValueError(
            f"Several layers of {model.name!r} are named {name!r}: "
            f"{[q for q, _ in matches]}. Give the qualified name (nested "
            f"models' names joined by '/'), one of those.")
    return matches[0][1] if matches else None


def head_start(model):
    """The layer where the head starts (see the module's docstring).

    Raises:
        ValueError: the model has no layer with weights.
    """
    layers = _children(model)
    for layer in layers:
        if is_head_name(layer.name):
            return layer
    for layer in reversed(layers):
        if layer.weights:
            if isinstance(layer, keras.Model):
                return head_start(layer)
            return layer
    raise ValueError(f"Model {model.name!r} has no layer with weights, so "
                     f"it has no head to train.")


def point_of(tree_leaves, layer):
    """Index in ``tree_leaves`` of the first leaf at or inside ``layer``;
    ``None`` when there is none (a nested model without layers)."""
    for i, leaf in enumerate(tree_leaves):
        if within(leaf, layer):
            return i
    return None


def split(model, point):
    """The largest layers wholly before leaf ``point`` and those wholly
    from it on, as ``[(qualified_name, layer)]`` each: ``(body, head)``.

    A nested model that the point falls inside is split the same way.
    """
    tree_leaves = leaves(model)
    before = {id(leaf.layer) for leaf in tree_leaves[:point]}
    body, head, seen = [], [], set()

    def walk(container, prefix):
        for layer in _children(container):
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            name = prefix + layer.name
            inside = [leaf for leaf in tree_leaves if within(leaf, layer)]
            if not inside:
                continue
            flags = [id(leaf.layer) in before for leaf in inside]
            if all(flags):
                body.append((name, layer))
            elif not any(flags):
                head.append((name, layer))
            else:
                walk(layer, name + "/")

    walk(model, "")
    return body, head


def names_hint(names, limit=12):
    """A list of names for a message, shortened in the middle."""
    if len(names) <= limit:
        return str(names)
    half = limit // 2
    return (f"{names[:half]} ... {names[-half:]} ({len(names)} in all)")
