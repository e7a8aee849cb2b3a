"""LlamaIndex nodes as semsearch rows and back: key = node id, content = its text, the rest in metadata.

A row's metadata is LlamaIndex's own serialisation (``node_to_metadata_dict``): the node's
metadata at the top level (what ``MetadataFilters`` filter on), ``ref_doc_id`` (what
``delete(ref_doc_id)`` deletes by), and the node's relationships and settings as JSON in
``_node_content``; semsearch adds ``_node_id`` (``VectorStoreQuery.node_ids`` filters on it).
A row that semsearch stored without LlamaIndex comes back as a ``TextNode`` with its key,
content and metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from llama_index.core.schema import BaseNode, MetadataMode, TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

from semsearch.errors import InvalidInputError

#: the metadata field holding a node's id, beside LlamaIndex's own ``ref_doc_id``, ``_node_content``, ...
NODE_ID = "_node_id"


def rows(nodes: Sequence[BaseNode]) -> tuple[list[str], list[str], list[dict[str, Any]], np.ndarray | None]:
    """Keys, contents, metadata and embeddings (None when no node has one: the collection embeds)."""
    keys = [node.node_id for node in nodes]
    contents = [node.get_content(metadata_mode=MetadataMode.NONE) for node in nodes]
    metadata = [{**node_to_metadata_dict(node, remove_text=True), NODE_ID: node.node_id} for node in nodes]
    embedded = [node.embedding is not None for node in nodes]
    if not any(embedded):
        return keys, contents, metadata, None
    if not all(embedded):
        raise InvalidInputError(
            f"expected every node with an embedding or none, got {embedded.count(False)} of {len(nodes)} without"
        )
    return keys, contents, metadata, np.asarray([node.embedding for node in nodes], dtype=np.float32)


def node(key: str, content: str, metadata: dict[str, Any]) -> BaseNode:
    """The node a row stores (its text set back; a row stored without LlamaIndex as a ``TextNode``)."""
    if "_node_content" not in metadata:
        return TextNode(id_=key, text=content, metadata=metadata)
    return metadata_dict_to_node(metadata, text=content)
