// DeepSpeechBidirectionalLstm: the recurrence of the bidirectional LSTM for evaluation and
// inference, forward pass only (util/kernels.py compiles this file; util/model.py uses it).
//
// With TensorFlow's own ops each step of the recurrence is a while_loop iteration of several
// kernels, and TensorFlow's MatMul is slow for the one-row products of single-utterance
// inference. Here all steps of both directions run in one kernel: per step one Eigen product
// of the previous outputs with the recurrent kernel, then the cell's equations on Eigen arrays
// (vectorised logistic and tanh). The equations are BasicLSTMCell's: gates i, j, f, o in that
// order, forget bias added to f. The backward direction reads each sequence from its own last
// step; outputs past a sequence's end are zero, as bidirectional_dynamic_rnn gives them.
//
// The two directions run at the same time on two threads of the intra-op pool. A product too
// large for one thread (big batches or cells, and more than two threads to share it) instead
// runs over the whole pool, one direction after the other.
//
// Training keeps TensorFlow's loops (util/model.py): compiled training passes were measured
// (see docs/performance.md) and did not pay.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cstdint>
#include <string>

#include "Eigen/Core"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"
#include "tensorflow/core/util/work_sharder.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace deepspeech {

using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename T>
using TensorMap = Eigen::TensorMap<Eigen::Tensor<T, 2, Eigen::RowMajor>>;

// Multiply-adds per step from which a product is shared out over the whole intra-op pool.
constexpr int64_t kSharedOutWork = 8 << 20;

// Runs fn(direction, device) for both directions. Small products: one thread per direction,
// both at once, device null. Large ones, with more than two threads to share them: one
// direction after the other, each product over the whole pool (device set).
template <typename Fn>
void ForEachDirection(OpKernelContext* context, int64_t step_work, Fn fn) {
  auto* workers = context->device()->tensorflow_cpu_worker_threads();
  if (step_work >= kSharedOutWork && workers->num_threads > 2) {
    const Eigen::ThreadPoolDevice* device = &context->eigen_cpu_device();
    for (int64_t d = 0; d < 2; ++d) fn(d, device);
    return;
  }
  ::tensorflow::Shard(workers->num_threads, workers->workers, 2,
                      /*cost_per_unit=*/1 << 30,  // any cost that gives each its own thread
                      [&](int64_t begin, int64_t end) {
                        for (int64_t d = begin; d < end; ++d) fn(d, nullptr);
                      });
}

// out[m, n] += a[m, k] * b[k, n] (all row-major), on this thread or, with a device, over its
// pool.
void AddProduct(const Eigen::ThreadPoolDevice* device, const float* a, const float* b,
                int64_t m, int64_t k, int64_t n, float* out) {
  if (device == nullptr) {
    Eigen::Map<Matrix>(out, m, n).noalias() +=
        Eigen::Map<const Matrix>(a, m, k) * Eigen::Map<const Matrix>(b, k, n);
    return;
  }
  const Eigen::array<Eigen::IndexPair<int64_t>, 1> inner = {Eigen::IndexPair<int64_t>(1, 0)};
  TensorMap<float>(out, m, n).device(*device) +=
      TensorMap<const float>(a, m, k).contract(TensorMap<const float>(b, k, n), inner);
}

REGISTER_OP("DeepSpeechBidirectionalLstm")
    .Input("input_gates: float")      // [time, batch, 8 * cell]: forward's 4 gates, backward's
    .Input("forward_kernel: float")   // [cell, 4 * cell] recurrent kernels
    .Input("backward_kernel: float")  // [cell, 4 * cell]
    .Input("sequence_length: int32")  // [batch]
    .Attr("forget_bias: float = 1.0")
    .Output("outputs: float")  // [time, batch, 2 * cell]: forward outputs, backward outputs
    .SetShapeFn([](InferenceContext* c) {
      ShapeHandle gates, forward, backward, lengths;
      TF_RETURN_IF_ERROR(c->WithRank(c->input(0), 3, &gates));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(1), 2, &forward));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(2), 2, &backward));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(3), 1, &lengths));
      TF_RETURN_IF_ERROR(c->Merge(forward, backward, &forward));
      DimensionHandle cell = c->Dim(forward, 0), width, gate_width, output_width, batch;
      TF_RETURN_IF_ERROR(c->Multiply(cell, 4, &width));
      TF_RETURN_IF_ERROR(c->Merge(width, c->Dim(forward, 1), &width));
      TF_RETURN_IF_ERROR(c->Multiply(cell, 8, &gate_width));
      TF_RETURN_IF_ERROR(c->Merge(gate_width, c->Dim(gates, 2), &gate_width));
      TF_RETURN_IF_ERROR(c->Merge(c->Dim(gates, 1), c->Dim(lengths, 0), &batch));
      TF_RETURN_IF_ERROR(c->Multiply(cell, 2, &output_width));
      c->set_output(0, c->MakeShape({c->Dim(gates, 0), batch, output_width}));
      return absl::OkStatus();
    })
    .Doc("The forward pass of a bidirectional LSTM's recurrence (BasicLSTMCell's equations).");

class BidirectionalLstmOp : public OpKernel {
 public:
  explicit BidirectionalLstmOp(OpKernelConstruction* context) : OpKernel(context) {
    OP_REQUIRES_OK(context, context->GetAttr("forget_bias", &forget_bias_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& gates = context->input(0);
    const Tensor& forward = context->input(1);
    const Tensor& backward = context->input(2);
    const Tensor& lengths = context->input(3);
    OP_REQUIRES(context,
                gates.dims() == 3 && forward.dims() == 2 && forward.shape() == backward.shape() &&
                    lengths.dims() == 1 && forward.dim_size(1) == 4 * forward.dim_size(0) &&
                    gates.dim_size(2) == 8 * forward.dim_size(0) &&
                    lengths.dim_size(0) == gates.dim_size(1),
                absl::InvalidArgumentError(
                    "expected input_gates [time, batch, 8 * cell], kernels [cell, 4 * cell] and "
                    "sequence_length [batch], got " + gates.shape().DebugString() + ", " +
                    forward.shape().DebugString() + ", " + backward.shape().DebugString() +
                    ", " + lengths.shape().DebugString()));
    const int64_t steps = gates.dim_size(0), batch = gates.dim_size(1);
    const int64_t cell = forward.dim_size(0);
    const auto length = lengths.flat<int32_t>();
    for (int64_t b = 0; b < batch; ++b) {
      OP_REQUIRES(context, length(b) >= 0 && length(b) <= steps,
                  absl::InvalidArgumentError("sequence_length[" + std::to_string(b) + "] = " +
                                             std::to_string(length(b)) + " is outside [0, " +
                                             std::to_string(steps) + "]"));
    }
    Tensor* outputs = nullptr;
    OP_REQUIRES_OK(context,
                   context->allocate_output(0, TensorShape({steps, batch, 2 * cell}), &outputs));
    outputs->flat<float>().setZero();
    if (steps == 0 || batch == 0 || cell == 0) return;

    const float* kernels[2] = {forward.flat<float>().data(), backward.flat<float>().data()};
    ForEachDirection(context, batch * cell * 4 * cell,
                     [&](int64_t direction, const Eigen::ThreadPoolDevice* device) {
                       Recurrence(direction, gates.flat<float>().data(), kernels[direction],
                                  length.data(), steps, batch, cell,
                                  outputs->flat<float>().data(), device);
                     });
  }

 private:
  // One direction: 0 reads steps 0, 1, ..., 1 reads each sequence from its last step back.
  // ``device`` is the pool to share each step's product over, or null for this thread only.
  void Recurrence(int64_t direction, const float* gates, const float* kernel,
                  const int32_t* length, int64_t steps, int64_t batch, int64_t cell,
                  float* outputs, const Eigen::ThreadPoolDevice* device) const {
    const int64_t width = 4 * cell;
    Matrix pre(batch, width), state = Matrix::Zero(batch, cell), h = Matrix::Zero(batch, cell);
    const int64_t longest = *std::max_element(length, length + batch);
    for (int64_t s = 0; s < longest; ++s) {
      for (int64_t b = 0; b < batch; ++b) {
        if (s < length[b]) {
          const int64_t t = direction == 0 ? s : length[b] - 1 - s;
          pre.row(b) = Eigen::Map<const Eigen::RowVectorXf>(
              gates + (t * batch + b) * 2 * width + direction * width, width);
        }
      }
      if (s > 0) AddProduct(device, h.data(), kernel, batch, cell, width, pre.data());
      for (int64_t b = 0; b < batch; ++b) {
        if (s >= length[b]) continue;  // finished: its rows are never read again
        auto i = pre.row(b).segment(0, cell).array();
        auto j = pre.row(b).segment(cell, cell).array();
        auto f = pre.row(b).segment(2 * cell, cell).array();
        auto o = pre.row(b).segment(3 * cell, cell).array();
        auto c = state.row(b).array();
        c = c * (f + forget_bias_).logistic() + i.logistic() * j.tanh();
        h.row(b).array() = c.tanh() * o.logistic();
        const int64_t t = direction == 0 ? s : length[b] - 1 - s;
        Eigen::Map<Eigen::RowVectorXf>(outputs + (t * batch + b) * 2 * cell + direction * cell,
                                       cell) = h.row(b);
      }
    }
  }

  float forget_bias_;
};

REGISTER_KERNEL_BUILDER(Name("DeepSpeechBidirectionalLstm").Device(::tensorflow::DEVICE_CPU),
                        BidirectionalLstmOp);

}  // namespace deepspeech
