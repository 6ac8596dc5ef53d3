"""The BiRNN acoustic model of the 2017 DeepSpeech, in tf.compat.v1 graph mode.

Layers: three clipped-ReLU dense layers with dropout, a bidirectional LSTM, a clipped-ReLU
dense layer and a linear output over the 29 classes. ``ds_model=unidirectional`` puts a
forward-only LSTM in the BiRNN's place (layer 3 and the LSTM as wide as the cell), which
DeepSpeech 0.6 did so that audio can be transcribed as it arrives. Variable names match the original
(``h1``/``b1`` ... ``h6``/``b6``, and the LSTM's ``bidirectional_rnn/{fw,bw}/basic_lstm_cell/
{kernel,bias}`` with BasicLSTMCell's layout), so checkpoints keep their shape. With
``ds_feature_norm=global`` the model first normalises its input by the training set's mean and
deviation of each MFCC coefficient, kept in two non-trainable variables (``feature_mean``,
``feature_std``) that a fresh training run sets from its data and checkpoints and exports carry.

The LSTM is our own: TensorFlow 2's ``BasicLSTMCell`` needs the legacy Keras package. It
computes the same equations (gates i, j, f, o; forget bias 1.0) but projects the inputs of
all time steps in one matrix product before the recurrence, and its gradient is
hand-written. Training runs both directions in one while_loop with a batched matrix product;
evaluation and inference run the recurrence in the project's compiled op (util/model/kernels.py,
``ds_custom_ops``) where it is available, else in one while_loop per direction.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow.compat.v1 as tf

from util.model.kernels import lstm_op_for
from util.settings.alphabet import N_CHARACTER
from util.settings.config import DROPOUT_RATES, Config
from util.settings.devices import use_bfloat16
from util.settings.geometry import N_CONTEXT, N_INPUT, feature_width

FORGET_BIAS = 1.0
FEATURE_MEAN, FEATURE_STD = "feature_mean", "feature_std"  # ds_feature_norm=global


@dataclass(frozen=True)
class ModelGeometry:
    """The model's shape and the settings of its layers, built once from the run's config
    (:meth:`from_config`) and given to the model, the towers and the export."""

    n_hidden: int = 2048  # width of the dense layers and of the LSTM cell
    n_input: int = N_INPUT  # MFCC coefficients per frame (26)
    n_context: int = N_CONTEXT  # frames of context on each side (9)
    n_classes: int = N_CHARACTER  # the alphabet plus the CTC blank (29 for the English one)
    dropout: tuple[float, ...] = DROPOUT_RATES  # layers 1, 2, 3, LSTM fw, LSTM bw, 5
    relu_clip: float = 20.0
    default_stddev: float = 0.046875
    stddevs: tuple[tuple[str, float], ...] = ()  # (variable, deviation) overrides
    kind: str = "birnn"  # or "unidirectional" (ds_model)
    global_norm: bool = False  # the input normalised by the training set's statistics

    @property
    def n_features(self) -> int:
        """Width of one time step's input: a frame and its context (494)."""
        return feature_width(self.n_input, self.n_context)

    @property
    def n_cell(self) -> int:
        return self.n_hidden

    @property
    def directions(self) -> int:
        """The LSTM's directions: 2 for the BiRNN, 1 for the unidirectional model."""
        return 1 if self.kind == "unidirectional" else 2

    @property
    def n_hidden_3(self) -> int:
        """Width of layer 3, the LSTM's input: the cell times the directions (the LSTM's
        output, layer 5's input, is as wide)."""
        return self.directions * self.n_cell

    def stddev(self, variable: str) -> float:
        """Initialiser standard deviation of weight or bias ``variable`` (``h1``, ``b5``...)."""
        return dict(self.stddevs).get(variable, self.default_stddev)

    @classmethod
    def from_config(cls, config: Config) -> ModelGeometry:
        return cls(
            n_hidden=config.n_hidden,
            n_classes=config.alphabet.n_classes,
            dropout=tuple(config.dropout_rates),
            relu_clip=config.relu_clip,
            default_stddev=config.default_stddev,
            stddevs=tuple(config.stddevs),
            kind=config.model,
            global_norm=config.feature_norm == "global",
        )


@dataclass(frozen=True)
class ModelOps:
    """How a graph computes the LSTM: the project's compiled ops (util/model/kernels.py), or
    None for TensorFlow's own (``lstm_op`` runs the LSTM of evaluation and inference,
    ``bfloat16_op`` the recurrent products of bfloat16 training), and whether training uses the
    hand-written backward pass (``fused_gradient``; False: TensorFlow's automatic gradient of
    the same loop, the reference that bin/dev/benchmark.py --autodiff measures)."""

    lstm_op: object = None
    bfloat16_op: object = None
    fused_gradient: bool = True

    @classmethod
    def for_training(cls, config: Config) -> ModelOps:
        return cls(bfloat16_op=training_bfloat16_op(config))

    @classmethod
    def for_evaluation(cls, config: Config) -> ModelOps:
        return cls(lstm_op=lstm_op_for(config.custom_ops))


def variable_on_cpu(name: str, shape, initializer) -> tf.Variable:
    """Create (or reuse) a variable that lives in CPU memory, shared by all towers."""
    with tf.device("/cpu:0"):
        return tf.get_variable(name=name, shape=shape, initializer=initializer)


def normalised_input(x: tf.Tensor, geometry: ModelGeometry) -> tf.Tensor:
    """``x`` [..., n_features] (context windows of un-normalised MFCC frames, frame after
    frame), with ``global_norm`` each coefficient less the training set's mean and divided by
    its deviation (the variables :data:`FEATURE_MEAN` and :data:`FEATURE_STD`, shared by all
    towers, set once by training: util/training/contexts.py); else ``x`` as it is. The
    windows' zero padding becomes the mean's negative, the same in every graph."""
    if not geometry.global_norm:
        return x
    with tf.device("/cpu:0"):
        mean = tf.get_variable(
            FEATURE_MEAN, [geometry.n_input], initializer=tf.zeros_initializer(), trainable=False
        )
        std = tf.get_variable(
            FEATURE_STD, [geometry.n_input], initializer=tf.ones_initializer(), trainable=False
        )
    frames = 2 * geometry.n_context + 1
    return (x - tf.tile(mean, [frames])) / tf.tile(std, [frames])


def _dropout(x: tf.Tensor, rate: float) -> tf.Tensor:
    return tf.nn.dropout(x, rate=rate) if rate > 0 else x


def _dense(x, name: str, n_in: int, n_out: int, geometry: ModelGeometry):
    bias = variable_on_cpu(
        "b" + name, [n_out], tf.random_normal_initializer(stddev=geometry.stddev("b" + name))
    )
    weights = variable_on_cpu(
        "h" + name, [n_in, n_out], tf.random_normal_initializer(stddev=geometry.stddev("h" + name))
    )
    return tf.matmul(x, weights) + bias


def clipped_relu(x: tf.Tensor, clip: float) -> tf.Tensor:
    return tf.minimum(tf.nn.relu(x), clip)


def _cell(gates, c):
    """BasicLSTMCell's equations from pre-activations ``gates`` (i, j, f, o) and state ``c``."""
    i, j, f, o = tf.split(gates, 4, axis=-1)
    i, j, f, o = tf.sigmoid(i), tf.tanh(j), tf.sigmoid(f + FORGET_BIAS), tf.sigmoid(o)
    new_c = c * f + i * j
    tanh_c = tf.tanh(new_c)
    return new_c, tanh_c * o, (i, j, f, o, tanh_c)


def lstm_recurrence_autodiff(input_gates, recurrent_kernel, mask):
    """The recurrence with TensorFlow's automatic gradient (reference for the fused one).

    Args:
        input_gates: [time, direction, batch, 4 * cell] input projections plus bias.
        recurrent_kernel: [direction, cell, 4 * cell].
        mask: [time, 1, batch, 1], 1.0 for valid steps.

    Returns:
        [time, direction, batch, cell] outputs, zero past each sequence's end.
    """
    steps = tf.shape(input_gates)[0]
    n_cell = int(recurrent_kernel.shape[1])
    input_array = tf.TensorArray(tf.float32, size=steps).unstack(input_gates)
    mask_array = tf.TensorArray(tf.float32, size=steps).unstack(mask)
    zeros = tf.zeros([int(recurrent_kernel.shape[0]), tf.shape(input_gates)[2], n_cell])

    def step(t, c, h, outputs):
        new_c, new_h, _ = _cell(input_array.read(t) + tf.matmul(h, recurrent_kernel), c)
        m = mask_array.read(t)
        keep = 1.0 - m
        return t + 1, m * new_c + keep * c, m * new_h + keep * h, outputs.write(t, m * new_h)

    _, _, _, output_array = tf.while_loop(
        lambda t, *_: t < steps,
        step,
        (tf.constant(0), zeros, zeros, tf.TensorArray(tf.float32, size=steps)),
    )
    return output_array.stack()


def lstm_recurrence_inference(input_gates, recurrent_kernel, mask):
    """The recurrence of one direction for evaluation and inference: a forward loop only,
    keeping nothing for a backward pass. :func:`bidirectional_lstm` builds one loop per
    direction, so the two can run at the same time on two cores (at batch 1 one step is too
    small to share out within a matrix product).

    Args:
        input_gates: [time, batch, 4 * cell] input projections plus bias.
        recurrent_kernel: [cell, 4 * cell].
        mask: [time, batch, 1], 1.0 for valid steps.

    Returns:
        [time, batch, cell] outputs, zero past each sequence's end.
    """
    scaled_gates, scaled_kernel = _rescale(input_gates, recurrent_kernel)
    steps = tf.shape(scaled_gates)[0]
    zeros = tf.zeros([tf.shape(scaled_gates)[1], int(recurrent_kernel.shape[0])])
    gate_array = tf.TensorArray(tf.float32, size=steps).unstack(scaled_gates)

    def forward(t, c, h, hs):
        c, h = _fast_cell(gate_array.read(t) + tf.matmul(h, scaled_kernel), c)[:2]
        return t + 1, c, h, hs.write(t, h)

    _, _, _, hs = tf.while_loop(
        lambda t, *_: t < steps,
        forward,
        (tf.constant(0), zeros, zeros, tf.TensorArray(tf.float32, size=steps)),
    )
    return hs.stack() * mask


def _rescale(input_gates, recurrent_kernel):
    """Pre-activations rescaled so that one sigmoid gives all four gates:
    ``tanh(x) = 2 * sigmoid(2x) - 1`` for j, and the forget bias folded into f."""
    n_cell = int(recurrent_kernel.shape[-2])
    ones, zeros = tf.ones([n_cell]), tf.zeros([n_cell])
    scale = tf.concat([ones, 2.0 * ones, ones, ones], 0)
    shift = tf.concat([zeros, zeros, FORGET_BIAS * ones, zeros], 0)
    return input_gates * scale + shift, recurrent_kernel * scale


def _fast_cell(scaled_preactivation, c):
    """One LSTM step on rescaled pre-activations: (new c, new h, the sigmoid activations)."""
    s = tf.sigmoid(scaled_preactivation)
    i, half_j, f, o = tf.split(s, 4, axis=-1)
    c = c * f + i * (2.0 * half_j - 1.0)
    return c, tf.tanh(c) * o, s


def lstm_recurrence(input_gates, recurrent_kernel, mask, bfloat16_op=None):
    """The recurrence of :func:`lstm_recurrence_autodiff`, built for speed.

    Three changes, none of which alters the result: the gate pre-activations are rescaled
    once (``tanh(x) = 2 * sigmoid(2x) - 1`` and the forget bias folded in) so one sigmoid
    serves all four gates; the loop does not mask its state (sequences are right-aligned, so
    steps past a sequence's end never feed a valid step) and the outputs are masked once
    afterwards; and the backward pass is hand-written (:func:`_fused_recurrence`).

    ``bfloat16_op`` (the module of :func:`util.model.kernels.load`, where training runs in
    bfloat16): the loops' products with the recurrent kernel in bfloat16 by the compiled
    ops, which read a packed copy of the kernel made once before each loop.
    """
    recurrence = _fused_recurrence(_recurrent_product(bfloat16_op))
    return recurrence(*_rescale(input_gates, recurrent_kernel)) * mask


def _recurrent_product(bfloat16_op):
    """(prepare, multiply): ``multiply(x, prepare(kernel))`` is ``x @ kernel`` for
    [direction, batch, k] x [direction, k, n], in float32 by TensorFlow or in bfloat16 by the
    compiled ops (``prepare`` packs the kernel for them)."""
    if bfloat16_op is None:
        return (lambda kernel: kernel), tf.matmul

    def prepare(kernel):
        return bfloat16_op.deep_speech_pack_bfloat16(kernel), int(kernel.shape[-1])

    def multiply(x, packed):
        return bfloat16_op.deep_speech_bfloat16_product(x, packed[0], columns=packed[1])

    return prepare, multiply


def _fused_recurrence(product):
    """The recurrence with its hand-written gradient, its recurrent products as ``product``
    (:func:`_recurrent_product`) computes them."""
    prepare, multiply = product
    return tf.custom_gradient(lambda gates, kernel: _fused_steps(gates, kernel, prepare, multiply))


def _fused_steps(scaled_gates, scaled_kernel, prepare, multiply):
    """LSTM steps where ``sigmoid(scaled pre-activation)`` gives i, (j + 1) / 2, f and o.

    The forward loop keeps each step's activations and cell state; the backward loop runs the
    LSTM's derivative in reverse and propagates only through the recurrent matrix. The
    recurrent weight gradient, a sum over all steps, is then one large matrix product instead
    of one small update per step, which is what makes training fast on CPUs.
    """
    steps = tf.shape(scaled_gates)[0]
    directions, n_cell = int(scaled_kernel.shape[0]), int(scaled_kernel.shape[1])
    zeros = tf.zeros([directions, tf.shape(scaled_gates)[2], n_cell])
    kernel = prepare(scaled_kernel)

    def forward(t, c, h, hs, activations, cs):
        c, h, s = _fast_cell(scaled_gates[t] + multiply(h, kernel), c)
        return t + 1, c, h, hs.write(t, h), activations.write(t, s), cs.write(t, c)

    arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(3)]
    _, _, _, hs, activations, cs = tf.while_loop(
        lambda t, *_: t < steps, forward, (tf.constant(0), zeros, zeros, *arrays)
    )
    outputs, activations, cells = hs.stack(), activations.stack(), cs.stack()

    def gradient(d_outputs):
        # Everything that does not depend on the carried gradients is computed for all steps
        # at once, outside the loop.
        i, half_j, f, o = tf.split(activations, 4, axis=-1)
        tanh_c = tf.tanh(cells)
        prev_c = tf.concat([zeros[tf.newaxis], cells[:-1]], 0)
        prev_h = tf.concat([zeros[tf.newaxis], outputs[:-1]], 0)
        d_s_factors = tf.concat([2.0 * half_j - 1.0, 2.0 * i, prev_c], -1)  # for d_new_c
        d_c_from_h = o * (1.0 - tanh_c * tanh_c)
        d_sigmoid = activations * (1.0 - activations)
        transposed_kernel = prepare(tf.transpose(scaled_kernel, [0, 2, 1]))

        def backward(t, d_c, d_h, d_gates):
            t = t - 1
            d_new_h = d_outputs[t] + d_h
            d_new_c = d_c + d_new_h * d_c_from_h[t]
            d_s = tf.concat([tf.tile(d_new_c, [1, 1, 3]) * d_s_factors[t], d_new_h * tanh_c[t]], -1)
            d_gate = d_s * d_sigmoid[t]
            d_h = multiply(d_gate, transposed_kernel)
            return t, d_new_c * f[t], d_h, d_gates.write(t, d_gate)

        _, _, _, d_gates = tf.while_loop(
            lambda t, *_: t > 0,
            backward,
            (steps, zeros, zeros, tf.TensorArray(tf.float32, size=steps)),
        )
        d_gates = d_gates.stack()  # [time, direction, batch, 4 * cell]
        # Sum over steps and batch of h_{t-1}^T d_gates_t, per direction, in one product.
        flat_h = tf.reshape(tf.transpose(prev_h, [1, 0, 2, 3]), [directions, -1, n_cell])
        flat_gates = tf.reshape(tf.transpose(d_gates, [1, 0, 2, 3]), [directions, -1, 4 * n_cell])
        return d_gates, tf.matmul(flat_h, flat_gates, transpose_a=True)

    return outputs, gradient


UNIDIRECTIONAL_SCOPE = "unidirectional_rnn"  # the forward-only model's LSTM variables
BIDIRECTIONAL_SCOPE = "bidirectional_rnn"


def lstm_variables(n_in: int, n_cell_dim: int, directions: int = 2) -> tuple[list, list]:
    """The kernels [n_in + n_cell_dim, 4 * n_cell_dim] and biases of the forward and backward
    cells, named as ``bidirectional_dynamic_rnn``'s ``BasicLSTMCell`` variables; with one
    direction, the forward cell's under ``unidirectional_rnn`` (so that a checkpoint says
    which model it holds)."""
    kernels, biases = [], []
    scope = BIDIRECTIONAL_SCOPE if directions == 2 else UNIDIRECTIONAL_SCOPE
    with tf.variable_scope(scope):
        for direction in ("fw", "bw")[:directions]:
            with tf.variable_scope(f"{direction}/basic_lstm_cell"):
                shape = [n_in + n_cell_dim, 4 * n_cell_dim]
                kernels.append(variable_on_cpu("kernel", shape, tf.glorot_uniform_initializer()))
                biases.append(variable_on_cpu("bias", [4 * n_cell_dim], tf.zeros_initializer()))
    return kernels, biases


def project_inputs(inputs, seq_length, input_kernels, biases, dropout: tuple[float, float] | None):
    """Each direction's input projection [time, batch, 4 * n_cell_dim], the backward one over
    its reversed steps, with each direction's own input dropout (None: no dropout, both
    projections in one product)."""
    n_in, steps, batch = int(inputs.shape[-1]), tf.shape(inputs)[0], tf.shape(inputs)[1]
    if dropout is None:
        # Both directions' projections in one product (twice as fast as two at batch 1).
        gates = tf.matmul(tf.reshape(inputs, [-1, n_in]), tf.concat(input_kernels, 1))
        gates = tf.reshape(gates + tf.concat(biases, 0), [steps, batch, -1])
        forward_gates, backward_gates = tf.split(gates, 2, axis=2)
        # Reversing the projected steps is reversing the steps and projecting them.
        reversed_gates = tf.reverse_sequence(backward_gates, seq_length, seq_axis=0, batch_axis=1)
        return [forward_gates, reversed_gates]
    reversed_inputs = tf.reverse_sequence(inputs, seq_length, seq_axis=0, batch_axis=1)
    projected = []
    for direction_inputs, input_kernel, bias, rate in zip(
        (inputs, reversed_inputs), input_kernels, biases, dropout, strict=True
    ):
        flat = tf.reshape(_dropout(direction_inputs, rate), [-1, n_in])
        gates = tf.matmul(flat, input_kernel) + bias
        projected.append(tf.reshape(gates, [steps, batch, -1]))
    return projected


def compiled_lstm(lstm_op, inputs, seq_length, input_kernels, biases, recurrent) -> tf.Tensor:
    """The bidirectional LSTM of inference by the compiled op, which takes both directions'
    projections at once and reads the backward steps in reverse itself."""
    n_in, n_cell_dim = int(inputs.shape[-1]), int(recurrent[0].shape[0])
    gates = tf.matmul(tf.reshape(inputs, [-1, n_in]), tf.concat(input_kernels, 1))
    gates = tf.reshape(gates + tf.concat(biases, 0), [tf.shape(inputs)[0], -1, 8 * n_cell_dim])
    outputs = lstm_op.deep_speech_bidirectional_lstm(
        gates, *recurrent, seq_length, forget_bias=FORGET_BIAS
    )
    outputs.set_shape([None, None, 2 * n_cell_dim])
    return outputs


def bidirectional_lstm(
    inputs: tf.Tensor,
    seq_length: tf.Tensor,
    n_cell_dim: int,
    dropout_fw: float = 0.0,
    dropout_bw: float = 0.0,
    fused_gradient: bool = True,
    training: bool = True,
    lstm_op=None,
    bfloat16_op=None,
) -> tf.Tensor:
    """A bidirectional LSTM over time-major ``inputs`` [time, batch, n_in].

    Steps past a sequence's length output zeros and keep the state, as
    ``bidirectional_dynamic_rnn`` does; the backward direction reads each sequence from its
    own last step. Dropout (as the original's DropoutWrapper) applies to each direction's input
    and output.

    ``fused_gradient`` selects the hand-written backward pass (:func:`lstm_recurrence`);
    False uses TensorFlow's automatic gradient of the same loop (the reference). With
    ``training`` False, the loop keeps nothing for a backward pass (evaluation, inference),
    and ``lstm_op`` (the module of :func:`util.model.kernels.load`), where given and without
    dropout, replaces the loops and the reversals with the compiled op. With ``training``,
    ``bfloat16_op`` (the same module) computes the fused loops' recurrent products in
    bfloat16 (:func:`lstm_recurrence`).

    Returns:
        float32 [time, batch, 2 * n_cell_dim]: forward outputs, then backward outputs.
    """
    n_in, steps = int(inputs.shape[-1]), tf.shape(inputs)[0]
    seq_length = tf.cast(seq_length, tf.int32)
    kernels, biases = lstm_variables(n_in, n_cell_dim)
    input_kernels, recurrent = zip(
        *(tf.split(kernel, [n_in, n_cell_dim], axis=0) for kernel in kernels), strict=True
    )
    dropout = None if not training and not (dropout_fw or dropout_bw) else (dropout_fw, dropout_bw)
    if dropout is None and lstm_op is not None:
        return compiled_lstm(lstm_op, inputs, seq_length, input_kernels, biases, recurrent)
    projected = project_inputs(inputs, seq_length, input_kernels, biases, dropout)
    mask = tf.transpose(tf.sequence_mask(seq_length, steps, dtype=tf.float32))  # [time, batch]
    if training:
        input_gates = tf.stack(projected, axis=1)  # [time, direction, batch, 4 * n_cell_dim]
        recurrent_kernel = tf.stack(recurrent)  # [direction, n_cell_dim, 4 * n_cell_dim]
        step_mask = mask[:, tf.newaxis, :, tf.newaxis]
        if fused_gradient:
            outputs = lstm_recurrence(input_gates, recurrent_kernel, step_mask, bfloat16_op)
        else:
            outputs = lstm_recurrence_autodiff(input_gates, recurrent_kernel, step_mask)
        forward, backward = tf.unstack(outputs, axis=1)  # its gradient is a stack, not a scatter
    else:  # one loop per direction, on its own inputs
        forward, backward = (
            lstm_recurrence_inference(gates, kernel, mask[:, :, tf.newaxis])
            for gates, kernel in zip(projected, recurrent, strict=True)
        )
    forward = _dropout(forward, dropout_fw)
    backward = tf.reverse_sequence(backward, seq_length, seq_axis=0, batch_axis=1)
    backward = _dropout(backward, dropout_bw)
    outputs = tf.concat([forward, backward], axis=2)
    outputs.set_shape([None, None, 2 * n_cell_dim])
    return outputs


def unidirectional_lstm(
    inputs: tf.Tensor,
    seq_length: tf.Tensor,
    n_cell_dim: int,
    dropout: float = 0.0,
    fused_gradient: bool = True,
    training: bool = True,
    bfloat16_op=None,
) -> tf.Tensor:
    """A forward-only LSTM over time-major ``inputs`` [time, batch, n_in]: step t sees steps
    up to t only, so its outputs can be computed as the audio arrives (the streaming export,
    util/training/streaming.py, runs the same cell step by step). Training, dropout and
    ``bfloat16_op`` as :func:`bidirectional_lstm`'s forward direction; inference runs the
    while loop (the compiled op is bidirectional only).

    Returns:
        float32 [time, batch, n_cell_dim], zero past each sequence's end.
    """
    n_in, steps = int(inputs.shape[-1]), tf.shape(inputs)[0]
    seq_length = tf.cast(seq_length, tf.int32)
    (kernel,), (bias,) = lstm_variables(n_in, n_cell_dim, directions=1)
    input_kernel, recurrent = tf.split(kernel, [n_in, n_cell_dim], axis=0)
    flat = tf.reshape(_dropout(inputs, dropout if training else 0.0), [-1, n_in])
    gates = tf.reshape(tf.matmul(flat, input_kernel) + bias, [steps, tf.shape(inputs)[1], -1])
    mask = tf.transpose(tf.sequence_mask(seq_length, steps, dtype=tf.float32))  # [time, batch]
    if training:
        step_mask = mask[:, tf.newaxis, :, tf.newaxis]
        if fused_gradient:
            outputs = lstm_recurrence(
                gates[:, tf.newaxis], recurrent[tf.newaxis], step_mask, bfloat16_op
            )
        else:
            outputs = lstm_recurrence_autodiff(
                gates[:, tf.newaxis], recurrent[tf.newaxis], step_mask
            )
        outputs = _dropout(outputs[:, 0], dropout)
    else:
        outputs = lstm_recurrence_inference(gates, recurrent, mask[:, :, tf.newaxis])
    outputs.set_shape([None, None, n_cell_dim])
    return outputs


def training_bfloat16_op(config: Config):
    """The compiled ops for the training loops' recurrent products where training runs in bfloat16
    (``ds_bfloat16``, :func:`util.settings.devices.use_bfloat16`) and ``ds_custom_ops`` allows them
    (:func:`util.model.kernels.lstm_op_for`, which also decides about GPUs); else None."""
    return lstm_op_for(config.custom_ops) if use_bfloat16(config) else None


def BiRNN(
    batch_x: tf.Tensor,
    seq_length: tf.Tensor,
    dropout,
    geometry: ModelGeometry,
    training: bool = True,
    ops: ModelOps | None = None,
) -> tf.Tensor:
    """The acoustic model.

    Args:
        batch_x: float32 [batch, time, geometry.n_features] features.
        seq_length: int [batch] valid time steps per utterance.
        dropout: six dropout rates (layers 1, 2, 3, LSTM forward, LSTM backward, 5).
        geometry: the widths, ReLU clip and initialiser deviations.
        training: False builds a graph that needs no gradient (evaluation, inference).
        ops: the compiled ops to use (:class:`ModelOps`); none by default.

    Returns:
        float32 [time, batch, geometry.n_classes] logits, time major (as CTC wants them).
    """
    g, ops = geometry, ops or ModelOps()
    clip = g.relu_clip
    batch_size = tf.shape(batch_x)[0]
    # Time major, then flattened so the dense layers are single matrix products.
    x = tf.reshape(tf.transpose(batch_x, [1, 0, 2]), [-1, g.n_features])
    x = normalised_input(x, g)

    layer_1 = _dropout(clipped_relu(_dense(x, "1", g.n_features, g.n_hidden, g), clip), dropout[0])
    layer_2 = _dropout(
        clipped_relu(_dense(layer_1, "2", g.n_hidden, g.n_hidden, g), clip), dropout[1]
    )
    layer_3 = _dropout(
        clipped_relu(_dense(layer_2, "3", g.n_hidden, g.n_hidden_3, g), clip), dropout[2]
    )
    layer_3 = tf.reshape(layer_3, [-1, batch_size, g.n_hidden_3])
    bfloat16_op = ops.bfloat16_op if training else None
    if g.directions == 1:
        outputs = unidirectional_lstm(
            layer_3, seq_length, g.n_cell, dropout[3], ops.fused_gradient, training, bfloat16_op
        )
    else:
        outputs = bidirectional_lstm(
            layer_3,
            seq_length,
            g.n_cell,
            dropout[3],
            dropout[4],
            fused_gradient=ops.fused_gradient,
            training=training,
            lstm_op=None if training else ops.lstm_op,
            bfloat16_op=bfloat16_op,
        )
    outputs = tf.reshape(outputs, [-1, g.n_hidden_3])
    layer_5 = _dropout(
        clipped_relu(_dense(outputs, "5", g.n_hidden_3, g.n_hidden, g), clip), dropout[5]
    )
    layer_6 = _dense(layer_5, "6", g.n_hidden, g.n_classes, g)
    return tf.reshape(layer_6, [-1, batch_size, g.n_classes], name="logits")
