"""Reading an untrusted YAML (or JSON) document with bounded depth and bounded alias expansion.

``yaml.safe_load`` constructs no Python objects beyond plain data, but it bounds nothing else:

* aliases: ``a: &a [x, x]``, ``b: &b [*a, *a]``, ... doubles per line, so 400 bytes describe
  billions of nodes (the "billion laughs"); every walk over the result expands them;
* an anchor inside its own value (``&a [*a]``) makes a cyclic structure no walk ends;
* nesting: 20,000 ``[`` overflow the composer's recursion (a bare ``RecursionError``).

:func:`load_yaml` composes with :class:`BoundedLoader`, a ``yaml.SafeLoader`` that counts the
nodes of the *expanded* document (an alias counts as the whole node it repeats) and the depth
while composing, and refuses at the first node over a limit.  :func:`load_json` does the same for
JSON text (which has no aliases).  Every refusal is a :class:`ModelFormatError` naming the file.
"""

import json

import yaml

from .errors import ModelFormatError

#: deepest nesting accepted: a DeePMD-kit tree is about 12 levels, plus 4 for an array's lists
MAX_DEPTH = 64
#: expanded nodes allowed per byte of the document (plus a constant): a plain document has
#: fewer nodes than bytes, so only aliases can exceed it
NODES_PER_BYTE = 2
MIN_NODES = 100_000


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses deep nesting, cyclic aliases and alias expansion bombs.

    Parameters
    ----------
    stream : str
        The document.
    source : str
        File name for the messages.
    max_nodes : int
        Most nodes the expanded document may have.
    """

    def __init__(self, stream, source, max_nodes):
        super().__init__(stream)
        self._source = source
        self._max_nodes = max_nodes
        self._sizes = []  # per open collection: expanded nodes of its children so far
        self._open_anchors = []  # anchors of the collections being composed (an alias to one is a cycle)
        self._anchor_size = {}  # anchor -> expanded nodes of its node

    def _refuse(self, what, mark):
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
        raise ModelFormatError(f"{self._source}: {what}{where}; refusing to read the YAML")

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            if event.anchor in self._open_anchors:
                self._refuse(f"alias *{event.anchor} refers to a node that contains it (a cycle)", event.start_mark)
            node = super().compose_node(parent, index)
            self._count(self._anchor_size.get(event.anchor, 1), event.start_mark)
            return node
        event = self.peek_event()
        if len(self._sizes) >= MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._sizes.append(0)
        self._open_anchors.append(event.anchor)
        try:
            node = super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()
            size = 1 + self._sizes.pop()
        if event.anchor is not None:
            self._anchor_size[event.anchor] = size
        self._count(size, event.start_mark)
        return node

    def _count(self, size, mark):
        if size > self._max_nodes:
            self._refuse(f"aliases expand the document to more than {self._max_nodes} nodes (an alias bomb?)", mark)
        if self._sizes:
            self._sizes[-1] += size
            if self._sizes[-1] > self._max_nodes:
                self._refuse(f"aliases expand the document to more than {self._max_nodes} nodes (an alias bomb?)", mark)


def max_nodes_for(n_bytes):
    """Expanded-node limit for a document of ``n_bytes``."""
    return MIN_NODES + NODES_PER_BYTE * n_bytes


def load_yaml(text, source):
    """The data of a YAML document, bounded (see the module docstring).

    Raises
    ------
    ModelFormatError
        Invalid YAML, a tag other than plain data, nesting deeper than :data:`MAX_DEPTH`, a cyclic
        alias, or aliases expanding past :func:`max_nodes_for` nodes.
    """
    loader = BoundedLoader(text, source, max_nodes_for(len(text)))
    try:
        return loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ModelFormatError(f"{source}: invalid YAML ({str(exc).splitlines()[0]})") from None
    except RecursionError:  # only if MAX_DEPTH were raised above what the interpreter's stack allows
        raise ModelFormatError(f"{source}: YAML nested too deeply") from None
    finally:
        loader.dispose()


def load_json(text, source, what="JSON"):
    """The data of a JSON document, nested at most :data:`MAX_DEPTH` deep.

    Raises
    ------
    ModelFormatError
        Invalid JSON or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        data = json.loads(text)
    except RecursionError:  # the C scanner guards its own stack and raises this
        raise ModelFormatError(f"{source}: {what} nested deeper than {MAX_DEPTH} levels; refusing to read it") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFormatError(f"{source}: {what} is not valid JSON ({exc})") from None
    if nesting_depth(data) > MAX_DEPTH:
        raise ModelFormatError(f"{source}: {what} nested deeper than {MAX_DEPTH} levels; refusing to read it")
    return data


def nesting_depth(data):
    """Depth of nested lists and dicts (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            return depth  # deep enough to refuse; no need to walk the rest
        stack.extend((child, depth + 1) for child in children)
    return deepest
