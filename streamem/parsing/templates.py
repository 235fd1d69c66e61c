"""Online message templates (Drain3), checkpointed as plain versioned JSON.

:class:`TemplateMiner` runs Drain (He et al., ICWS 2017, as implemented by IBM's Drain3) on
one text field of each record and adds two fields: ``template`` (the template id, an int, a
categorical value) and ``template_text`` (the template, with ``<*>`` for the varying tokens
and ``<IP>``/``<HEX>``/``<NUM>`` for masked ones). Drain3's own persistence pickles its
objects (jsonpickle), which streamem never loads: :meth:`TemplateMiner.to_state` writes the
clusters (id, template tokens, size, in least-recently-used order) and the prefix tree as
plain lists, and :meth:`TemplateMiner.from_state` rebuilds a miner that assigns the same ids
to the same lines as one that was never interrupted.

This is the only module that imports ``drain3``. Memory is bounded: at most
``max_clusters`` templates (the least recently used one is dropped, as Drain3 does) and at
most ``max_chars`` characters of a message are mined.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from drain3.drain import Drain, LogCluster
from drain3.masking import LogMasker, MaskingInstruction

from streamem.model._versioned import StateReader

__all__ = ["DEFAULT_MASKS", "STATE_VERSION", "TemplateMiner"]

STATE_VERSION = 1
_EDGE_L, _EDGE_R = r"((?<=[^A-Za-z0-9])|^)", r"((?=[^A-Za-z0-9])|$)"
#: ``(regex, mask)``: IPv4 addresses, hex numbers and integers become ``<IP>``, ``<HEX>``, ``<NUM>``
DEFAULT_MASKS: tuple[tuple[str, str], ...] = (
    (_EDGE_L + r"(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})(:\d{1,5})?" + _EDGE_R, "IP"),
    (_EDGE_L + r"(0[xX][0-9a-fA-F]+)" + _EDGE_R, "HEX"),
    (_EDGE_L + r"([\-\+]?\d+)" + _EDGE_R, "NUM"),
)
_PARAMS = ("depth", "sim_th", "max_children", "max_clusters", "max_chars")


class TemplateMiner:
    """Mine message templates online from one field of each record.

    Parameters
    ----------
    field
        The record field that holds the message (``fields.template``).
    depth, sim_th, max_children
        Drain's prefix-tree depth, similarity threshold and fan-out (Drain3's defaults).
    max_clusters
        Most templates kept; the least recently matched is dropped first.
    max_chars
        Longer messages are mined from their first ``max_chars`` characters.
    masks
        ``(regex, name)`` pairs applied in order before mining (:data:`DEFAULT_MASKS`).

    Examples
    --------
    >>> m = TemplateMiner("msg")
    >>> recs = [{"msg": "user alice logged in"}, {"msg": "user bob logged in"}, {"x": 1}]
    >>> m.annotate(recs)
    >>> [(r.get("template"), r.get("template_text")) for r in recs]
    [(1, 'user alice logged in'), (1, 'user <*> logged in'), (None, None)]
    >>> TemplateMiner.from_state(m.to_state()).mine("user carol logged in")
    (1, 'user <*> logged in')
    """

    def __init__(self, field: str, *, depth: int = 4, sim_th: float = 0.4,
                 max_children: int = 100, max_clusters: int = 10_000, max_chars: int = 2048,
                 masks: Sequence[tuple[str, str]] = DEFAULT_MASKS) -> None:
        self.field = field
        self.depth, self.sim_th, self.max_children = depth, sim_th, max_children
        self.max_clusters, self.max_chars = max_clusters, max_chars
        self.masks = tuple((str(p), str(n)) for p, n in masks)
        self._drain = Drain(depth=depth, sim_th=sim_th, max_children=max_children,
                            max_clusters=max_clusters)
        self._masker = LogMasker([MaskingInstruction(p, n) for p, n in self.masks], "<", ">")
        self._text: dict[int, str] = {}  # template text per cluster id, while it holds
        self._used: dict[int, None] = {}  # cluster ids, least recently used first

    @property
    def n_templates(self) -> int:
        """How many templates are held now."""
        return len(self._drain.id_to_cluster)

    def mine(self, message: str) -> tuple[int, str]:
        """Learn one message; ``(template id, template text)`` of its cluster."""
        cluster, change = self._drain.add_log_message(
            self._masker.mask(message[: self.max_chars]))
        cid: int = cluster.cluster_id
        used = self._used
        used.pop(cid, None)
        used[cid] = None
        if change == "none":
            text = self._text.get(cid)
            if text is not None:
                return cid, text
        text = self._text[cid] = cluster.get_template()
        if change == "cluster_created" and len(used) > 2 * self.max_clusters:
            self._prune()
        return cid, text

    def _prune(self) -> None:
        """Forget the ids (and texts) of clusters Drain has dropped."""
        live = self._drain.id_to_cluster
        self._used = {c: None for c in self._used if c in live}
        self._text = {c: t for c, t in self._text.items() if c in live}

    def annotate(self, records: Sequence[Any]) -> None:
        """Add ``template`` and ``template_text`` to every dict whose field is a string."""
        name, mine = self.field, self.mine
        for rec in records:
            if type(rec) is dict:
                msg = rec.get(name)
                if type(msg) is str:
                    rec["template"], rec["template_text"] = mine(msg)

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """The miner as plain JSON values (ints, floats, strings, lists)."""
        live = self._drain.id_to_cluster
        order = [c for c in self._used if c in live]
        order += sorted(set(live) - set(order))  # (never: every live cluster has been used)
        clusters = [[c, live[c].size, list(live[c].log_template_tokens)] for c in order]
        return {
            "version": STATE_VERSION,
            "field": self.field,
            "params": {k: getattr(self, k) for k in _PARAMS},
            "masks": [list(m) for m in self.masks],
            "clusters_counter": self._drain.clusters_counter,
            "clusters": clusters,
            "tree": _dump_node(self._drain.root_node),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> TemplateMiner:
        """Rebuild a miner from :meth:`to_state`; it continues exactly where that one was.

        Raises
        ------
        StateError
            An unknown version or a malformed state.
        """
        r = StateReader.of(state, "template miner", version=STATE_VERSION,
                           fix="the snapshot is corrupt")
        with r.guard():
            params = r.sub("params")
            miner = cls(r.text("field"), masks=[tuple(m) for m in r["masks"]],
                        **{k: params[k] for k in _PARAMS})
            drain = miner._drain
            for cid, size, tokens in r["clusters"]:
                cluster = LogCluster([str(t) for t in tokens], int(cid))
                cluster.size = int(size)
                drain.id_to_cluster[cluster.cluster_id] = cluster  # in LRU order
                miner._used[cluster.cluster_id] = None
            drain.clusters_counter = r.integer("clusters_counter")
            drain.root_node = _load_node(r["tree"], drain)
        return miner


def _dump_node(node: Any) -> list[Any]:
    """``[cluster ids, [[token, child], ...]]`` (depth-first; the tree is ``depth`` deep)."""
    return [list(node.cluster_ids),
            [[tok, _dump_node(child)] for tok, child in node.key_to_child_node.items()]]


def _load_node(data: list[Any], drain: Any) -> Any:
    ids, children = data
    node = type(drain.root_node)()
    node.cluster_ids = [int(c) for c in ids]
    node.key_to_child_node = {str(tok): _load_node(child, drain) for tok, child in children}
    return node
