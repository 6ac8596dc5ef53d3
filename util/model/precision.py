"""bfloat16 in a frozen graph's compiled LSTM op; the session-wide switch and the CPU check
are util.settings.devices's."""

from __future__ import annotations

import tensorflow.compat.v1 as tf

from util.model.kernels import lstm_op_nodes


def bfloat16_lstm_op(graph_def: tf.GraphDef) -> int:
    """Set ``bfloat16_weights`` on the compiled LSTM op's nodes in ``graph_def`` (in place): its
    recurrent products in bfloat16, as :func:`util.settings.devices.with_bfloat16` puts the graph's
    other products (the mixed-precision rewrite leaves the op alone). Returns how many nodes it
    set."""
    nodes = lstm_op_nodes(graph_def)
    for node in nodes:
        node.attr["bfloat16_weights"].b = True
    return len(nodes)
