"""Towers: one copy of the model per device, gradients averaged across them (the
synchronisation point), as in TensorFlow's multi-GPU CIFAR-10 example and the original."""

from __future__ import annotations

from typing import NamedTuple

import tensorflow.compat.v1 as tf

from util.config import Config
from util.model import BiRNN


class TowerResults(NamedTuple):
    """Per-tower tensors (lists indexed by tower) and the tower averages."""

    labels: list  # sparse labels per tower
    decodings: list  # best beam-search path per tower (sparse)
    distances: list  # normalised character edit distance per utterance
    total_losses: list  # CTC loss per utterance
    indices: list  # sample indices per tower
    gradients: list  # (gradient, variable) pairs per tower; empty without an optimizer
    mean_distance: tf.Tensor
    mean_loss: tf.Tensor
    # For decoding outside the graph (the language-model beam search): the logits per tower,
    # time-major [time, batch, 29] before the softmax, and the valid steps per utterance.
    logits: list
    logit_lengths: list


def calculate_accuracy_and_loss(batch, dropout, config: Config, training: bool = True):
    """CTC loss, beam-search decoding and edit distance for one tower's batch.

    Returns:
        (total_loss [batch], avg_loss [], distance [batch], mean distance [], decoded sparse,
        logits [time, batch, 29])
    """
    logits = BiRNN(batch.features, batch.feature_lengths, dropout, config, training)
    total_loss = tf.nn.ctc_loss(
        labels=batch.labels,
        inputs=logits,
        sequence_length=batch.feature_lengths,
        ignore_longer_outputs_than_inputs=True,
    )
    avg_loss = tf.reduce_mean(total_loss)
    decoded, _ = tf.nn.ctc_beam_search_decoder(logits, batch.feature_lengths, merge_repeated=False)
    best = tf.cast(decoded[0], tf.int32)
    distance = tf.edit_distance(best, batch.labels)
    return total_loss, avg_loss, distance, tf.reduce_mean(distance), best, logits


def get_tower_results(
    batch_source, devices: list[str], config: Config, optimizer=None
) -> TowerResults:
    """Build one tower per device, each taking its own batch from ``batch_source.next_batch()``.

    With an optimizer, each tower also computes its gradients; dropout is used only then.
    """
    dropout = config.dropout_rates if optimizer is not None else [0.0] * 6
    results = TowerResults([], [], [], [], [], [], None, None, [], [])
    tower_distances, tower_losses = [], []
    with tf.variable_scope(tf.get_variable_scope()):
        for i, device in enumerate(devices):
            with tf.device(device), tf.name_scope(f"tower_{i}"):
                batch = batch_source.next_batch()
                total_loss, avg_loss, distance, mean_distance, decoded, logits = (
                    calculate_accuracy_and_loss(batch, dropout, config, optimizer is not None)
                )
                tf.get_variable_scope().reuse_variables()
                results.labels.append(batch.labels)
                results.decodings.append(decoded)
                results.distances.append(distance)
                results.total_losses.append(total_loss)
                results.indices.append(batch.indices)
                results.logits.append(logits)
                results.logit_lengths.append(batch.feature_lengths)
                if optimizer is not None:
                    results.gradients.append(optimizer.compute_gradients(avg_loss))
                tower_distances.append(mean_distance)
                tower_losses.append(avg_loss)
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
