"""Towers: one copy of the model per device, gradients averaged across them (the
synchronisation point), as in TensorFlow's multi-GPU CIFAR-10 example and the original."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow.compat.v1 as tf

from util.model.birnn import BiRNN, ModelGeometry, ModelOps


class TowerResults(NamedTuple):
    """Per-tower tensors (lists indexed by tower) and the tower averages."""

    labels: list  # sparse labels per tower
    decodings: list  # best beam-search path per tower (sparse)
    distances: list  # character edit distance per utterance, over the label length
    total_losses: list  # CTC loss per utterance
    indices: list  # sample indices per tower
    gradients: list  # (gradient, variable) pairs per tower; empty without an optimizer
    mean_distance: tf.Tensor  # over the towers' utterances
    mean_loss: tf.Tensor
    # For decoding outside the graph (the language-model beam search): the logits per tower,
    # time-major [time, batch, 29] before the softmax, and the valid steps per utterance.
    logits: list
    logit_lengths: list


class TowerOutputs(NamedTuple):
    """One tower's results for its batch."""

    total_loss: tf.Tensor  # [batch] CTC loss per utterance
    avg_loss: tf.Tensor  # [] the batch's mean loss
    distance: tf.Tensor  # [batch] edit distance of the best path, over the label length
    mean_distance: tf.Tensor  # []
    decoded: tf.SparseTensor  # int32 best beam-search path
    logits: tf.Tensor  # [time, batch, classes]


def calculate_loss_and_distance(
    batch, dropout, geometry: ModelGeometry, ops: ModelOps | None = None, training: bool = True
) -> TowerOutputs:
    """The model, CTC loss, beam-search decoding and character edit distance for one tower's
    batch."""
    logits = BiRNN(batch.features, batch.feature_lengths, dropout, geometry, training, ops)
    total_loss = tf.nn.ctc_loss(
        labels=batch.labels,
        inputs=logits,
        sequence_length=batch.feature_lengths,
        ignore_longer_outputs_than_inputs=True,
    )
    decoded, _ = tf.nn.ctc_beam_search_decoder(logits, batch.feature_lengths, merge_repeated=False)
    best = tf.cast(decoded[0], tf.int32)
    distance = tf.edit_distance(best, batch.labels)
    return TowerOutputs(
        total_loss, tf.reduce_mean(total_loss), distance, tf.reduce_mean(distance), best, logits
    )


def get_tower_results(
    batch_source,
    devices: list[str],
    geometry: ModelGeometry,
    ops: ModelOps | None = None,
    optimizer=None,
) -> TowerResults:
    """Build one tower per device, each taking its own batch from ``batch_source.next_batch()``.

    With an optimizer, each tower also computes its gradients; dropout is used only then.
    """
    training = optimizer is not None
    dropout = geometry.dropout if training else [0.0] * 6
    results = TowerResults([], [], [], [], [], [], None, None, [], [])
    tower_distances, tower_losses = [], []
    with tf.variable_scope(tf.get_variable_scope()):
        for i, device in enumerate(devices):
            with tf.device(device), tf.name_scope(f"tower_{i}"):
                batch = batch_source.next_batch()
                tower = calculate_loss_and_distance(batch, dropout, geometry, ops, training)
                tf.get_variable_scope().reuse_variables()
                results.labels.append(batch.labels)
                results.decodings.append(tower.decoded)
                results.distances.append(tower.distance)
                results.total_losses.append(tower.total_loss)
                results.indices.append(batch.indices)
                results.logits.append(tower.logits)
                results.logit_lengths.append(batch.feature_lengths)
                if training:
                    results.gradients.append(optimizer.compute_gradients(tower.avg_loss))
                tower_distances.append(tower.mean_distance)
                tower_losses.append(tower.avg_loss)
    return results._replace(
        mean_distance=tf.reduce_mean(tower_distances), mean_loss=tf.reduce_mean(tower_losses)
    )


def average_gradients(tower_gradients: list) -> list:
    """Average each variable's gradient over the towers.

    This is the synchronisation point: it needs every tower's gradients before it can run.
    """
    if len(tower_gradients) == 1:
        return tower_gradients[0]
    averaged = []
    for grads_and_vars in zip(*tower_gradients, strict=True):
        variable = grads_and_vars[0][1]
        with tf.device(variable.device):
            grad = tf.add_n([g for g, _ in grads_and_vars]) / float(len(grads_and_vars))
        averaged.append((grad, variable))
    return averaged
