"""The BiRNN acoustic model of the 2017 DeepSpeech, in tf.compat.v1 graph mode.

Layers: three clipped-ReLU dense layers with dropout, a bidirectional LSTM, a clipped-ReLU
dense layer and a linear output over the 29 classes. Variable names match the original
(``h1``/``b1`` ... ``h6``/``b6``, and the LSTM's ``bidirectional_rnn/{fw,bw}/basic_lstm_cell/
{kernel,bias}`` with BasicLSTMCell's layout), so checkpoints keep their shape.

The LSTM is our own: TensorFlow 2's ``BasicLSTMCell`` needs the legacy Keras package. It
computes the same equations (gates i, j, f, o; forget bias 1.0) but projects the inputs of
all time steps in one matrix product before the recurrence and runs both directions in one
loop with a batched matrix product.
"""

from __future__ import annotations

import tensorflow.compat.v1 as tf

from util.config import Config

FORGET_BIAS = 1.0


def variable_on_cpu(name: str, shape, initializer) -> tf.Variable:
    """Create (or reuse) a variable that lives in CPU memory, shared by all towers."""
    with tf.device("/cpu:0"):
        return tf.get_variable(name=name, shape=shape, initializer=initializer)


def _dropout(x: tf.Tensor, rate: float) -> tf.Tensor:
    return tf.nn.dropout(x, rate=rate) if rate > 0 else x


def _dense(x, name: str, n_in: int, n_out: int, config: Config):
    bias = variable_on_cpu(
        "b" + name, [n_out], tf.random_normal_initializer(stddev=config.stddev("b" + name))
    )
    weights = variable_on_cpu(
        "h" + name, [n_in, n_out], tf.random_normal_initializer(stddev=config.stddev("h" + name))
    )
    return tf.matmul(x, weights) + bias


def clipped_relu(x: tf.Tensor, clip: float) -> tf.Tensor:
    return tf.minimum(tf.nn.relu(x), clip)


def bidirectional_lstm(
    inputs: tf.Tensor,
    seq_length: tf.Tensor,
    n_cell_dim: int,
    dropout_fw: float = 0.0,
    dropout_bw: float = 0.0,
) -> tf.Tensor:
    """A bidirectional LSTM over time-major ``inputs`` [time, batch, n_in].

    Steps past a sequence's length output zeros and keep the state, as
    ``bidirectional_dynamic_rnn`` does; the backward direction reads each sequence from its
    own last step. Dropout (as the original's DropoutWrapper) applies to each direction's input
    and output.

    Returns:
        float32 [time, batch, 2 * n_cell_dim]: forward outputs, then backward outputs.
    """
    n_in = int(inputs.shape[-1])
    steps = tf.shape(inputs)[0]
    seq_length = tf.cast(seq_length, tf.int32)
    with tf.variable_scope("bidirectional_rnn"):
        kernels, biases = [], []
        for direction in ("fw", "bw"):
            with tf.variable_scope(f"{direction}/basic_lstm_cell"):
                kernels.append(
                    variable_on_cpu(
                        "kernel",
                        [n_in + n_cell_dim, 4 * n_cell_dim],
                        tf.glorot_uniform_initializer(),
                    )
                )
                biases.append(variable_on_cpu("bias", [4 * n_cell_dim], tf.zeros_initializer()))

    reversed_inputs = tf.reverse_sequence(inputs, seq_length, seq_axis=0, batch_axis=1)
    batch = tf.shape(inputs)[1]
    projected = []
    for direction_inputs, kernel, bias, rate in zip(
        (inputs, reversed_inputs), kernels, biases, (dropout_fw, dropout_bw), strict=True
    ):
        flat = tf.reshape(_dropout(direction_inputs, rate), [-1, n_in])
        gates = tf.matmul(flat, kernel[:n_in]) + bias
        projected.append(tf.reshape(gates, [steps, batch, 4 * n_cell_dim]))
    input_gates = tf.stack(projected, axis=1)  # [time, direction, batch, 4 * n_cell_dim]
    recurrent_kernel = tf.stack([k[n_in:] for k in kernels])  # [2, n_cell_dim, 4 * n_cell_dim]
    mask = tf.transpose(tf.sequence_mask(seq_length, steps, dtype=tf.float32))  # [time, batch]
    mask = mask[:, tf.newaxis, :, tf.newaxis]  # [time, 1, batch, 1]

    input_array = tf.TensorArray(tf.float32, size=steps).unstack(input_gates)
    mask_array = tf.TensorArray(tf.float32, size=steps).unstack(mask)
    output_array = tf.TensorArray(tf.float32, size=steps)
    zeros = tf.zeros([2, batch, n_cell_dim])

    def step(t, c, h, outputs):
        gates = input_array.read(t) + tf.matmul(h, recurrent_kernel)
        i, j, f, o = tf.split(gates, 4, axis=-1)
        new_c = c * tf.sigmoid(f + FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
        new_h = tf.tanh(new_c) * tf.sigmoid(o)
        m = mask_array.read(t)
        keep = 1.0 - m
        return (t + 1, m * new_c + keep * c, m * new_h + keep * h, outputs.write(t, m * new_h))

    _, _, _, output_array = tf.while_loop(
        lambda t, *_: t < steps, step, (tf.constant(0), zeros, zeros, output_array)
    )
    outputs = output_array.stack()  # [time, 2, batch, n_cell_dim]
    forward = _dropout(outputs[:, 0], dropout_fw)
    backward = tf.reverse_sequence(outputs[:, 1], seq_length, seq_axis=0, batch_axis=1)
    backward = _dropout(backward, dropout_bw)
    outputs = tf.concat([forward, backward], axis=2)
    outputs.set_shape([None, None, 2 * n_cell_dim])
    return outputs


def BiRNN(batch_x: tf.Tensor, seq_length: tf.Tensor, dropout, config: Config) -> tf.Tensor:
    """The acoustic model.

    Args:
        batch_x: float32 [batch, time, 494] features.
        seq_length: int [batch] valid time steps per utterance.
        dropout: six dropout rates (layers 1, 2, 3, LSTM forward, LSTM backward, 5).
        config: supplies n_hidden, relu_clip and the initialiser deviations.

    Returns:
        float32 [time, batch, 29] logits, time major (as CTC wants them).
    """
    n_features = config.n_input + 2 * config.n_input * config.n_context
    n_hidden, clip = config.n_hidden, config.relu_clip
    batch_size = tf.shape(batch_x)[0]
    # Time major, then flattened so the dense layers are single matrix products.
    x = tf.reshape(tf.transpose(batch_x, [1, 0, 2]), [-1, n_features])

    layer_1 = _dropout(clipped_relu(_dense(x, "1", n_features, n_hidden, config), clip), dropout[0])
    layer_2 = _dropout(
        clipped_relu(_dense(layer_1, "2", n_hidden, n_hidden, config), clip), dropout[1]
    )
    layer_3 = _dropout(
        clipped_relu(_dense(layer_2, "3", n_hidden, config.n_hidden_3, config), clip), dropout[2]
    )
    layer_3 = tf.reshape(layer_3, [-1, batch_size, config.n_hidden_3])
    outputs = bidirectional_lstm(layer_3, seq_length, config.n_cell_dim, dropout[3], dropout[4])
    outputs = tf.reshape(outputs, [-1, 2 * config.n_cell_dim])
    layer_5 = _dropout(
        clipped_relu(_dense(outputs, "5", 2 * config.n_cell_dim, n_hidden, config), clip),
        dropout[5],
    )
    layer_6 = _dense(layer_5, "6", n_hidden, config.n_character, config)
    return tf.reshape(layer_6, [-1, batch_size, config.n_character], name="logits")
